//! `/_emulator/tenants/{tid}/limits`: a tenant's throttling (Intune's buckets, Graph's global
//! per-app limit, the partner API's limit), off until set.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::domain::limits::Limits;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{decode, JsonBody};
use crate::http::AppState;
use crate::service::limits;

/// The limits document: `enabled`, and the limits in force (when off, those a `PUT {}` sets).
fn document(limits: Option<&Limits>) -> Json<Value> {
    let enabled = limits.is_some();
    let shown = limits.cloned().unwrap_or_default();
    let mut doc = serde_json::to_value(shown).unwrap_or_default();
    if let Some(m) = doc.as_object_mut() {
        m.insert("enabled".into(), enabled.into());
    }
    Json(doc)
}

pub async fn get(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(document(limits::get(&state.app, &id).await?.as_ref()))
}

/// Switches throttling on with the limits given (fields left out: Microsoft's), or off with
/// `{"enabled": false}`. Every counter starts afresh.
pub async fn put(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Json<Value>> {
    let enabled = match body.as_object_mut().and_then(|m| m.remove("enabled")) {
        None | Some(Value::Bool(true)) => true,
        Some(Value::Bool(false)) => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for property 'enabled': {other}; use true or false."
            )))
        }
    };
    let requested = if enabled {
        Some(decode::<Limits>(body, "emulator.limits")?)
    } else {
        None
    };
    let set = limits::set(&state.app, &id, requested).await?;
    Ok(document(set.as_ref()))
}

/// Switches throttling off.
pub async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    limits::set(&state.app, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
