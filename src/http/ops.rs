//! Liveness, readiness, metrics, the OpenAPI document, and the files of report exports (their
//! url, which carries a signature instead of credentials, as a storage account's does).

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use super::error::{ApiError, OUTAGE_RETRY_AFTER_S};
use super::extract::BaseUrl;
use super::routes::{Access, RouteTable, Surface};
use super::AppState;
use crate::service::identity::{self, DatabaseStatus};

/// The OpenAPI document of every surface, as committed.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

pub fn routes() -> RouteTable {
    let mut t = RouteTable::new(Surface::Operations);
    t.route(Method::GET, "/", Access::Public, root)
        .route(Method::GET, "/healthz", Access::Public, healthz)
        .route(Method::GET, "/readyz", Access::Public, readyz)
        .route(Method::GET, "/metrics", Access::Public, prometheus)
        .route(Method::GET, "/openapi.yaml", Access::Public, openapi)
        .route(
            Method::GET,
            "/_downloads/reports/{tenantId}/{fileName}",
            Access::Public,
            export_file,
        );
    t
}

/// The process-wide metrics recorder (a process has one, however many apps it serves).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("valid buckets")
            .set_buckets_for_metric(
                Matcher::Full("worker_tick_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            )
            .expect("valid buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first, which this process never does.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// How long `/readyz` waits for the database: it answers within a second, database or not.
const READY_PROBE: Duration = Duration::from_millis(800);
/// How long `/healthz` waits for the database before it reports it down.
const HEALTH_PROBE: Duration = Duration::from_millis(500);

/// The process is up (always 200); says whether the database answers, without waiting on it.
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let database = match identity::database_status(&state.app, HEALTH_PROBE).await {
        DatabaseStatus::Ready => "up",
        DatabaseStatus::NotMigrated => "notMigrated",
        DatabaseStatus::Unreachable(_) => "down",
    };
    Json(json!({ "status": "ok", "database": database, "backend": state.app.backend() }))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match identity::database_status(&state.app, READY_PROBE).await {
        DatabaseStatus::Ready => Ok(Json(json!({ "status": "ready", "database": state.app.backend() }))),
        DatabaseStatus::NotMigrated => Err(ApiError::unavailable(
            "Database migrations are not applied.",
            OUTAGE_RETRY_AFTER_S,
            "migrations not applied",
        )),
        DatabaseStatus::Unreachable(cause) => Err(ApiError::unavailable(
            "The database is not reachable.",
            OUTAGE_RETRY_AFTER_S,
            cause,
        )),
    }
}

async fn prometheus(State(state): State<AppState>) -> Response {
    let stats = identity::pool_stats(&state.app);
    metrics::gauge!("db_pool_connections", "backend" => state.app.backend()).set(stats.size as f64);
    metrics::gauge!("db_pool_idle_connections", "backend" => state.app.backend()).set(stats.idle as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
        .into_response()
}

/// The surfaces and where they are: an HTML page for a browser, JSON otherwise.
async fn root(headers: HeaderMap, BaseUrl(base): BaseUrl) -> Response {
    let links = [
        (
            "Graph v1.0",
            format!("{base}/v1.0"),
            "Microsoft Graph, with a token of the tenant",
        ),
        ("Graph beta", format!("{base}/beta"), "Microsoft Graph beta"),
        (
            "Token endpoint",
            format!("{base}/{{tenantId}}/oauth2/v2.0/token"),
            "Entra ID's, for client credentials and passwords",
        ),
        (
            "Partner API",
            format!("{base}/partner/v1"),
            "for MTD partners, with a partner app's token",
        ),
        (
            "Control plane",
            format!("{base}/_emulator/tenants"),
            "tenants, apps, devices, the clock, settle",
        ),
        (
            "OpenAPI",
            format!("{base}/openapi.yaml"),
            "every route, its parameters and answers",
        ),
        (
            "Health",
            format!("{base}/healthz"),
            "liveness, and whether the database answers",
        ),
        ("Readiness", format!("{base}/readyz"), "503 until the database answers"),
        ("Metrics", format!("{base}/metrics"), "Prometheus"),
    ];
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if html {
        let items: String = links
            .iter()
            .map(|(name, url, what)| {
                let url = html_escape(url);
                format!("<li><a href=\"{url}\">{name}</a> <code>{url}</code>: {what}</li>\n")
            })
            .collect();
        let page = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Intune MTD emulator</title></head>\n\
             <body><h1>Intune MTD emulator {}</h1>\n<p>Emulates Microsoft Intune's Mobile Threat Defense connectors and \
             device-compliance Graph API. Start with a tenant: <code>POST {}/_emulator/tenants</code>.</p>\n<ul>\n{items}</ul></body></html>\n",
            env!("CARGO_PKG_VERSION"),
            html_escape(&base)
        );
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    let surfaces: serde_json::Map<String, serde_json::Value> = links
        .iter()
        .map(|(name, url, what)| (name.to_string(), json!({ "url": url, "description": what })))
        .collect();
    Json(json!({
        "name": "Intune MTD emulator",
        "version": env!("CARGO_PKG_VERSION"),
        "surfaces": surfaces,
    }))
    .into_response()
}

pub(crate) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response()
}

#[derive(serde::Deserialize)]
struct Signature {
    sig: Option<String>,
}

/// `GET /_downloads/reports/{tenantId}/{jobId}.zip?sig=`: a completed export's zip, until the
/// url expires on the tenant's clock (403 then, or with a wrong signature).
async fn export_file(
    State(state): State<AppState>,
    axum::extract::Path((tenant_id, file_name)): axum::extract::Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<Signature>,
    axum::Extension(ids): axum::Extension<super::RequestIds>,
) -> Result<Response, ApiError> {
    let job_id = file_name
        .strip_suffix(".zip")
        .ok_or_else(|| ApiError::not_found("No such file: export files end in .zip."))?;
    let cause = crate::service::Cause::Request(ids.request_id);
    let zip = crate::service::reports::download_by_url(
        &state.app,
        &tenant_id,
        job_id,
        q.sig.as_deref().unwrap_or_default(),
        &cause,
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{job_id}.zip\""),
            ),
        ],
        zip,
    )
        .into_response())
}
