//! Intune RBAC decisions: which roles reach a user (through assignments to the groups the user
//! is a member of) and whether a delegated caller meets a route's requirement.

use crate::domain::rbac::{built_in_role, bypasses_intune_rbac, RoleDefinition, RoleRequirement};
use crate::store::{Store, StoreError};

/// A role definition by id: a built-in one, else the tenant's custom one.
pub async fn find_role(store: &dyn Store, tenant_id: &str, id: &str) -> Result<Option<RoleDefinition>, StoreError> {
    match built_in_role(id) {
        Some(r) => Ok(Some(r.clone())),
        None => store.get_role_definition(tenant_id, &id.to_ascii_lowercase()).await,
    }
}

/// The role definitions assigned to a group the user is a direct member of, each once.
pub async fn roles_of_user(
    store: &dyn Store,
    tenant_id: &str,
    user_id: &str,
) -> Result<Vec<RoleDefinition>, StoreError> {
    let groups = store.groups_of(tenant_id, user_id).await?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut role_ids: Vec<String> = Vec::new();
    for a in store.list_role_assignments(tenant_id, None).await? {
        if a.member_groups()
            .any(|g| groups.iter().any(|m| m.eq_ignore_ascii_case(g)))
            && !role_ids.contains(&a.role_definition_id)
        {
            role_ids.push(a.role_definition_id.clone());
        }
    }
    let mut roles = Vec::with_capacity(role_ids.len());
    for id in role_ids {
        if let Some(r) = find_role(store, tenant_id, &id).await? {
            roles.push(r);
        }
    }
    Ok(roles)
}

/// Whether a signed-in user (with directory roles `wids` from the token) meets `requirement`.
pub async fn user_meets(
    store: &dyn Store,
    tenant_id: &str,
    user_id: &str,
    wids: &[String],
    requirement: RoleRequirement,
) -> Result<bool, StoreError> {
    match requirement {
        RoleRequirement::OwnRights => Ok(true),
        RoleRequirement::Directory(roles) => {
            Ok(roles.is_empty() || wids.iter().any(|w| roles.iter().any(|r| r.eq_ignore_ascii_case(w))))
        }
        RoleRequirement::Intune(action) => {
            if bypasses_intune_rbac(wids.iter().map(String::as_str)) {
                return Ok(true);
            }
            Ok(roles_of_user(store, tenant_id, user_id)
                .await?
                .iter()
                .any(|r| r.allows(action)))
        }
    }
}
