//! Intune RBAC (graph-reference 5): `roleDefinitions` (the built-in ones, static and the same in
//! every tenant, then the tenant's custom ones), `roleAssignments` (groups of members given a
//! role), `resourceOperations` (the permissions roles are made of) and
//! `getEffectivePermissions(scope='...')`.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{apply_select, collection_response, graph_json, reject_expand, with_context, GraphCtx};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement::{self, Intune};
use crate::domain::rbac::{resource_operation, RoleAssignment, RoleDefinition, RESOURCE_OPERATIONS};
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::QueryOptions;
use crate::schema::rbac::{
    DEVICE_AND_APP_MANAGEMENT_ROLE_ASSIGNMENT as ASSIGNMENT, DEVICE_AND_APP_MANAGEMENT_ROLE_DEFINITION as DEFINITION,
    RESOURCE_OPERATION, ROLE_PERMISSION,
};
use crate::schema::{render, validate_patch, StructType};
use crate::service::rbac;

const READ: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementRBAC.Read.All", "DeviceManagementRBAC.ReadWrite.All"],
};
const WRITE: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementRBAC.ReadWrite.All"],
};

const DEFINITIONS: &str = "/deviceManagement/roleDefinitions";
const DEFINITION_ITEM: &str = "/deviceManagement/roleDefinitions/{roleDefinitionId}";
const DEFINITION_ASSIGNMENTS: &str = "/deviceManagement/roleDefinitions/{roleDefinitionId}/roleAssignments";
const DEFINITION_ASSIGNMENT: &str =
    "/deviceManagement/roleDefinitions/{roleDefinitionId}/roleAssignments/{roleAssignmentId}";
const ASSIGNMENTS: &str = "/deviceManagement/roleAssignments";
const ASSIGNMENT_ITEM: &str = "/deviceManagement/roleAssignments/{roleAssignmentId}";
const OPERATIONS: &str = "/deviceManagement/resourceOperations";
const OPERATION_ITEM: &str = "/deviceManagement/resourceOperations/{resourceOperationId}";
/// Clients call `getEffectivePermissions(scope='...')`; path normalisation turns the function's
/// single parameter into a segment, as it does for `name('key')`.
const EFFECTIVE: &str = "/deviceManagement/getEffectivePermissions/{scope}";

const ROLES_READ: RoleRequirement = Intune("Microsoft.Intune_Roles_Read");
const ROLES_ASSIGN: RoleRequirement = Intune("Microsoft.Intune_Roles_Assign");

pub fn routes(t: &mut RouteTable) {
    t.route(
        Method::GET,
        DEFINITIONS,
        Access::Graph(READ, ROLES_READ),
        list_definitions,
    )
    .route(
        Method::POST,
        DEFINITIONS,
        Access::Graph(WRITE, Intune("Microsoft.Intune_Roles_Create")),
        create_definition,
    )
    .route(
        Method::GET,
        DEFINITION_ITEM,
        Access::Graph(READ, ROLES_READ),
        get_definition,
    )
    .route(
        Method::PATCH,
        DEFINITION_ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_Roles_Update")),
        patch_definition,
    )
    .route(
        Method::DELETE,
        DEFINITION_ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_Roles_Delete")),
        delete_definition,
    )
    .route(
        Method::GET,
        DEFINITION_ASSIGNMENTS,
        Access::Graph(READ, ROLES_READ),
        list_assignments_of_definition,
    )
    .route(
        Method::GET,
        DEFINITION_ASSIGNMENT,
        Access::Graph(READ, ROLES_READ),
        get_assignment_of_definition,
    )
    .route(
        Method::GET,
        ASSIGNMENTS,
        Access::Graph(READ, ROLES_READ),
        list_assignments,
    )
    .route(
        Method::POST,
        ASSIGNMENTS,
        Access::Graph(WRITE, ROLES_ASSIGN),
        create_assignment,
    )
    .route(
        Method::GET,
        ASSIGNMENT_ITEM,
        Access::Graph(READ, ROLES_READ),
        get_assignment,
    )
    .route(
        Method::PATCH,
        ASSIGNMENT_ITEM,
        Access::Graph(WRITE, ROLES_ASSIGN),
        patch_assignment,
    )
    .route(
        Method::DELETE,
        ASSIGNMENT_ITEM,
        Access::Graph(WRITE, ROLES_ASSIGN),
        delete_assignment,
    )
    .route(
        Method::GET,
        OPERATIONS,
        Access::Graph(READ, ROLES_READ),
        list_operations,
    )
    .route(
        Method::GET,
        OPERATION_ITEM,
        Access::Graph(READ, ROLES_READ),
        get_operation,
    )
    // Anyone signed in may ask what they themselves may do.
    .route(
        Method::GET,
        EFFECTIVE,
        Access::Graph(READ, RoleRequirement::OwnRights),
        effective_permissions,
    );
}

