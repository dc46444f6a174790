//! The partner API (`/partner/v1`), the emulator's own design of the private channel MTD
//! partners use (graph-reference 8): heartbeats, metadata, deprovisioning, bulk threat reports,
//! the devices a partner may see and iOS app sync. The token names the tenant and the
//! connector; paths carry neither.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::PartnerCaller;
use super::error::{ApiError, ApiResult};
use super::extract::{decode, BaseUrl, JsonBody, OData};
use super::paging::{list_query, next_link, page_request};
use super::routes::{Access, RouteTable, Surface};
use super::AppState;
use crate::domain::device::ManagedDevice;
use crate::domain::mtd::{Outcome, ReportItem, Reported};
use crate::service;
use crate::service::clock::rfc3339;
use crate::service::partner::AppSync;
use crate::store::ListScope;

pub fn routes() -> RouteTable {
    let mut t = RouteTable::new(Surface::Partner);
    t.route(
        Method::POST,
        "/partner/v1/connector/heartbeat",
        Access::Partner,
        heartbeat,
    )
    .route(Method::PATCH, "/partner/v1/connector", Access::Partner, update_metadata)
    .route(Method::DELETE, "/partner/v1/connector", Access::Partner, deprovision)
    .route(
        Method::POST,
        "/partner/v1/deviceThreatStates",
        Access::Partner,
        report_threat_states,
    )
    .route(Method::GET, "/partner/v1/devices", Access::Partner, list_devices)
    .route(
        Method::GET,
        "/partner/v1/appProtectionDevices",
        Access::Partner,
        list_app_devices,
    )
    .route(
        Method::GET,
        "/partner/v1/devices/{deviceId}/apps",
        Access::Partner,
        device_apps,
    );
    t
}

/// Reports one call may carry.
pub const MAX_REPORTS_PER_CALL: usize = 1000;
const DEVICE_PAGE: u64 = 1000;

