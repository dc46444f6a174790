//! `GET` and `PATCH /deviceManagement`: the tenant's Intune account and its settings.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::{graph_json, reject_collection_options, with_context};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, BaseUrl, IncludeUnknownEnumMembers, JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::schema::device_management::DEVICE_MANAGEMENT;
use crate::schema::{render, select, validate_patch, View};
use crate::service::settings;

/// Graph documents the singleton under every Intune permission family ("shared" pages).
const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementApps.Read.All",
        "DeviceManagementApps.ReadWrite.All",
        "DeviceManagementConfiguration.Read.All",
        "DeviceManagementConfiguration.ReadWrite.All",
        "DeviceManagementManagedDevices.Read.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
        "DeviceManagementRBAC.Read.All",
        "DeviceManagementRBAC.ReadWrite.All",
        "DeviceManagementServiceConfig.Read.All",
        "DeviceManagementServiceConfig.ReadWrite.All",
    ],
};
const WRITE: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementApps.ReadWrite.All",
        "DeviceManagementConfiguration.ReadWrite.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
        "DeviceManagementRBAC.ReadWrite.All",
        "DeviceManagementServiceConfig.ReadWrite.All",
    ],
};

pub fn routes(t: &mut RouteTable) {
    t.route(
        Method::GET,
        "/deviceManagement",
        Access::Graph(READ, Intune("Microsoft.Intune_Organization_Read")),
        get,
    )
    .route(
        Method::PATCH,
        "/deviceManagement",
        Access::Graph(WRITE, Intune("Microsoft.Intune_Organization_Update")),
        patch,
    );
}

async fn get(
    caller: GraphCaller,
    version: ApiVersion,
    IncludeUnknownEnumMembers(include_unknown): IncludeUnknownEnumMembers,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_collection_options(&q)?;
    if let Some(e) = q.expand.first() {
        return Err(ApiError::bad_request(format!(
            "Could not find a navigation property named '{}' on type 'microsoft.graph.deviceManagement' that can be expanded.",
            e.property
        )));
    }
    let record = settings::device_management(&caller.cx(&state.app)).await?;
    let view = View {
        version,
        include_unknown_enum_members: include_unknown,
    };
    let mut body = render(&DEVICE_MANAGEMENT, &record.properties, view);
    let mut context = format!("{base}/{}/$metadata#deviceManagement", version.segment());
    if let Some(names) = &q.select {
        body = select(body, &DEVICE_MANAGEMENT, names, version).map_err(|e| ApiError::bad_request(e.0))?;
        context.push_str(&format!("({})", names.join(",")));
    }
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

async fn patch(
    caller: GraphCaller,
    version: ApiVersion,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if body.is_null() {
        return Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.deviceManagement' is required.",
        ));
    }
    let patch = validate_patch(&DEVICE_MANAGEMENT, &body, version).map_err(|e| ApiError::bad_request(e.0))?;
    settings::patch_device_management(&caller.cx(&state.app), patch).await?;
    Ok(StatusCode::NO_CONTENT)
}
