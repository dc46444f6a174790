//! Compliance policies: their lifecycle, assignments and scheduled actions, the rules a change
//! must keep (a threat-level policy reaches user groups only), what a change queues for
//! re-evaluation, and the stored results the status views are made of.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::compliance::platforms_of;
use super::directory::is_group;
use super::{Ctx, ServiceError, ServiceResult};
use crate::domain::compliance::PolicyFamily;
use crate::domain::device::ManagedDevice;
use crate::domain::policy::{Assignment, ScheduledActionRule, StoredPolicy, TargetKind, THREAT_LEVEL_USER_GROUPS_ONLY};
use crate::domain::tenant::parse_guid;
use crate::schema::merge_patch;
use crate::store::{DeviceScope, Effects, PolicyStateRow, StoreError};

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

/// The status views of a policy already read (what `$expand` of a status view renders).
pub async fn statuses_of(cx: &Ctx<'_>, policy: &StoredPolicy) -> ServiceResult<Statuses> {
    let rows = cx.store().policy_states_of_policy(cx.tenant_id, &policy.id).await?;
    Ok(Statuses::of(policy, &rows))
}

/// A policy with its status views.
pub async fn with_statuses(cx: &Ctx<'_>, id: &str) -> ServiceResult<(StoredPolicy, Statuses)> {
    let p = get(cx, id).await?;
    let statuses = statuses_of(cx, &p).await?;
    Ok((p, statuses))
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
    let mut scheduled_actions = scheduled_actions;
    check_action_references(cx, &mut scheduled_actions).await?;
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
    update(cx, id, platform_scope, |p| {
        merge_patch(&mut p.properties, props.clone());
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn delete(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let p = get(cx, id).await?;
    // An assigned policy took part in every device's evaluation.
    let fx = if p.assignments.is_empty() {
        Effects::none()
    } else {
        Effects::enqueue(DeviceScope::All)
    };
    if !cx.store().delete_policy(cx.tenant_id, &p.id, &fx).await? {
        return Err(not_found(id));
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
    check_assignment_groups(cx, &assignments).await?;
    let p = update(cx, id, any_device, |p| {
        p.assignments = assignments.clone();
        Ok(())
    })
    .await?;
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
    check_assignment_groups(cx, std::slice::from_ref(&a)).await?;
    let p = update(cx, id, any_device, |p| {
        if p.assignments.iter().any(|x| x.id == a.id) {
            return Err(already_assigned(&a.id));
        }
        p.assignments.push(a.clone());
        Ok(())
    })
    .await?;
    Ok((p.id, a))
}

pub async fn remove_assignment(cx: &Ctx<'_>, id: &str, assignment_id: &str) -> ServiceResult<()> {
    update(cx, id, any_device, |p| {
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

/// `scheduleActionsForRules`: replaces the policy's scheduled actions; a rule that names an
/// existing one keeps its id.
pub async fn schedule_actions(cx: &Ctx<'_>, id: &str, mut rules: Vec<ScheduledActionRule>) -> ServiceResult<()> {
    let current = get(cx, id).await?;
    check_action_references(cx, &mut rules).await?;
    for r in &mut rules {
        if let Some(old) = current.scheduled_actions.iter().find(|o| o.rule_name == r.rule_name) {
            r.id = old.id.clone();
        }
    }
    update(cx, id, platform_scope, |p| {
        p.scheduled_actions = rules.clone();
        Ok(())
    })
    .await?;
    Ok(())
}

/// Applies `change` to the stored policy with compare-and-set, bumping `version` and
/// `lastModifiedDateTime`; the changed policy must keep the threat-level rule. The devices
/// `reach` names for the changed policy are queued for re-evaluation with the change.
async fn update<F>(
    cx: &Ctx<'_>,
    id: &str,
    reach: fn(&StoredPolicy) -> DeviceScope,
    change: F,
) -> ServiceResult<StoredPolicy>
where
    F: Fn(&mut StoredPolicy) -> ServiceResult<()>,
{
    loop {
        let mut p = get(cx, id).await?;
        change(&mut p)?;
        check_threat_targets(cx, &p).await?;
        p.version += 1;
        p.last_modified_at = cx.now.max(p.last_modified_at);
        if cx.store().update_policy(&p, &Effects::enqueue(reach(&p))).await? {
            return Ok(p);
        }
    }
}

/// The groups assignments target (included or excluded) are groups of the caller's tenant.
async fn check_assignment_groups(cx: &Ctx<'_>, assignments: &[Assignment]) -> ServiceResult<()> {
    for group in assignments.iter().filter_map(|a| a.target.group_id.as_deref()) {
        if !is_group(cx, group).await? {
            return Err(ServiceError::invalid(format!(
                "Invalid value for property 'groupId': '{group}' is not a group of the directory."
            )));
        }
    }
    Ok(())
}

/// What scheduled actions name is the caller's tenant's: the notification template (none, or
/// the empty GUID, means none) and the groups to CC. They are kept in their canonical form.
async fn check_action_references(cx: &Ctx<'_>, rules: &mut [ScheduledActionRule]) -> ServiceResult<()> {
    for item in rules.iter_mut().flat_map(|r| &mut r.scheduled_action_configurations) {
        if let Some(template) = item.notification_template_id.as_mut() {
            let found = match parse_guid(template) {
                Some(id) if id == NO_TEMPLATE => Some(id),
                Some(id) => cx.store().get_template(cx.tenant_id, &id).await?.map(|_| id),
                None => None,
            };
            match found {
                Some(id) => *template = id,
                None => {
                    return Err(ServiceError::invalid(format!(
                        "Invalid value for property 'notificationTemplateId': '{template}' is not a notification message template of the tenant."
                    )))
                }
            }
        }
        for group in item.notification_message_cc_list.iter_mut() {
            match parse_guid(group) {
                Some(id) if is_group(cx, &id).await? => *group = id,
                _ => {
                    return Err(ServiceError::invalid(format!(
                        "Invalid value for property 'notificationMessageCCList': '{group}' is not a group of the directory."
                    )))
                }
            }
        }
    }
    Ok(())
}

/// The empty GUID Intune writes for "no template".
const NO_TEMPLATE: &str = "00000000-0000-0000-0000-000000000000";

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

/// What a change of the policy's assignments can reach: any device, in a target or not.
fn any_device(_: &StoredPolicy) -> DeviceScope {
    DeviceScope::All
}

/// A device's policy results: each policy that has a stored state for it, with the state.
pub struct DevicePolicyStates {
    pub device: ManagedDevice,
    pub states: Vec<(StoredPolicy, PolicyStateRow)>,
}

async fn states_of(cx: &Ctx<'_>, device: ManagedDevice) -> ServiceResult<DevicePolicyStates> {
    let rows = cx
        .store()
        .policy_states_of_devices(cx.tenant_id, std::slice::from_ref(&device.id))
        .await?;
    let policies = cx.store().list_policies(cx.tenant_id).await?;
    let states = rows
        .into_iter()
        .filter_map(|r| policies.iter().find(|p| p.id == r.policy_id).map(|p| (p.clone(), r)))
        .collect();
    Ok(DevicePolicyStates { device, states })
}

/// `deviceCompliancePolicyStates` of a managed device.
pub async fn device_states(cx: &Ctx<'_>, device_id: &str) -> ServiceResult<DevicePolicyStates> {
    let d = super::devices::get(cx, device_id).await?;
    states_of(cx, d).await
}

/// The same, reached through a user (by id or user principal name): `None` when the user does
/// not exist (the directory answers that in its own words); 404 when the device is not theirs.
pub async fn user_device_states(
    cx: &Ctx<'_>,
    user_key: &str,
    device_id: &str,
) -> ServiceResult<Option<(String, DevicePolicyStates)>> {
    let Some(user_id) = super::devices::user_id(cx, user_key).await? else {
        return Ok(None);
    };
    let d = super::devices::get(cx, device_id).await?;
    if d.user_id.as_deref() != Some(user_id.as_str()) {
        return Err(ServiceError::not_found(format!(
            "The managed device '{device_id}' does not exist."
        )));
    }
    Ok(Some((user_id, states_of(cx, d).await?)))
}

pub use crate::domain::compliance::compliance_status;

/// Worst first: a user is as compliant as their least compliant device.
fn status_rank(status: &str) -> u8 {
    match status {
        "nonCompliant" => 3,
        "compliant" => 2,
        "notApplicable" => 1,
        _ => 0,
    }
}

/// A `deviceComplianceDeviceStatus`: one device's result for the policy.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    /// `{policy id}_{device id}`.
    pub id: String,
    pub device_display_name: String,
    pub user_name: Option<String>,
    pub device_model: Option<String>,
    pub user_principal_name: Option<String>,
    /// When the grace period ends, for a device that is not compliant.
    pub grace_expires_at: Option<DateTime<Utc>>,
    pub status: &'static str,
    pub last_reported: DateTime<Utc>,
}

/// A `deviceComplianceUserStatus`: a user's devices taken together.
#[derive(Debug, Clone)]
pub struct UserStatus {
    /// `{policy id}_{user id}`.
    pub id: String,
    pub user_display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub devices_count: i64,
    /// The worst status of the user's devices.
    pub status: &'static str,
    pub last_reported: DateTime<Utc>,
}

/// `deviceStatusOverview` or `userStatusOverview`: the statuses counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overview {
    pub pending: i64,
    pub not_applicable: i64,
    pub success: i64,
    pub error: i64,
    pub failed: i64,
    pub conflict: i64,
    pub last_update: DateTime<Utc>,
    pub configuration_version: i64,
}

/// The status views of a policy, from its stored results.
#[derive(Debug, Clone)]
pub struct Statuses {
    /// In device id order.
    pub devices: Vec<DeviceStatus>,
    /// In user id order; devices without a user count in no user's status.
    pub users: Vec<UserStatus>,
    /// The newest evaluation, else the policy's last change.
    pub last_update: DateTime<Utc>,
    pub configuration_version: i64,
}

impl Statuses {
    pub fn of(p: &StoredPolicy, rows: &[(PolicyStateRow, ManagedDevice)]) -> Self {
        let devices = rows
            .iter()
            .map(|(s, d)| DeviceStatus {
                id: format!("{}_{}", p.id, d.id),
                device_display_name: d.device_name.clone(),
                user_name: d.user_display_name.clone(),
                device_model: d.model.clone(),
                user_principal_name: d.user_principal_name.clone(),
                grace_expires_at: match s.state.as_str() {
                    "inGracePeriod" | "noncompliant" => s.grace_deadline,
                    _ => None,
                },
                status: compliance_status(&s.state),
                last_reported: s.evaluated_at,
            })
            .collect();
        let mut users: BTreeMap<&str, UserStatus> = BTreeMap::new();
        for (s, d) in rows {
            let Some(uid) = &d.user_id else { continue };
            let status = compliance_status(&s.state);
            let u = users.entry(uid).or_insert_with(|| UserStatus {
                id: format!("{}_{uid}", p.id),
                user_display_name: d.user_display_name.clone(),
                user_principal_name: d.user_principal_name.clone(),
                devices_count: 0,
                status,
                last_reported: s.evaluated_at,
            });
            if status_rank(status) > status_rank(u.status) {
                u.status = status;
            }
            u.devices_count += 1;
            u.last_reported = u.last_reported.max(s.evaluated_at);
        }
        Statuses {
            devices,
            users: users.into_values().collect(),
            last_update: rows
                .iter()
                .map(|(s, _)| s.evaluated_at)
                .max()
                .unwrap_or(p.last_modified_at),
            configuration_version: p.version,
        }
    }

    /// `deviceStatusOverview`.
    pub fn device_overview(&self) -> Overview {
        self.overview(self.devices.iter().map(|d| d.status))
    }

    /// `userStatusOverview`.
    pub fn user_overview(&self) -> Overview {
        self.overview(self.users.iter().map(|u| u.status))
    }

    fn overview<'s>(&self, statuses: impl Iterator<Item = &'s str>) -> Overview {
        let mut o = Overview {
            pending: 0,
            not_applicable: 0,
            success: 0,
            error: 0,
            failed: 0,
            conflict: 0,
            last_update: self.last_update,
            configuration_version: self.configuration_version,
        };
        for s in statuses {
            match s {
                // Evaluation runs with every change, so no device waits for a first result.
                "unknown" => o.pending += 1,
                "notApplicable" => o.not_applicable += 1,
                "compliant" => o.success += 1,
                "error" => o.error += 1,
                "nonCompliant" => o.failed += 1,
                "conflict" => o.conflict += 1,
                _ => {}
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::device::{OwnerType, Platform};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, minute, 0).unwrap()
    }

    fn policy() -> StoredPolicy {
        StoredPolicy {
            tenant_id: "t".into(),
            id: "p".into(),
            family: PolicyFamily::Ios,
            properties: Map::new(),
            scheduled_actions: Vec::new(),
            assignments: Vec::new(),
            version: 3,
            created_at: at(0),
            last_modified_at: at(1),
            revision: 0,
        }
    }

    fn row(device: &str, user: Option<&str>, state: &str, minute: u32) -> (PolicyStateRow, ManagedDevice) {
        let s = PolicyStateRow {
            device_id: device.into(),
            policy_id: "p".into(),
            state: state.into(),
            settings: json!([]),
            episode_start: None,
            grace_deadline: Some(at(59)),
            policy_version: 3,
            evaluated_at: at(minute),
        };
        let d = ManagedDevice {
            tenant_id: "t".into(),
            id: device.into(),
            device_name: format!("{device} name"),
            operating_system: "iOS".into(),
            os_version: "17.1".into(),
            platform: Platform::Ios,
            owner_type: OwnerType::Company,
            user_id: user.map(str::to_string),
            user_principal_name: user.map(|u| format!("{u}@contoso.com")),
            user_display_name: user.map(str::to_string),
            email_address: None,
            azure_ad_device_id: device.into(),
            model: None,
            manufacturer: None,
            serial_number: None,
            imei: None,
            phone_number: None,
            enrolled_at: at(0),
            last_sync_at: at(0),
            compliance_state: "unknown".into(),
            compliance_grace_expires_at: None,
            partner_threat_state: "unknown".into(),
            management_state: "managed".into(),
            properties: Map::new(),
        };
        (s, d)
    }

    #[test]
    fn a_user_is_as_compliant_as_their_least_compliant_device() {
        let rows = vec![
            row("d1", Some("alice"), "compliant", 10),
            row("d2", Some("alice"), "inGracePeriod", 20),
            row("d3", Some("bob"), "notApplicable", 5),
            row("d4", None, "compliant", 30),
        ];
        let s = Statuses::of(&policy(), &rows);
        let users: Vec<(&str, &str, i64, DateTime<Utc>)> = s
            .users
            .iter()
            .map(|u| (u.id.as_str(), u.status, u.devices_count, u.last_reported))
            .collect();
        assert_eq!(
            users,
            vec![
                ("p_alice", "nonCompliant", 2, at(20)),
                ("p_bob", "notApplicable", 1, at(5)),
            ],
            "a device without a user counts in no user's status"
        );
        let grace: Vec<Option<DateTime<Utc>>> = s.devices.iter().map(|d| d.grace_expires_at).collect();
        assert_eq!(
            grace,
            vec![None, Some(at(59)), None, None],
            "only a device not compliant has a grace end"
        );
        let o = s.device_overview();
        assert_eq!(
            (o.success, o.failed, o.not_applicable, o.pending, o.last_update),
            (2, 1, 1, 0, at(30))
        );
        let o = s.user_overview();
        assert_eq!((o.success, o.failed, o.not_applicable), (0, 1, 1));
    }

    #[test]
    fn a_policy_without_results_was_last_updated_when_it_changed() {
        let s = Statuses::of(&policy(), &[]);
        let o = s.device_overview();
        assert_eq!((o.last_update, o.configuration_version, o.pending), (at(1), 3, 0));
    }
}
