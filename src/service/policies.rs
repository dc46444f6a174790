//! Compliance policies: their lifecycle, assignments and scheduled actions, the rules a change
//! must keep (a threat-level policy reaches user groups only), what a change marks for
//! re-evaluation, and the stored results the status views are made of.

use serde_json::{Map, Value};

use super::compliance::{mark, platforms_of};
use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::compliance::PolicyFamily;
use crate::domain::device::ManagedDevice;
use crate::domain::policy::{Assignment, ScheduledActionRule, StoredPolicy, TargetKind, THREAT_LEVEL_USER_GROUPS_ONLY};
use crate::domain::tenant::parse_guid;
use crate::schema::merge_patch;
use crate::store::{DeviceScope, PolicyStateRow, StoreError};

/// The policy's stored results: each state with its device, in device id order.
pub type StatusRows = Vec<(PolicyStateRow, ManagedDevice)>;

pub fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The device compliance policy '{id}' does not exist."))
}

fn assignment_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The assignment '{id}' does not exist."))
}

fn already_assigned(id: &str) -> ServiceError {
    ServiceError::conflict(format!("The policy is already assigned to this target ('{id}')."))
}

/// A policy by id (any case).
pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<StoredPolicy> {
    cx.store()
        .get_policy(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(|| not_found(id))
}

/// The tenant's policies.
pub async fn list(cx: &Ctx<'_>) -> ServiceResult<Vec<StoredPolicy>> {
    Ok(cx.store().list_policies(cx.tenant_id).await?)
}

/// The stored results of a policy already read (what `$expand` of a status view renders).
pub async fn statuses_of(cx: &Ctx<'_>, policy: &StoredPolicy) -> ServiceResult<StatusRows> {
    Ok(cx.store().policy_states_of_policy(cx.tenant_id, &policy.id).await?)
}

/// A policy with its stored results (the status views).
pub async fn with_statuses(cx: &Ctx<'_>, id: &str) -> ServiceResult<(StoredPolicy, StatusRows)> {
    let p = get(cx, id).await?;
    let rows = statuses_of(cx, &p).await?;
    Ok((p, rows))
}

/// One assignment of a policy: the policy's id and the assignment.
pub async fn assignment(cx: &Ctx<'_>, id: &str, assignment_id: &str) -> ServiceResult<(String, Assignment)> {
    let p = get(cx, id).await?;
    let a = p
        .assignments
        .into_iter()
        .find(|a| a.id.eq_ignore_ascii_case(assignment_id))
        .ok_or_else(|| assignment_not_found(assignment_id))?;
    Ok((p.id, a))
}

/// Creates a policy of `family` with its validated properties and scheduled actions.
pub async fn create(
    cx: &Ctx<'_>,
    family: PolicyFamily,
    properties: Map<String, Value>,
    scheduled_actions: Vec<ScheduledActionRule>,
) -> ServiceResult<StoredPolicy> {
    let policy = StoredPolicy {
        tenant_id: cx.tenant_id.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        family,
        properties,
        scheduled_actions,
        assignments: Vec::new(),
        version: 1,
        created_at: cx.now,
        last_modified_at: cx.now,
        revision: 0,
    };
    match cx.store().insert_policy(&policy).await {
        Ok(()) => Ok(policy),
        Err(StoreError::Conflict(_)) => Err(ServiceError::conflict("A policy with this id exists already.")),
        Err(e) => Err(e.into()),
    }
}

/// Merges a property patch into the policy. The body's schema is the policy's family's, so
/// `validate` parses it once the policy is found (a missing policy answers 404 first).
pub async fn patch<F, E>(cx: &Ctx<'_>, id: &str, validate: F) -> Result<(), E>
where
    F: FnOnce(PolicyFamily) -> Result<Map<String, Value>, E>,
    E: From<ServiceError>,
{
    let current = get(cx, id).await?;
    let props = validate(current.family)?;
    let p = update(cx, id, |p| {
        merge_patch(&mut p.properties, props.clone());
        Ok(())
    })
    .await?;
    // effects:
    mark(cx.store(), cx.tenant_id, &platform_scope(&p))
        .await
        .map_err(ServiceError::from)?;
    Ok(())
}

pub async fn delete(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let p = get(cx, id).await?;
    if !cx.store().delete_policy(cx.tenant_id, &p.id).await? {
        return Err(not_found(id));
    }
    if !p.assignments.is_empty() {
        // effects:
        mark(cx.store(), cx.tenant_id, &DeviceScope::All).await?;
    }
    Ok(())
}

/// `assign`: replaces the policy's assignments. An assignment's id derives from the policy's,
/// so `parse` reads the body once the policy is found; a target named twice counts once.
pub async fn assign<F, E>(cx: &Ctx<'_>, id: &str, parse: F) -> Result<Vec<Assignment>, E>
where
    F: FnOnce(&str) -> Result<Vec<Assignment>, E>,
    E: From<ServiceError>,
{
    let current = get(cx, id).await?;
    let mut assignments: Vec<Assignment> = Vec::new();
    for a in parse(&current.id)? {
        if !assignments.iter().any(|x| x.id == a.id) {
            assignments.push(a);
        }
    }
    let p = update(cx, id, |p| {
        p.assignments = assignments.clone();
        Ok(())
    })
    .await?;
    // effects:
    mark(cx.store(), cx.tenant_id, &DeviceScope::All)
        .await
        .map_err(ServiceError::from)?;
    Ok(p.assignments)
}

/// Adds one assignment (`parse` reads it once the policy is found); a target is assigned once.
/// Returns the policy's id and the assignment.
pub async fn add_assignment<F, E>(cx: &Ctx<'_>, id: &str, parse: F) -> Result<(String, Assignment), E>
where
    F: FnOnce(&str) -> Result<Assignment, E>,
    E: From<ServiceError>,
{
    let current = get(cx, id).await?;
    let a = parse(&current.id)?;
    if current.assignments.iter().any(|x| x.id == a.id) {
        return Err(already_assigned(&a.id).into());
    }
    let p = update(cx, id, |p| {
        if p.assignments.iter().any(|x| x.id == a.id) {
            return Err(already_assigned(&a.id));
        }
        p.assignments.push(a.clone());
        Ok(())
    })
    .await?;
    // effects:
    mark(cx.store(), cx.tenant_id, &DeviceScope::All)
        .await
        .map_err(ServiceError::from)?;
    Ok((p.id, a))
}

pub async fn remove_assignment(cx: &Ctx<'_>, id: &str, assignment_id: &str) -> ServiceResult<()> {
    update(cx, id, |p| {
        let before = p.assignments.len();
        p.assignments.retain(|a| !a.id.eq_ignore_ascii_case(assignment_id));
        if p.assignments.len() == before {
            return Err(assignment_not_found(assignment_id));
        }
        Ok(())
    })
    .await?;
    // effects:
    mark(cx.store(), cx.tenant_id, &DeviceScope::All).await?;
    Ok(())
}

/// `scheduleActionsForRules`: replaces the policy's scheduled actions; a rule that names an
/// existing one keeps its id.
pub async fn schedule_actions(cx: &Ctx<'_>, id: &str, mut rules: Vec<ScheduledActionRule>) -> ServiceResult<()> {
    let current = get(cx, id).await?;
    for r in &mut rules {
        if let Some(old) = current.scheduled_actions.iter().find(|o| o.rule_name == r.rule_name) {
            r.id = old.id.clone();
        }
    }
    let p = update(cx, id, |p| {
        p.scheduled_actions = rules.clone();
        Ok(())
    })
    .await?;
    // effects:
    mark(cx.store(), cx.tenant_id, &platform_scope(&p)).await?;
    Ok(())
}

/// Applies `change` to the stored policy with compare-and-set, bumping `version` and
/// `lastModifiedDateTime`; the changed policy must keep the threat-level rule.
async fn update<F>(cx: &Ctx<'_>, id: &str, change: F) -> ServiceResult<StoredPolicy>
where
    F: Fn(&mut StoredPolicy) -> ServiceResult<()>,
{
    loop {
        let mut p = get(cx, id).await?;
        change(&mut p)?;
        check_threat_targets(cx, &p).await?;
        p.version += 1;
        p.last_modified_at = cx.now.max(p.last_modified_at);
        if cx.store().update_policy(&p).await? {
            return Ok(p);
        }
    }
}

/// A policy that requires a device threat level may be assigned to user groups only (seed text).
async fn check_threat_targets(cx: &Ctx<'_>, policy: &StoredPolicy) -> ServiceResult<()> {
    if policy.threat_level_required().is_none() {
        return Ok(());
    }
    if policy
        .assignments
        .iter()
        .any(|a| a.target.kind == TargetKind::AllDevices)
    {
        return Err(ServiceError::invalid(THREAT_LEVEL_USER_GROUPS_ONLY));
    }
    let groups: Vec<String> = policy
        .assignments
        .iter()
        .filter(|a| a.target.kind == TargetKind::Group)
        .filter_map(|a| a.target.group_id.clone())
        .collect();
    if !cx
        .store()
        .groups_with_devices(&policy.tenant_id, &groups)
        .await?
        .is_empty()
    {
        return Err(ServiceError::invalid(THREAT_LEVEL_USER_GROUPS_ONLY));
    }
    Ok(())
}

/// What a change of the policy's settings or actions can reach: devices of its platform.
fn platform_scope(p: &StoredPolicy) -> DeviceScope {
    DeviceScope::Platforms(platforms_of(&[p]))
}

/// A device's policy results: each policy that has a stored state for it, with the state.
pub struct DevicePolicyStates {
    pub device: ManagedDevice,
    pub states: Vec<(StoredPolicy, PolicyStateRow)>,
}

fn device_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The managed device '{id}' does not exist."))
}

async fn device(cx: &Ctx<'_>, id: &str) -> ServiceResult<ManagedDevice> {
    let Some(key) = parse_guid(id) else {
        return Err(device_not_found(id));
    };
    cx.store()
        .get_device(cx.tenant_id, &key)
        .await?
        .ok_or_else(|| device_not_found(id))
}

async fn states_of(cx: &Ctx<'_>, device: ManagedDevice) -> ServiceResult<DevicePolicyStates> {
    let rows = cx.store().policy_states_of_device(cx.tenant_id, &device.id).await?;
    let policies = cx.store().list_policies(cx.tenant_id).await?;
    let states = rows
        .into_iter()
        .filter_map(|r| policies.iter().find(|p| p.id == r.policy_id).map(|p| (p.clone(), r)))
        .collect();
    Ok(DevicePolicyStates { device, states })
}

/// `deviceCompliancePolicyStates` of a managed device.
pub async fn device_states(cx: &Ctx<'_>, device_id: &str) -> ServiceResult<DevicePolicyStates> {
    let d = device(cx, device_id).await?;
    states_of(cx, d).await
}

/// The same, reached through a user (by id or user principal name): `None` when the user does
/// not exist (the directory answers that in its own words); 404 when the device is not theirs.
pub async fn user_device_states(
    cx: &Ctx<'_>,
    user_key: &str,
    device_id: &str,
) -> ServiceResult<Option<(String, DevicePolicyStates)>> {
    let user = match parse_guid(user_key) {
        Some(id) => cx.store().get_user(cx.tenant_id, &id).await?,
        None => cx.store().find_user_by_upn(cx.tenant_id, user_key).await?,
    };
    let Some(user) = user else {
        return Ok(None);
    };
    let d = device(cx, device_id).await?;
    if d.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(device_not_found(device_id));
    }
    Ok(Some((user.id, states_of(cx, d).await?)))
}
