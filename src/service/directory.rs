//! The Entra ID directory: users, groups and group membership, and what a change to them
//! implies for compliance (user-targeted and group-targeted policies reach devices through
//! them). Errors are `Invalid` and `NotFound` with Entra's messages; the HTTP edge gives them
//! Entra's codes.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::device::ManagedDevice;
use crate::domain::directory::{hash_password, valid_user_principal_name, Group, Member, MemberKind, User};
use crate::domain::tenant::parse_guid;
use crate::schema::merge_patch;
use crate::store::{DeviceScope, Effects, ListPage, ListQuery, StoreError};

const UPN_TAKEN: &str = "Another object with the same value for property userPrincipalName already exists.";

/// Entra's answer for an object that is not in the tenant, named as the caller named it.
fn not_found(key: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
    ))
}

fn invalid_value(property: &str, resource: &str) -> ServiceError {
    ServiceError::invalid(format!(
        "Invalid value specified for property '{property}' of resource '{resource}'."
    ))
}

// ---- users ----

/// A user by the key of a user path: the object id, or the user principal name
/// (percent-encoded as it came in the path).
pub async fn user(cx: &Ctx<'_>, key: &str) -> ServiceResult<User> {
    let user = match parse_guid(key) {
        Some(id) => cx.store().get_user(cx.tenant_id, &id).await?,
        None if key.contains('@') => {
            let upn = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            cx.store().find_user_by_upn(cx.tenant_id, &upn).await?
        }
        None => None,
    };
    user.ok_or_else(|| not_found(key))
}

pub async fn list_users(cx: &Ctx<'_>, query: &ListQuery) -> ServiceResult<ListPage<User>> {
    Ok(cx.store().list_users(cx.tenant_id, query).await?)
}

/// Entra's password policy: 8 to 256 characters, three of lower case, upper case, digits and
/// symbols.
fn check_password(password: &str) -> ServiceResult<()> {
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if (8..=256).contains(&password.chars().count()) && classes.iter().filter(|c| **c).count() >= 3 {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        ))
    }
}

fn salt() -> String {
    Uuid::new_v4().simple().to_string()[..16].to_string()
}

/// Lays validated properties onto the user's typed fields; `passwordProfile.password` becomes
/// the stored hash and is removed from the document.
fn apply_user_properties(user: &mut User, props: Map<String, Value>) -> ServiceResult<()> {
    merge_patch(&mut user.properties, props);
    let p = &mut user.properties;
    if let Some(v) = p.remove("userPrincipalName") {
        let upn = v.as_str().unwrap_or_default().to_string();
        if !valid_user_principal_name(&upn) {
            return Err(invalid_value("userPrincipalName", "User"));
        }
        user.user_principal_name = upn;
    }
    if let Some(v) = p.remove("displayName") {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() && s.len() <= 256 => user.display_name = s.to_string(),
            _ => return Err(invalid_value("displayName", "User")),
        }
    }
    if let Some(v) = p.remove("mail") {
        user.mail = v.as_str().map(str::to_string);
    }
    if let Some(v) = p.remove("accountEnabled") {
        user.account_enabled = v.as_bool().ok_or_else(|| invalid_value("accountEnabled", "User"))?;
    }
    if let Some(Value::Object(profile)) = p.get_mut("passwordProfile") {
        if let Some(Value::String(password)) = profile.remove("password") {
            check_password(&password)?;
            user.password_hash = Some(hash_password(&password, &salt()));
        }
    }
    Ok(())
}

fn upn_taken(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::invalid(UPN_TAKEN),
        e => e.into(),
    }
}

/// Creates a user from properties the schema validated: Entra's required properties and a
/// password are needed.
pub async fn create_user(cx: &Ctx<'_>, props: Map<String, Value>) -> ServiceResult<User> {
    for required in ["accountEnabled", "displayName", "mailNickname", "userPrincipalName"] {
        if props.get(required).is_none_or(Value::is_null) {
            return Err(invalid_value(required, "User"));
        }
    }
    let has_password = props
        .get("passwordProfile")
        .and_then(|p| p.get("password"))
        .is_some_and(Value::is_string);
    if !has_password {
        return Err(ServiceError::invalid(
            "A password must be specified to create a new user.",
        ));
    }
    let mut user = User {
        tenant_id: cx.tenant_id.to_string(),
        id: Uuid::new_v4().to_string(),
        user_principal_name: String::new(),
        display_name: String::new(),
        mail: None,
        account_enabled: true,
        password_hash: None,
        created_at: cx.now,
        properties: Map::new(),
    };
    apply_user_properties(&mut user, props)?;
    cx.store().insert_user(&user).await.map_err(upn_taken)?;
    Ok(user)
}

