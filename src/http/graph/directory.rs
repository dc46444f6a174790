//! `/users`, `/groups` and group membership: the Entra ID directory objects that compliance
//! policies are assigned through. Directory errors use Entra's codes (`Request_BadRequest`,
//! `Request_ResourceNotFound`), not Intune's.

use crate::store::{DeviceScope, Effects};
use std::sync::OnceLock;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    apply_select, collection_response, graph_json, odata_entity, page_response, reject_collection_options,
    reject_expand, sql_for, with_context, GraphCtx,
};
use crate::domain::directory::{hash_password, valid_user_principal_name, Group, Member, MemberKind, User};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::{
    RoleRequirement, GLOBAL_ADMINISTRATOR, GROUPS_ADMINISTRATOR, INTUNE_ADMINISTRATOR, USER_ADMINISTRATOR,
};
use crate::domain::tenant::parse_guid;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, JsonBody, OData};
use crate::http::paging::{next_link, page_request};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::{ColType, Column, Entity};
use crate::schema::directory::{GROUP, USER};
use crate::schema::{merge_patch, render, validate_patch};
use crate::store::StoreError;

const USER_READ: GraphPermission = GraphPermission {
    any_of: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
const USER_WRITE: GraphPermission = GraphPermission {
    any_of: &["User.ReadWrite.All", "Directory.ReadWrite.All"],
};
const GROUP_READ: GraphPermission = GraphPermission {
    any_of: &[
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
const GROUP_WRITE: GraphPermission = GraphPermission {
    any_of: &["Group.ReadWrite.All", "Directory.ReadWrite.All"],
};
const MEMBER_READ: GraphPermission = GraphPermission {
    any_of: &[
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
const MEMBER_WRITE: GraphPermission = GraphPermission {
    any_of: &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};

// Users and groups are Entra ID objects, not Intune's: Intune roles play no part in them. A
// delegated caller reads the directory with the scope alone (Entra lets member users read it),
// while writes need a directory role that may make them: user administration for users, group
// administration (which Entra also grants User and Intune Administrators, for security groups)
// for groups and their members. Global Administrators may do everything.
const ANY_USER: RoleRequirement = RoleRequirement::Directory(&[]);
const USER_ADMINS: RoleRequirement = RoleRequirement::Directory(&[GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR]);
const GROUP_ADMINS: RoleRequirement = RoleRequirement::Directory(&[
    GLOBAL_ADMINISTRATOR,
    GROUPS_ADMINISTRATOR,
    USER_ADMINISTRATOR,
    INTUNE_ADMINISTRATOR,
]);

pub fn routes(t: &mut RouteTable) {
    t.route(Method::GET, "/users", Access::Graph(USER_READ, ANY_USER), list_users)
        .route(
            Method::POST,
            "/users",
            Access::Graph(USER_WRITE, USER_ADMINS),
            create_user,
        )
        .route(
            Method::GET,
            "/users/{userId}",
            Access::Graph(USER_READ, ANY_USER),
            get_user,
        )
        .route(
            Method::PATCH,
            "/users/{userId}",
            Access::Graph(USER_WRITE, USER_ADMINS),
            patch_user,
        )
        .route(
            Method::DELETE,
            "/users/{userId}",
            Access::Graph(USER_WRITE, USER_ADMINS),
            delete_user,
        )
        .route(Method::GET, "/groups", Access::Graph(GROUP_READ, ANY_USER), list_groups)
        .route(
            Method::POST,
            "/groups",
            Access::Graph(GROUP_WRITE, GROUP_ADMINS),
            create_group,
        )
        .route(
            Method::GET,
            "/groups/{groupId}",
            Access::Graph(GROUP_READ, ANY_USER),
            get_group,
        )
        .route(
            Method::PATCH,
            "/groups/{groupId}",
            Access::Graph(GROUP_WRITE, GROUP_ADMINS),
            patch_group,
        )
        .route(
            Method::DELETE,
            "/groups/{groupId}",
            Access::Graph(GROUP_WRITE, GROUP_ADMINS),
            delete_group,
        )
        .route(
            Method::GET,
            "/groups/{groupId}/members",
            Access::Graph(MEMBER_READ, ANY_USER),
            list_members,
        )
        .route(
            Method::POST,
            "/groups/{groupId}/members/$ref",
            Access::Graph(MEMBER_WRITE, GROUP_ADMINS),
            add_member,
        )
        .route(
            Method::DELETE,
            "/groups/{groupId}/members/{memberId}/$ref",
            Access::Graph(MEMBER_WRITE, GROUP_ADMINS),
            remove_member,
        );
}

/// Entra's page sizes: 100 by default, 999 at most.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 999;

/// The properties v1.0 returns for a user when no `$select` is given.
const USER_DEFAULT_SELECT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

fn directory_bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn directory_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn invalid_value(property: &str, resource: &str) -> ApiError {
    directory_bad_request(format!(
        "Invalid value specified for property '{property}' of resource '{resource}'."
    ))
}

fn users_entity() -> &'static Entity {
    static COLUMNS: &[Column] = &[
        Column {
            property: "id",
            sql: "id",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "userPrincipalName",
            sql: "user_principal_name",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "displayName",
            sql: "display_name",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "mail",
            sql: "mail",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "accountEnabled",
            sql: "account_enabled",
            ty: ColType::Bool,
            filterable: true,
            sortable: false,
            case_insensitive: false,
        },
        Column {
            property: "createdDateTime",
            sql: "created_at",
            ty: ColType::Timestamp,
            filterable: true,
            sortable: true,
            case_insensitive: false,
        },
    ];
    static ENTITY: OnceLock<Entity> = OnceLock::new();
    ENTITY.get_or_init(|| odata_entity("microsoft.graph.user", COLUMNS, &USER))
}

fn groups_entity() -> &'static Entity {
    static COLUMNS: &[Column] = &[
        Column {
            property: "id",
            sql: "id",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "displayName",
            sql: "display_name",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "mailNickname",
            sql: "mail_nickname",
            ty: ColType::Text,
            filterable: true,
            sortable: true,
            case_insensitive: true,
        },
        Column {
            property: "securityEnabled",
            sql: "security_enabled",
            ty: ColType::Bool,
            filterable: true,
            sortable: false,
            case_insensitive: false,
        },
        Column {
            property: "mailEnabled",
            sql: "mail_enabled",
            ty: ColType::Bool,
            filterable: true,
            sortable: false,
            case_insensitive: false,
        },
        Column {
            property: "createdDateTime",
            sql: "created_at",
            ty: ColType::Timestamp,
            filterable: true,
            sortable: true,
            case_insensitive: false,
        },
    ];
    static ENTITY: OnceLock<Entity> = OnceLock::new();
    ENTITY.get_or_init(|| odata_entity("microsoft.graph.group", COLUMNS, &GROUP))
}

// ---- users ----

/// The user's stored Graph properties with the typed columns laid over them.
fn user_document(u: &User) -> Map<String, Value> {
    let mut m = u.properties.clone();
    m.insert("id".into(), u.id.clone().into());
    m.insert("userPrincipalName".into(), u.user_principal_name.clone().into());
    m.insert("displayName".into(), u.display_name.clone().into());
    m.insert("mail".into(), u.mail.clone().map(Value::String).unwrap_or(Value::Null));
    m.insert("accountEnabled".into(), u.account_enabled.into());
    m.insert(
        "createdDateTime".into(),
        crate::service::clock::rfc3339(u.created_at).into(),
    );
    // Graph never returns a password.
    m.remove("passwordProfile");
    m
}

/// A user as `version` shows it: v1.0 shows its default property set unless `$select` says
/// otherwise.
pub fn render_user(u: &User, ctx: &GraphCtx, select: Option<&Vec<String>>) -> ApiResult<Map<String, Value>> {
    let rendered = render(&USER, &user_document(u), ctx.view);
    match (select, ctx.version) {
        (Some(_), _) => apply_select(rendered, &USER, select, ctx.version),
        (None, ApiVersion::V1) => Ok(rendered
            .into_iter()
            .filter(|(k, _)| k.starts_with('@') || USER_DEFAULT_SELECT.contains(&k.as_str()))
            .collect()),
        (None, ApiVersion::Beta) => Ok(rendered),
    }
}

/// `{id}` of a user path: the object id, or the user principal name.
async fn load_user(state: &AppState, tenant_id: &str, key: &str) -> ApiResult<User> {
    let user = match parse_guid(key) {
        Some(id) => state.store.get_user(tenant_id, &id).await?,
        None if key.contains('@') => {
            let upn = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            state.store.find_user_by_upn(tenant_id, &upn).await?
        }
        None => None,
    };
    user.ok_or_else(|| directory_not_found(key))
}

/// Entra's password policy: 8 to 256 characters, three of lower case, upper case, digits and
/// symbols.
fn check_password(password: &str) -> ApiResult<()> {
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if (8..=256).contains(&password.chars().count()) && classes.iter().filter(|c| **c).count() >= 3 {
        Ok(())
    } else {
        Err(directory_bad_request(
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        ))
    }
}

fn salt() -> String {
    Uuid::new_v4().simple().to_string()[..16].to_string()
}

/// Lays validated properties onto the user's typed fields; `passwordProfile.password` becomes
/// the stored hash and is removed from the document.
fn apply_user_properties(user: &mut User, props: Map<String, Value>) -> ApiResult<()> {
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

async fn create_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let props = validate_patch(&USER, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
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
        return Err(directory_bad_request(
            "A password must be specified to create a new user.",
        ));
    }
    let mut user = User {
        tenant_id: caller.tenant.id.clone(),
        id: Uuid::new_v4().to_string(),
        user_principal_name: String::new(),
        display_name: String::new(),
        mail: None,
        account_enabled: true,
        password_hash: None,
        created_at: caller.now,
        properties: Map::new(),
    };
    apply_user_properties(&mut user, props)?;
    match state.store.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(directory_bad_request(
                "Another object with the same value for property userPrincipalName already exists.",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let body = render(&USER, &user_document(&user), ctx.view);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(ctx.context("users/$entity", None), body),
    ))
}

async fn list_users(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    reject_expand(&q, "user")?;
    let (filter, order_by) = sql_for(&q, users_entity(), state.dialect(), 2)?;
    let page = page_request(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let keyset = order_by.is_none();
    let rows = state
        .store
        .list_users(&caller.tenant.id, &page.list_query(filter, order_by, q.count))
        .await?;
    let context = ctx.context("users", q.select.as_deref());
    page_response(
        &ctx,
        &uri,
        &page,
        keyset,
        rows,
        |u| &u.id,
        |u| render_user(u, &ctx, q.select.as_ref()),
        context,
    )
}

async fn get_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_collection_options(&q)?;
    reject_expand(&q, "user")?;
    let user = load_user(&state, &caller.tenant.id, &id).await?;
    let body = render_user(&user, &ctx, q.select.as_ref())?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(ctx.context("users/$entity", q.select.as_deref()), body),
    ))
}

async fn patch_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut user = load_user(&state, &caller.tenant.id, &id).await?;
    let props = validate_patch(&USER, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    apply_user_properties(&mut user, props)?;
    match state.store.update_user(&user, &Effects::none()).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(directory_not_found(&id)),
        Err(StoreError::Conflict(_)) => Err(directory_bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn delete_user(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let user = load_user(&state, &caller.tenant.id, &id).await?;
    if state
        .store
        .delete_user(&caller.tenant.id, &user.id, &Effects::none())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(directory_not_found(&id))
    }
}

// ---- groups ----

fn group_document(g: &Group) -> Map<String, Value> {
    let mut m = g.properties.clone();
    m.insert("id".into(), g.id.clone().into());
    m.insert("displayName".into(), g.display_name.clone().into());
    m.insert("mailNickname".into(), g.mail_nickname.clone().into());
    m.insert("securityEnabled".into(), g.security_enabled.into());
    m.insert("mailEnabled".into(), g.mail_enabled.into());
    m.insert(
        "createdDateTime".into(),
        crate::service::clock::rfc3339(g.created_at).into(),
    );
    m
}

async fn load_group(state: &AppState, tenant_id: &str, key: &str) -> ApiResult<Group> {
    let Some(id) = parse_guid(key) else {
        return Err(directory_not_found(key));
    };
    state
        .store
        .get_group(tenant_id, &id)
        .await?
        .ok_or_else(|| directory_not_found(key))
}

fn apply_group_properties(group: &mut Group, props: Map<String, Value>) -> ApiResult<()> {
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

async fn create_group(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let props = validate_patch(&GROUP, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    for required in ["displayName", "mailEnabled", "mailNickname", "securityEnabled"] {
        if props.get(required).is_none_or(Value::is_null) {
            return Err(invalid_value(required, "Group"));
        }
    }
    let mut group = Group {
        tenant_id: caller.tenant.id.clone(),
        id: Uuid::new_v4().to_string(),
        display_name: String::new(),
        mail_nickname: String::new(),
        security_enabled: false,
        mail_enabled: false,
        created_at: caller.now,
        properties: Map::new(),
    };
    apply_group_properties(&mut group, props)?;
    state.store.insert_group(&group).await?;
    let body = render(&GROUP, &group_document(&group), ctx.view);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(ctx.context("groups/$entity", None), body),
    ))
}

async fn list_groups(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    reject_expand(&q, "group")?;
    let (filter, order_by) = sql_for(&q, groups_entity(), state.dialect(), 2)?;
    let page = page_request(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let keyset = order_by.is_none();
    let rows = state
        .store
        .list_groups(&caller.tenant.id, &page.list_query(filter, order_by, q.count))
        .await?;
    let render_group = |g: &Group| {
        apply_select(
            render(&GROUP, &group_document(g), ctx.view),
            &GROUP,
            q.select.as_ref(),
            ctx.version,
        )
    };
    page_response(
        &ctx,
        &uri,
        &page,
        keyset,
        rows,
        |g| &g.id,
        render_group,
        ctx.context("groups", q.select.as_deref()),
    )
}

async fn get_group(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_collection_options(&q)?;
    reject_expand(&q, "group")?;
    let group = load_group(&state, &caller.tenant.id, &id).await?;
    let body = apply_select(
        render(&GROUP, &group_document(&group), ctx.view),
        &GROUP,
        q.select.as_ref(),
        ctx.version,
    )?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(ctx.context("groups/$entity", q.select.as_deref()), body),
    ))
}

async fn patch_group(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let mut group = load_group(&state, &caller.tenant.id, &id).await?;
    let props = validate_patch(&GROUP, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    apply_group_properties(&mut group, props)?;
    if state.store.update_group(&group).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(directory_not_found(&id))
    }
}

async fn delete_group(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let group = load_group(&state, &caller.tenant.id, &id).await?;
    if state
        .store
        .delete_group(&caller.tenant.id, &group.id, &Effects::enqueue(DeviceScope::All))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(directory_not_found(&id))
    }
}

