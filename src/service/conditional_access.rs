//! Conditional Access: the tenant's policies (Graph `/identity/conditionalAccess/policies`), their
//! evaluation at every user sign-in (before the token endpoint issues a user's tokens), the
//! sign-in log (Graph `/auditLogs/signIns`), and `evaluate` (Graph's what-if).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::clock::rfc3339;
use super::{App as Services, Ctx, ServiceError, ServiceResult};
use crate::domain::conditional_access::{
    evaluate as evaluate_policies, Applied, Evaluation, Policy, SignIn, SignInDevice,
};
use crate::domain::device::ManagedDevice;
use crate::domain::directory::User;
use crate::domain::tenant::{App, Tenant};
use crate::identity::tokens::Resource;
use crate::schema::merge_patch;
use crate::store::{Store, StoreError};

/// The newest sign-ins a tenant's log keeps.
pub const SIGN_IN_LOG_SIZE: i64 = 10_000;

fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The conditional access policy '{id}' does not exist."))
}

/// A new policy's document with Graph's defaults for what the client left out.
fn skeleton(id: &str, now: DateTime<Utc>) -> Map<String, Value> {
    let doc = json!({
        "id": id,
        "templateId": null,
        "displayName": null,
        "createdDateTime": rfc3339(now),
        "modifiedDateTime": null,
        "state": null,
        "sessionControls": null,
        "conditions": {
            "userRiskLevels": [],
            "signInRiskLevels": [],
            "clientAppTypes": [],
            "servicePrincipalRiskLevels": [],
            "insiderRiskLevels": null,
            "platforms": null,
            "locations": null,
            "devices": null,
            "clientApplications": null,
            "authenticationFlows": null,
            "applications": {
                "includeApplications": [],
                "excludeApplications": [],
                "includeUserActions": [],
                "includeAuthenticationContextClassReferences": [],
                "applicationFilter": null
            },
            "users": {
                "includeUsers": [],
                "excludeUsers": [],
                "includeGroups": [],
                "excludeGroups": [],
                "includeRoles": [],
                "excludeRoles": [],
                "includeGuestsOrExternalUsers": null,
                "excludeGuestsOrExternalUsers": null
            }
        },
        "grantControls": null
    });
    match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The client's document checked: what the emulator evaluates must be well-formed.
fn checked(doc: Value) -> ServiceResult<Value> {
    Policy::from_document(&doc).map_err(ServiceError::invalid)?;
    Ok(doc)
}

/// What a client may not set.
const READ_ONLY: [&str; 4] = ["id", "createdDateTime", "modifiedDateTime", "deletedDateTime"];

fn without_read_only(mut body: Map<String, Value>) -> Map<String, Value> {
    for key in READ_ONLY {
        body.remove(key);
    }
    body.remove("@odata.type");
    body.remove("@odata.context");
    body
}

pub async fn list(cx: &Ctx<'_>) -> ServiceResult<Vec<Value>> {
    Ok(cx.store().list_ca_policies(cx.tenant_id).await?)
}

pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<Value> {
    list(cx)
        .await?
        .into_iter()
        .find(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| not_found(id))
}

/// Creates a policy from the client's document (Graph's defaults for the rest).
pub async fn create(cx: &Ctx<'_>, body: Map<String, Value>) -> ServiceResult<Value> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut doc = skeleton(&id, cx.now);
    merge_patch(&mut doc, without_read_only(body));
    let doc = checked(Value::Object(doc))?;
    cx.store().insert_ca_policy(cx.tenant_id, &id, &doc, cx.now).await?;
    Ok(doc)
}

/// PATCH: the properties given replace theirs (objects merge), the rest stays.
pub async fn update(cx: &Ctx<'_>, id: &str, body: Map<String, Value>) -> ServiceResult<Value> {
    let Value::Object(mut doc) = get(cx, id).await? else {
        return Err(not_found(id));
    };
    merge_patch(&mut doc, without_read_only(body));
    doc.insert("modifiedDateTime".into(), json!(rfc3339(cx.now)));
    let doc = checked(Value::Object(doc))?;
    let stored_id = doc["id"].as_str().unwrap_or(id).to_string();
    if !cx.store().update_ca_policy(cx.tenant_id, &stored_id, &doc).await? {
        return Err(not_found(id));
    }
    Ok(doc)
}

pub async fn delete(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let doc = get(cx, id).await?;
    let stored_id = doc["id"].as_str().unwrap_or(id);
    if !cx.store().delete_ca_policy(cx.tenant_id, stored_id).await? {
        return Err(not_found(id));
    }
    Ok(())
}

/// The tenant's policies as the evaluation reads them; a stored document that no longer reads
/// (it cannot be written so) is skipped.
async fn policies(store: &dyn Store, tenant_id: &str) -> Result<Vec<Policy>, StoreError> {
    Ok(store
        .list_ca_policies(tenant_id)
        .await?
        .iter()
        .filter_map(|d| Policy::from_document(d).ok())
        .collect())
}

/// The user's groups, direct and through other groups.
async fn groups_of_user(store: &dyn Store, tenant_id: &str, user_id: &str) -> Result<Vec<String>, StoreError> {
    let mut all: Vec<String> = Vec::new();
    let mut next = vec![user_id.to_string()];
    while let Some(member) = next.pop() {
        for g in store.groups_of(tenant_id, &member).await? {
            if !all.iter().any(|x| x.eq_ignore_ascii_case(&g)) && all.len() < 1000 {
                all.push(g.clone());
                next.push(g);
            }
        }
    }
    Ok(all)
}

/// `conditionalAccessDevicePlatform` of a device's operating system.
fn platform_of(d: &ManagedDevice) -> Option<String> {
    let os = d.operating_system.to_ascii_lowercase();
    let p = if os.contains("ipad") || os.contains("ios") {
        "iOS"
    } else if os.contains("android") {
        "android"
    } else if os.contains("mac") {
        "macOS"
    } else if os.contains("windows") {
        "windows"
    } else if os.contains("linux") {
        "linux"
    } else {
        return None;
    };
    Some(p.to_string())
}

/// The device a sign-in comes from: the tenant's managed device of that Entra id.
async fn sign_in_device(
    store: &dyn Store,
    tenant_id: &str,
    device_id: &str,
) -> Result<Option<SignInDevice>, StoreError> {
    let Some(d) = store.find_device_by_entra_id(tenant_id, device_id).await? else {
        return Ok(None);
    };
    Ok(Some(SignInDevice {
        device_id: d.azure_ad_device_id.clone(),
        display_name: d.device_name.clone(),
        platform: platform_of(&d),
        operating_system: d.operating_system.clone(),
        is_compliant: d.compliance_state.eq_ignore_ascii_case("compliant"),
        is_managed: true,
    }))
}

/// Whether the user's app on the device meets app protection: a registration of the user on
/// that device whose last check-in was told `allowed`.
async fn app_is_compliant(
    store: &dyn Store,
    tenant_id: &str,
    user_id: &str,
    device: Option<&SignInDevice>,
) -> Result<bool, StoreError> {
    let Some(device) = device else {
        return Ok(false);
    };
    Ok(store
        .list_app_registrations(tenant_id, Some(user_id))
        .await?
        .iter()
        .any(|r| {
            r.azure_ad_device_id.eq_ignore_ascii_case(&device.device_id) && r.verdict.as_deref() == Some("allowed")
        }))
}

/// A user's sign-in as the token endpoint sees it.
pub struct UserSignIn<'a> {
    pub tenant: &'a Tenant,
    pub client: &'a App,
    pub user: &'a User,
    pub resource: Resource,
    /// `browser` or `mobileAppsAndDesktopClients`.
    pub client_app_type: &'static str,
    /// The Entra id of the device the sign-in came from, as its credential named it.
    pub device_id: Option<&'a str>,
    /// A refresh token's redemption, not a sign-in of the user's.
    pub interactive: bool,
    pub now: DateTime<Utc>,
}

