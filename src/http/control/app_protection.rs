//! Simulated protected apps (`/_emulator/tenants/{tenantId}/appRegistrations`): a user signs in
//! to an app built with the Intune App SDK on a device, enrolled or not (app protection without
//! enrollment); the app checks in and is told what the SDK would be told; it reports a selective
//! wipe done; `explain` shows every policy and input of its evaluation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{admin_cx, load_tenant};
use crate::domain::app_protection::{AppPlatform, AppRegistration};
use crate::domain::tenant::parse_guid;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{decode, JsonBody};
use crate::http::AppState;
use crate::service::app_protection::{self as mam, CheckIn, Evaluation, NewRegistration};
use crate::service::clock::rfc3339;
use crate::service::devices::UserKey;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Register {
    user_id: Option<String>,
    user_principal_name: Option<String>,
    #[serde(rename = "azureADDeviceId")]
    azure_ad_device_id: String,
    platform: String,
    /// The bundle id (iOS) or package id (Android).
    app_identifier: String,
    application_version: Option<String>,
    management_sdk_version: Option<String>,
    platform_version: String,
    device_name: String,
    device_model: Option<String>,
    device_manufacturer: Option<String>,
}

fn text_ok(v: &str, max: usize) -> bool {
    !v.trim().is_empty() && v.len() <= max
}

/// The registration as the control plane shows it: Graph's names, and what the app was told.
pub fn registration_json(r: &AppRegistration) -> Value {
    json!({
        "id": r.id,
        "userId": r.user_id,
        "azureADDeviceId": r.azure_ad_device_id,
        "managedDeviceId": r.managed_device_id,
        "platform": r.platform.as_str(),
        "appIdentifier": r.app_id,
        "applicationVersion": r.application_version,
        "managementSdkVersion": r.management_sdk_version,
        "platformVersion": r.platform_version,
        "deviceName": r.device_name,
        "deviceModel": r.device_model,
        "deviceManufacturer": r.device_manufacturer,
        "createdDateTime": rfc3339(r.created_at),
        "lastSyncDateTime": r.last_sync_at.map(rfc3339),
        "access": r.verdict,
        "appliedPolicyIds": r.applied_policy_ids,
        "operations": r.operations.iter().map(mam::operation_json).collect::<Vec<_>>(),
    })
}

/// `POST /_emulator/tenants/{tenantId}/appRegistrations`.
pub async fn register(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let req: Register = decode(body, "emulator.appRegistration")?;
    let user = match (req.user_id, req.user_principal_name) {
        (Some(id), None) => UserKey::Id(id),
        (None, Some(upn)) => UserKey::UserPrincipalName(upn),
        _ => {
            return Err(ApiError::bad_request(
                "Give the user by 'userId' or 'userPrincipalName' (one of them).",
            ))
        }
    };
    let device = parse_guid(&req.azure_ad_device_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid value for property 'azureADDeviceId': '{}' is not a GUID.",
            req.azure_ad_device_id
        ))
    })?;
    let platform = AppPlatform::parse(&req.platform).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid value for property 'platform': '{}'; use iOS or android (app protection covers these).",
            req.platform
        ))
    })?;
    for (name, value, max) in [
        ("appIdentifier", req.app_identifier.as_str(), 256),
        ("platformVersion", req.platform_version.as_str(), 64),
        ("deviceName", req.device_name.as_str(), 256),
    ] {
        if !text_ok(value, max) {
            return Err(ApiError::bad_request(format!(
                "Invalid value for property '{name}': it must have 1 to {max} characters."
            )));
        }
    }
    let tenant = load_tenant(&state, &id).await?;
    let cx = admin_cx(&state, &tenant, &admin);
    let r = mam::register(
        &cx,
        NewRegistration {
            user,
            azure_ad_device_id: device,
            platform,
            app_id: req.app_identifier,
            application_version: req.application_version.unwrap_or_else(|| "1.0".into()),
            management_sdk_version: req.management_sdk_version.unwrap_or_else(|| "19.0.0".into()),
            platform_version: req.platform_version,
            device_name: req.device_name,
            device_model: req.device_model,
            device_manufacturer: req.device_manufacturer,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(registration_json(&r))).into_response())
}

