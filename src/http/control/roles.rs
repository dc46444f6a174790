//! Directory roles of users (`wids` of their delegated tokens): Entra assigns them in its own
//! admin surfaces, the emulator through the control plane. Intune Administrator and Global
//! Administrator pass every Intune role check; see `domain::rbac`.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::load_tenant;
use crate::domain::rbac::directory_role_name;
use crate::http::auth::Admin;
use crate::http::error::ApiResult;
use crate::http::extract::{decode, JsonBody};
use crate::http::AppState;
use crate::service::rbac;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DirectoryRoles {
    roles: Vec<String>,
}

fn roles_json(ids: &[String]) -> Json<Value> {
    Json(json!({
        "value": ids
            .iter()
            .map(|id| json!({ "id": id, "displayName": directory_role_name(id) }))
            .collect::<Vec<_>>()
    }))
}

pub async fn get_roles(
    admin: Admin,
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &tenant).await?;
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let cx = state.app.cx(&tenant.id, now, &admin.cause);
    Ok(roles_json(&rbac::directory_roles(&cx, &user).await?))
}

/// Replaces the user's directory roles; tokens issued from then on carry them.
pub async fn put_roles(
    admin: Admin,
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &tenant).await?;
    let req: DirectoryRoles = decode(body, "emulator.directoryRoles")?;
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let cx = state.app.cx(&tenant.id, now, &admin.cause);
    Ok(roles_json(&rbac::set_directory_roles(&cx, &user, &req.roles).await?))
}
