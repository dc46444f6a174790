//! The emulator's control plane (`/_emulator`): tenants, their apps and their clocks, and
//! simulated devices (`devices.rs`).

mod access;
mod app_protection;
mod devices;
mod faults;
mod limits;
mod roles;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Admin;
use super::error::{ApiError, ApiResult};
use super::extract::{decode, BaseUrl, JsonBody, OData};
use super::paging::{list_query, next_link, page_request};
use super::routes::{Access, RouteTable, Surface};
use super::AppState;
use crate::clock::tenant_now;
use crate::domain::duration::{format_micros, IsoDuration};
use crate::domain::mtd::CATALOG;
use crate::domain::tenant::{parse_guid, App, AppKind, RedirectUris, SignInSettings, Tenant};
use crate::odata;
use crate::service::clock::{move_clock, rfc3339, ClockMove};
use crate::service::tenants::{self, NewApp};
use crate::service::Ctx;
use crate::store::ListScope;

pub fn routes() -> RouteTable {
    let mut t = RouteTable::new(Surface::Control);
    t.route(Method::POST, "/_emulator/tenants", Access::AdminKey, create)
        .route(Method::GET, "/_emulator/tenants", Access::AdminKey, list)
        .route(Method::GET, "/_emulator/tenants/{tenantId}", Access::AdminKey, get)
        .route(
            Method::DELETE,
            "/_emulator/tenants/{tenantId}",
            Access::AdminKey,
            delete,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/reset",
            Access::AdminKey,
            reset,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/apps",
            Access::AdminKey,
            register_app,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/apps",
            Access::AdminKey,
            list_apps,
        )
        .route(
            Method::DELETE,
            "/_emulator/tenants/{tenantId}/apps/{clientId}",
            Access::AdminKey,
            delete_app,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/limits",
            Access::AdminKey,
            limits::get,
        )
        .route(
            Method::PUT,
            "/_emulator/tenants/{tenantId}/limits",
            Access::AdminKey,
            limits::put,
        )
        .route(
            Method::DELETE,
            "/_emulator/tenants/{tenantId}/limits",
            Access::AdminKey,
            limits::delete,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/faults",
            Access::AdminKey,
            faults::list,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/faults",
            Access::AdminKey,
            faults::create,
        )
        .route(
            Method::DELETE,
            "/_emulator/tenants/{tenantId}/faults",
            Access::AdminKey,
            faults::delete_all,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/faults/{ruleId}",
            Access::AdminKey,
            faults::get,
        )
        .route(
            Method::PATCH,
            "/_emulator/tenants/{tenantId}/faults/{ruleId}",
            Access::AdminKey,
            faults::update,
        )
        .route(
            Method::DELETE,
            "/_emulator/tenants/{tenantId}/faults/{ruleId}",
            Access::AdminKey,
            faults::delete,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/conditionalAccess/evaluate",
            Access::AdminKey,
            access::evaluate,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/clock",
            Access::AdminKey,
            read_clock,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/clock",
            Access::AdminKey,
            set_clock,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/devices",
            Access::AdminKey,
            devices::enroll_devices,
        )
        .route(
            Method::PATCH,
            "/_emulator/tenants/{tenantId}/devices/{deviceId}",
            Access::AdminKey,
            devices::check_in_device,
        )
        .route(
            Method::PUT,
            "/_emulator/tenants/{tenantId}/devices/{deviceId}/apps",
            Access::AdminKey,
            devices::put_apps,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/devices/{deviceId}/apps",
            Access::AdminKey,
            devices::get_apps,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/devices/{deviceId}/explain",
            Access::AdminKey,
            devices::explain,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/devices/{deviceId}/credential",
            Access::AdminKey,
            devices::credential,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/appRegistrations",
            Access::AdminKey,
            app_protection::register,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/appRegistrations",
            Access::AdminKey,
            app_protection::list,
        )
        .route(
            Method::DELETE,
            "/_emulator/tenants/{tenantId}/appRegistrations/{registrationId}",
            Access::AdminKey,
            app_protection::unregister,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/appRegistrations/{registrationId}/checkIn",
            Access::AdminKey,
            app_protection::check_in,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/appRegistrations/{registrationId}/wipeCompleted",
            Access::AdminKey,
            app_protection::wipe_completed,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/appRegistrations/{registrationId}/explain",
            Access::AdminKey,
            app_protection::explain,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/notifications",
            Access::AdminKey,
            notifications,
        )
        .route(
            Method::POST,
            "/_emulator/tenants/{tenantId}/settle",
            Access::AdminKey,
            settle,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/events",
            Access::AdminKey,
            events,
        )
        .route(
            Method::GET,
            "/_emulator/tenants/{tenantId}/users/{userId}/directoryRoles",
            Access::AdminKey,
            roles::get_roles,
        )
        .route(
            Method::PUT,
            "/_emulator/tenants/{tenantId}/users/{userId}/directoryRoles",
            Access::AdminKey,
            roles::put_roles,
        )
        .route(Method::GET, "/_emulator/partners", Access::AdminKey, partners);
    t
}

