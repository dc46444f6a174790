//! `/users`, `/groups` and group membership: the Entra ID directory objects that compliance
//! policies are assigned through. Directory errors use Entra's codes (`Request_BadRequest`,
//! `Request_ResourceNotFound`), not Intune's.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{
    apply_select, collection_response, graph_json, page_response, reject_collection_options, reject_expand,
    with_context, GraphCtx,
};
use crate::domain::directory::{Group, User};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::{
    RoleRequirement, GLOBAL_ADMINISTRATOR, GROUPS_ADMINISTRATOR, INTUNE_ADMINISTRATOR, USER_ADMINISTRATOR,
};
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, JsonBody, OData};
use crate::http::paging::{list_query, next_link, page_request};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::schema::directory::{GROUP, USER};
use crate::schema::{render, validate_patch};
use crate::service::directory::{self, DirectoryObject, ObjectKind};
use crate::service::ServiceError;
use crate::store::ListScope;

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
        .route(
            Method::POST,
            "/users/{userId}/revokeSignInSessions",
            Access::Graph(USER_WRITE, USER_ADMINS),
            revoke_sign_in_sessions,
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

/// Entra's directory answers with its own codes: `Request_BadRequest` and
/// `Request_ResourceNotFound` where Intune says `BadRequest` and `ResourceNotFound`.
fn entra(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Invalid(m) => directory_bad_request(m),
        ServiceError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", m),
        e => e.into(),
    }
}

async fn create_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let props = validate_patch(&USER, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    let user = directory::create_user(&caller.cx(&state.app), props)
        .await
        .map_err(entra)?;
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
    let page = page_request(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let keyset = q.orderby.is_empty();
    let rows = directory::list_users(&caller.cx(&state.app), &list_query(&q, &page, ListScope::All, q.count))
        .await
        .map_err(entra)?;
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
    let user = directory::user(&caller.cx(&state.app), &id).await.map_err(entra)?;
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
    let props = validate_patch(&USER, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    directory::update_user(&caller.cx(&state.app), &id, props)
        .await
        .map_err(entra)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    directory::delete_user(&caller.cx(&state.app), &id)
        .await
        .map_err(entra)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Graph answers the action with an `Edm.Boolean`, always true.
async fn revoke_sign_in_sessions(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    directory::revoke_sign_in_sessions(&caller.cx(&state.app), &id)
        .await
        .map_err(entra)?;
    let mut body = Map::new();
    body.insert("value".into(), Value::Bool(true));
    Ok(graph_json(
        StatusCode::OK,
        with_context(ctx.context("Edm.Boolean", None), body),
    ))
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

async fn create_group(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let props = validate_patch(&GROUP, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    let group = directory::create_group(&caller.cx(&state.app), props)
        .await
        .map_err(entra)?;
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
    let page = page_request(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let keyset = q.orderby.is_empty();
    let rows = directory::list_groups(&caller.cx(&state.app), &list_query(&q, &page, ListScope::All, q.count))
        .await
        .map_err(entra)?;
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
    let group = directory::group(&caller.cx(&state.app), &id).await.map_err(entra)?;
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
    let props = validate_patch(&GROUP, &body, ctx.version).map_err(|e| directory_bad_request(e.0))?;
    directory::update_group(&caller.cx(&state.app), &id, props)
        .await
        .map_err(entra)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_group(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    directory::delete_group(&caller.cx(&state.app), &id)
        .await
        .map_err(entra)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- members ----

/// A device as a directory object (`microsoft.graph.device`), named by its Entra device id.
fn device_object(d: &crate::domain::device::ManagedDevice, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), d.azure_ad_device_id.clone().into());
    m.insert("accountEnabled".into(), true.into());
    m.insert("deviceId".into(), d.azure_ad_device_id.clone().into());
    m.insert("displayName".into(), d.device_name.clone().into());
    m.insert("operatingSystem".into(), d.operating_system.clone().into());
    m.insert("operatingSystemVersion".into(), d.os_version.clone().into());
    m.insert("isCompliant".into(), (d.compliance_state == "compliant").into());
    m.insert("isManaged".into(), true.into());
    render(&crate::schema::served::DEVICE, &m, ctx.view)
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
    let page = page_request(&q, DEFAULT_PAGE, MAX_PAGE)?;
    let members = directory::list_members(
        &caller.cx(&state.app),
        &id,
        &page.list_query(None, None, q.count),
        page.size,
    )
    .await
    .map_err(entra)?;
    let values = members
        .objects
        .iter()
        .map(|m| match m {
            DirectoryObject::User(u) => render_user(u, &ctx, None),
            DirectoryObject::Device(d) => Ok(device_object(d, &ctx)),
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let next = members
        .more
        .then(|| next_link(&ctx.base, uri.path(), uri.query(), &page.next(false, "")));
    Ok(collection_response(
        ctx.context("directoryObjects", None),
        values,
        members.total,
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
    let kind = match kind {
        Some("user") => Some(ObjectKind::User),
        Some(_) => Some(ObjectKind::Device),
        None => None,
    };
    directory::add_member(&caller.cx(&state.app), &id, kind, &key)
        .await
        .map_err(entra)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    caller: GraphCaller,
    Path((id, member_id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    directory::remove_member(&caller.cx(&state.app), &id, &member_id)
        .await
        .map_err(entra)?;
    Ok(StatusCode::NO_CONTENT)
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
}
