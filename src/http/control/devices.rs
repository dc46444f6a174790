//! Simulated devices: enrollment, check-ins and app inventories (`/_emulator/tenants/{tenantId}/devices`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::load_tenant;
use crate::domain::device::{canonical_operating_system, DeviceApp, ManagedDevice, OwnerType, Platform};
use crate::domain::tenant::parse_guid;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{decode, BaseUrl, JsonBody};
use crate::http::graph::GraphCtx;
use crate::http::AppState;
use crate::service::clock::rfc3339;
use crate::service::devices::{self, CheckInOutcome, EnrollRequest, Enrollment, Explained, UserKey};

/// Devices one enrollment call may carry.
pub const MAX_DEVICES_PER_CALL: usize = 1000;
/// Apps one device's inventory may hold.
pub const MAX_APPS_PER_DEVICE: usize = 5000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EnrollDevice {
    id: Option<String>,
    device_name: String,
    operating_system: String,
    platform: Option<String>,
    os_version: String,
    owner_type: Option<String>,
    user_id: Option<String>,
    user_principal_name: Option<String>,
    #[serde(rename = "azureADDeviceId")]
    azure_ad_device_id: Option<String>,
    model: Option<String>,
    manufacturer: Option<String>,
    serial_number: Option<String>,
    imei: Option<String>,
    phone_number: Option<String>,
    enrolled_date_time: Option<String>,
}

fn bad(index: Option<usize>, message: String) -> ApiError {
    match index {
        Some(i) => ApiError::bad_request(format!("Device {i}: {message}")),
        None => ApiError::bad_request(message),
    }
}

fn dotted_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// How the request names the device's primary user, if it does.
fn primary_user(req: &EnrollDevice, index: Option<usize>) -> ApiResult<Option<UserKey>> {
    match (&req.user_id, &req.user_principal_name) {
        (Some(_), Some(_)) => Err(bad(index, "give 'userId' or 'userPrincipalName', not both.".into())),
        (Some(id), None) => Ok(Some(UserKey::Id(id.clone()))),
        (None, Some(upn)) => Ok(Some(UserKey::UserPrincipalName(upn.clone()))),
        (None, None) => Ok(None),
    }
}

fn enrollment(req: EnrollDevice, now: DateTime<Utc>, index: Option<usize>) -> ApiResult<Enrollment> {
    let operating_system = canonical_operating_system(&req.operating_system).ok_or_else(|| {
        bad(
            index,
            format!(
                "Invalid value for property 'operatingSystem': '{}'; use iOS, iPadOS, Android, macOS or Windows.",
                req.operating_system
            ),
        )
    })?;
    let owner_type = match &req.owner_type {
        Some(o) => Some(OwnerType::parse(o).ok_or_else(|| {
            bad(
                index,
                format!("Invalid value for property 'ownerType': '{o}'; use company or personal."),
            )
        })?),
        None => None,
    };
    let platform = match &req.platform {
        Some(p) => {
            let platform = Platform::parse(p).ok_or_else(|| {
                bad(index, format!("Invalid value for property 'platform': '{p}'; use androidDeviceAdministrator, androidWorkProfile, androidDeviceOwner, iOS, macOS or windows."))
            })?;
            if !platform.runs(operating_system) {
                return Err(bad(
                    index,
                    format!(
                        "Invalid value for property 'platform': {} devices do not run {operating_system}.",
                        platform.as_str()
                    ),
                ));
            }
            Some(platform)
        }
        None => None,
    };
    if req.device_name.trim().is_empty() || req.device_name.len() > 256 {
        return Err(bad(
            index,
            "Invalid value for property 'deviceName': it must have 1 to 256 characters.".into(),
        ));
    }
    if !dotted_version(&req.os_version) {
        return Err(bad(
            index,
            format!(
                "Invalid value for property 'osVersion': '{}' is not a version such as 17.4.1.",
                req.os_version
            ),
        ));
    }
    let id = match &req.id {
        Some(id) => Some(
            parse_guid(id)
                .ok_or_else(|| bad(index, format!("Invalid value for property 'id': '{id}' is not a GUID.")))?,
        ),
        None => None,
    };
    let azure_ad_device_id = match &req.azure_ad_device_id {
        Some(id) => Some(parse_guid(id).ok_or_else(|| {
            bad(
                index,
                format!("Invalid value for property 'azureADDeviceId': '{id}' is not a GUID."),
            )
        })?),
        None => None,
    };
    let enrolled_at = match &req.enrolled_date_time {
        Some(t) => {
            let t: DateTime<Utc> = DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    bad(
                        index,
                        format!(
                            "Invalid value for property 'enrolledDateTime': '{t}' is not an ISO 8601 date and time."
                        ),
                    )
                })?
                .into();
            if t > now {
                return Err(bad(
                    index,
                    "Invalid value for property 'enrolledDateTime': it is after the tenant's now.".into(),
                ));
            }
            Some(t)
        }
        None => None,
    };
    Ok(Enrollment {
        id,
        device_name: req.device_name,
        operating_system: operating_system.to_string(),
        platform,
        os_version: req.os_version,
        owner_type,
        azure_ad_device_id,
        model: req.model,
        manufacturer: req.manufacturer,
        serial_number: req.serial_number,
        imei: req.imei,
        phone_number: req.phone_number,
        enrolled_at,
    })
}

