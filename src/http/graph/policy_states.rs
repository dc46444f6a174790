//! `/managedDevices/{id}/deviceCompliancePolicyStates`: each policy's result for the device,
//! with its setting states, from the stored evaluation.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::compliance_policies::{platform_type, setting_id};
use super::{graph_json, memory, with_context, GraphCtx};
use crate::domain::device::ManagedDevice;
use crate::domain::permissions::GraphPermission;
use crate::domain::policy::StoredPolicy;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::OData;
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::QueryOptions;
use crate::schema::compliance_status::DEVICE_COMPLIANCE_POLICY_STATE;
use crate::schema::render;
use crate::service::policies::{self, compliance_status, DevicePolicyStates};
use crate::store::PolicyStateRow;

const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementManagedDevices.Read.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
    ],
};

pub fn routes(t: &mut RouteTable) {
    t.route(
        Method::GET,
        "/deviceManagement/managedDevices/{deviceId}/deviceCompliancePolicyStates",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        list,
    )
    .route(
        Method::GET,
        "/deviceManagement/managedDevices/{deviceId}/deviceCompliancePolicyStates/{stateId}",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        get,
    )
    .route(
        Method::GET,
        "/users/{userId}/managedDevices/{deviceId}/deviceCompliancePolicyStates",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        list_of_user,
    );
}

fn setting_state_doc(p: &StoredPolicy, d: &ManagedDevice, s: &Value) -> Value {
    let name = s["setting"].as_str().unwrap_or_default();
    let mut m = Map::new();
    m.insert("setting".into(), setting_id(p.family, name).into());
    m.insert("settingName".into(), name.into());
    m.insert("instanceDisplayName".into(), Value::Null);
    m.insert("state".into(), s["state"].clone());
    m.insert("errorCode".into(), 0.into());
    m.insert("errorDescription".into(), Value::Null);
    m.insert("userId".into(), json!(d.user_id));
    m.insert("userName".into(), json!(d.user_display_name));
    m.insert("userEmail".into(), json!(d.email_address));
    m.insert("userPrincipalName".into(), json!(d.user_principal_name));
    m.insert(
        "sources".into(),
        json!([{"id": p.id, "displayName": p.display_name(), "sourceType": "deviceConfiguration"}]),
    );
    m.insert("currentValue".into(), s["currentValue"].clone());
    Value::Object(m)
}

/// A `deviceCompliancePolicyState` from the stored result.
fn doc(p: &StoredPolicy, d: &ManagedDevice, row: &PolicyStateRow, ctx: &GraphCtx) -> Map<String, Value> {
    let settings: Vec<Value> = row
        .settings
        .as_array()
        .map(|a| a.iter().map(|s| setting_state_doc(p, d, s)).collect())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("id".into(), p.id.clone().into());
    m.insert("displayName".into(), p.display_name().into());
    m.insert("platformType".into(), platform_type(p.family, ctx.version).into());
    m.insert("settingCount".into(), (settings.len() as i64).into());
    m.insert("settingStates".into(), Value::Array(settings));
    m.insert("state".into(), compliance_status(&row.state).into());
    m.insert("version".into(), row.policy_version.into());
    m.insert("userId".into(), json!(d.user_id));
    m.insert("userPrincipalName".into(), json!(d.user_principal_name));
    render(&DEVICE_COMPLIANCE_POLICY_STATE, &m, ctx.view)
}

fn docs(states: &DevicePolicyStates, ctx: &GraphCtx) -> Vec<Map<String, Value>> {
    states
        .states
        .iter()
        .map(|(p, row)| doc(p, &states.device, row, ctx))
        .collect()
}

fn respond(q: &QueryOptions, docs: Vec<Map<String, Value>>, context: String) -> ApiResult<Response> {
    super::reject_expand(q, "deviceCompliancePolicyState")?;
    memory::page(q, docs, "deviceCompliancePolicyState", context)
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let states = policies::device_states(&caller.cx(&state.app), &id).await?;
    let context = ctx.context(
        &format!(
            "deviceManagement/managedDevices('{}')/deviceCompliancePolicyStates",
            states.device.id
        ),
        None,
    );
    respond(&q, docs(&states, &ctx), context)
}

async fn list_of_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path((user, id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (user_id, states) = policies::user_device_states(&caller.cx(&state.app), &user, &id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("Resource '{user}' does not exist or one of its queried reference-property objects are not present."),
            )
        })?;
    let context = ctx.context(
        &format!(
            "users('{user_id}')/managedDevices('{}')/deviceCompliancePolicyStates",
            states.device.id
        ),
        None,
    );
    respond(&q, docs(&states, &ctx), context)
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, sid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let states = policies::device_states(&caller.cx(&state.app), &id).await?;
    let found = docs(&states, &ctx)
        .into_iter()
        .find(|m| m["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&sid)))
        .ok_or_else(|| ApiError::not_found(format!("The device compliance policy state '{sid}' does not exist.")))?;
    let context = ctx.context(
        &format!(
            "deviceManagement/managedDevices('{}')/deviceCompliancePolicyStates/$entity",
            states.device.id
        ),
        None,
    );
    Ok(graph_json(StatusCode::OK, with_context(context, found)))
}