/// Evaluates the tenant's policies for a user's sign-in and logs it. `Ok` with the sign-in's
/// evaluation; the caller refuses the tokens when it carries a refusal.
pub async fn sign_in(app: &Services, s: UserSignIn<'_>) -> Result<Evaluation, StoreError> {
    let store = app.store.as_ref();
    let tenant_id = s.tenant.id.as_str();
    let policies = policies(store, tenant_id).await?;
    let device = match s.device_id {
        Some(id) => sign_in_device(store, tenant_id, id).await?,
        None => None,
    };
    let evaluation = if policies.is_empty() {
        Evaluation {
            applied: Vec::new(),
            refusal: None,
        }
    } else {
        let groups = groups_of_user(store, tenant_id, &s.user.id).await?;
        let roles = store.directory_roles(tenant_id, &s.user.id).await?;
        let compliant_app = app_is_compliant(store, tenant_id, &s.user.id, device.as_ref()).await?;
        let input = SignIn {
            user_id: &s.user.id,
            groups: &groups,
            roles: &roles,
            resource_app_id: s.resource.app_id(),
            client_app_type: s.client_app_type,
            device: device.as_ref(),
        };
        evaluate_policies(&policies, &input, compliant_app)
    };
    let id = uuid::Uuid::new_v4().to_string();
    let document = sign_in_document(&id, &s, device.as_ref(), &evaluation);
    store
        .insert_sign_in(tenant_id, &id, s.now, &document, SIGN_IN_LOG_SIZE)
        .await?;
    Ok(evaluation)
}

