//! Intune RBAC: role definitions (Intune's built-in ones and the tenant's custom ones), role
//! assignments to groups, users' directory roles, and the decisions made from them: which roles
//! reach a user (through assignments to the groups the user is a member of) and whether a
//! delegated caller meets a route's requirement.

use serde_json::{Map, Value};

use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::directory::User;
use crate::domain::rbac::{
    built_in_role, built_in_roles, bypasses_intune_rbac, directory_role, resource_operation, ResourceAction,
    RoleAssignment, RoleDefinition, RolePermission, RoleRequirement, DIRECTORY_ROLES,
};
use crate::domain::tenant::parse_guid;
use crate::schema::merge_patch;
use crate::store::StoreError;

/// A role definition by id: a built-in one, else the tenant's custom one.
pub async fn find_role(cx: &Ctx<'_>, id: &str) -> ServiceResult<Option<RoleDefinition>> {
    match built_in_role(id) {
        Some(r) => Ok(Some(r.clone())),
        None => Ok(cx
            .store()
            .get_role_definition(cx.tenant_id, &id.to_ascii_lowercase())
            .await?),
    }
}

/// The role definitions assigned to a group the user is a direct member of, each once. The
/// assignments and custom definitions come from the tenant's cache entry when the request
/// has one (see [`super::cache`]); the user's groups are read each time.
pub async fn roles_of_user(cx: &Ctx<'_>, user_id: &str) -> ServiceResult<Vec<RoleDefinition>> {
    let groups = cx.store().groups_of(cx.tenant_id, user_id).await?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(cached) = cx.cached {
        let roles = cached.roles(cx.store()).await?;
        return Ok(assigned_role_ids(&roles.assignments, &groups)
            .into_iter()
            .filter_map(|id| match built_in_role(&id) {
                Some(r) => Some(r.clone()),
                None => roles.definitions.get(&id.to_ascii_lowercase()).cloned(),
            })
            .collect());
    }
    let assignments = cx.store().list_role_assignments(cx.tenant_id, None).await?;
    let mut roles = Vec::new();
    for id in assigned_role_ids(&assignments, &groups) {
        if let Some(r) = find_role(cx, &id).await? {
            roles.push(r);
        }
    }
    Ok(roles)
}

/// The ids of the roles assigned to any of `groups`, each once, in the assignments' order.
fn assigned_role_ids(assignments: &[RoleAssignment], groups: &[String]) -> Vec<String> {
    let mut role_ids: Vec<String> = Vec::new();
    for a in assignments {
        if a.member_groups()
            .any(|g| groups.iter().any(|m| m.eq_ignore_ascii_case(g)))
            && !role_ids.contains(&a.role_definition_id)
        {
            role_ids.push(a.role_definition_id.clone());
        }
    }
    role_ids
}

/// Whether a signed-in user (with directory roles `wids` from the token) meets `requirement`.
pub async fn user_meets(
    cx: &Ctx<'_>,
    user_id: &str,
    wids: &[String],
    requirement: RoleRequirement,
) -> ServiceResult<bool> {
    match requirement {
        RoleRequirement::OwnRights => Ok(true),
        RoleRequirement::Directory(roles) => {
            Ok(roles.is_empty() || wids.iter().any(|w| roles.iter().any(|r| r.eq_ignore_ascii_case(w))))
        }
        RoleRequirement::Intune(action) => {
            if bypasses_intune_rbac(wids.iter().map(String::as_str)) {
                return Ok(true);
            }
            Ok(roles_of_user(cx, user_id).await?.iter().any(|r| r.allows(action)))
        }
    }
}