/// $filter, $orderby, $count, $skip, $top and $select over an in-memory collection.
fn respond_list(
    q: &QueryOptions,
    docs: Vec<Map<String, Value>>,
    st: &StructType,
    ctx: &GraphCtx,
    context_path: &str,
) -> ApiResult<Response> {
    reject_expand(q, st.name)?;
    if q.search.is_some() || q.skiptoken.is_some() {
        return Err(ApiError::bad_request(format!(
            "$search and $skiptoken are not supported on {}.",
            st.name
        )));
    }
    let kept = super::memory::query(docs, q.filter.as_ref(), &q.orderby, &st.qualified_name())?;
    let count = q.count.then_some(kept.len() as i64);
    let values = kept
        .into_iter()
        .skip(q.skip.unwrap_or(0) as usize)
        .take(q.top.map(|t| t as usize).unwrap_or(usize::MAX))
        .map(|d| apply_select(d, st, q.select.as_ref(), ctx.version))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(collection_response(
        ctx.context(context_path, q.select.as_deref()),
        values,
        count,
        None,
    ))
}

fn respond_one(
    q: &QueryOptions,
    doc: Map<String, Value>,
    st: &StructType,
    ctx: &GraphCtx,
    context_path: &str,
) -> ApiResult<Response> {
    super::reject_collection_options(q)?;
    reject_expand(q, st.name)?;
    let body = apply_select(doc, st, q.select.as_ref(), ctx.version)?;
    let context = ctx.context(&format!("{context_path}/$entity"), q.select.as_deref());
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

// ---- role definitions ----

fn definition_doc(r: &RoleDefinition, ctx: &GraphCtx) -> Map<String, Value> {
    render(&DEFINITION, &r.document(), ctx.view)
}

/// Clients send the base type's name as often as the derived one's.
fn with_type(body: &Value, base: &str, st: &StructType) -> Value {
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        let base_type = obj
            .get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.trim_start_matches('#').trim_start_matches("microsoft.graph.") == base);
        if base_type {
            obj.insert("@odata.type".into(), format!("#{}", st.qualified_name()).into());
        }
    }
    body
}

async fn list_definitions(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let docs = rbac::list_definitions(&caller.cx(&state.app))
        .await?
        .iter()
        .map(|r| definition_doc(r, &ctx))
        .collect();
    respond_list(&q, docs, &DEFINITION, &ctx, "deviceManagement/roleDefinitions")
}

async fn get_definition(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let r = rbac::definition(&caller.cx(&state.app), &id).await?;
    respond_one(
        &q,
        definition_doc(&r, &ctx),
        &DEFINITION,
        &ctx,
        "deviceManagement/roleDefinitions",
    )
}

async fn create_definition(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let body = with_type(&body, "roleDefinition", &DEFINITION);
    let props = validate_patch(&DEFINITION, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    let role = rbac::create_definition(&caller.cx(&state.app), props).await?;
    let context = ctx.context("deviceManagement/roleDefinitions/$entity", None);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(context, definition_doc(&role, &ctx)),
    ))
}

async fn patch_definition(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let body = with_type(&body, "roleDefinition", &DEFINITION);
    let props = validate_patch(&DEFINITION, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    rbac::update_definition(&caller.cx(&state.app), &id, props).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_definition(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    rbac::delete_definition(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- role assignments ----

fn assignment_doc(a: &RoleAssignment, ctx: &GraphCtx) -> Map<String, Value> {
    render(&ASSIGNMENT, &a.document(), ctx.view)
}

/// The role a write body binds: `roleDefinition@odata.bind` (an URL ending in
/// `roleDefinitions('<id>')` or `roleDefinitions/<id>`) or an inline `roleDefinition` with its id.
/// Removes both from the body, which is validated without them.
fn take_role_binding(body: &mut Value) -> ApiResult<Option<String>> {
    let Some(obj) = body.as_object_mut() else {
        return Ok(None);
    };
    if let Some(bind) = obj.remove("roleDefinition@odata.bind") {
        let url = bind.as_str().ok_or_else(|| {
            ApiError::bad_request("Invalid value for property 'roleDefinition@odata.bind': it must be a URL string.")
        })?;
        let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
        let segments: Vec<&str> = path.rsplit('/').take(2).collect();
        let id = match segments.as_slice() {
            [last, ..] if last.starts_with("roleDefinitions(") => last
                .strip_prefix("roleDefinitions(")
                .and_then(|s| s.strip_suffix(')'))
                .map(|k| percent_encoding::percent_decode_str(k).decode_utf8_lossy().into_owned())
                .map(|k| k.trim_matches('\'').to_string()),
            [last, parent] if *parent == "roleDefinitions" => Some(
                percent_encoding::percent_decode_str(last)
                    .decode_utf8_lossy()
                    .into_owned(),
            ),
            _ => None,
        };
        let id = id.filter(|id| !id.is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid value for property 'roleDefinition@odata.bind': '{url}' does not name a role definition."
            ))
        })?;
        return Ok(Some(id));
    }
    if let Some(inline) = obj.remove("roleDefinition") {
        let id = inline.get("id").and_then(Value::as_str).ok_or_else(|| {
            ApiError::bad_request("Invalid value for property 'roleDefinition': it must name the role definition's id.")
        })?;
        return Ok(Some(id.to_string()));
    }
    Ok(None)
}

async fn list_assignments(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let docs = rbac::list_assignments(&caller.cx(&state.app))
        .await?
        .iter()
        .map(|a| assignment_doc(a, &ctx))
        .collect();
    respond_list(&q, docs, &ASSIGNMENT, &ctx, "deviceManagement/roleAssignments")
}

async fn get_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let a = rbac::assignment(&caller.cx(&state.app), &id).await?;
    respond_one(
        &q,
        assignment_doc(&a, &ctx),
        &ASSIGNMENT,
        &ctx,
        "deviceManagement/roleAssignments",
    )
}

