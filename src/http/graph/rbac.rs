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
use crate::domain::rbac::{
    built_in_role, built_in_roles, bypasses_intune_rbac, resource_operation, ResourceAction, RoleAssignment,
    RoleDefinition, RolePermission, RESOURCE_OPERATIONS,
};
use crate::domain::tenant::parse_guid;
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
use crate::schema::{merge_patch, render, validate_patch, StructType};
use crate::service::rbac::{find_role, roles_of_user};
use crate::store::StoreError;

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

fn definition_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("The role definition '{id}' does not exist."))
}

fn assignment_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("The role assignment '{id}' does not exist."))
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

/// Every role definition of the tenant: the built-in ones, then the custom ones, oldest first.
async fn all_definitions(state: &AppState, tenant_id: &str) -> ApiResult<Vec<RoleDefinition>> {
    let mut roles: Vec<RoleDefinition> = built_in_roles().to_vec();
    roles.extend(state.store.list_role_definitions(tenant_id).await?);
    Ok(roles)
}

async fn load_definition(state: &AppState, tenant_id: &str, id: &str) -> ApiResult<RoleDefinition> {
    find_role(state.store.as_ref(), tenant_id, id)
        .await?
        .ok_or_else(|| definition_not_found(id))
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

/// The role permissions a validated body gives: `rolePermissions`, else beta's `permissions`
/// (the same list under its other name). Every resource action must be one Intune knows; it is
/// stored in Intune's spelling.
fn permissions_of(props: &Map<String, Value>) -> ApiResult<Option<Vec<RolePermission>>> {
    let Some((name, value)) = ["rolePermissions", "permissions"]
        .iter()
        .find_map(|n| props.get(*n).map(|v| (*n, v)))
    else {
        return Ok(None);
    };
    let permissions: Vec<RolePermission> = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("Invalid value for property '{name}': {e}.")))?;
    let canonical = |list: &[String]| -> ApiResult<Vec<String>> {
        list.iter()
            .map(|a| {
                resource_operation(a).map(|o| o.id.clone()).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid value for property '{name}': '{a}' is not a resource operation (see deviceManagement/resourceOperations)."
                    ))
                })
            })
            .collect()
    };
    permissions
        .iter()
        .map(|p| {
            Ok(RolePermission {
                actions: p.actions.clone(),
                resource_actions: p
                    .resource_actions
                    .iter()
                    .map(|ra| {
                        Ok(ResourceAction {
                            allowed_resource_actions: canonical(&ra.allowed_resource_actions)?,
                            not_allowed_resource_actions: canonical(&ra.not_allowed_resource_actions)?,
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

fn refuse_built_in_flag(props: &Map<String, Value>) -> ApiResult<()> {
    for name in ["isBuiltIn", "isBuiltInRoleDefinition"] {
        if props.get(name).and_then(Value::as_bool) == Some(true) {
            return Err(ApiError::bad_request(format!(
                "Invalid value for property '{name}': only Intune's built-in roles are built in."
            )));
        }
    }
    Ok(())
}

fn text(props: &Map<String, Value>, name: &str) -> Option<Option<String>> {
    props.get(name).map(|v| v.as_str().map(str::to_string))
}

fn check_display_name(name: &Option<String>) -> ApiResult<()> {
    match name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() && n.len() <= 128 => Ok(()),
        _ => Err(ApiError::bad_request(
            "The property 'displayName' is required and must have 1 to 128 characters.",
        )),
    }
}

fn scope_tags(props: &Map<String, Value>) -> Option<Vec<String>> {
    props
        .get("roleScopeTagIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

async fn list_definitions(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let docs = all_definitions(&state, &caller.tenant.id)
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
    let r = load_definition(&state, &caller.tenant.id, &id).await?;
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
    refuse_built_in_flag(&props)?;
    let display_name = text(&props, "displayName").flatten();
    check_display_name(&display_name)?;
    let role = RoleDefinition {
        tenant_id: caller.tenant.id.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        display_name: display_name.map(|n| n.trim().to_string()),
        description: text(&props, "description").flatten(),
        is_built_in: false,
        permissions: permissions_of(&props)?.unwrap_or_default(),
        role_scope_tag_ids: scope_tags(&props).unwrap_or_else(|| vec!["0".into()]),
        created_at: caller.now,
        revision: 0,
    };
    state.store.insert_role_definition(&role).await?;
    let context = ctx.context("deviceManagement/roleDefinitions/$entity", None);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(context, definition_doc(&role, &ctx)),
    ))
}

fn built_in_refused(action: &str) -> ApiError {
    ApiError::bad_request(format!("Built-in role definitions cannot be {action}."))
}

async fn patch_definition(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if built_in_role(&id).is_some() {
        return Err(built_in_refused("modified"));
    }
    let body = with_type(&body, "roleDefinition", &DEFINITION);
    let props = validate_patch(&DEFINITION, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    refuse_built_in_flag(&props)?;
    let permissions = permissions_of(&props)?;
    loop {
        let mut role = state
            .store
            .get_role_definition(&caller.tenant.id, &id.to_ascii_lowercase())
            .await?
            .ok_or_else(|| definition_not_found(&id))?;
        if let Some(name) = text(&props, "displayName") {
            check_display_name(&name)?;
            role.display_name = name.map(|n| n.trim().to_string());
        }
        if let Some(description) = text(&props, "description") {
            role.description = description;
        }
        if let Some(p) = &permissions {
            role.permissions = p.clone();
        }
        if let Some(tags) = scope_tags(&props) {
            role.role_scope_tag_ids = tags;
        }
        if state.store.update_role_definition(&role).await? {
            return Ok(StatusCode::NO_CONTENT);
        }
    }
}

async fn delete_definition(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    if built_in_role(&id).is_some() {
        return Err(built_in_refused("deleted"));
    }
    match state
        .store
        .delete_role_definition(&caller.tenant.id, &id.to_ascii_lowercase())
        .await?
    {
        Some(true) => Ok(StatusCode::NO_CONTENT),
        // The admin center asks for the assignments to go first; so does the emulator.
        Some(false) => Err(ApiError::bad_request(
            "The role definition has role assignments: delete them before the role definition.",
        )),
        None => Err(definition_not_found(&id)),
    }
}

// ---- role assignments ----

fn assignment_doc(a: &RoleAssignment, ctx: &GraphCtx) -> Map<String, Value> {
    render(&ASSIGNMENT, &a.document(), ctx.view)
}

async fn load_assignment(state: &AppState, tenant_id: &str, id: &str) -> ApiResult<RoleAssignment> {
    state
        .store
        .get_role_assignment(tenant_id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(|| assignment_not_found(id))
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

/// Checks what an assignment's properties name: members are security groups of the tenant,
/// resource scopes are object ids.
async fn check_assignment(state: &AppState, tenant_id: &str, props: &Map<String, Value>) -> ApiResult<()> {
    if let Some(name) = props.get("displayName") {
        if name.as_str().is_none_or(|n| n.trim().is_empty() || n.len() > 128) {
            return Err(ApiError::bad_request(
                "The property 'displayName' is required and must have 1 to 128 characters.",
            ));
        }
    }
    if props
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.len() > 1024)
    {
        return Err(ApiError::bad_request(
            "Invalid value for property 'description': at most 1024 characters.",
        ));
    }
    for member in props.get("members").and_then(Value::as_array).into_iter().flatten() {
        let id = member.as_str().and_then(parse_guid);
        let exists = match &id {
            Some(id) => state.store.get_group(tenant_id, id).await?.is_some(),
            None => false,
        };
        if !exists {
            return Err(ApiError::bad_request(format!(
                "Invalid value for property 'members': '{}' is not a group of the directory.",
                member.as_str().unwrap_or_default()
            )));
        }
    }
    for name in ["resourceScopes", "scopeMembers"] {
        for scope in props.get(name).and_then(Value::as_array).into_iter().flatten() {
            if scope.as_str().and_then(parse_guid).is_none() {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for property '{name}': '{}' is not an object id.",
                    scope.as_str().unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

/// Group ids in the directory's spelling (lower-case).
fn normalise_ids(props: &mut Map<String, Value>) {
    for name in ["members", "resourceScopes", "scopeMembers"] {
        if let Some(Value::Array(items)) = props.get_mut(name) {
            for item in items.iter_mut() {
                if let Some(id) = item.as_str().and_then(parse_guid) {
                    *item = Value::String(id);
                }
            }
        }
    }
}

async fn bound_role(state: &AppState, tenant_id: &str, id: &str) -> ApiResult<RoleDefinition> {
    find_role(state.store.as_ref(), tenant_id, id).await?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid value for property 'roleDefinition@odata.bind': the role definition '{id}' does not exist."
        ))
    })
}

async fn list_assignments(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let docs = state
        .store
        .list_role_assignments(&caller.tenant.id, None)
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
    let a = load_assignment(&state, &caller.tenant.id, &id).await?;
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
    let mut props = validate_patch(&ASSIGNMENT, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    if !props.contains_key("displayName") {
        return Err(ApiError::bad_request("The property 'displayName' is required."));
    }
    check_assignment(&state, &caller.tenant.id, &props).await?;
    normalise_ids(&mut props);
    let role = bound_role(&state, &caller.tenant.id, &role_id).await?;
    if !props.contains_key("roleScopeTagIds") {
        props.insert("roleScopeTagIds".into(), Value::Array(vec!["0".into()]));
    }
    let assignment = RoleAssignment {
        tenant_id: caller.tenant.id.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        role_definition_id: role.id,
        properties: props,
        created_at: caller.now,
        revision: 0,
    };
    match state.store.insert_role_assignment(&assignment).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(ApiError::conflict("The role assignment exists already.")),
        Err(e) => return Err(e.into()),
    }
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
    let mut props = validate_patch(&ASSIGNMENT, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    check_assignment(&state, &caller.tenant.id, &props).await?;
    normalise_ids(&mut props);
    let role = match &role_id {
        Some(id) => Some(bound_role(&state, &caller.tenant.id, id).await?),
        None => None,
    };
    loop {
        let mut a = load_assignment(&state, &caller.tenant.id, &id).await?;
        merge_patch(&mut a.properties, props.clone());
        if let Some(r) = &role {
            a.role_definition_id = r.id.clone();
        }
        if state.store.update_role_assignment(&a).await? {
            return Ok(StatusCode::NO_CONTENT);
        }
    }
}

async fn delete_assignment(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .delete_role_assignment(&caller.tenant.id, &id.to_ascii_lowercase())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(assignment_not_found(&id))
    }
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
    let role = load_definition(&state, &caller.tenant.id, &role_id).await?;
    let docs = state
        .store
        .list_role_assignments(&caller.tenant.id, Some(&role.id))
        .await?
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
    let role = load_definition(&state, &caller.tenant.id, &role_id).await?;
    let a = load_assignment(&state, &caller.tenant.id, &id).await?;
    if a.role_definition_id != role.id {
        return Err(assignment_not_found(&id));
    }
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

/// The caller's own Intune permissions: everything (`*`) for app-only callers (Intune RBAC does
/// not apply to them) and for Intune or Global Administrators, else the permissions of the
/// roles assigned to the user's groups.
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
    let everything =
        caller.claims.idtyp == "app" || bypasses_intune_rbac(caller.claims.wids.iter().map(String::as_str));
    let permissions: Vec<RolePermission> = if everything {
        vec![RolePermission {
            actions: Vec::new(),
            resource_actions: vec![ResourceAction {
                allowed_resource_actions: vec!["*".into()],
                not_allowed_resource_actions: Vec::new(),
            }],
        }]
    } else {
        roles_of_user(state.store.as_ref(), &caller.tenant.id, &caller.claims.oid)
            .await?
            .into_iter()
            .flat_map(|r| r.permissions)
            .collect()
    };
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