/// The caller's own Intune permissions: everything (`*`) for app-only callers (Intune RBAC does
/// not apply to them) and for Intune or Global Administrators, else the permissions of the
/// roles assigned to the user's groups.
pub async fn effective_permissions(
    cx: &Ctx<'_>,
    app_only: bool,
    user_id: &str,
    wids: &[String],
) -> ServiceResult<Vec<RolePermission>> {
    if app_only || bypasses_intune_rbac(wids.iter().map(String::as_str)) {
        return Ok(vec![RolePermission {
            actions: Vec::new(),
            resource_actions: vec![ResourceAction {
                allowed_resource_actions: vec!["*".into()],
                not_allowed_resource_actions: Vec::new(),
            }],
        }]);
    }
    Ok(roles_of_user(cx, user_id)
        .await?
        .into_iter()
        .flat_map(|r| r.permissions)
        .collect())
}

// ---- role definitions ----

fn definition_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The role definition '{id}' does not exist."))
}

fn built_in_refused(action: &str) -> ServiceError {
    ServiceError::invalid(format!("Built-in role definitions cannot be {action}."))
}

/// Every role definition of the tenant: the built-in ones, then the custom ones, oldest first.
pub async fn list_definitions(cx: &Ctx<'_>) -> ServiceResult<Vec<RoleDefinition>> {
    let mut roles: Vec<RoleDefinition> = built_in_roles().to_vec();
    roles.extend(cx.store().list_role_definitions(cx.tenant_id).await?);
    Ok(roles)
}

pub async fn definition(cx: &Ctx<'_>, id: &str) -> ServiceResult<RoleDefinition> {
    find_role(cx, id).await?.ok_or_else(|| definition_not_found(id))
}