async fn create_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut body = with_type(&body, "roleAssignment", &ASSIGNMENT);
    let role_id = take_role_binding(&mut body)?.ok_or_else(|| {
        ApiError::bad_request(
            "The property 'roleDefinition@odata.bind' is required: it names the role definition to assign.",
        )
    })?;
    let props = validate_patch(&ASSIGNMENT, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    let assignment = rbac::create_assignment(&caller.cx(&state.app), &role_id, props).await?;
    let context = ctx.context("deviceManagement/roleAssignments/$entity", None);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(context, assignment_doc(&assignment, &ctx)),
    ))
}

async fn patch_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut body = with_type(&body, "roleAssignment", &ASSIGNMENT);
    let role_id = take_role_binding(&mut body)?;
    let props = validate_patch(&ASSIGNMENT, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    rbac::update_assignment(&caller.cx(&state.app), &id, role_id.as_deref(), props).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_assignment(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    rbac::delete_assignment(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Through the role definition, the service shows its assignments without their members
/// (graph-reference 5.2, observed).
fn assignment_of_definition_doc(a: &RoleAssignment, ctx: &GraphCtx) -> Map<String, Value> {
    let mut doc = a.document();
    doc.insert("members".into(), Value::Array(Vec::new()));
    render(&ASSIGNMENT, &doc, ctx.view)
}

async fn list_assignments_of_definition(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(role_id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (role, assignments) = rbac::assignments_of_definition(&caller.cx(&state.app), &role_id).await?;
    let docs = assignments
        .iter()
        .map(|a| assignment_of_definition_doc(a, &ctx))
        .collect();
    respond_list(
        &q,
        docs,
        &ASSIGNMENT,
        &ctx,
        &format!("deviceManagement/roleDefinitions('{}')/roleAssignments", role.id),
    )
}

async fn get_assignment_of_definition(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path((role_id, id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (role, a) = rbac::assignment_of_definition(&caller.cx(&state.app), &role_id, &id).await?;
    respond_one(
        &q,
        assignment_of_definition_doc(&a, &ctx),
        &ASSIGNMENT,
        &ctx,
        &format!("deviceManagement/roleDefinitions('{}')/roleAssignments", role.id),
    )
}

// ---- resource operations and effective permissions ----

async fn list_operations(_caller: GraphCaller, ctx: GraphCtx, OData(q): OData) -> ApiResult<Response> {
    let docs = RESOURCE_OPERATIONS
        .iter()
        .map(|o| render(&RESOURCE_OPERATION, &o.document(), ctx.view))
        .collect();
    respond_list(
        &q,
        docs,
        &RESOURCE_OPERATION,
        &ctx,
        "deviceManagement/resourceOperations",
    )
}

async fn get_operation(
    _caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let op = resource_operation(&id)
        .ok_or_else(|| ApiError::not_found(format!("The resource operation '{id}' does not exist.")))?;
    respond_one(
        &q,
        render(&RESOURCE_OPERATION, &op.document(), ctx.view),
        &RESOURCE_OPERATION,
        &ctx,
        "deviceManagement/resourceOperations",
    )
}

/// The caller's own Intune permissions (see `service::rbac::effective_permissions`).
async fn effective_permissions(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(scope): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_expand(&q, "rolePermission")?;
    if scope.trim().is_empty() {
        return Err(ApiError::bad_request(
            "The parameter 'scope' of getEffectivePermissions is required.",
        ));
    }
    let permissions = rbac::effective_permissions(
        &caller.cx(&state.app),
        caller.claims.idtyp == "app",
        &caller.claims.oid,
        &caller.claims.wids,
    )
    .await?;
    let values = permissions
        .iter()
        .map(|p| {
            let doc = serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            render(&ROLE_PERMISSION, &doc, ctx.view)
        })
        .collect();
    Ok(collection_response(
        format!(
            "{}/{}/$metadata#Collection(microsoft.graph.rolePermission)",
            ctx.base,
            ctx.version.segment()
        ),
        values,
        None,
        None,
    ))
}
