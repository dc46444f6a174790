//! Liveness, readiness, metrics and the OpenAPI document.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use super::error::ApiError;
use super::routes::{Access, RouteTable, Surface};
use super::AppState;
use crate::service::identity;

/// The OpenAPI document of every surface, as committed.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

pub fn routes() -> RouteTable {
    let mut t = RouteTable::new(Surface::Operations);
    t.route(Method::GET, "/healthz", Access::Public, healthz)
        .route(Method::GET, "/readyz", Access::Public, readyz)
        .route(Method::GET, "/metrics", Access::Public, prometheus)
        .route(Method::GET, "/openapi.yaml", Access::Public, openapi);
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

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match identity::ready(&state.app).await {
        Ok(true) => Ok(Json(json!({ "status": "ready", "database": state.app.backend() }))),
        Ok(false) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "Database migrations are not applied.",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The database is not reachable.",
            ))
        }
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

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response()
}
