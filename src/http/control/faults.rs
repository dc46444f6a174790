//! `/_emulator/tenants/{tid}/faults`: a tenant's fault rules (errors, latency and dropped
//! connections injected into its Graph and partner requests), tried in the order created.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::http::AppState;
use crate::service::faults;

fn object(body: Value) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request("A fault rule is a JSON object.")),
    }
}

pub async fn list(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let rules = faults::list(&state.app, &id).await?;
    Ok(Json(
        json!({ "value": rules.iter().map(faults::RuleState::document).collect::<Vec<_>>() }),
    ))
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let rule = faults::create(&state.app, &id, object(body)?).await?;
    Ok((StatusCode::CREATED, Json(rule.document())))
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path((id, rule_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(faults::get(&state.app, &id, &rule_id).await?.document()))
}

/// Merges the changes given; the rule's counters start afresh.
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path((id, rule_id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        faults::update(&state.app, &id, &rule_id, object(body)?)
            .await?
            .document(),
    ))
}

pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path((id, rule_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    faults::delete(&state.app, &id, Some(&rule_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_all(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    faults::delete(&state.app, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