pub async fn update_user(cx: &Ctx<'_>, key: &str, props: Map<String, Value>) -> ServiceResult<()> {
    let mut user = user(cx, key).await?;
    apply_user_properties(&mut user, props)?;
    if cx
        .store()
        .update_user(&user, &Effects::none())
        .await
        .map_err(upn_taken)?
    {
        Ok(())
    } else {
        Err(not_found(key))
    }
}

pub async fn delete_user(cx: &Ctx<'_>, key: &str) -> ServiceResult<()> {
    let user = user(cx, key).await?;
    // The user's devices lose their primary user, and with it user-targeted policies: the store
    // queues them itself, in the delete's transaction, while it can still find them.
    if cx.store().delete_user(cx.tenant_id, &user.id, &Effects::none()).await? {
        Ok(())
    } else {
        Err(not_found(key))
    }
}

/// `revokeSignInSessions`: the user's refresh tokens stop working, so every app must sign the
/// user in again once its access token expires.
pub async fn revoke_sign_in_sessions(cx: &Ctx<'_>, key: &str) -> ServiceResult<()> {
    let user = user(cx, key).await?;
    let revoked = cx.store().revoke_refresh_tokens(cx.tenant_id, &user.id).await?;
    tracing::info!(user = %user.id, revoked, "sign-in sessions revoked");
    Ok(())
}

// ---- groups ----

/// A group by the key of a group path: its object id.
pub async fn group(cx: &Ctx<'_>, key: &str) -> ServiceResult<Group> {
    let Some(id) = parse_guid(key) else {
        return Err(not_found(key));
    };
    cx.store()
        .get_group(cx.tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(key))
}

/// Whether `key` names a group of the caller's tenant (a reference in a body: an assignment's
/// target, a CC list, a role assignment's members).
pub async fn is_group(cx: &Ctx<'_>, key: &str) -> ServiceResult<bool> {
    Ok(match parse_guid(key) {
        Some(id) => cx.store().get_group(cx.tenant_id, &id).await?.is_some(),
        None => false,
    })
}

/// Whether the user a delegated token names may still act: it exists in the tenant and its
/// account is enabled. (Entra refuses such a user a new token; the emulator also refuses the
/// tokens it already has.)
pub async fn user_may_sign_in(cx: &Ctx<'_>, id: &str) -> ServiceResult<bool> {
    Ok(cx
        .store()
        .get_user(cx.tenant_id, id)
        .await?
        .is_some_and(|u| u.account_enabled))
}

pub async fn list_groups(cx: &Ctx<'_>, query: &ListQuery) -> ServiceResult<ListPage<Group>> {
    Ok(cx.store().list_groups(cx.tenant_id, query).await?)
}

fn apply_group_properties(group: &mut Group, props: Map<String, Value>) -> ServiceResult<()> {
    merge_patch(&mut group.properties, props);
    let p = &mut group.properties;
    if let Some(v) = p.remove("displayName") {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() && s.len() <= 256 => group.display_name = s.to_string(),
            _ => return Err(invalid_value("displayName", "Group")),
        }
    }
    if let Some(v) = p.remove("mailNickname") {
        match v.as_str() {
            Some(s)
                if !s.is_empty()
                    && s.len() <= 64
                    && s.chars().all(|c| c.is_ascii() && !" @()\\[]\";:<>,".contains(c)) =>
            {
                group.mail_nickname = s.to_string()
            }
            _ => return Err(invalid_value("mailNickname", "Group")),
        }
    }
    if let Some(v) = p.remove("securityEnabled") {
        group.security_enabled = v.as_bool().ok_or_else(|| invalid_value("securityEnabled", "Group"))?;
    }
    if let Some(v) = p.remove("mailEnabled") {
        group.mail_enabled = v.as_bool().ok_or_else(|| invalid_value("mailEnabled", "Group"))?;
    }
    Ok(())
}

/// Creates a group from properties the schema validated.
pub async fn create_group(cx: &Ctx<'_>, props: Map<String, Value>) -> ServiceResult<Group> {
    for required in ["displayName", "mailEnabled", "mailNickname", "securityEnabled"] {
        if props.get(required).is_none_or(Value::is_null) {
            return Err(invalid_value(required, "Group"));
        }
    }
    let mut group = Group {
        tenant_id: cx.tenant_id.to_string(),
        id: Uuid::new_v4().to_string(),
        display_name: String::new(),
        mail_nickname: String::new(),
        security_enabled: false,
        mail_enabled: false,
        created_at: cx.now,
        properties: Map::new(),
    };
    apply_group_properties(&mut group, props)?;
    cx.store().insert_group(&group).await?;
    Ok(group)
}