/// `POST /partner/v1/connector/heartbeat`: the partner is alive. Provisions the connector on
/// the first heartbeat, and brings an unresponsive or deprovisioned one back.
async fn heartbeat(
    caller: PartnerCaller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if !(body.is_null() || body.as_object().is_some_and(Map::is_empty)) {
        return Err(ApiError::bad_request("A heartbeat carries no body."));
    }
    service::partner::heartbeat(&caller.cx(&state.app), &caller.connector_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Metadata {
    partner_display_name: Option<String>,
    partner_minimum_supported_android_version: Option<String>,
    partner_minimum_supported_ios_version: Option<String>,
    partner_minimum_supported_mac_version: Option<String>,
    partner_minimum_supported_windows_version: Option<String>,
    partner_supports_android_mam: Option<bool>,
    partner_supports_ios_mam: Option<bool>,
    partner_supports_windows_mam: Option<bool>,
    partner_supports_ios_certificate_sync: Option<bool>,
    error_code: Option<i64>,
}

/// `PATCH /partner/v1/connector`: the partner's metadata, and its error code (non-zero puts
/// the connector in `error`).
async fn update_metadata(
    caller: PartnerCaller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let req: Metadata = decode(body, "partner.connectorMetadata")?;
    for (name, v) in [
        (
            "partnerMinimumSupportedAndroidVersion",
            &req.partner_minimum_supported_android_version,
        ),
        (
            "partnerMinimumSupportedIosVersion",
            &req.partner_minimum_supported_ios_version,
        ),
        (
            "partnerMinimumSupportedMacVersion",
            &req.partner_minimum_supported_mac_version,
        ),
        (
            "partnerMinimumSupportedWindowsVersion",
            &req.partner_minimum_supported_windows_version,
        ),
    ] {
        if let Some(v) = v {
            if crate::domain::version::parse(v).is_none() {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for property '{name}': '{v}' is not a version such as 15.6."
                )));
            }
        }
    }
    if req
        .partner_display_name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 256)
    {
        return Err(ApiError::bad_request(
            "Invalid value for property 'partnerDisplayName': it must have 1 to 256 characters.",
        ));
    }
    let mut updates = Map::new();
    let strings = [
        ("partnerDisplayName", req.partner_display_name),
        (
            "partnerMinimumSupportedAndroidVersion",
            req.partner_minimum_supported_android_version,
        ),
        (
            "partnerMinimumSupportedIosVersion",
            req.partner_minimum_supported_ios_version,
        ),
        (
            "partnerMinimumSupportedMacVersion",
            req.partner_minimum_supported_mac_version,
        ),
        (
            "partnerMinimumSupportedWindowsVersion",
            req.partner_minimum_supported_windows_version,
        ),
    ];
    for (name, v) in strings {
        if let Some(v) = v {
            updates.insert(name.into(), v.into());
        }
    }
    let flags = [
        ("partnerSupportsAndroidMam", req.partner_supports_android_mam),
        ("partnerSupportsIosMam", req.partner_supports_ios_mam),
        ("partnerSupportsWindowsMam", req.partner_supports_windows_mam),
        (
            "partnerSupportsIosCertificateSync",
            req.partner_supports_ios_certificate_sync,
        ),
    ];
    for (name, v) in flags {
        if let Some(v) = v {
            updates.insert(name.into(), v.into());
        }
    }
    service::partner::update_metadata(&caller.cx(&state.app), &caller.connector_id, updates, req.error_code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /partner/v1/connector`: deprovision. The connector becomes `unavailable` and its data
/// stops counting until the next heartbeat.
async fn deprovision(caller: PartnerCaller, State(state): State<AppState>) -> ApiResult<StatusCode> {
    service::partner::deprovision(&caller.cx(&state.app), &caller.connector_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_item(raw: &Value, now: DateTime<Utc>) -> ReportItem {
    let device_key = raw
        .get("deviceId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bad = |message: String| Err(("badValue".to_string(), message));
    let reported = (|| {
        let Value::Object(m) = raw else {
            return bad("Each report must be a JSON object.".into());
        };
        if let Some(k) = m
            .keys()
            .find(|k| !["deviceId", "threatLevel", "healthState", "reportedDateTime"].contains(&k.as_str()))
        {
            return bad(format!("The property '{k}' does not exist on a device threat state."));
        }
        if device_key.is_empty() {
            return bad("'deviceId' is required: the managed device id or the Entra device id.".into());
        }
        let reported = match (m.get("threatLevel"), m.get("healthState")) {
            (Some(Value::String(l)), None) => match Reported::parse_level(l) {
                Some(r) => r,
                None => return bad(format!("'{l}' is not a threat level: use secured, low, medium or high.")),
            },
            (None, Some(Value::String(h))) => match Reported::parse_health(h) {
                Some(r) => r,
                None => return bad(format!(
                    "'{h}' is not a health state: use activated, deactivated, compromised, misconfigured or unresponsive."
                )),
            },
            (Some(_), Some(_)) => return bad("Give 'threatLevel' or 'healthState', not both.".into()),
            _ => return bad("'threatLevel' (a string) or 'healthState' (a string) is required.".into()),
        };
        let Some(Value::String(at)) = m.get("reportedDateTime") else {
            return bad("'reportedDateTime' is required.".into());
        };
        let Ok(at) = DateTime::parse_from_rfc3339(at) else {
            return bad(format!(
                "'reportedDateTime' '{at}' is not an ISO 8601 date and time with an offset."
            ));
        };
        let at = at.with_timezone(&Utc);
        if at > now + chrono::Duration::minutes(5) {
            return bad("'reportedDateTime' is after the tenant's now.".into());
        }
        Ok((reported, at))
    })();
    ReportItem { device_key, reported }
}

/// `POST /partner/v1/deviceThreatStates`: up to 1,000 reports in one transaction, each
/// accepted, stale or rejected.
async fn report_threat_states(
    caller: PartnerCaller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let items = match body.get("value") {
        Some(Value::Array(items)) if body.as_object().is_some_and(|o| o.len() == 1) => items,
        _ => {
            return Err(ApiError::bad_request(
                "The request body must be {\"value\": [reports]}.",
            ))
        }
    };
    if items.is_empty() || items.len() > MAX_REPORTS_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "Send 1 to {MAX_REPORTS_PER_CALL} reports per call."
        )));
    }
    let parsed: Vec<ReportItem> = items.iter().map(|raw| parse_item(raw, caller.now)).collect();
    let outcomes =
        service::partner::report_threat_states(&caller.cx(&state.app), &caller.connector_id, &parsed).await?;
    let mut counts = [0u64; 3];
    let value: Vec<Value> = parsed
        .iter()
        .zip(&outcomes)
        .map(|(item, outcome)| match outcome {
            Outcome::Accepted => {
                counts[0] += 1;
                json!({ "deviceId": item.device_key, "status": "accepted" })
            }
            Outcome::Stale { message } => {
                counts[1] += 1;
                json!({ "deviceId": item.device_key, "status": "stale", "message": message })
            }
            Outcome::Rejected { code, message } => {
                counts[2] += 1;
                json!({ "deviceId": item.device_key, "status": "rejected", "code": code, "message": message })
            }
        })
        .collect();
    Ok(Json(
        json!({ "accepted": counts[0], "stale": counts[1], "rejected": counts[2], "value": value }),
    ))
}

fn partner_device(d: &ManagedDevice) -> Value {
    json!({
        "id": d.id,
        "azureADDeviceId": d.azure_ad_device_id,
        "deviceName": d.device_name,
        "operatingSystem": d.operating_system,
        "osVersion": d.os_version,
        "platform": d.platform.as_str(),
        "ownerType": d.owner_type.as_str(),
        "userPrincipalName": d.user_principal_name,
        "enrolledDateTime": rfc3339(d.enrolled_at),
        "lastSyncDateTime": rfc3339(d.last_sync_at),
        "partnerReportedThreatState": d.partner_threat_state,
    })
}

/// `GET /partner/v1/devices`: the managed devices on the platforms the connector takes data
/// for; `$filter` on `platform`, `operatingSystem` and `lastSyncDateTime`; pages of 1,000.
async fn list_devices(
    caller: PartnerCaller,
    BaseUrl(base): BaseUrl,
    OData(q): OData,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    if !q.orderby.is_empty() || q.select.is_some() || !q.expand.is_empty() || q.search.is_some() {
        return Err(ApiError::bad_request(
            "Only $filter, $top, $count and $skiptoken apply to partner devices.",
        ));
    }
    let page = page_request(&q, DEVICE_PAGE, DEVICE_PAGE)?;
    let query = list_query(&q, &page, ListScope::All, q.count);
    let Some(rows) = service::partner::list_devices(&caller.cx(&state.app), &caller.connector_id, query).await? else {
        return Ok(Json(json!({ "value": [] })).into_response());
    };
    let shown = rows.items.len().min(page.size as usize);
    let mut body = Map::new();
    if let Some(total) = rows.total {
        body.insert("@odata.count".into(), total.into());
    }
    // `$top=0` asks for no rows: there is no last key to continue after, and no next page.
    if let (true, Some(last)) = (
        rows.items.len() > shown,
        shown.checked_sub(1).map(|i| &rows.items[i].id),
    ) {
        body.insert(
            "@odata.nextLink".into(),
            next_link(&base, uri.path(), uri.query(), &page.next(true, last)).into(),
        );
    }
    body.insert(
        "value".into(),
        Value::Array(rows.items[..shown].iter().map(partner_device).collect()),
    );
    Ok(Json(Value::Object(body)).into_response())
}

/// `GET /partner/v1/appProtectionDevices`: the devices with protected apps on the platforms
/// whose app protection toggle is on, enrolled or not, by Entra device id: what a partner
/// reports for app protection without enrollment.
async fn list_app_devices(caller: PartnerCaller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let devices = service::partner::list_app_devices(&caller.cx(&state.app), &caller.connector_id).await?;
    let value: Vec<Value> = devices
        .iter()
        .map(|d| {
            json!({
                "azureADDeviceId": d.azure_ad_device_id,
                "platform": d.platform.as_str(),
                "deviceName": d.device_name,
                "osVersion": d.platform_version,
                "userIds": d.user_ids,
            })
        })
        .collect();
    Ok(Json(json!({ "value": value })))
}

/// `GET /partner/v1/devices/{id}/apps`: App Sync for iOS/iPadOS. Refused unless the admin allowed
/// it; personal devices show only Intune-managed apps unless the personal toggle is on;
/// corporate devices show all.
async fn device_apps(
    caller: PartnerCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    let AppSync { device, apps } =
        service::partner::device_apps(&caller.cx(&state.app), &caller.connector_id, &id).await?;
    let value: Vec<Value> = apps
        .iter()
        .map(|a| {
            json!({
                "bundleId": a.bundle_id,
                "displayName": a.display_name,
                "version": a.version,
                "managed": a.managed,
                "sizeInByte": a.size_in_bytes,
                "publisher": a.publisher,
            })
        })
        .collect();
    Ok(Json(
        json!({ "deviceId": device.id, "ownerType": device.owner_type.as_str(), "value": value }),
    ))
}