/// The properties of a tenant as the control plane shows it, for `$select`.
const TENANT_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "createdDateTime",
    "clock",
    "tokenEndpoint",
    "bootstrapApp",
];

const TENANT_PAGE_SIZE: u64 = 100;

fn tenant_json(t: &Tenant, wall: DateTime<Utc>, base: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("displayName".into(), json!(t.display_name));
    m.insert("createdDateTime".into(), json!(rfc3339(t.created_at)));
    m.insert("clock".into(), clock_json(t, wall));
    m.insert("bootstrapApp".into(), json!({ "clientId": t.bootstrap_client_id }));
    m.insert(
        "tokenEndpoint".into(),
        json!(format!("{base}/{}/oauth2/v2.0/token", t.id)),
    );
    m
}

fn clock_json(t: &Tenant, wall: DateTime<Utc>) -> Value {
    json!({ "now": rfc3339(tenant_now(wall, t.clock_offset_us)), "offset": format_micros(t.clock_offset_us) })
}

fn app_json(a: &App) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("clientId".into(), json!(a.client_id));
    m.insert("displayName".into(), json!(a.display_name));
    m.insert("kind".into(), json!(a.kind.as_str()));
    m.insert("permissions".into(), json!(a.permissions));
    if let Some(c) = &a.connector_id {
        m.insert("connectorId".into(), json!(c));
    }
    if a.kind == AppKind::Graph {
        if let Ok(Value::Object(sign_in)) = serde_json::to_value(&a.sign_in) {
            m.extend(sign_in);
        }
    }
    m.insert("createdDateTime".into(), json!(rfc3339(a.created_at)));
    m
}

/// The tenant named in the path (404 unless `id` is the GUID of one).
pub(super) async fn load_tenant(state: &AppState, id: &str) -> ApiResult<Tenant> {
    Ok(tenants::get(&state.app, id).await?)
}

/// The context of an admin's use case in `tenant`, on the tenant's clock.
pub(super) fn admin_cx<'a>(state: &'a AppState, tenant: &'a Tenant, admin: &'a Admin) -> Ctx<'a> {
    state
        .app
        .cx(&tenant.id, state.app.tenant_now(tenant.clock_offset_us), &admin.cause)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateTenant {
    id: Option<String>,
    display_name: Option<String>,
}

async fn create(
    _: Admin,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let req: CreateTenant = decode(body, "emulator.tenant")?;
    let id =
        match req.id {
            Some(id) => Some(parse_guid(&id).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid value for property 'id': '{id}' is not a GUID."))
            })?),
            None => None,
        };
    let (tenant, bootstrap) = tenants::create(&state.app, id, req.display_name).await?;
    let mut body = tenant_json(&tenant, state.app.clock().wall_now(), &base);
    let mut app = app_json(&bootstrap.app);
    app.insert("clientSecret".into(), json!(bootstrap.client_secret));
    body.insert("bootstrapApp".into(), Value::Object(app));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(
    _: Admin,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    if !q.expand.is_empty() {
        return Err(ApiError::bad_request("$expand is not supported on tenants."));
    }
    let select = q
        .select
        .as_ref()
        .map(|s| odata::validate_select(s, "emulator.tenant", TENANT_PROPERTIES))
        .transpose()?;
    let page = page_request(&q, TENANT_PAGE_SIZE, TENANT_PAGE_SIZE)?;
    let result = tenants::list(&state.app, &list_query(&q, &page, ListScope::All, q.count)).await?;
    let wall = state.app.clock().wall_now();
    let more = result.items.len() as u64 > page.size;
    let value: Vec<Value> = result
        .items
        .iter()
        .take(page.size as usize)
        .map(|t| {
            let full = tenant_json(t, wall, &base);
            Value::Object(match &select {
                Some(names) if !names.contains(&"*") => {
                    full.into_iter().filter(|(k, _)| names.contains(&k.as_str())).collect()
                }
                _ => full,
            })
        })
        .collect();
    let mut body = Map::new();
    if let Some(total) = result.total {
        body.insert("@odata.count".into(), json!(total));
    }
    body.insert("value".into(), Value::Array(value));
    // `$top=0` asks for no rows, and has no next page.
    if more && page.size > 0 {
        let last = result
            .items
            .get(page.size as usize - 1)
            .map(|t| t.id.as_str())
            .unwrap_or("");
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(&base, uri.path(), uri.query(), &page.next(false, last))),
        );
    }
    Ok(Json(Value::Object(body)))
}

