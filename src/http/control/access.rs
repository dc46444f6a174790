//! `/_emulator/tenants/{tid}/conditionalAccess/evaluate`: Graph's what-if for a test or an
//! admin console without a Graph token, with the same request and answer.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{admin_cx, load_tenant};
use crate::http::auth::Admin;
use crate::http::error::ApiResult;
use crate::http::extract::JsonBody;
use crate::http::graph::conditional_access::what_if_request;
use crate::http::AppState;
use crate::service::conditional_access;

pub async fn evaluate(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let request = what_if_request(&body)?;
    let results = conditional_access::what_if(&admin_cx(&state, &tenant, &admin), request).await?;
    Ok(Json(json!({ "value": results })))
}
