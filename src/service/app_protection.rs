//! App protection (MAM): the iOS and Android app protection policies with their assignments
//! and targeted apps; the protected apps users register (MAM with or without enrollment); the
//! partners' reports for devices known only by their Entra device id; and what a protected app
//! is told when it checks in (allowed, blocked, or a selective wipe), with the wipe's completion.
//!
//! A registration is evaluated when its app checks in, as the Intune App SDK learns its
//! policies' verdict then: on the tenant's clock at that moment, so a partner turning
//! unresponsive or a report arriving takes effect at the app's next check-in. The verdict the app
//! was told, the policies that applied and its wipes are stored with the registration, with an
//! event for each change, in one transaction.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::clock::rfc3339;
use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::app_protection::{
    evaluate, AppAccess, AppConnectorInput, AppOperation, AppPlatform, AppPolicyAssignment, AppProtectionPolicy,
    AppRegistration, AppVerdict, TargetedApp, WARN_REFUSED, WIPE_MESSAGE,
};
use crate::domain::mtd::{
    decide, is_unresponsive, Connector, Outcome, PlatformToggles, ReportItem, ReportTarget, Reported,
};
use crate::domain::policy::TargetKind;
use crate::schema::merge_patch;
use crate::store::{Effects, Event};

pub fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The managed app policy '{id}' does not exist."))
}

fn registration_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The managed app registration '{id}' does not exist."))
}

/// The threat rule refuses `warn` as its remediation.
fn check_threat_properties(properties: &Map<String, Value>) -> ServiceResult<()> {
    if properties
        .get("mobileThreatDefenseRemediationAction")
        .and_then(Value::as_str)
        == Some("warn")
    {
        return Err(ServiceError::invalid(WARN_REFUSED));
    }
    Ok(())
}

/// Intune's app protection policy ids are `T_` and a GUID: the form they are stored in, from
/// any case.
fn canonical_id(id: &str) -> String {
    match id.get(..2) {
        Some(p) if p.eq_ignore_ascii_case("t_") => format!("T_{}", id[2..].to_ascii_lowercase()),
        _ => id.to_ascii_lowercase(),
    }
}

/// A policy by id (any case), of any platform.
pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<AppProtectionPolicy> {
    cx.store()
        .get_app_policy(cx.tenant_id, &canonical_id(id))
        .await?
        .ok_or_else(|| not_found(id))
}

/// A policy of this platform by id: another platform's is not found at its path.
pub async fn get_of(cx: &Ctx<'_>, platform: AppPlatform, id: &str) -> ServiceResult<AppProtectionPolicy> {
    let p = get(cx, id).await?;
    if p.platform == platform {
        Ok(p)
    } else {
        Err(not_found(id))
    }
}

/// The tenant's policies, of one platform when given, oldest first.
pub async fn list(cx: &Ctx<'_>, platform: Option<AppPlatform>) -> ServiceResult<Vec<AppProtectionPolicy>> {
    let mut all = cx.store().list_app_policies(cx.tenant_id).await?;
    all.retain(|p| platform.is_none_or(|x| p.platform == x));
    Ok(all)
}

/// Creates a policy with its validated properties and the apps given inline.
pub async fn create(
    cx: &Ctx<'_>,
    platform: AppPlatform,
    properties: Map<String, Value>,
    apps: Vec<TargetedApp>,
) -> ServiceResult<AppProtectionPolicy> {
    check_threat_properties(&properties)?;
    let p = AppProtectionPolicy {
        tenant_id: cx.tenant_id.to_string(),
        id: format!("T_{}", uuid::Uuid::new_v4()),
        platform,
        properties,
        assignments: Vec::new(),
        apps: dedup_apps(apps),
        version: 1,
        created_at: cx.now,
        last_modified_at: cx.now,
        revision: 0,
    };
    cx.store().insert_app_policy(&p).await?;
    Ok(p)
}

fn dedup_apps(apps: Vec<TargetedApp>) -> Vec<TargetedApp> {
    let mut seen = HashSet::new();
    apps.into_iter()
        .filter(|a| seen.insert(a.app_id.to_ascii_lowercase()))
        .collect()
}

