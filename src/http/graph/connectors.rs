//! `/deviceManagement/mobileThreatDefenseConnectors`: the tenant's connectors to MTD partners.
//! The id picks a catalog partner; `partnerState` and `lastHeartbeatDateTime` are the service's,
//! computed from the partner's heartbeats and the toggles on the tenant's clock.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::memory;
use super::{apply_select, collection_response, graph_json, reject_expand, with_context, GraphCtx};
use crate::domain::mtd::{catalog_partner, partner_state, CatalogPartner, Connector};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::schema::mtd_connector::MOBILE_THREAT_DEFENSE_CONNECTOR as CONNECTOR;
use crate::schema::{render, validate_patch};
use crate::service;
use crate::service::clock::rfc3339;

const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementServiceConfig.Read.All",
        "DeviceManagementServiceConfig.ReadWrite.All",
    ],
};
const WRITE: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementServiceConfig.ReadWrite.All",
        "DeviceManagementConfiguration.ReadWrite.All",
    ],
};

pub fn routes(t: &mut RouteTable) {
    const PATH: &str = "/deviceManagement/mobileThreatDefenseConnectors";
    const ITEM: &str = "/deviceManagement/mobileThreatDefenseConnectors/{connectorId}";
    t.route(
        Method::GET,
        PATH,
        Access::Graph(READ, Intune("Microsoft.Intune_MobileThreatDefense_Read")),
        list,
    )
    .route(
        Method::POST,
        PATH,
        Access::Graph(WRITE, Intune("Microsoft.Intune_MobileThreatDefense_Modify")),
        create,
    )
    .route(
        Method::GET,
        ITEM,
        Access::Graph(READ, Intune("Microsoft.Intune_MobileThreatDefense_Read")),
        get,
    )
    .route(
        Method::PATCH,
        ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_MobileThreatDefense_Modify")),
        patch,
    )
    .route(
        Method::DELETE,
        ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_MobileThreatDefense_Modify")),
        delete,
    );
}

/// The connector's Graph document: the admin's settings, the partner's metadata (the catalog's
/// until the partner reports its own), and the state the service computes.
pub fn connector_document(c: &Connector, now: DateTime<Utc>) -> Map<String, Value> {
    let mut m = c.properties.clone();
    if let Some(p) = catalog_partner(&c.id) {
        m.extend(catalog_metadata(p));
    }
    m.extend(c.partner_metadata.clone());
    m.insert("id".into(), c.id.clone().into());
    m.insert("partnerState".into(), partner_state(&c.status(), now).into());
    let heartbeat = c
        .last_heartbeat_at
        .map(rfc3339)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    m.insert("lastHeartbeatDateTime".into(), heartbeat.into());
    m
}

fn catalog_metadata(p: &CatalogPartner) -> Map<String, Value> {
    let mut m = Map::new();
    let opt = |v: Option<&str>| v.map(|s| Value::String(s.into())).unwrap_or(Value::Null);
    m.insert("partnerDisplayName".into(), p.display_name.into());
    m.insert("partnerMinimumSupportedAndroidVersion".into(), opt(p.min_android));
    m.insert("partnerMinimumSupportedIosVersion".into(), opt(p.min_ios));
    m.insert("partnerMinimumSupportedMacVersion".into(), opt(p.min_mac));
    m.insert("partnerMinimumSupportedWindowsVersion".into(), opt(p.min_windows));
    m.insert("partnerSupportsAndroidMam".into(), p.android_mam.into());
    m.insert("partnerSupportsIosMam".into(), p.ios_mam.into());
    m.insert("partnerSupportsWindowsMam".into(), p.windows_mam.into());
    m
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_expand(&q, "mobileThreatDefenseConnector")?;
    if q.skip.is_some() || q.skiptoken.is_some() || q.search.is_some() {
        return Err(ApiError::bad_request(
            "$skip, $skiptoken and $search are not supported on mobileThreatDefenseConnectors.",
        ));
    }
    let connectors = service::connectors::list(&caller.cx(&state.app)).await?;
    let rendered: Vec<Map<String, Value>> = connectors
        .iter()
        .map(|c| render(&CONNECTOR, &connector_document(c, caller.now), ctx.view))
        .collect();
    let mut kept = memory::query(
        rendered,
        q.filter.as_ref(),
        &q.orderby,
        "microsoft.graph.mobileThreatDefenseConnector",
    )?;
    let count = q.count.then_some(kept.len() as i64);
    if let Some(top) = q.top {
        kept.truncate(top as usize);
    }
    let values = kept
        .into_iter()
        .map(|c| apply_select(c, &CONNECTOR, q.select.as_ref(), ctx.version))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(collection_response(
        ctx.context("deviceManagement/mobileThreatDefenseConnectors", q.select.as_deref()),
        values,
        count,
        None,
    ))
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_collection_options(&q)?;
    reject_expand(&q, "mobileThreatDefenseConnector")?;
    let c = service::connectors::get(&caller.cx(&state.app), &id).await?;
    let body = apply_select(
        render(&CONNECTOR, &connector_document(&c, caller.now), ctx.view),
        &CONNECTOR,
        q.select.as_ref(),
        ctx.version,
    )?;
    let context = ctx.context(
        "deviceManagement/mobileThreatDefenseConnectors/$entity",
        q.select.as_deref(),
    );
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

async fn create(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let props = validate_patch(&CONNECTOR, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    let id = body.get("id").and_then(Value::as_str);
    let connector = service::connectors::create(&caller.cx(&state.app), id, props).await?;
    let body = render(&CONNECTOR, &connector_document(&connector, caller.now), ctx.view);
    let context = ctx.context("deviceManagement/mobileThreatDefenseConnectors/$entity", None);
    Ok(graph_json(StatusCode::CREATED, with_context(context, body)))
}

async fn patch(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if body.is_null() {
        return Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.mobileThreatDefenseConnector' is required.",
        ));
    }
    let props = validate_patch(&CONNECTOR, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    service::connectors::update(&caller.cx(&state.app), &id, props).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(caller: GraphCaller, Path(id): Path<String>, State(state): State<AppState>) -> ApiResult<StatusCode> {
    service::connectors::delete(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
