//! `/deviceManagement/reports/exportJobs`: report export jobs, run by the worker on the
//! tenant's clock, and the url their zip is served at.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{graph_json, memory, with_context, GraphCtx};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::domain::reports::{ExportJob, Report};
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{decode, ApiVersion, BaseUrl, JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::service::clock::rfc3339;
use crate::service::reports::{self, NewExport};

/// Reading jobs: any of the three families' Read or ReadWrite (docs, both versions).
const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementConfiguration.Read.All",
        "DeviceManagementConfiguration.ReadWrite.All",
        "DeviceManagementApps.Read.All",
        "DeviceManagementApps.ReadWrite.All",
        "DeviceManagementManagedDevices.Read.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
    ],
};
/// Creating a job needs a ReadWrite permission (docs; observed).
const WRITE: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementConfiguration.ReadWrite.All",
        "DeviceManagementApps.ReadWrite.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
    ],
};
const VIEW_REPORTS: crate::domain::rbac::RoleRequirement = Intune("Microsoft.Intune_ManagedDevices_ViewReports");

const PATH: &str = "/deviceManagement/reports/exportJobs";

pub fn routes(t: &mut RouteTable) {
    t.route(Method::POST, PATH, Access::Graph(WRITE, VIEW_REPORTS), create)
        .route(Method::GET, PATH, Access::Graph(READ, VIEW_REPORTS), list)
        .route(
            Method::GET,
            "/deviceManagement/reports/exportJobs/{exportJobId}",
            Access::Graph(READ, VIEW_REPORTS),
            get,
        );
    for &(path, report, beta_only) in ACTIONS {
        t.route(
            Method::POST,
            path,
            Access::Graph(READ, VIEW_REPORTS),
            move |caller: GraphCaller, ctx: GraphCtx, State(state): State<AppState>, JsonBody(body): JsonBody| {
                report_action(path, report, beta_only, caller, ctx, state, body)
            },
        );
    }
}

/// The synchronous report actions: the route, its report, and whether only beta has it.
const ACTIONS: &[(&str, Report, bool)] = &[
    (
        "/deviceManagement/reports/getDeviceNonComplianceReport",
        Report::DeviceNonCompliance,
        false,
    ),
    (
        "/deviceManagement/reports/getDevicesWithoutCompliancePolicyReport",
        Report::DevicesWithoutCompliancePolicy,
        false,
    ),
    // Microsoft's spelling.
    (
        "/deviceManagement/reports/getDeviceStatusByCompliacePolicyReport",
        Report::DeviceStatusByCompliacePolicy,
        true,
    ),
    (
        "/deviceManagement/reports/getDeviceStatusSummaryByCompliacePolicyReport",
        Report::DeviceStatusSummaryByCompliacePolicy,
        true,
    ),
    (
        "/deviceManagement/reports/getDevicesStatusByPolicyPlatformComplianceReport",
        Report::DevicesStatusByPolicyPlatformCompliance,
        true,
    ),
];

/// A job as Graph shows it; `url` points at this server.
fn render(j: &ExportJob, base: &str, version: ApiVersion) -> Map<String, Value> {
    let url = j
        .token
        .as_ref()
        .map(|t| format!("{base}/_downloads/reports/{}/{}.zip?sig={t}", j.tenant_id, j.id));
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        "#microsoft.graph.deviceManagementExportJob".into(),
    );
    m.insert("id".into(), j.id.clone().into());
    m.insert("reportName".into(), j.report_name.clone().into());
    m.insert("filter".into(), json!(j.request.filter));
    m.insert("select".into(), json!(j.request.select));
    m.insert("format".into(), j.request.format.clone().into());
    m.insert("snapshotId".into(), Value::Null);
    m.insert("localizationType".into(), j.request.localization_type.clone().into());
    if version == ApiVersion::Beta {
        m.insert("search".into(), json!(j.request.search));
    }
    m.insert("status".into(), j.status.clone().into());
    m.insert("url".into(), json!(url));
    m.insert("requestDateTime".into(), rfc3339(j.requested_at).into());
    m.insert(
        "expirationDateTime".into(),
        j.expires_at
            .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339)
            .into(),
    );
    m
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    #[serde(rename = "@odata.type")]
    _odata_type: Option<String>,
    report_name: Option<String>,
    format: Option<String>,
    localization_type: Option<String>,
    select: Option<Vec<String>>,
    filter: Option<String>,
    search: Option<String>,
    snapshot_id: Option<String>,
}