pub async fn update_group(cx: &Ctx<'_>, key: &str, props: Map<String, Value>) -> ServiceResult<()> {
    let mut group = group(cx, key).await?;
    apply_group_properties(&mut group, props)?;
    if cx.store().update_group(&group).await? {
        Ok(())
    } else {
        Err(not_found(key))
    }
}

/// Policies assigned to the group no longer reach its members: every device is re-evaluated.
pub async fn delete_group(cx: &Ctx<'_>, key: &str) -> ServiceResult<()> {
    let group = group(cx, key).await?;
    let fx = Effects::enqueue(DeviceScope::All);
    if cx.store().delete_group(cx.tenant_id, &group.id, &fx).await? {
        Ok(())
    } else {
        Err(not_found(key))
    }
}

// ---- members ----

/// A member of a group as the directory shows it.
#[derive(Debug, Clone)]
pub enum DirectoryObject {
    User(Box<User>),
    /// An enrolled device, as the Entra device object named by its Entra device id.
    Device(Box<ManagedDevice>),
}

/// One page of a group's members.
#[derive(Debug, Clone)]
pub struct MemberPage {
    /// The members of the page that still exist, in the group's order.
    pub objects: Vec<DirectoryObject>,
    /// Whether another page follows.
    pub more: bool,
    pub total: Option<i64>,
}

/// A page of `page_size` members of the group (`query` asks for one row more, to learn whether
/// another page follows).
pub async fn list_members(
    cx: &Ctx<'_>,
    group_key: &str,
    query: &ListQuery,
    page_size: u64,
) -> ServiceResult<MemberPage> {
    let group = group(cx, group_key).await?;
    let result = cx.store().list_members(cx.tenant_id, &group.id, query).await?;
    let more = result.items.len() as u64 > page_size;
    let mut objects = Vec::new();
    for m in result.items.iter().take(page_size as usize) {
        let object = match m.kind {
            MemberKind::User => cx
                .store()
                .get_user(cx.tenant_id, &m.member_id)
                .await?
                .map(|u| DirectoryObject::User(Box::new(u))),
            MemberKind::Device => cx
                .store()
                .find_device_by_entra_id(cx.tenant_id, &m.member_id)
                .await?
                .map(|d| DirectoryObject::Device(Box::new(d))),
        };
        objects.extend(object);
    }
    Ok(MemberPage {
        objects,
        more,
        total: result.total,
    })
}

/// What kind of object a member reference names, when its URL says (`users/...`,
/// `devices/...`); `directoryObjects/...` names either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Device,
}

/// Adds the object `key` names (a user by object id, else a device by Entra device id) to the
/// group, and queues its devices for re-evaluation.
pub async fn add_member(cx: &Ctx<'_>, group_key: &str, kind: Option<ObjectKind>, key: &str) -> ServiceResult<()> {
    let group = group(cx, group_key).await?;
    let user = match (kind, parse_guid(key)) {
        (Some(ObjectKind::Device), _) | (_, None) => None,
        (_, Some(uid)) => cx.store().get_user(cx.tenant_id, &uid).await?,
    };
    let member = match user {
        Some(u) => Member {
            group_id: group.id.clone(),
            member_id: u.id,
            kind: MemberKind::User,
        },
        None => {
            let device = match kind {
                Some(ObjectKind::User) => None,
                _ => {
                    cx.store()
                        .find_device_by_entra_id(cx.tenant_id, &key.to_ascii_lowercase())
                        .await?
                }
            };
            match device {
                Some(d) => Member {
                    group_id: group.id.clone(),
                    member_id: d.azure_ad_device_id,
                    kind: MemberKind::Device,
                },
                None => return Err(not_found(key)),
            }
        }
    };
    let fx = Effects::enqueue(DeviceScope::Members(vec![member.member_id.clone()]));
    if cx.store().add_member(cx.tenant_id, &member, &fx).await? {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "One or more added object references already exist for the following modified properties: 'members'.",
        ))
    }
}

/// Removes a member (by object id) from the group, and queues its devices for re-evaluation.
pub async fn remove_member(cx: &Ctx<'_>, group_key: &str, member_id: &str) -> ServiceResult<()> {
    let group = group(cx, group_key).await?;
    let id = member_id.to_ascii_lowercase();
    let fx = Effects::enqueue(DeviceScope::Members(vec![id.clone()]));
    if cx.store().remove_member(cx.tenant_id, &group.id, &id, &fx).await? {
        Ok(())
    } else {
        Err(not_found(member_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_must_be_complex() {
        assert!(check_password("Passw0rd!").is_ok());
        assert!(check_password("passw0rd").is_err());
        assert!(check_password("Sh0rt!").is_err());
        assert!(check_password("lowercaseonly").is_err());
    }
}