async fn get(
    _: Admin,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    Ok(Json(Value::Object(tenant_json(
        &tenant,
        state.app.clock().wall_now(),
        &base,
    ))))
}

async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    tenants::delete(&state.app, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(
    _: Admin,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tenant = tenants::reset(&state.app, &id).await?;
    Ok(Json(Value::Object(tenant_json(
        &tenant,
        state.app.clock().wall_now(),
        &base,
    ))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegisterApp {
    display_name: String,
    #[serde(default = "graph_kind")]
    kind: AppKind,
    #[serde(default)]
    permissions: Vec<String>,
    connector_id: Option<String>,
    #[serde(default)]
    web: RedirectUris,
    #[serde(default)]
    spa: RedirectUris,
    #[serde(default)]
    public_client: RedirectUris,
    #[serde(default)]
    is_fallback_public_client: bool,
    delegated_permissions: Option<Vec<String>>,
}

fn graph_kind() -> AppKind {
    AppKind::Graph
}

async fn register_app(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let tenant = load_tenant(&state, &id).await?;
    let req: RegisterApp = decode(body, "emulator.app")?;
    let registered = tenants::register_app(
        &state.app,
        &tenant,
        NewApp {
            display_name: req.display_name,
            kind: req.kind,
            permissions: req.permissions,
            connector_id: req.connector_id,
            sign_in: SignInSettings {
                web: req.web,
                spa: req.spa,
                public_client: req.public_client,
                is_fallback_public_client: req.is_fallback_public_client,
                delegated_permissions: req.delegated_permissions,
            },
        },
    )
    .await?;
    let mut body = app_json(&registered.app);
    body.insert("clientSecret".into(), json!(registered.client_secret));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn delete_app(
    _: Admin,
    State(state): State<AppState>,
    Path((id, client_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = load_tenant(&state, &id).await?;
    tenants::delete_app(&state.app, &tenant, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_apps(admin: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let apps = tenants::list_apps(&admin_cx(&state, &tenant, &admin)).await?;
    Ok(Json(json!({ "value": apps.iter().map(app_json).collect::<Vec<_>>() })))
}

async fn read_clock(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    Ok(Json(clock_json(&tenant, state.app.clock().wall_now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MoveClock {
    advance_by: Option<String>,
    set_to: Option<String>,
}

async fn set_clock(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let req: MoveClock = decode(body, "emulator.clockMove")?;
    let mv = match (req.advance_by, req.set_to) {
        (Some(d), None) => ClockMove::AdvanceBy(
            IsoDuration::parse(&d)
                .map_err(|e| ApiError::bad_request(format!("Invalid value for property 'advanceBy': {e}")))?,
        ),
        (None, Some(t)) => ClockMove::SetTo(
            DateTime::parse_from_rfc3339(&t)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid value for property 'setTo': '{t}' is not an ISO 8601 date and time with an offset."
                    ))
                })?
                .with_timezone(&Utc),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "Give exactly one of 'advanceBy' (an ISO 8601 duration) and 'setTo' (an instant).",
            ))
        }
    };
    let tenant = move_clock(&state.app, &tenant.id, mv).await?;
    Ok(Json(clock_json(&tenant, state.app.clock().wall_now())))
}

/// The partner catalog the emulator ships: connector ids are the same in every tenant.
async fn partners(_: Admin) -> Json<Value> {
    let value: Vec<Value> = CATALOG
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "displayName": p.display_name,
                "platforms": { "android": p.android, "ios": p.ios, "windows": p.windows, "macOS": p.mac },
                "appProtection": { "android": p.android_mam, "ios": p.ios_mam, "windows": p.windows_mam },
                "minimumSupportedVersions": { "android": p.min_android, "ios": p.min_ios, "macOS": p.min_mac, "windows": p.min_windows },
            })
        })
        .collect();
    Json(json!({ "value": value }))
}

/// `GET /_emulator/tenants/{tid}/notifications`: the outbox of emails and push messages, oldest
/// A log read oldest first by sequence number: where a page starts (`$top`, the `$skiptoken`
/// of a previous page's `@odata.nextLink`), and the page's answer from rows fetched one beyond it.
struct SeqPage {
    after: i64,
    size: u64,
}

impl SeqPage {
    fn from(q: &odata::QueryOptions, what: &str) -> ApiResult<Self> {
        if q.filter.is_some() || !q.orderby.is_empty() || q.select.is_some() || !q.expand.is_empty() || q.skip.is_some()
        {
            return Err(ApiError::bad_request(format!(
                "The {what} supports $top and $skiptoken only: it is listed oldest first."
            )));
        }
        let page = page_request(q, 100, 1000)?;
        let after = match &page.start {
            crate::http::paging::PageStart::After(k) => k.parse::<i64>().map_err(|_| {
                ApiError::bad_request("The $skiptoken is not valid. Follow @odata.nextLink as returned.")
            })?,
            crate::http::paging::PageStart::Offset(_) => 0,
        };
        Ok(SeqPage { after, size: page.size })
    }

    fn answer(&self, rows: Vec<(i64, Value)>, base: &str, uri: &Uri) -> Json<Value> {
        let more = rows.len() as u64 > self.size;
        let shown: Vec<(i64, Value)> = rows.into_iter().take(self.size as usize).collect();
        let mut body = Map::new();
        if let (true, Some((last, _))) = (more, shown.last()) {
            let start = crate::http::paging::PageStart::After(last.to_string());
            body.insert(
                "@odata.nextLink".into(),
                json!(next_link(base, uri.path(), uri.query(), &start)),
            );
        }
        body.insert(
            "value".into(),
            Value::Array(shown.into_iter().map(|(_, d)| d).collect()),
        );
        Json(Value::Object(body))
    }
}

/// first, paged with `$top` and the `@odata.nextLink` it returns.
async fn notifications(
    admin: Admin,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let page = SeqPage::from(&q, "outbox")?;
    let tenant = load_tenant(&state, &id).await?;
    let rows = tenants::notifications(&admin_cx(&state, &tenant, &admin), page.after, page.size + 1).await?;
    Ok(page.answer(rows, &base, &uri))
}

/// `POST /_emulator/tenants/{tid}/settle`: everything due or pending for the tenant, now.
async fn settle(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let (summary, now) = tenants::settle(&state.app, &tenant).await?;
    Ok(Json(summary.to_json(now)))
}

/// The event log's own filters; paging is OData's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventQuery {
    device_id: Option<String>,
    connector_id: Option<String>,
    kind: Option<String>,
}

const EVENT_KINDS: &[&str] = &[
    "complianceStateChanged",
    "partnerStateChanged",
    "actionFired",
    "appRegistered",
    "appUnregistered",
    "appProtectionStateChanged",
    "appWipeRequested",
    "appWipeCompleted",
    "requestThrottled",
    "requestFaulted",
];

/// `GET /_emulator/tenants/{tid}/events`: the event log, oldest first, filtered by `deviceId`,
/// `connectorId` and `kind`, paged with `$top` and the `@odata.nextLink` it returns.
async fn events(
    admin: Admin,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let page = SeqPage::from(&q, "event log")?;
    let axum::extract::Query(filters) = axum::extract::Query::<EventQuery>::try_from_uri(&uri).map_err(|e| {
        ApiError::bad_request(format!(
            "Invalid query: {e}. Use deviceId, connectorId, kind, $top and $skiptoken."
        ))
    })?;
    if let Some(k) = &filters.kind {
        if !EVENT_KINDS.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unknown event kind '{k}': one of {}.",
                EVENT_KINDS.join(", ")
            )));
        }
    }
    let tenant = load_tenant(&state, &id).await?;
    let filter = crate::store::EventFilter {
        device_id: filters.device_id.map(|d| d.to_ascii_lowercase()),
        connector_id: filters.connector_id.map(|c| c.to_ascii_lowercase()),
        kind: filters.kind,
    };
    let rows = tenants::events(&admin_cx(&state, &tenant, &admin), &filter, page.after, page.size + 1).await?;
    Ok(page.answer(rows, &base, &uri))
}