/// The role permissions validated properties give: `rolePermissions`, else beta's
/// `permissions` (the same list under its other name). Every resource action must be one
/// Intune knows; it is stored in Intune's spelling.
fn permissions_of(props: &Map<String, Value>) -> ServiceResult<Option<Vec<RolePermission>>> {
    let Some((name, value)) = ["rolePermissions", "permissions"]
        .iter()
        .find_map(|n| props.get(*n).map(|v| (*n, v)))
    else {
        return Ok(None);
    };
    let permissions: Vec<RolePermission> = serde_json::from_value(value.clone())
        .map_err(|e| ServiceError::invalid(format!("Invalid value for property '{name}': {e}.")))?;
    let canonical = |list: &[String]| -> ServiceResult<Vec<String>> {
        list.iter()
            .map(|a| {
                resource_operation(a).map(|o| o.id.clone()).ok_or_else(|| {
                    ServiceError::invalid(format!(
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
                    .collect::<ServiceResult<Vec<_>>>()?,
            })
        })
        .collect::<ServiceResult<Vec<_>>>()
        .map(Some)
}

fn refuse_built_in_flag(props: &Map<String, Value>) -> ServiceResult<()> {
    for name in ["isBuiltIn", "isBuiltInRoleDefinition"] {
        if props.get(name).and_then(Value::as_bool) == Some(true) {
            return Err(ServiceError::invalid(format!(
                "Invalid value for property '{name}': only Intune's built-in roles are built in."
            )));
        }
    }
    Ok(())
}

fn text(props: &Map<String, Value>, name: &str) -> Option<Option<String>> {
    props.get(name).map(|v| v.as_str().map(str::to_string))
}

fn check_display_name(name: &Option<String>) -> ServiceResult<()> {
    match name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() && n.len() <= 128 => Ok(()),
        _ => Err(ServiceError::invalid(
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

/// Creates a custom role definition from properties the schema validated.
pub async fn create_definition(cx: &Ctx<'_>, props: Map<String, Value>) -> ServiceResult<RoleDefinition> {
    refuse_built_in_flag(&props)?;
    let display_name = text(&props, "displayName").flatten();
    check_display_name(&display_name)?;
    let role = RoleDefinition {
        tenant_id: cx.tenant_id.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        display_name: display_name.map(|n| n.trim().to_string()),
        description: text(&props, "description").flatten(),
        is_built_in: false,
        permissions: permissions_of(&props)?.unwrap_or_default(),
        role_scope_tag_ids: scope_tags(&props).unwrap_or_else(|| vec!["0".into()]),
        created_at: cx.now,
        revision: 0,
    };
    cx.store().insert_role_definition(&role).await?;
    Ok(role)
}

/// Applies validated properties to a custom role definition; built-in ones are refused.
pub async fn update_definition(cx: &Ctx<'_>, id: &str, props: Map<String, Value>) -> ServiceResult<()> {
    if built_in_role(id).is_some() {
        return Err(built_in_refused("modified"));
    }
    refuse_built_in_flag(&props)?;
    let permissions = permissions_of(&props)?;
    loop {
        let mut role = cx
            .store()
            .get_role_definition(cx.tenant_id, &id.to_ascii_lowercase())
            .await?
            .ok_or_else(|| definition_not_found(id))?;
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
        if cx.store().update_role_definition(&role).await? {
            return Ok(());
        }
    }
}

/// Deletes a custom role definition that has no assignments left.
pub async fn delete_definition(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    if built_in_role(id).is_some() {
        return Err(built_in_refused("deleted"));
    }
    match cx
        .store()
        .delete_role_definition(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
    {
        Some(true) => Ok(()),
        // The admin center asks for the assignments to go first; so does the emulator.
        Some(false) => Err(ServiceError::invalid(
            "The role definition has role assignments: delete them before the role definition.",
        )),
        None => Err(definition_not_found(id)),
    }
}

// ---- role assignments ----

fn assignment_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The role assignment '{id}' does not exist."))
}

/// The tenant's role assignments, oldest first.
pub async fn list_assignments(cx: &Ctx<'_>) -> ServiceResult<Vec<RoleAssignment>> {
    Ok(cx.store().list_role_assignments(cx.tenant_id, None).await?)
}

pub async fn assignment(cx: &Ctx<'_>, id: &str) -> ServiceResult<RoleAssignment> {
    cx.store()
        .get_role_assignment(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(|| assignment_not_found(id))
}

/// A role definition and its assignments.
pub async fn assignments_of_definition(
    cx: &Ctx<'_>,
    role_id: &str,
) -> ServiceResult<(RoleDefinition, Vec<RoleAssignment>)> {
    let role = definition(cx, role_id).await?;
    let assignments = cx.store().list_role_assignments(cx.tenant_id, Some(&role.id)).await?;
    Ok((role, assignments))
}

/// A role definition and one of its assignments; `NotFound` when the assignment is another
/// role's.
pub async fn assignment_of_definition(
    cx: &Ctx<'_>,
    role_id: &str,
    id: &str,
) -> ServiceResult<(RoleDefinition, RoleAssignment)> {
    let role = definition(cx, role_id).await?;
    let a = assignment(cx, id).await?;
    if a.role_definition_id != role.id {
        return Err(assignment_not_found(id));
    }
    Ok((role, a))
}

/// Checks what an assignment's properties name: members are security groups of the tenant,
/// resource scopes are object ids.
async fn check_assignment(cx: &Ctx<'_>, props: &Map<String, Value>) -> ServiceResult<()> {
    if let Some(name) = props.get("displayName") {
        if name.as_str().is_none_or(|n| n.trim().is_empty() || n.len() > 128) {
            return Err(ServiceError::invalid(
                "The property 'displayName' is required and must have 1 to 128 characters.",
            ));
        }
    }
    if props
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.len() > 1024)
    {
        return Err(ServiceError::invalid(
            "Invalid value for property 'description': at most 1024 characters.",
        ));
    }
    for member in props.get("members").and_then(Value::as_array).into_iter().flatten() {
        if !super::directory::is_group(cx, member.as_str().unwrap_or_default()).await? {
            return Err(ServiceError::invalid(format!(
                "Invalid value for property 'members': '{}' is not a group of the directory.",
                member.as_str().unwrap_or_default()
            )));
        }
    }
    for name in ["resourceScopes", "scopeMembers"] {
        for scope in props.get(name).and_then(Value::as_array).into_iter().flatten() {
            if scope.as_str().and_then(parse_guid).is_none() {
                return Err(ServiceError::invalid(format!(
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

/// The role definition a write binds.
async fn bound_role(cx: &Ctx<'_>, id: &str) -> ServiceResult<RoleDefinition> {
    find_role(cx, id).await?.ok_or_else(|| {
        ServiceError::invalid(format!(
            "Invalid value for property 'roleDefinition@odata.bind': the role definition '{id}' does not exist."
        ))
    })
}

/// Assigns the role `role_id` with properties the schema validated.
pub async fn create_assignment(
    cx: &Ctx<'_>,
    role_id: &str,
    mut props: Map<String, Value>,
) -> ServiceResult<RoleAssignment> {
    if !props.contains_key("displayName") {
        return Err(ServiceError::invalid("The property 'displayName' is required."));
    }
    check_assignment(cx, &props).await?;
    normalise_ids(&mut props);
    let role = bound_role(cx, role_id).await?;
    if !props.contains_key("roleScopeTagIds") {
        props.insert("roleScopeTagIds".into(), Value::Array(vec!["0".into()]));
    }
    let assignment = RoleAssignment {
        tenant_id: cx.tenant_id.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        role_definition_id: role.id,
        properties: props,
        created_at: cx.now,
        revision: 0,
    };
    match cx.store().insert_role_assignment(&assignment).await {
        Ok(()) => Ok(assignment),
        Err(StoreError::Conflict(_)) => Err(ServiceError::conflict("The role assignment exists already.")),
        Err(e) => Err(e.into()),
    }
}

/// Merges validated properties into an assignment, and binds it to `role_id` when given.
pub async fn update_assignment(
    cx: &Ctx<'_>,
    id: &str,
    role_id: Option<&str>,
    mut props: Map<String, Value>,
) -> ServiceResult<()> {
    check_assignment(cx, &props).await?;
    normalise_ids(&mut props);
    let role = match role_id {
        Some(role_id) => Some(bound_role(cx, role_id).await?),
        None => None,
    };
    loop {
        let mut a = assignment(cx, id).await?;
        merge_patch(&mut a.properties, props.clone());
        if let Some(r) = &role {
            a.role_definition_id = r.id.clone();
        }
        if cx.store().update_role_assignment(&a).await? {
            return Ok(());
        }
    }
}

pub async fn delete_assignment(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    if cx
        .store()
        .delete_role_assignment(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
    {
        Ok(())
    } else {
        Err(assignment_not_found(id))
    }
}

// ---- directory roles ----

/// The user by object id or user principal name (as the control plane names users).
async fn directory_user(cx: &Ctx<'_>, key: &str) -> ServiceResult<User> {
    let found = match parse_guid(key) {
        Some(id) => cx.store().get_user(cx.tenant_id, &id).await?,
        None => cx.store().find_user_by_upn(cx.tenant_id, key).await?,
    };
    found.ok_or_else(|| ServiceError::not_found(format!("The user '{key}' does not exist in the tenant.")))
}

/// The ids of the user's directory roles.
pub async fn directory_roles(cx: &Ctx<'_>, user_key: &str) -> ServiceResult<Vec<String>> {
    let user = directory_user(cx, user_key).await?;
    Ok(cx.store().directory_roles(cx.tenant_id, &user.id).await?)
}

/// Replaces the user's directory roles (named by id or display name), and answers the ids they
/// are now; tokens issued from then on carry them.
pub async fn set_directory_roles(cx: &Ctx<'_>, user_key: &str, roles: &[String]) -> ServiceResult<Vec<String>> {
    let user = directory_user(cx, user_key).await?;
    let mut ids: Vec<String> = Vec::with_capacity(roles.len());
    for r in roles {
        let id = directory_role(r).ok_or_else(|| {
            ServiceError::invalid(format!(
                "Invalid value for property 'roles': '{r}' is not a directory role the emulator knows ({}).",
                DIRECTORY_ROLES.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    if !cx.store().set_directory_roles(cx.tenant_id, &user.id, &ids).await? {
        return Err(ServiceError::not_found(format!(
            "The user '{}' does not exist in the tenant.",
            user.id
        )));
    }
    Ok(cx.store().directory_roles(cx.tenant_id, &user.id).await?)
}