/// `GET /_emulator/tenants/{tenantId}/appRegistrations`.
pub async fn list(admin: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let all = mam::registrations(&admin_cx(&state, &tenant, &admin), None).await?;
    Ok(Json(
        json!({ "value": all.iter().map(registration_json).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /_emulator/tenants/{tenantId}/appRegistrations/{registrationId}`: the user signs
/// out of the app, or removes it.
pub async fn unregister(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, registration_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = load_tenant(&state, &id).await?;
    mam::unregister(&admin_cx(&state, &tenant, &admin), &registration_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An evaluation; `access` and `message` are what the app is (or would be) told, `verdict` what
/// the policies decide now (they differ once a wipe is pending or done).
fn evaluation_json(e: &Evaluation) -> Value {
    json!({
        "registration": registration_json(&e.registration),
        "verdict": e.verdict.access.as_str(),
        "access": e.verdict.access.as_str(),
        "message": e.verdict.message,
        "userGroups": e.user_groups,
        "policies": e.verdict.policies.iter().map(|p| json!({
            "policyId": p.policy_id,
            "displayName": p.display_name,
            "state": p.state,
            "remediation": p.remediation.map(|r| r.as_str()),
            "reasons": p.reasons,
        })).collect::<Vec<_>>(),
        "policySettings": e.policies.iter().map(|p| json!({
            "policyId": p.id,
            "maximumAllowedDeviceThreatLevel": p.properties.get("maximumAllowedDeviceThreatLevel").cloned().unwrap_or(json!("notConfigured")),
            "mobileThreatDefenseRemediationAction": p.remediation().as_str(),
        })).collect::<Vec<_>>(),
        "connectors": e.connectors.iter().map(|c| json!({
            "id": c.id,
            "appProtectionEnabled": c.mam_enabled,
            "usable": c.usable,
            "blockedOnMissingPartnerData": c.blocked_on_missing_data,
        })).collect::<Vec<_>>(),
        "reports": e.reports.iter().map(|(c, s, at)| json!({
            "connectorId": c, "partnerReportedThreatState": s, "reportedDateTime": rfc3339(*at),
        })).collect::<Vec<_>>(),
    })
}

/// `GET .../appRegistrations/{registrationId}/explain`: the evaluation as of now, stored nothing.
pub async fn explain(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, registration_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let cx = admin_cx(&state, &tenant, &admin);
    let (e, access, message) = mam::explain(&cx, &registration_id).await?;
    let mut out = evaluation_json(&e);
    out["access"] = access.into();
    out["message"] = json!(message);
    out["evaluatedDateTime"] = rfc3339(cx.now).into();
    Ok(Json(out))
}

/// `POST .../appRegistrations/{registrationId}/checkIn`: the app checks in (or launches) and is
/// told `allowed`, `blocked` (with the message the user sees), `wipe`, or `wiped`.
pub async fn check_in(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, registration_id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if !(body.is_null() || body.as_object().is_some_and(|m| m.is_empty())) {
        return Err(ApiError::bad_request("A check-in carries no body."));
    }
    let tenant = load_tenant(&state, &id).await?;
    let cx = admin_cx(&state, &tenant, &admin);
    let CheckIn {
        access,
        message,
        evaluation,
    } = mam::check_in(&cx, &registration_id).await?;
    let mut out = evaluation_json(&evaluation);
    out["access"] = access.into();
    out["message"] = json!(message);
    out["checkedInDateTime"] = rfc3339(cx.now).into();
    Ok(Json(out))
}

/// `POST .../appRegistrations/{registrationId}/wipeCompleted`: the app removed its corporate
/// data; the pending wipe completes.
pub async fn wipe_completed(
    admin: Admin,
    State(state): State<AppState>,
    Path((id, registration_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = load_tenant(&state, &id).await?;
    let r = mam::complete_wipe(&admin_cx(&state, &tenant, &admin), &registration_id).await?;
    Ok(Json(registration_json(&r)))
}
