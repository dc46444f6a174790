//! Conditional Access (`/identity/conditionalAccess/policies`, `/identity/conditionalAccess/evaluate`)
//! and the sign-in log (`/auditLogs/signIns`), with the permissions and directory roles
//! Microsoft documents for them.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{graph_json, memory, reject_collection_options, reject_expand, with_context, GraphCtx};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::{RoleRequirement, GLOBAL_ADMINISTRATOR};
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::service::conditional_access::{self as ca, WhatIf};

const POLICY_READ: GraphPermission = GraphPermission {
    any_of: &[
        "Policy.Read.All",
        "Policy.Read.ConditionalAccess",
        "Policy.ReadWrite.ConditionalAccess",
    ],
};
const POLICY_WRITE: GraphPermission = GraphPermission {
    any_of: &["Policy.ReadWrite.ConditionalAccess"],
};
const SIGN_IN_READ: GraphPermission = GraphPermission {
    any_of: &["AuditLog.Read.All", "Directory.Read.All"],
};

/// Entra's role template ids for the roles Microsoft names for these APIs.
const CONDITIONAL_ACCESS_ADMINISTRATOR: &str = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9";
const SECURITY_ADMINISTRATOR: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
const SECURITY_OPERATOR: &str = "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f";
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";

const POLICY_READERS: RoleRequirement = RoleRequirement::Directory(&[
    GLOBAL_ADMINISTRATOR,
    CONDITIONAL_ACCESS_ADMINISTRATOR,
    SECURITY_ADMINISTRATOR,
    SECURITY_READER,
    GLOBAL_READER,
]);
const POLICY_WRITERS: RoleRequirement = RoleRequirement::Directory(&[
    GLOBAL_ADMINISTRATOR,
    CONDITIONAL_ACCESS_ADMINISTRATOR,
    SECURITY_ADMINISTRATOR,
]);
const SIGN_IN_READERS: RoleRequirement = RoleRequirement::Directory(&[
    GLOBAL_ADMINISTRATOR,
    GLOBAL_READER,
    REPORTS_READER,
    SECURITY_ADMINISTRATOR,
    SECURITY_OPERATOR,
    SECURITY_READER,
]);

const POLICIES: &str = "/identity/conditionalAccess/policies";
const POLICY: &str = "/identity/conditionalAccess/policies/{conditionalAccessPolicyId}";

pub fn routes(t: &mut RouteTable) {
    t.route(Method::GET, POLICIES, Access::Graph(POLICY_READ, POLICY_READERS), list)
        .route(
            Method::POST,
            POLICIES,
            Access::Graph(POLICY_WRITE, POLICY_WRITERS),
            create,
        )
        .route(Method::GET, POLICY, Access::Graph(POLICY_READ, POLICY_READERS), get)
        .route(
            Method::PATCH,
            POLICY,
            Access::Graph(POLICY_WRITE, POLICY_WRITERS),
            update,
        )
        .route(
            Method::DELETE,
            POLICY,
            Access::Graph(POLICY_WRITE, POLICY_WRITERS),
            delete,
        )
        .route(
            Method::POST,
            "/identity/conditionalAccess/evaluate",
            Access::Graph(POLICY_READ, POLICY_READERS),
            evaluate,
        )
        .route(
            Method::GET,
            "/auditLogs/signIns",
            Access::Graph(SIGN_IN_READ, SIGN_IN_READERS),
            list_sign_ins,
        )
        .route(
            Method::GET,
            "/auditLogs/signIns/{signInId}",
            Access::Graph(SIGN_IN_READ, SIGN_IN_READERS),
            get_sign_in,
        );
}

fn policy_doc(doc: Value) -> Map<String, Value> {
    let mut m = match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut out = Map::with_capacity(m.len() + 1);
    out.insert(
        "@odata.type".into(),
        Value::String("#microsoft.graph.conditionalAccessPolicy".into()),
    );
    out.append(&mut m);
    out
}

