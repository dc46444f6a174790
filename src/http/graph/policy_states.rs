//! `/managedDevices/{id}/deviceCompliancePolicyStates`: each policy's result for the device,
//! with its setting states, from the stored evaluation.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::compliance_policies::{compliance_status, platform_type, setting_id};
use super::managed_devices::{load, user_scope};
use super::{graph_json, memory, with_context, GraphCtx};
use crate::domain::device::ManagedDevice;
use crate::domain::permissions::GraphPermission;
use crate::domain::policy::StoredPolicy;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::QueryOptions;
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

fn setting_state_doc(p: &StoredPolicy, d: &ManagedDevice, s: &Value, ctx: &GraphCtx) -> Value {
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
    if ctx.version == ApiVersion::Beta {
        m.insert("settingInstanceId".into(), Value::Null);
    }
    Value::Object(m)
}

/// A `deviceCompliancePolicyState` from the stored result.
fn doc(p: &StoredPolicy, d: &ManagedDevice, row: &PolicyStateRow, ctx: &GraphCtx) -> Map<String, Value> {
    let settings: Vec<Value> = row
        .settings
        .as_array()
        .map(|a| a.iter().map(|s| setting_state_doc(p, d, s, ctx)).collect())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        "#microsoft.graph.deviceCompliancePolicyState".into(),
    );
    m.insert("id".into(), p.id.clone().into());
    m.insert("displayName".into(), p.display_name().into());
    m.insert("platformType".into(), platform_type(p.family, ctx.version).into());
    m.insert("settingCount".into(), (settings.len() as i64).into());
    m.insert("settingStates".into(), Value::Array(settings));
    m.insert("state".into(), compliance_status(&row.state).into());
    m.insert("version".into(), row.policy_version.into());
    if ctx.version == ApiVersion::Beta {
        m.insert("userId".into(), json!(d.user_id));
        m.insert("userPrincipalName".into(), json!(d.user_principal_name));
    }
    m
}

async fn docs(
    state: &AppState,
    caller: &GraphCaller,
    d: &ManagedDevice,
    ctx: &GraphCtx,
) -> ApiResult<Vec<Map<String, Value>>> {
    let rows = state.store.policy_states_of_device(&caller.tenant.id, &d.id).await?;
    let policies = state.store.list_policies(&caller.tenant.id).await?;
    Ok(rows
        .iter()
        .filter_map(|r| policies.iter().find(|p| p.id == r.policy_id).map(|p| doc(p, d, r, ctx)))
        .collect())
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
    let d = load(&caller.cx(&state.app), &id).await?;
    let docs = docs(&state, &caller, &d, &ctx).await?;
    let context = ctx.context(
        &format!(
            "deviceManagement/managedDevices('{}')/deviceCompliancePolicyStates",
            d.id
        ),
        None,
    );
    respond(&q, docs, context)
}

async fn list_of_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path((user, id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let user_id = user_scope(&caller.cx(&state.app), &user).await?;
    let d = load(&caller.cx(&state.app), &id).await?;
    if d.user_id.as_deref() != Some(user_id.as_str()) {
        return Err(ApiError::not_found(format!(
            "The managed device '{id}' does not exist."
        )));
    }
    let docs = docs(&state, &caller, &d, &ctx).await?;
    let context = ctx.context(
        &format!(
            "users('{user_id}')/managedDevices('{}')/deviceCompliancePolicyStates",
            d.id
        ),
        None,
    );
    respond(&q, docs, context)
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, sid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let d = load(&caller.cx(&state.app), &id).await?;
    let found = docs(&state, &caller, &d, &ctx)
        .await?
        .into_iter()
        .find(|m| m["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&sid)))
        .ok_or_else(|| ApiError::not_found(format!("The device compliance policy state '{sid}' does not exist.")))?;
    let context = ctx.context(
        &format!(
            "deviceManagement/managedDevices('{}')/deviceCompliancePolicyStates/$entity",
            d.id
        ),
        None,
    );
    Ok(graph_json(StatusCode::OK, with_context(context, found)))
}