async fn create(
    caller: GraphCaller,
    ctx: GraphCtx,
    BaseUrl(base): BaseUrl,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if ctx.version == ApiVersion::V1 && body.get("search").is_some() {
        return Err(ApiError::bad_request(
            "The property 'search' does not exist on type 'microsoft.graph.deviceManagementExportJob' in v1.0.",
        ));
    }
    let req: CreateBody = decode(body, "microsoft.graph.deviceManagementExportJob")?;
    let report_name = req
        .report_name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("The property 'reportName' is required."))?;
    let select = req.select.unwrap_or_default();
    if select.len() > 256 {
        return Err(ApiError::bad_request("At most 256 columns may be selected."));
    }
    if req.filter.as_deref().is_some_and(|f| f.len() > 2000) {
        return Err(ApiError::bad_request("The filter is longer than 2000 characters."));
    }
    if req.search.as_deref().is_some_and(|s| s.len() > 100) {
        return Err(ApiError::bad_request("The search term is longer than 100 characters."));
    }
    let job = reports::create(
        &caller.cx(&state.app),
        NewExport {
            report_name,
            format: req.format,
            localization_type: req.localization_type,
            select,
            filter: req.filter,
            search: req.search,
            snapshot_id: req.snapshot_id,
        },
    )
    .await?;
    let context = ctx.context("deviceManagement/reports/exportJobs/$entity", None);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(context, render(&job, &base, ctx.version)),
    ))
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_collection_options(&q)?;
    let job = reports::get(&caller.cx(&state.app), &id).await?;
    let body = render(&job, &base, ctx.version);
    let body = memory::select(body, q.select.as_deref());
    let context = ctx.context("deviceManagement/reports/exportJobs/$entity", q.select.as_deref());
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let jobs = reports::list(&caller.cx(&state.app)).await?;
    let docs = jobs.iter().map(|j| render(j, &base, ctx.version)).collect();
    memory::page(
        &q,
        docs,
        "deviceManagementExportJob",
        ctx.context("deviceManagement/reports/exportJobs", q.select.as_deref()),
    )
}

/// The parameters of a synchronous report action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReportBody {
    name: Option<String>,
    select: Option<Vec<String>>,
    filter: Option<String>,
    order_by: Option<Vec<String>>,
    group_by: Option<Vec<String>>,
    search: Option<String>,
    session_id: Option<String>,
    skip: Option<i64>,
    top: Option<i64>,
}

/// A synchronous report action: the report's rows as a stream (`application/octet-stream`) of
/// `{TotalRowCount, Schema, Values}`. `beta_only` actions are unknown segments on v1.0, as Graph
/// answers them.
async fn report_action(
    path: &str,
    report: Report,
    beta_only: bool,
    caller: GraphCaller,
    ctx: GraphCtx,
    state: AppState,
    body: Value,
) -> ApiResult<Response> {
    let action = path.rsplit('/').next().unwrap_or(path);
    if beta_only && ctx.version == ApiVersion::V1 {
        return Err(ApiError::bad_request(format!(
            "Resource not found for the segment '{action}'."
        )));
    }
    let req: ReportBody = decode(body, action)?;
    if req
        .name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && !n.eq_ignore_ascii_case(report.name()))
    {
        return Err(ApiError::bad_request(format!(
            "The parameter 'name' of {action} can only be {}.",
            report.name()
        )));
    }
    if req.group_by.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(ApiError::bad_request(
            "groupBy is not supported by the emulator's reports.",
        ));
    }
    if req.session_id.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(
            "Cached report sessions (sessionId) are not supported by the emulator.",
        ));
    }
    let count = |name: &str, v: Option<i64>| -> ApiResult<Option<usize>> {
        match v {
            None => Ok(None),
            Some(n) if n >= 0 => Ok(Some(n as usize)),
            Some(n) => Err(ApiError::bad_request(format!(
                "Invalid value for '{name}': {n} is negative."
            ))),
        }
    };
    let rows = reports::run_report(
        &caller.cx(&state.app),
        report,
        reports::ReportRequest {
            select: req.select.unwrap_or_default(),
            filter: req.filter,
            order_by: req.order_by.unwrap_or_default(),
            search: req.search.filter(|s| !s.is_empty()),
            skip: count("skip", req.skip)?.unwrap_or(0),
            top: count("top", req.top)?.filter(|t| *t > 0),
        },
    )
    .await?;
    let bytes = serde_json::to_vec(&rows).unwrap_or_default();
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )))
}