fn body_object(body: Value) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.conditionalAccessPolicy' is required.",
        )),
    }
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_expand(&q, "conditionalAccessPolicy")?;
    let docs = ca::list(&caller.cx(&state.app)).await?;
    memory::page(
        &q,
        docs.into_iter().map(policy_doc).collect(),
        "conditionalAccessPolicy",
        ctx.context("identity/conditionalAccess/policies", q.select.as_deref()),
    )
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_expand(&q, "conditionalAccessPolicy")?;
    let doc = ca::get(&caller.cx(&state.app), &id).await?;
    entity(&ctx, &q, "identity/conditionalAccess/policies/$entity", policy_doc(doc))
}

/// One entity's answer, `$select` applied.
fn entity(
    ctx: &GraphCtx,
    q: &crate::odata::QueryOptions,
    context: &str,
    doc: Map<String, Value>,
) -> ApiResult<Response> {
    reject_collection_options(q)?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(
            ctx.context(context, q.select.as_deref()),
            memory::select(doc, q.select.as_deref()),
        ),
    ))
}

async fn create(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let doc = ca::create(&caller.cx(&state.app), body_object(body)?).await?;
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(
            ctx.context("identity/conditionalAccess/policies/$entity", None),
            policy_doc(doc),
        ),
    ))
}

async fn update(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    ca::update(&caller.cx(&state.app), &id, body_object(body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(caller: GraphCaller, Path(id): Path<String>, State(state): State<AppState>) -> ApiResult<StatusCode> {
    ca::delete(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `evaluate` is asked: the request's `signInIdentity` (a user), `signInContext` (the
/// applications), `signInConditions` (client app type, device platform, `deviceInfo`) and
/// `appliedPoliciesOnly`, as Graph's action takes them (the control plane's too).
pub(crate) fn what_if_request(body: &Value) -> ApiResult<WhatIf> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let user_id = text(&body["signInIdentity"]["userId"]).ok_or_else(|| {
        ApiError::bad_request(
            "'signInIdentity' names a user: {\"@odata.type\": \"#microsoft.graph.userSignIn\", \"userId\": ...}.",
        )
    })?;
    let applications = match &body["signInContext"]["includeApplications"] {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        Value::Null => Vec::new(),
        _ => {
            return Err(ApiError::bad_request(
                "'signInContext.includeApplications' is a collection of strings.",
            ))
        }
    };
    let conditions = &body["signInConditions"];
    Ok(WhatIf {
        user_id,
        applications,
        client_app_type: text(&conditions["clientAppType"]),
        device_platform: text(&conditions["devicePlatform"]),
        device_id: text(&conditions["deviceInfo"]["deviceId"]).filter(|d| !d.is_empty()),
        is_compliant: conditions["deviceInfo"]["isCompliant"].as_bool(),
        applied_policies_only: body["appliedPoliciesOnly"].as_bool().unwrap_or(false),
    })
}

/// Graph's `evaluate` (what if).
async fn evaluate(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let results = ca::what_if(&caller.cx(&state.app), what_if_request(&body)?).await?;
    let values: Vec<Map<String, Value>> = results
        .into_iter()
        .filter_map(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect();
    Ok(super::collection_response(
        ctx.context("Collection(microsoft.graph.whatIfAnalysisResult)", None),
        values,
        None,
        None,
    ))
}

fn sign_in_doc(doc: Value) -> Map<String, Value> {
    match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn list_sign_ins(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_expand(&q, "signIn")?;
    let docs = ca::sign_ins(&caller.cx(&state.app)).await?;
    memory::page(
        &q,
        docs.into_iter().map(sign_in_doc).collect(),
        "signIn",
        ctx.context("auditLogs/signIns", q.select.as_deref()),
    )
}

async fn get_sign_in(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let doc = ca::sign_ins(&caller.cx(&state.app))
        .await?
        .into_iter()
        .find(|d| d["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(&id)))
        .ok_or_else(|| ApiError::not_found(format!("The sign-in '{id}' does not exist.")))?;
    entity(&ctx, &q, "auditLogs/signIns/$entity", sign_in_doc(doc))
}