fn device_json(d: &ManagedDevice, ctx: &GraphCtx) -> ApiResult<serde_json::Map<String, Value>> {
    crate::http::graph::managed_devices::render_device(d, ctx, None, true)
}

/// `POST .../devices`: one device (an object) or several (an array of up to 1,000), all or none.
pub async fn enroll_devices(
    admin: Admin,
    BaseUrl(base): BaseUrl,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ctx = GraphCtx::v1(base);
    let tenant = load_tenant(&state, &id).await?;
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let (requests, single) = match body {
        Value::Array(items) => (items, false),
        Value::Object(_) => (vec![body], true),
        _ => {
            return Err(ApiError::bad_request(
                "The request body must be a device object or an array of them.",
            ))
        }
    };
    if requests.is_empty() || requests.len() > MAX_DEVICES_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "Enroll 1 to {MAX_DEVICES_PER_CALL} devices per call."
        )));
    }
    let mut parsed = Vec::with_capacity(requests.len());
    for (i, raw) in requests.into_iter().enumerate() {
        let index = (!single).then_some(i);
        let req: EnrollDevice = decode(raw, "emulator.device").map_err(|e| bad(index, e.message))?;
        let user = primary_user(&req, index)?;
        parsed.push(EnrollRequest {
            index,
            enrollment: enrollment(req, now, index)?,
            user,
        });
    }
    let devices = devices::enroll_devices(&state.app.cx(&tenant.id, now, &admin.cause), parsed).await?;
    let body = if single {
        Value::Object(device_json(&devices[0], &ctx)?)
    } else {
        json!({ "value": devices.iter().map(|d| device_json(d, &ctx).map(Value::Object)).collect::<ApiResult<Vec<_>>>()? })
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckIn {
    os_version: Option<String>,
}

/// `PATCH .../devices/{id}`: the device checks in.
pub async fn check_in_device(
    admin: Admin,
    BaseUrl(base): BaseUrl,
    State(state): State<AppState>,
    Path((id, device_id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let ctx = GraphCtx::v1(base);
    let tenant = load_tenant(&state, &id).await?;
    let req: CheckIn = decode(body, "emulator.checkIn")?;
    if let Some(v) = &req.os_version {
        if !dotted_version(v) {
            return Err(ApiError::bad_request(format!(
                "Invalid value for property 'osVersion': '{v}' is not a version such as 17.4.1."
            )));
        }
    }
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let (device, outcome) =
        devices::check_in_device(&state.app.cx(&tenant.id, now, &admin.cause), &device_id, req.os_version).await?;
    let mut body = device_json(&device, &ctx)?;
    body.insert(
        "removedFromManagement".into(),
        (outcome == CheckInOutcome::Removed).into(),
    );
    Ok(Json(Value::Object(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AppEntry {
    bundle_id: String,
    display_name: String,
    version: String,
    managed: bool,
    size_in_byte: Option<i64>,
    publisher: Option<String>,
}

fn app_json(a: &DeviceApp) -> Value {
    json!({
        "bundleId": a.bundle_id,
        "displayName": a.display_name,
        "version": a.version,
        "managed": a.managed,
        "sizeInByte": a.size_in_bytes,
        "publisher": a.publisher,
    })
}

/// `PUT .../devices/{id}/apps`: replaces the device's app inventory (`{"value": [...]}` or an array).
pub async fn put_apps(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, device_id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let items = match body {
        Value::Array(items) => items,
        Value::Object(mut m) if m.len() == 1 && m.get("value").is_some_and(Value::is_array) => {
            match m.remove("value") {
                Some(Value::Array(items)) => items,
                _ => unreachable!("checked to be an array"),
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "The request body must be {\"value\": [apps]} or an array of apps.",
            ))
        }
    };
    if items.len() > MAX_APPS_PER_DEVICE {
        return Err(ApiError::bad_request(format!(
            "A device's inventory holds at most {MAX_APPS_PER_DEVICE} apps."
        )));
    }
    let mut apps: Vec<DeviceApp> = Vec::with_capacity(items.len());
    for (i, raw) in items.into_iter().enumerate() {
        let e: AppEntry =
            decode(raw, "emulator.deviceApp").map_err(|e| ApiError::bad_request(format!("App {i}: {}", e.message)))?;
        if e.bundle_id.trim().is_empty() || e.display_name.trim().is_empty() || e.version.trim().is_empty() {
            return Err(ApiError::bad_request(format!(
                "App {i}: 'bundleId', 'displayName' and 'version' must not be empty."
            )));
        }
        if apps.iter().any(|a| a.bundle_id == e.bundle_id) {
            return Err(ApiError::bad_request(format!(
                "App {i}: bundle id '{}' appears twice.",
                e.bundle_id
            )));
        }
        if e.size_in_byte.is_some_and(|s| s < 0) {
            return Err(ApiError::bad_request(format!(
                "App {i}: 'sizeInByte' must not be negative."
            )));
        }
        apps.push(DeviceApp {
            bundle_id: e.bundle_id,
            display_name: e.display_name,
            version: e.version,
            managed: e.managed,
            size_in_bytes: e.size_in_byte.unwrap_or(0),
            publisher: e.publisher,
        });
    }
    let now = state.app.tenant_now(tenant.clock_offset_us);
    devices::set_apps(&state.app.cx(&tenant.id, now, &admin.cause), &device_id, &apps).await?;
    Ok(Json(json!({ "value": apps.iter().map(app_json).collect::<Vec<_>>() })))
}

/// `GET .../devices/{id}/apps`: the inventory as the device reported it (managed or not).
pub async fn get_apps(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, device_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let apps = devices::apps(&state.app.cx(&tenant.id, now, &admin.cause), &device_id).await?;
    Ok(Json(json!({ "value": apps.iter().map(app_json).collect::<Vec<_>>() })))
}

/// `GET .../devices/{id}/explain`: the device's evaluation at the tenant's now, step by step,
/// next to what is stored (they agree unless something changed without re-evaluation).
pub async fn explain(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, device_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let Explained { mut trace, stored } =
        devices::explain(&state.app.cx(&tenant.id, now, &admin.cause), &device_id).await?;
    trace["stored"]["policies"] = Value::Array(
        stored
            .iter()
            .map(|s| {
                json!({
                    "policyId": s.policy_id,
                    "state": s.state,
                    "episodeStartDateTime": s.episode_start.map(rfc3339),
                    "gracePeriodExpirationDateTime": s.grace_deadline.map(rfc3339),
                    "evaluatedDateTime": rfc3339(s.evaluated_at),
                })
            })
            .collect(),
    );
    Ok(Json(trace))
}

/// `POST .../devices/{id}/credential`: the device's credential, which a sign-in carries in the
/// `x-ms-RefreshTokenCredential` header to come from the device (Conditional Access then knows
/// it, its platform and its compliance).
pub async fn credential(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, device_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let now = state.app.tenant_now(tenant.clock_offset_us);
    let cx = state.app.cx(&tenant.id, now, &admin.cause);
    let (device, credential) =
        crate::service::conditional_access::device_credential(&state.app, &cx, &device_id).await?;
    Ok(Json(json!({
        "deviceId": device.id,
        "azureADDeviceId": device.azure_ad_device_id,
        "header": crate::identity::tokens::DEVICE_CREDENTIAL_HEADER,
        "credential": credential,
    })))
}