fn applied_json(a: &Applied) -> Value {
    json!({
        "id": a.policy_id,
        "displayName": a.display_name,
        "enforcedGrantControls": a.enforced_grant_controls,
        "enforcedSessionControls": [],
        "result": a.result,
    })
}

/// Graph's `signIn` for a user's sign-in.
fn sign_in_document(id: &str, s: &UserSignIn<'_>, device: Option<&SignInDevice>, e: &Evaluation) -> Value {
    let (error_code, failure_reason) = match e.refusal {
        Some(r) => (r.code(), Some(r.message())),
        None => (0, None),
    };
    json!({
        "id": id,
        "createdDateTime": rfc3339(s.now),
        "userDisplayName": s.user.display_name,
        "userPrincipalName": s.user.user_principal_name.to_ascii_lowercase(),
        "userId": s.user.id,
        "appId": s.client.client_id,
        "appDisplayName": s.client.display_name,
        "ipAddress": "127.0.0.1",
        "clientAppUsed": if s.client_app_type == "browser" { "Browser" } else { "Mobile Apps and Desktop clients" },
        "correlationId": uuid::Uuid::new_v4().to_string(),
        "conditionalAccessStatus": e.status(),
        "isInteractive": s.interactive,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": s.resource.display_name(),
        "resourceId": s.resource.app_id(),
        "status": {
            "errorCode": error_code,
            "failureReason": failure_reason,
            "additionalDetails": e.refusal.map(|_| "See the Conditional Access policies the sign-in applied."),
        },
        "deviceDetail": {
            "deviceId": device.map(|d| d.device_id.clone()).unwrap_or_default(),
            "displayName": device.map(|d| d.display_name.clone()),
            "operatingSystem": device.map(|d| d.operating_system.clone()),
            "browser": null,
            "isCompliant": device.map(|d| d.is_compliant),
            "isManaged": device.map(|d| d.is_managed),
            "trustType": device.map(|_| "Azure AD registered"),
        },
        "location": { "city": null, "state": null, "countryOrRegion": null, "geoCoordinates": null },
        "appliedConditionalAccessPolicies": e.applied.iter().map(applied_json).collect::<Vec<_>>(),
    })
}

/// The tenant's sign-in log, newest first.
pub async fn sign_ins(cx: &Ctx<'_>) -> ServiceResult<Vec<Value>> {
    Ok(cx.store().list_sign_ins(cx.tenant_id).await?)
}

/// What `evaluate` (Graph's what-if) is asked about.
pub struct WhatIf {
    pub user_id: String,
    /// The resources signed in to (`applicationContext.includeApplications`).
    pub applications: Vec<String>,
    pub client_app_type: Option<String>,
    pub device_platform: Option<String>,
    /// `deviceInfo`: a known device (by its Entra id) or a hypothetical one's compliance.
    pub device_id: Option<String>,
    pub is_compliant: Option<bool>,
    pub applied_policies_only: bool,
}