// ---- members ----

/// A device as a directory object (`microsoft.graph.device`), named by its Entra device id.
fn device_object(d: &crate::domain::device::ManagedDevice) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("@odata.type".into(), "#microsoft.graph.device".into());
    m.insert("id".into(), d.azure_ad_device_id.clone().into());
    m.insert("accountEnabled".into(), true.into());
    m.insert("deviceId".into(), d.azure_ad_device_id.clone().into());
    m.insert("displayName".into(), d.device_name.clone().into());
    m.insert("operatingSystem".into(), d.operating_system.clone().into());
    m.insert("operatingSystemVersion".into(), d.os_version.clone().into());
    m.insert("isCompliant".into(), (d.compliance_state == "compliant").into());
    m.insert("isManaged".into(), true.into());
    m
}

async fn list_members(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    reject_expand(&q, "group")?;
    if q.filter.is_some() || !q.orderby.is_empty() {
        return Err(directory_bad_request(
            "$filter and $orderby are not supported on group members.",
        ));
    }
    let group = load_group(&state, &caller.tenant.id, &id).await?;
    let page = page_request(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let result = state
        .store
        .list_members(&group.tenant_id, &group.id, &page.list_query(None, None, q.count))
        .await?;
    let more = result.items.len() as u64 > page.size;
    let mut values = Vec::new();
    for m in result.items.iter().take(page.size as usize) {
        let object = match m.kind {
            MemberKind::User => match state.store.get_user(&group.tenant_id, &m.member_id).await? {
                Some(u) => render_user(&u, &ctx, None)?,
                None => continue,
            },
            MemberKind::Device => match state
                .store
                .find_device_by_entra_id(&group.tenant_id, &m.member_id)
                .await?
            {
                Some(d) => device_object(&d),
                None => continue,
            },
        };
        values.push(object);
    }
    let next = more.then(|| next_link(&ctx.base, uri.path(), uri.query(), &page.next(false, "")));
    Ok(collection_response(
        ctx.context("directoryObjects", None),
        values,
        result.total,
        next,
    ))
}

/// The object id at the end of an `@odata.id` reference (`.../directoryObjects/{id}`,
/// `.../users/{id}`, `.../devices/{id}`, or the key syntax `directoryObjects('{id}')`).
fn referenced_id(reference: &str) -> Option<(Option<&'static str>, String)> {
    let path = reference.split(['?', '#']).next()?.trim_end_matches('/');
    let (collection, key) = match crate::http::normalize_path(&format!("/v1.0/{path}")) {
        Some(normal) => {
            let mut segs = normal.rsplit('/');
            let key = segs.next()?.to_string();
            (segs.next().map(str::to_string), key)
        }
        None => {
            let mut segs = path.rsplit('/');
            let key = segs.next()?.to_string();
            (segs.next().map(str::to_string), key)
        }
    };
    let kind = match collection.as_deref() {
        Some("users") => Some("user"),
        Some("devices") => Some("device"),
        Some("directoryObjects") => None,
        _ => return None,
    };
    let key = percent_encoding::percent_decode_str(&key)
        .decode_utf8_lossy()
        .into_owned();
    (!key.is_empty()).then_some((kind, key))
}

async fn add_member(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let group = load_group(&state, &caller.tenant.id, &id).await?;
    let reference = body.get("@odata.id").and_then(Value::as_str).ok_or_else(|| {
        directory_bad_request("The request body must carry '@odata.id', the URL of the directory object to add.")
    })?;
    if body.as_object().is_some_and(|o| o.len() > 1) {
        return Err(directory_bad_request(
            "Only '@odata.id' may be given when adding a reference.",
        ));
    }
    let (kind, key) = referenced_id(reference)
        .ok_or_else(|| directory_bad_request(format!("Invalid object identifier '{reference}'.")))?;
    let tenant = &caller.tenant.id;
    let user = match (kind, parse_guid(&key)) {
        (Some("device"), _) | (_, None) => None,
        (_, Some(uid)) => state.store.get_user(tenant, &uid).await?,
    };
    let member = match user {
        Some(u) => Member {
            group_id: group.id.clone(),
            member_id: u.id,
            kind: MemberKind::User,
        },
        None => {
            let device = match kind {
                Some("user") => None,
                _ => {
                    state
                        .store
                        .find_device_by_entra_id(tenant, &key.to_ascii_lowercase())
                        .await?
                }
            };
            match device {
                Some(d) => Member {
                    group_id: group.id.clone(),
                    member_id: d.azure_ad_device_id,
                    kind: MemberKind::Device,
                },
                None => return Err(directory_not_found(&key)),
            }
        }
    };
    let fx = Effects::enqueue(DeviceScope::Members(vec![member.member_id.clone()]));
    if state.store.add_member(tenant, &member, &fx).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(directory_bad_request(
            "One or more added object references already exist for the following modified properties: 'members'.",
        ))
    }
}

