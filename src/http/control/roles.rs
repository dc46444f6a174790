//! Directory roles of users (`wids` of their delegated tokens): Entra assigns them in its own
//! admin surfaces, the emulator through the control plane. Intune Administrator and Global
//! Administrator pass every Intune role check; see `domain::rbac`.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::load_tenant;
use crate::domain::directory::User;
use crate::domain::rbac::{directory_role, directory_role_name, DIRECTORY_ROLES};
use crate::domain::tenant::parse_guid;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{decode, JsonBody};
use crate::http::AppState;

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

/// The user by object id or user principal name.
async fn load_user(state: &AppState, tenant_id: &str, key: &str) -> ApiResult<User> {
    let found = match parse_guid(key) {
        Some(id) => state.store.get_user(tenant_id, &id).await?,
        None => state.store.find_user_by_upn(tenant_id, key).await?,
    };
    found.ok_or_else(|| ApiError::not_found(format!("The user '{key}' does not exist in the tenant.")))
}

pub async fn get_roles(
    _: Admin,
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &tenant).await?;
    let user = load_user(&state, &tenant.id, &user).await?;
    Ok(roles_json(&state.store.directory_roles(&tenant.id, &user.id).await?))
}

/// Replaces the user's directory roles; tokens issued from then on carry them.
pub async fn put_roles(
    _: Admin,
    State(state): State<AppState>,
    Path((tenant, user)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &tenant).await?;
    let user = load_user(&state, &tenant.id, &user).await?;
    let req: DirectoryRoles = decode(body, "emulator.directoryRoles")?;
    let mut ids: Vec<String> = Vec::with_capacity(req.roles.len());
    for r in &req.roles {
        let id = directory_role(r).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid value for property 'roles': '{r}' is not a directory role the emulator knows ({}).",
                DIRECTORY_ROLES.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    if !state.store.set_directory_roles(&tenant.id, &user.id, &ids).await? {
        return Err(ApiError::not_found(format!(
            "The user '{}' does not exist in the tenant.",
            user.id
        )));
    }
    Ok(roles_json(&state.store.directory_roles(&tenant.id, &user.id).await?))
}