/// Graph's `evaluate`: each policy's result for a hypothetical sign-in, as `whatIfAnalysisResult`
/// (the policy with `policyApplies` and `analysisReasons`), and the emulator's explanation.
pub async fn what_if(cx: &Ctx<'_>, q: WhatIf) -> ServiceResult<Vec<Value>> {
    let store = cx.store();
    let user = store
        .get_user(cx.tenant_id, &q.user_id)
        .await?
        .ok_or_else(|| ServiceError::invalid(format!("The user '{}' does not exist.", q.user_id)))?;
    let groups = groups_of_user(store, cx.tenant_id, &user.id).await?;
    let roles = store.directory_roles(cx.tenant_id, &user.id).await?;
    let known = match &q.device_id {
        Some(id) => sign_in_device(store, cx.tenant_id, id).await?,
        None => None,
    };
    // A known device's compliance, explained as the control plane explains it.
    let compliance = match &q.device_id {
        Some(id) => match store.find_device_by_entra_id(cx.tenant_id, id).await? {
            Some(d) => Some(super::devices::explain(cx, &d.id).await?.trace),
            None => None,
        },
        None => None,
    };
    let device = match (known, q.is_compliant, &q.device_platform) {
        (Some(mut d), compliant, platform) => {
            if let Some(c) = compliant {
                d.is_compliant = c;
            }
            if let Some(p) = platform {
                d.platform = Some(p.clone());
            }
            Some(d)
        }
        (None, None, None) => None,
        (None, compliant, platform) => Some(SignInDevice {
            device_id: String::new(),
            display_name: String::new(),
            platform: platform.clone(),
            operating_system: platform.clone().unwrap_or_default(),
            is_compliant: compliant.unwrap_or(false),
            is_managed: compliant.is_some(),
        }),
    };
    let compliant_app = app_is_compliant(store, cx.tenant_id, &user.id, device.as_ref()).await?;
    let docs = store.list_ca_policies(cx.tenant_id).await?;
    let applications = if q.applications.is_empty() {
        vec![crate::domain::conditional_access::GRAPH_APP_ID.to_string()]
    } else {
        q.applications.clone()
    };
    let mut out = Vec::new();
    for doc in docs {
        let Ok(policy) = Policy::from_document(&doc) else {
            continue;
        };
        // A policy applies when it applies to any of the resources asked about.
        let mut best: Option<Applied> = None;
        for resource in &applications {
            let input = SignIn {
                user_id: &user.id,
                groups: &groups,
                roles: &roles,
                resource_app_id: resource,
                client_app_type: q.client_app_type.as_deref().unwrap_or("browser"),
                device: device.as_ref(),
            };
            let e = evaluate_policies(std::slice::from_ref(&policy), &input, compliant_app);
            let a = e.applied.into_iter().next();
            let applies = |a: &Option<Applied>| {
                a.as_ref().is_some_and(|a| {
                    !matches!(
                        a.result,
                        crate::domain::conditional_access::Outcome::NotApplied
                            | crate::domain::conditional_access::Outcome::ReportOnlyNotApplied
                            | crate::domain::conditional_access::Outcome::NotEnabled
                    )
                })
            };
            if best.is_none() || (applies(&a) && !applies(&best)) {
                best = a;
            }
        }
        let Some(a) = best else { continue };
        use crate::domain::conditional_access::Outcome;
        let applies = !matches!(
            a.result,
            Outcome::NotApplied | Outcome::ReportOnlyNotApplied | Outcome::NotEnabled
        );
        if q.applied_policies_only && !applies {
            continue;
        }
        let reason = if applies {
            "notSet".to_string()
        } else if a.result == Outcome::NotEnabled {
            "policyNotEnabled".to_string()
        } else {
            analysis_reason(a.reasons.first().map(String::as_str).unwrap_or(""))
        };
        let mut item = doc.clone();
        item["@odata.type"] = json!("#microsoft.graph.whatIfAnalysisResult");
        item["policyApplies"] = json!(applies);
        item["analysisReasons"] = json!(reason);
        item["@emulator.evaluation"] = json!({
            "result": a.result,
            "grantControlsSatisfied": a.refusal.is_none(),
            "refusalCode": a.refusal.map(|r| r.code()),
            "reasons": a.reasons,
            "notEvaluated": a.not_evaluated,
            "deviceCompliance": compliance,
        });
        out.push(item);
    }
    Ok(out)
}

/// `whatIfAnalysisReasons` for why a policy did not apply, from the evaluation's reason.
fn analysis_reason(reason: &str) -> String {
    let r = reason.to_ascii_lowercase();
    if r.contains("user") || r.contains("group") || r.contains("role") {
        "users"
    } else if r.contains("resource") {
        "application"
    } else if r.contains("platform") {
        "devicePlatform"
    } else if r.contains("client app") {
        "clientApps"
    } else {
        "notEnoughInformation"
    }
    .to_string()
}

/// A credential for the tenant's managed device `id`: what a sign-in carries to come from that
/// device (see `identity::tokens::DEVICE_CREDENTIAL_HEADER`). It names the device by its Entra
/// id and stays valid as long as the device does.
pub async fn device_credential(app: &Services, cx: &Ctx<'_>, id: &str) -> ServiceResult<(ManagedDevice, String)> {
    let device = super::devices::get(cx, id).await?;
    let claims = crate::identity::tokens::DeviceCredentialClaims::new(cx.tenant_id, &device.azure_ad_device_id, cx.now);
    let token = crate::identity::tokens::sign(&app.keys, &claims).await?;
    Ok((device, token))
}