async fn remove_member(
    caller: GraphCaller,
    Path((id, member_id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let group = load_group(&state, &caller.tenant.id, &id).await?;
    let fx = Effects::enqueue(DeviceScope::Members(vec![member_id.to_ascii_lowercase()]));
    if state
        .store
        .remove_member(&caller.tenant.id, &group.id, &member_id.to_ascii_lowercase(), &fx)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(directory_not_found(&member_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_an_object_and_its_kind() {
        /// (reference, the kind it names and the key)
        type Case<'a> = (&'a str, Option<(Option<&'a str>, &'a str)>);
        let cases: &[Case] = &[
            (
                "https://graph.microsoft.com/v1.0/directoryObjects/abc",
                Some((None, "abc")),
            ),
            ("https://graph.microsoft.com/v1.0/users/u1", Some((Some("user"), "u1"))),
            ("http://127.0.0.1:8080/beta/devices/d1", Some((Some("device"), "d1"))),
            (
                "https://graph.microsoft.com/v1.0/directoryObjects('abc')",
                Some((None, "abc")),
            ),
            ("https://graph.microsoft.com/v1.0/groups/g1", None),
            ("nonsense", None),
        ];
        for (reference, expected) in cases {
            let got = referenced_id(reference);
            assert_eq!(got.as_ref().map(|(k, id)| (*k, id.as_str())), *expected, "{reference}");
        }
    }

    #[test]
    fn passwords_must_be_complex() {
        assert!(check_password("Passw0rd!").is_ok());
        assert!(check_password("passw0rd").is_err());
        assert!(check_password("Sh0rt!").is_err());
        assert!(check_password("lowercaseonly").is_err());
    }
}