/// Merges validated properties into the policy of this platform.
pub async fn patch(cx: &Ctx<'_>, platform: AppPlatform, id: &str, properties: Map<String, Value>) -> ServiceResult<()> {
    check_threat_properties(&properties)?;
    update(cx, platform, id, |p| {
        merge_patch(&mut p.properties, properties.clone());
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn delete(cx: &Ctx<'_>, platform: AppPlatform, id: &str) -> ServiceResult<()> {
    let p = get_of(cx, platform, id).await?;
    if cx.store().delete_app_policy(cx.tenant_id, &p.id).await? {
        Ok(())
    } else {
        Err(not_found(id))
    }
}

/// `assign`: the assignments replace the policy's.
pub async fn assign(
    cx: &Ctx<'_>,
    platform: AppPlatform,
    id: &str,
    assignments: Vec<AppPolicyAssignment>,
) -> ServiceResult<AppProtectionPolicy> {
    check_groups(cx, &assignments).await?;
    update(cx, platform, id, |p| {
        p.assignments = assignments.clone();
        Ok(())
    })
    .await
}

/// Adds one assignment (the `assignments` collection's POST); a target given twice conflicts.
pub async fn add_assignment(
    cx: &Ctx<'_>,
    platform: AppPlatform,
    id: &str,
    assignment: AppPolicyAssignment,
) -> ServiceResult<AppPolicyAssignment> {
    check_groups(cx, std::slice::from_ref(&assignment)).await?;
    update(cx, platform, id, |p| {
        if p.assignments.iter().any(|a| a.id.eq_ignore_ascii_case(&assignment.id)) {
            return Err(ServiceError::conflict(format!(
                "The policy is already assigned to '{}'.",
                assignment.id
            )));
        }
        p.assignments.push(assignment.clone());
        Ok(())
    })
    .await?;
    Ok(assignment)
}

/// One of the policy's assignments, by id (any case).
pub async fn assignment(
    cx: &Ctx<'_>,
    platform: AppPlatform,
    id: &str,
    assignment_id: &str,
) -> ServiceResult<AppPolicyAssignment> {
    get_of(cx, platform, id)
        .await?
        .assignments
        .into_iter()
        .find(|a| a.id.eq_ignore_ascii_case(assignment_id))
        .ok_or_else(|| assignment_not_found(assignment_id))
}

fn assignment_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "The targeted managed app policy assignment '{id}' does not exist."
    ))
}

pub async fn remove_assignment(
    cx: &Ctx<'_>,
    platform: AppPlatform,
    id: &str,
    assignment_id: &str,
) -> ServiceResult<()> {
    update(cx, platform, id, |p| {
        let before = p.assignments.len();
        p.assignments.retain(|a| !a.id.eq_ignore_ascii_case(assignment_id));
        if p.assignments.len() == before {
            return Err(assignment_not_found(assignment_id));
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// `targetApps`: the apps replace the policy's, with the app group they are chosen from.
pub async fn target_apps(
    cx: &Ctx<'_>,
    platform: AppPlatform,
    id: &str,
    apps: Vec<TargetedApp>,
    app_group_type: String,
) -> ServiceResult<AppProtectionPolicy> {
    let apps = dedup_apps(apps);
    update(cx, platform, id, |p| {
        p.apps = apps.clone();
        p.properties
            .insert("appGroupType".into(), Value::String(app_group_type.clone()));
        Ok(())
    })
    .await
}

/// App protection targets users: groups (included or excluded) and all licensed users, never
/// all devices; each group exists.
async fn check_groups(cx: &Ctx<'_>, assignments: &[AppPolicyAssignment]) -> ServiceResult<()> {
    for a in assignments {
        match a.target.kind {
            TargetKind::Group | TargetKind::ExclusionGroup => {
                let g = a.target.group_id.as_deref().unwrap_or_default();
                if cx.store().get_group(cx.tenant_id, g).await?.is_none() {
                    return Err(ServiceError::invalid(format!("The group '{g}' does not exist.")));
                }
            }
            TargetKind::AllLicensedUsers => {}
            _ => {
                return Err(ServiceError::invalid(format!(
                    "App protection policies target users: '{}' is not a supported assignment target.",
                    a.target.kind.odata_name()
                )))
            }
        }
    }
    Ok(())
}

/// Applies `change` with compare-and-set, bumping `version` and `lastModifiedDateTime`.
async fn update<F>(cx: &Ctx<'_>, platform: AppPlatform, id: &str, change: F) -> ServiceResult<AppProtectionPolicy>
where
    F: Fn(&mut AppProtectionPolicy) -> ServiceResult<()>,
{
    loop {
        let mut p = get_of(cx, platform, id).await?;
        change(&mut p)?;
        p.version += 1;
        p.last_modified_at = cx.now.max(p.last_modified_at);
        if cx.store().update_app_policy(&p).await? {
            return Ok(p);
        }
    }
}

/// What a policy's deployment summary counts: the users it applies to, and per app the users
/// whose registration of it checked in with the policy applied.
pub struct DeploymentSummary {
    pub policy: AppProtectionPolicy,
    pub deployed_users: usize,
    /// (app id, users), in the policy's app order.
    pub per_app: Vec<(String, usize)>,
    pub last_refresh: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn deployment_summary(cx: &Ctx<'_>, platform: AppPlatform, id: &str) -> ServiceResult<DeploymentSummary> {
    let policy = get_of(cx, platform, id).await?;
    let registrations = cx.store().list_app_registrations(cx.tenant_id, None).await?;
    let applied: Vec<&AppRegistration> = registrations
        .iter()
        .filter(|r| r.applied_policy_ids.contains(&policy.id))
        .collect();
    let users: HashSet<&str> = applied.iter().map(|r| r.user_id.as_str()).collect();
    let per_app = policy
        .apps
        .iter()
        .map(|a| {
            let n: HashSet<&str> = applied
                .iter()
                .filter(|r| r.app_id.eq_ignore_ascii_case(&a.app_id))
                .map(|r| r.user_id.as_str())
                .collect();
            (a.app_id.clone(), n.len())
        })
        .collect();
    let last_refresh = applied.iter().filter_map(|r| r.last_sync_at).max();
    Ok(DeploymentSummary {
        deployed_users: users.len(),
        policy,
        per_app,
        last_refresh,
    })
}

// ---------------------------------------------------------------------------------------------
// Registrations
// ---------------------------------------------------------------------------------------------

/// A protected app to register, as the control plane takes it.
pub struct NewRegistration {
    pub user: super::devices::UserKey,
    pub azure_ad_device_id: String,
    pub platform: AppPlatform,
    pub app_id: String,
    pub application_version: String,
    pub management_sdk_version: String,
    pub platform_version: String,
    pub device_name: String,
    pub device_model: Option<String>,
    pub device_manufacturer: Option<String>,
}

/// Registers a protected app for a user on a device, enrolled or not. When a managed device
/// has the Entra device id, the registration is of that device (its platform must match).
pub async fn register(cx: &Ctx<'_>, req: NewRegistration) -> ServiceResult<AppRegistration> {
    let store = cx.store();
    let user = match &req.user {
        super::devices::UserKey::Id(id) => match crate::domain::tenant::parse_guid(id) {
            Some(id) => store.get_user(cx.tenant_id, &id).await?,
            None => None,
        },
        super::devices::UserKey::UserPrincipalName(upn) => store.find_user_by_upn(cx.tenant_id, upn).await?,
    };
    let user = user.ok_or_else(|| {
        let (property, value) = match &req.user {
            super::devices::UserKey::Id(id) => ("userId", id),
            super::devices::UserKey::UserPrincipalName(upn) => ("userPrincipalName", upn),
        };
        ServiceError::invalid(format!(
            "Invalid value for property '{property}': '{value}' is not a user of the tenant."
        ))
    })?;
    let managed = store
        .find_device_by_entra_id(cx.tenant_id, &req.azure_ad_device_id)
        .await?;
    if let Some(d) = &managed {
        let same = match req.platform {
            AppPlatform::Ios => d.platform == crate::domain::device::Platform::Ios,
            AppPlatform::Android => d.platform.as_str().starts_with("android"),
        };
        if !same {
            return Err(ServiceError::invalid(format!(
                "The device '{}' is enrolled as a {} device, not {}.",
                req.azure_ad_device_id,
                d.platform.as_str(),
                req.platform.as_str()
            )));
        }
    }
    let r = AppRegistration {
        tenant_id: cx.tenant_id.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id,
        azure_ad_device_id: req.azure_ad_device_id,
        platform: req.platform,
        app_id: req.app_id,
        application_version: req.application_version,
        management_sdk_version: req.management_sdk_version,
        platform_version: req.platform_version,
        device_name: req.device_name,
        device_model: req.device_model,
        device_manufacturer: req.device_manufacturer,
        managed_device_id: managed.map(|d| d.id),
        created_at: cx.now,
        last_sync_at: None,
        verdict: None,
        applied_policy_ids: Vec::new(),
        operations: Vec::new(),
        revision: 0,
    };
    let fx = Effects {
        events: vec![registration_event(cx, &r, "appRegistered", json!({}))],
        ..Effects::default()
    };
    match store.insert_app_registration(&r, &fx).await {
        Ok(true) => Ok(r),
        Ok(false) => Err(ServiceError::not_found("The tenant does not exist.")),
        Err(crate::store::StoreError::Conflict(_)) => Err(ServiceError::conflict(format!(
            "The user already has '{}' registered on the device '{}'.",
            r.app_id, r.azure_ad_device_id
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn registration(cx: &Ctx<'_>, id: &str) -> ServiceResult<AppRegistration> {
    cx.store()
        .get_app_registration(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(|| registration_not_found(id))
}

/// The tenant's registrations, or a user's.
pub async fn registrations(cx: &Ctx<'_>, user_id: Option<&str>) -> ServiceResult<Vec<AppRegistration>> {
    Ok(cx.store().list_app_registrations(cx.tenant_id, user_id).await?)
}

/// A user's registrations, by the key of a user path (object id or user principal name).
pub async fn user_registrations(cx: &Ctx<'_>, user_key: &str) -> ServiceResult<Vec<AppRegistration>> {
    let user = super::directory::user(cx, user_key).await?;
    registrations(cx, Some(&user.id)).await
}

pub async fn unregister(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let r = registration(cx, id).await?;
    let fx = Effects {
        events: vec![registration_event(cx, &r, "appUnregistered", json!({}))],
        ..Effects::default()
    };
    if cx.store().delete_app_registration(cx.tenant_id, &r.id, &fx).await? {
        Ok(())
    } else {
        Err(registration_not_found(id))
    }
}

fn registration_event(cx: &Ctx<'_>, r: &AppRegistration, kind: &str, extra: Value) -> Event {
    let mut doc = json!({
        "kind": kind,
        "registrationId": r.id,
        "userId": r.user_id,
        "azureADDeviceId": r.azure_ad_device_id,
        "appIdentifier": r.app_id,
        "virtualDateTime": rfc3339(cx.now),
        "cause": cx.cause.describe(),
    });
    if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
        d.extend(e);
    }
    Event {
        kind: kind.into(),
        device_id: r.managed_device_id.clone(),
        connector_id: None,
        document: doc,
        virtual_at: cx.now,
    }
}

/// Everything a registration's evaluation read, and what it decided.
pub struct Evaluation {
    pub registration: AppRegistration,
    /// The policies that apply to the registration (its intended policies).
    pub policies: Vec<AppProtectionPolicy>,
    pub user_groups: Vec<String>,
    pub connectors: Vec<AppConnectorInput>,
    /// The newest report of each connector for the device: (connector id, state, reported at).
    pub reports: Vec<(String, String, chrono::DateTime<chrono::Utc>)>,
    pub verdict: AppVerdict,
}

/// The connectors as app protection on `platform` sees them at `now`.
fn connector_inputs(
    connectors: &[Connector],
    platform: AppPlatform,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<AppConnectorInput> {
    connectors
        .iter()
        .map(|c| AppConnectorInput {
            id: c.id.clone(),
            mam_enabled: c.flag(platform.mam_toggle()),
            usable: c.set_up && !c.deprovisioned && !is_unresponsive(&c.status(), now),
            blocked_on_missing_data: c.flag(platform.missing_data_toggle()),
        })
        .collect()
}

/// The policies that apply to the registration.
async fn intended(cx: &Ctx<'_>, r: &AppRegistration) -> ServiceResult<(Vec<AppProtectionPolicy>, Vec<String>)> {
    let groups = cx.store().groups_of(cx.tenant_id, &r.user_id).await?;
    let set: HashSet<String> = groups.iter().cloned().collect();
    let policies = list(cx, Some(r.platform)).await?;
    Ok((
        policies
            .into_iter()
            .filter(|p| p.applies_to(r.platform, &r.app_id, &set))
            .collect(),
        groups,
    ))
}

/// The policies that apply to a registration (Graph's `intendedPolicies`).
pub async fn intended_policies(cx: &Ctx<'_>, id: &str) -> ServiceResult<Vec<AppProtectionPolicy>> {
    let r = registration(cx, id).await?;
    Ok(intended(cx, &r).await?.0)
}

/// The policies that applied at the registration's last check-in (Graph's `appliedPolicies`),
/// those that still exist.
pub async fn applied_policies(cx: &Ctx<'_>, id: &str) -> ServiceResult<Vec<AppProtectionPolicy>> {
    let r = registration(cx, id).await?;
    let all = list(cx, Some(r.platform)).await?;
    Ok(all
        .into_iter()
        .filter(|p| r.applied_policy_ids.contains(&p.id))
        .collect())
}

/// Evaluates the registration on the tenant's clock, without storing anything.
async fn evaluate_registration(cx: &Ctx<'_>, r: AppRegistration) -> ServiceResult<Evaluation> {
    let store = cx.store();
    let (policies, user_groups) = intended(cx, &r).await?;
    let connectors = connector_inputs(&store.list_connectors(cx.tenant_id).await?, r.platform, cx.now);
    let stored = store.app_device_reports(cx.tenant_id, &r.azure_ad_device_id).await?;
    // The newest report of each connector.
    let mut newest: HashMap<String, (String, chrono::DateTime<chrono::Utc>)> = HashMap::new();
    for s in stored {
        let keep = newest.get(&s.connector_id).is_none_or(|(_, at)| *at < s.reported_at);
        if keep {
            newest.insert(s.connector_id, (s.state, s.reported_at));
        }
    }
    let parsed: HashMap<String, Reported> = newest
        .iter()
        .filter_map(|(c, (state, _))| Reported::from_graph_state(state).map(|r| (c.clone(), r)))
        .collect();
    let refs: Vec<&AppProtectionPolicy> = policies.iter().collect();
    let verdict = evaluate(r.platform, &refs, &connectors, &parsed);
    let mut reports: Vec<(String, String, chrono::DateTime<chrono::Utc>)> =
        newest.into_iter().map(|(c, (s, at))| (c, s, at)).collect();
    reports.sort();
    Ok(Evaluation {
        registration: r,
        policies,
        user_groups,
        connectors,
        reports,
        verdict,
    })
}

/// `explain` for a registration: every policy that applies, every input, the verdict now, and
/// what a check-in now would tell the app (`told`).
pub async fn explain(cx: &Ctx<'_>, id: &str) -> ServiceResult<(Evaluation, &'static str, Option<String>)> {
    let r = registration(cx, id).await?;
    let e = evaluate_registration(cx, r).await?;
    let (access, message) = told(&e.registration, &e.verdict);
    Ok((e, access, message))
}

/// What the app is told for this verdict: a wiped app stays `wiped`, an app with a pending
/// wipe is told `wipe` until it reports the wipe done, else the verdict's answer.
fn told(r: &AppRegistration, v: &AppVerdict) -> (&'static str, Option<String>) {
    if r.wiped() {
        ("wiped", Some(WIPE_MESSAGE.to_string()))
    } else if r.pending_wipe().is_some() {
        ("wipe", Some(WIPE_MESSAGE.to_string()))
    } else {
        (v.access.as_str(), v.message.clone())
    }
}

/// What a check-in tells the app.
pub struct CheckIn {
    /// `allowed`, `blocked`, `wipe`, or `wiped` once the app's corporate data was wiped.
    pub access: &'static str,
    pub message: Option<String>,
    pub evaluation: Evaluation,
}

/// The app checks in (or launches): it is evaluated on the tenant's clock and told what to do.
/// A failing rule whose remediation is `wipe` records one pending wipe operation, which the app
/// is told at every check-in until it reports the wipe done (`complete_wipe`); a wiped
/// registration is not wiped again.
pub async fn check_in(cx: &Ctx<'_>, id: &str) -> ServiceResult<CheckIn> {
    loop {
        let current = registration(cx, id).await?;
        let evaluation = evaluate_registration(cx, current.clone()).await?;
        let mut r = current.clone();
        let mut events = Vec::new();
        let (access, message) = told(&r, &evaluation.verdict);
        if r.pending_wipe().is_none() && !r.wiped() {
            let v = &evaluation.verdict;
            if v.access == AppAccess::Wipe {
                let op = AppOperation {
                    id: uuid::Uuid::new_v4().to_string(),
                    display_name: "Wipe".into(),
                    state: "pending".into(),
                    created_at: cx.now,
                    last_modified_at: cx.now,
                };
                events.push(registration_event(
                    cx,
                    &r,
                    "appWipeRequested",
                    json!({ "operationId": op.id, "policies": failed_policies(v) }),
                ));
                r.operations.push(op);
            }
        }
        if r.verdict.as_deref() != Some(access) {
            events.push(registration_event(
                cx,
                &r,
                "appProtectionStateChanged",
                json!({
                    "from": r.verdict,
                    "to": access,
                    "policies": evaluation.verdict.policies.iter().map(|p| json!({
                        "policyId": p.policy_id, "state": p.state,
                    })).collect::<Vec<_>>(),
                }),
            ));
        }
        r.verdict = Some(access.to_string());
        r.last_sync_at = Some(cx.now);
        // The device may have enrolled (or left management) since the app registered.
        r.managed_device_id = cx
            .store()
            .find_device_by_entra_id(cx.tenant_id, &r.azure_ad_device_id)
            .await?
            .map(|d| d.id);
        r.applied_policy_ids = evaluation.policies.iter().map(|p| p.id.clone()).collect();
        let fx = Effects {
            events,
            ..Effects::default()
        };
        if cx.store().update_app_registration(&r, &fx).await? {
            return Ok(CheckIn {
                access,
                message,
                evaluation: Evaluation {
                    registration: r,
                    ..evaluation
                },
            });
        }
    }
}

fn failed_policies(v: &AppVerdict) -> Vec<&str> {
    v.policies
        .iter()
        .filter(|p| p.state == "failed")
        .map(|p| p.policy_id.as_str())
        .collect()
}

/// The app reports its selective wipe done: the pending wipe operation completes.
pub async fn complete_wipe(cx: &Ctx<'_>, id: &str) -> ServiceResult<AppRegistration> {
    loop {
        let mut r = registration(cx, id).await?;
        let Some(i) = r
            .operations
            .iter()
            .position(|o| o.display_name == "Wipe" && o.state == "pending")
        else {
            return Err(ServiceError::conflict(
                "The registration has no pending wipe: the app was not told to wipe at a check-in.",
            ));
        };
        r.operations[i].state = "completed".into();
        r.operations[i].last_modified_at = cx.now;
        let op = r.operations[i].id.clone();
        let from = r.verdict.clone();
        r.verdict = Some("wiped".into());
        let fx = Effects {
            events: vec![
                registration_event(cx, &r, "appWipeCompleted", json!({ "operationId": op })),
                registration_event(
                    cx,
                    &r,
                    "appProtectionStateChanged",
                    json!({ "from": from, "to": "wiped" }),
                ),
            ],
            ..Effects::default()
        };
        if cx.store().update_app_registration(&r, &fx).await? {
            return Ok(r);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Partner reports for unenrolled devices
// ---------------------------------------------------------------------------------------------

/// The connector's app protection toggles, as the platforms it takes MAM data for.
fn mam_toggles(c: &Connector) -> PlatformToggles {
    PlatformToggles {
        android: c.flag(AppPlatform::Android.mam_toggle()),
        ios: c.flag(AppPlatform::Ios.mam_toggle()),
        mac: false,
        windows: false,
    }
}

/// Decides and stores the reports of `items` (those a managed device did not take), for
/// devices that are not enrolled but have a protected app: accepted when the connector's app
/// protection toggle for the device's platform is on and a user with a protected app on it is
/// targeted by an app protection policy. Returns an outcome for each item, None for an item
/// whose device has no registration (it stays unknown).
pub async fn report_unenrolled(
    cx: &Ctx<'_>,
    connector: &Connector,
    items: &[ReportItem],
) -> ServiceResult<Vec<Option<Outcome>>> {
    let mut keys: Vec<String> = items.iter().map(|i| i.device_key.to_ascii_lowercase()).collect();
    keys.sort();
    keys.dedup();
    let store = cx.store();
    let found = store.app_report_targets(cx.tenant_id, &connector.id, &keys).await?;
    if found.is_empty() {
        return Ok(vec![None; items.len()]);
    }
    // Which devices have a protected app of a user an app protection policy applies to.
    let policies = list(cx, None).await?;
    let mut groups: HashMap<String, HashSet<String>> = HashMap::new();
    let mut targeted: HashSet<String> = HashSet::new();
    let mut targets: HashMap<String, ReportTarget> = HashMap::new();
    for t in &found {
        if !groups.contains_key(&t.user_id) {
            let g = store.groups_of(cx.tenant_id, &t.user_id).await?;
            groups.insert(t.user_id.clone(), g.into_iter().collect());
        }
        if policies
            .iter()
            .any(|p| p.applies_to(t.platform, &t.app_id, &groups[&t.user_id]))
        {
            targeted.insert(t.azure_ad_device_id.clone());
        }
        targets.insert(
            t.azure_ad_device_id.clone(),
            ReportTarget {
                device_id: t.azure_ad_device_id.clone(),
                // Only the family matters to the toggles.
                platform: match t.platform {
                    AppPlatform::Ios => crate::domain::device::Platform::Ios,
                    AppPlatform::Android => crate::domain::device::Platform::AndroidWorkProfile,
                },
                stored_at: t.stored_at,
            },
        );
    }
    let keyed: Vec<ReportItem> = items
        .iter()
        .map(|i| ReportItem {
            device_key: i.device_key.to_ascii_lowercase(),
            reported: i.reported.clone(),
        })
        .collect();
    let (outcomes, accepted) = decide(&keyed, &targets, mam_toggles(connector));
    let mut out = Vec::with_capacity(items.len());
    for (item, outcome) in keyed.iter().zip(outcomes) {
        let Some(t) = targets.get(&item.device_key) else {
            out.push(None);
            continue;
        };
        let platform = if t.platform == crate::domain::device::Platform::Ios {
            AppPlatform::Ios
        } else {
            AppPlatform::Android
        };
        out.push(Some(match outcome {
            Outcome::Rejected { code, .. } if code == "platformNotEnabled" => Outcome::Rejected {
                code: "appProtectionNotEnabled".into(),
                message: format!(
                    "The device is not enrolled and the connector is not enabled for app protection on {} ({} is off): its report is not used.",
                    platform.as_str(),
                    platform.mam_toggle()
                ),
            },
            _ if item.reported.is_ok() && !targeted.contains(&item.device_key) => Outcome::Rejected {
                code: "notTargeted".into(),
                message: "The device is not enrolled and no app protection policy applies to a protected app on it: its report is not used.".into(),
            },
            other => other,
        }));
    }
    let accepted: Vec<_> = accepted
        .into_iter()
        .filter(|a| targeted.contains(&a.device_id))
        .collect();
    if !accepted.is_empty() {
        store
            .store_app_reports(cx.tenant_id, &connector.id, &accepted)
            .await?
            .ok_or_else(|| ServiceError::not_found("The tenant does not exist."))?;
    }
    Ok(out)
}

/// A device the partner may see for app protection: an unenrolled device with a protected app,
/// on a platform whose app protection toggle is on.
pub struct AppDevice {
    pub azure_ad_device_id: String,
    pub platform: AppPlatform,
    pub device_name: String,
    pub user_ids: Vec<String>,
    pub platform_version: String,
}

/// The devices with protected apps on platforms the connector's app protection toggles cover
/// (enrolled ones included: the partner reports them by their managed or Entra device id).
pub async fn app_devices(cx: &Ctx<'_>, connector: &Connector) -> ServiceResult<Vec<AppDevice>> {
    let toggles = mam_toggles(connector);
    let mut out: Vec<AppDevice> = Vec::new();
    for r in registrations(cx, None).await? {
        let on = match r.platform {
            AppPlatform::Ios => toggles.ios,
            AppPlatform::Android => toggles.android,
        };
        if !on {
            continue;
        }
        match out.iter_mut().find(|d| d.azure_ad_device_id == r.azure_ad_device_id) {
            Some(d) => {
                if !d.user_ids.contains(&r.user_id) {
                    d.user_ids.push(r.user_id.clone());
                }
            }
            None => out.push(AppDevice {
                azure_ad_device_id: r.azure_ad_device_id.clone(),
                platform: r.platform,
                device_name: r.device_name.clone(),
                user_ids: vec![r.user_id.clone()],
                platform_version: r.platform_version.clone(),
            }),
        }
    }
    out.sort_by(|a, b| a.azure_ad_device_id.cmp(&b.azure_ad_device_id));
    Ok(out)
}

/// The pending/complete state of a registration, for Graph views.
pub fn operation_json(o: &AppOperation) -> Value {
    json!({
        "id": o.id,
        "displayName": o.display_name,
        "state": o.state,
        "lastModifiedDateTime": rfc3339(o.last_modified_at),
        "version": o.last_modified_at.timestamp().to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Status reports (`managedAppStatuses`)
// ---------------------------------------------------------------------------------------------

/// The status reports the emulator serves under `managedAppStatuses`, by id, with their display
/// names. Intune's others (`userstatus`, `userconfigstatus`, `windowsprotectionreport`, ...) are
/// not served.
pub const STATUS_REPORTS: &[(&str, &str)] = &[("appregistrationsummary", "App registration summary")];

/// The columns of `appregistrationsummary`, as clients ask for them (`columns=`): those seen in
/// Microsoft's sample scripts and admins' exports.
pub const REGISTRATION_SUMMARY_COLUMNS: &[&str] = &[
    "AccountId",
    "UserId",
    "DisplayName",
    "UserEmail",
    "IntuneLicensed",
    "ApplicationId",
    "ApplicationName",
    "ApplicationVersion",
    "SdkVersion",
    "ApplicationInstanceId",
    "CreatedDate",
    "LastCheckInDate",
    "Platform",
    "PlatformVersion",
    "DeviceId",
    "DeviceType",
    "DeviceName",
    "DeviceHealth",
    "DeviceModel",
    "DeviceManufacturer",
    "AndroidPatchVersion",
    "AzureADDeviceId",
    "MDMDeviceID",
    "ManagementLevel",
    "PolicySource",
    "PolicyId",
    "PolicyName",
    "PolicyDescription",
    "ComplianceState",
];

/// A page of the app registration summary: the columns asked for, rows of text values, and
/// where the next page starts (None on the last).
pub struct StatusPage {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub next: Option<usize>,
}

/// The app registration summary: a row per registration and policy that applied at its last
/// check-in (one row without a policy when none did), oldest registration first, `fetch` rows
/// from row `seek`.
pub async fn registration_summary(
    cx: &Ctx<'_>,
    columns: Vec<&'static str>,
    fetch: usize,
    seek: usize,
) -> ServiceResult<StatusPage> {
    let store = cx.store();
    let account = store
        .get_device_management(cx.tenant_id)
        .await?
        .and_then(|d| {
            d.properties
                .get("intuneAccountId")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let policies = list(cx, None).await?;
    let mut users: HashMap<String, Option<crate::domain::directory::User>> = HashMap::new();
    let mut rows = Vec::new();
    for r in registrations(cx, None).await? {
        if !users.contains_key(&r.user_id) {
            let u = store.get_user(cx.tenant_id, &r.user_id).await?;
            users.insert(r.user_id.clone(), u);
        }
        let user = users[&r.user_id].as_ref();
        let applied: Vec<Option<&AppProtectionPolicy>> = {
            let found: Vec<Option<&AppProtectionPolicy>> = r
                .applied_policy_ids
                .iter()
                .filter_map(|id| policies.iter().find(|p| &p.id == id))
                .map(Some)
                .collect();
            if found.is_empty() {
                vec![None]
            } else {
                found
            }
        };
        for p in applied {
            let value = |column: &str| -> String {
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(rfc3339).unwrap_or_default();
                match column {
                    "AccountId" => account.clone(),
                    "UserId" => r.user_id.clone(),
                    "DisplayName" => user.map(|u| u.display_name.clone()).unwrap_or_default(),
                    "UserEmail" => user
                        .map(|u| u.mail.clone().unwrap_or_else(|| u.user_principal_name.clone()))
                        .unwrap_or_default(),
                    // Every user of an emulated tenant holds an Intune license.
                    "IntuneLicensed" => "True".into(),
                    "ApplicationId" | "ApplicationName" => r.app_id.clone(),
                    "ApplicationVersion" => r.application_version.clone(),
                    "SdkVersion" => r.management_sdk_version.clone(),
                    "ApplicationInstanceId" => r.id.clone(),
                    "CreatedDate" => rfc3339(r.created_at),
                    "LastCheckInDate" => time(r.last_sync_at),
                    "Platform" => r.platform.as_str().into(),
                    "PlatformVersion" => r.platform_version.clone(),
                    "DeviceId" | "AzureADDeviceId" => r.azure_ad_device_id.clone(),
                    "DeviceType" => registration_device_type(r.platform).into(),
                    "DeviceName" => r.device_name.clone(),
                    // No jailbreak or root detection is emulated (flaggedReasons is empty).
                    "DeviceHealth" => "Healthy".into(),
                    "DeviceModel" => r.device_model.clone().unwrap_or_default(),
                    "DeviceManufacturer" => r.device_manufacturer.clone().unwrap_or_default(),
                    "AndroidPatchVersion" => String::new(),
                    "MDMDeviceID" => r.managed_device_id.clone().unwrap_or_default(),
                    "ManagementLevel" => if r.managed_device_id.is_some() {
                        "MDM"
                    } else {
                        "Unmanaged"
                    }
                    .into(),
                    "PolicySource" => p.map(|_| "Direct".to_string()).unwrap_or_default(),
                    "PolicyId" => p.map(|p| p.id.clone()).unwrap_or_default(),
                    "PolicyName" => p.map(AppProtectionPolicy::display_name).unwrap_or_default(),
                    "PolicyDescription" => p
                        .and_then(|p| p.properties.get("description").and_then(Value::as_str))
                        .unwrap_or_default()
                        .to_string(),
                    // What the app was told at its last check-in.
                    "ComplianceState" => r.verdict.clone().unwrap_or_else(|| "notCheckedIn".into()),
                    _ => String::new(),
                }
            };
            rows.push(columns.iter().map(|c| value(c)).collect::<Vec<String>>());
        }
    }
    let total = rows.len();
    let rows: Vec<Vec<String>> = rows.into_iter().skip(seek).take(fetch).collect();
    let end = seek.saturating_add(rows.len());
    Ok(StatusPage {
        columns,
        rows,
        next: (end < total).then_some(end),
    })
}

/// Graph's `deviceType` of a registration.
pub fn registration_device_type(p: AppPlatform) -> &'static str {
    match p {
        AppPlatform::Ios => "iPhone",
        AppPlatform::Android => "Android",
    }
}
