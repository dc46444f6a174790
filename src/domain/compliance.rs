//! Compliance evaluation (product brief, section 5) as a pure function: a device, the
//! policies, the MTD connectors and their reports, and the tenant's settings in; a verdict with
//! a reason for every policy and setting out. The Graph views (complianceState, policy states,
//! device and user statuses), the `explain` trace and the background worker are all meant to
//! read the same verdict.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::domain::device::Platform;
use crate::domain::mtd::{PlatformToggles, Reported, ThreatLevel};
use crate::domain::version;

/// A compliance policy type and the device family it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyFamily {
    /// `androidCompliancePolicy`: Android device administrator.
    Android,
    AndroidWorkProfile,
    /// beta only.
    AndroidDeviceOwner,
    Ios,
    MacOs,
    Windows10,
}

impl PolicyFamily {
    pub fn odata_type(self) -> &'static str {
        match self {
            PolicyFamily::Android => "androidCompliancePolicy",
            PolicyFamily::AndroidWorkProfile => "androidWorkProfileCompliancePolicy",
            PolicyFamily::AndroidDeviceOwner => "androidDeviceOwnerCompliancePolicy",
            PolicyFamily::Ios => "iosCompliancePolicy",
            PolicyFamily::MacOs => "macOSCompliancePolicy",
            PolicyFamily::Windows10 => "windows10CompliancePolicy",
        }
    }

    /// From `@odata.type`, with or without `#microsoft.graph.`.
    pub fn from_odata_type(t: &str) -> Option<Self> {
        let bare = t.trim_start_matches('#').trim_start_matches("microsoft.graph.");
        [
            PolicyFamily::Android,
            PolicyFamily::AndroidWorkProfile,
            PolicyFamily::AndroidDeviceOwner,
            PolicyFamily::Ios,
            PolicyFamily::MacOs,
            PolicyFamily::Windows10,
        ]
        .into_iter()
        .find(|f| f.odata_type().eq_ignore_ascii_case(bare))
    }

    pub fn platform(self) -> Platform {
        match self {
            PolicyFamily::Android => Platform::AndroidDeviceAdministrator,
            PolicyFamily::AndroidWorkProfile => Platform::AndroidWorkProfile,
            PolicyFamily::AndroidDeviceOwner => Platform::AndroidDeviceOwner,
            PolicyFamily::Ios => Platform::Ios,
            PolicyFamily::MacOs => Platform::MacOs,
            PolicyFamily::Windows10 => Platform::Windows,
        }
    }
}

/// `complianceStatus` of a stored policy state: a device in its grace period is already
/// noncompliant with the policy.
pub fn compliance_status(state: &str) -> &'static str {
    match state {
        "compliant" => "compliant",
        "inGracePeriod" | "noncompliant" => "nonCompliant",
        "notApplicable" => "notApplicable",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Group(String),
    ExclusionGroup(String),
    AllLicensedUsers,
    AllDevices,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    NoAction,
    Notification,
    PushNotification,
    Block,
    Retire,
    Wipe,
    RemoteLock,
    RemoveResourceAccessProfiles,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub action_type: ActionType,
    pub grace_period_hours: i64,
}

/// What evaluation needs of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: String,
    pub family: PolicyFamily,
    /// `deviceThreatProtectionEnabled` with a level of secured, low, medium or high.
    pub required_threat_level: Option<ThreatLevel>,
    pub os_minimum_version: Option<String>,
    pub os_maximum_version: Option<String>,
    pub targets: Vec<Target>,
    pub actions: Vec<Action>,
}

impl Policy {
    /// The `block` action's grace period, in hours (a policy has exactly one block action).
    pub fn grace_hours(&self) -> i64 {
        self.actions
            .iter()
            .find(|a| a.action_type == ActionType::Block)
            .map(|a| a.grace_period_hours.max(0))
            .unwrap_or(0)
    }
}

/// What evaluation needs of an MTD connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInput {
    pub id: String,
    /// Set up, not deprovisioned and not unresponsive: its data counts.
    pub usable: bool,
    pub toggles: PlatformToggles,
    /// `<platform>DeviceBlockedOnMissingPartnerData` for the device's platform.
    pub blocked_on_missing_data: bool,
    pub unsupported_os_blocked: bool,
    /// The partner's minimum OS version for the device's platform, when known.
    pub minimum_os_version: Option<String>,
    /// When it becomes unresponsive if no heartbeat comes first.
    pub unresponsive_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInput {
    pub id: String,
    pub platform: Platform,
    pub os_version: String,
    pub has_user: bool,
    /// Groups the primary user is a member of.
    pub user_groups: HashSet<String>,
    /// Groups the device is a member of.
    pub device_groups: HashSet<String>,
    pub last_check_in: DateTime<Utc>,
    /// Each connector's latest report for the device.
    pub reports: HashMap<String, Reported>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSettings {
    pub secure_by_default: bool,
    pub checkin_threshold_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingState {
    Compliant,
    Noncompliant,
    /// Not evaluated (no usable connector): counts as compliant.
    NotEvaluated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingVerdict {
    /// The policy property the setting is (`deviceThreatProtectionRequiredSecurityLevel`, ...).
    pub setting: &'static str,
    pub state: SettingState,
    /// What the device has, as the status views show it.
    pub current_value: Option<String>,
    /// Why, for `explain`: one line per fact used.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyState {
    Compliant,
    InGracePeriod,
    Noncompliant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVerdict {
    pub policy_id: String,
    pub state: PolicyState,
    pub settings: Vec<SettingVerdict>,
    /// When the current noncompliance episode began (kept from `episodes` when one is open).
    pub episode_start: Option<DateTime<Utc>>,
    pub grace_deadline: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    Compliant,
    InGracePeriod,
    Noncompliant,
}

impl DeviceState {
    /// The `complianceState` member.
    pub fn graph_name(self) -> &'static str {
        match self {
            DeviceState::Compliant => "compliant",
            DeviceState::InGracePeriod => "inGracePeriod",
            DeviceState::Noncompliant => "noncompliant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: DeviceState,
    /// The earliest grace deadline while in grace.
    pub grace_expires: Option<DateTime<Utc>>,
    pub reasons: Vec<String>,
    pub policies: Vec<PolicyVerdict>,
    /// The next instant at which time alone may change the verdict (a grace deadline, the
    /// check-in threshold, a connector turning unresponsive), for the worker's due index.
    pub next_change_at: Option<DateTime<Utc>>,
    /// Policies assigned to the device (or its user) that are for another platform.
    pub not_applicable: Vec<String>,
}

/// Whether a policy applies to the device (product brief 5.1): its family, a target that
/// reaches the user or the device, and no exclusion that does.
pub fn applies(policy: &Policy, device: &DeviceInput) -> bool {
    policy.family.platform() == device.platform && targeted(policy, device)
}

/// Whether any of the policies is assigned to a group, or excludes one: only then do the
/// groups of a device and of its user decide which policies apply to it.
pub fn assigned_by_group(policies: &[Policy]) -> bool {
    policies
        .iter()
        .flat_map(|p| &p.targets)
        .any(|t| matches!(t, Target::Group(_) | Target::ExclusionGroup(_)))
}

/// Whether the policy's assignments reach the device (its user or itself), whatever its
/// platform: a targeted device of another platform is "not applicable" in the status views.
pub fn targeted(policy: &Policy, device: &DeviceInput) -> bool {
    let reaches = |g: &String| device.user_groups.contains(g) || device.device_groups.contains(g);
    let included = policy.targets.iter().any(|t| match t {
        Target::Group(g) => reaches(g),
        Target::AllLicensedUsers => device.has_user,
        Target::AllDevices => true,
        Target::ExclusionGroup(_) => false,
    });
    let excluded = policy
        .targets
        .iter()
        .any(|t| matches!(t, Target::ExclusionGroup(g) if reaches(g)));
    included && !excluded
}

fn level_name(l: ThreatLevel) -> &'static str {
    match l {
        ThreatLevel::Secured => "secured",
        ThreatLevel::Low => "low",
        ThreatLevel::Medium => "medium",
        ThreatLevel::High => "high",
    }
}

/// The Device Threat Level setting (product brief 5.2).
fn threat_setting(required: ThreatLevel, device: &DeviceInput, connectors: &[ConnectorInput]) -> SettingVerdict {
    let enabled: Vec<&ConnectorInput> = connectors
        .iter()
        .filter(|c| c.toggles.covers(device.platform))
        .collect();
    let mut reasons = Vec::new();
    let setting = "deviceThreatProtectionRequiredSecurityLevel";
    if enabled.is_empty() {
        reasons.push(format!(
            "No MTD connector takes data for {} devices: not evaluated.",
            device.platform.as_str()
        ));
        return SettingVerdict {
            setting,
            state: SettingState::NotEvaluated,
            current_value: None,
            reasons,
        };
    }
    let usable: Vec<&&ConnectorInput> = enabled.iter().filter(|c| c.usable).collect();
    if usable.is_empty() {
        reasons.push("Every MTD connector for the platform is unresponsive or not provisioned: its data is ignored, not evaluated.".into());
        return SettingVerdict {
            setting,
            state: SettingState::NotEvaluated,
            current_value: None,
            reasons,
        };
    }
    let several = enabled.len() > 1;
    let mut compliant = true;
    let mut current: Option<ThreatLevel> = None;
    for c in usable {
        let report = device.reports.get(&c.id);
        match report.and_then(|r| r.rank()) {
            Some(level) => {
                current = Some(current.map_or(level, |l| l.max(level)));
                let ok = level <= required;
                compliant &= ok;
                reasons.push(format!(
                    "Connector {}: the device reports {}; the policy allows up to {}: {}.",
                    c.id,
                    report.map(|r| r.graph_state()).unwrap_or("nothing"),
                    level_name(required),
                    if ok { "compliant" } else { "noncompliant" }
                ));
            }
            None => {
                let blocked = c.blocked_on_missing_data || several;
                compliant &= !blocked;
                let what = report
                    .map(|r| format!("{} (no usable data)", r.graph_state()))
                    .unwrap_or_else(|| "no report".into());
                let why = if c.blocked_on_missing_data {
                    "the connector blocks devices without partner data: noncompliant"
                } else if several {
                    "several connectors take data for the platform and the device must report from each: noncompliant"
                } else {
                    "missing data is allowed: compliant"
                };
                reasons.push(format!("Connector {}: {what}; {why}.", c.id));
            }
        }
        if c.unsupported_os_blocked {
            if let Some(min) = &c.minimum_os_version {
                if version::below(&device.os_version, min).unwrap_or(false) {
                    compliant = false;
                    reasons.push(format!(
                        "Connector {}: OS {} is below the partner's minimum {min} and unsupported versions are blocked: noncompliant.",
                        c.id, device.os_version
                    ));
                }
            }
        }
    }
    SettingVerdict {
        setting,
        state: if compliant {
            SettingState::Compliant
        } else {
            SettingState::Noncompliant
        },
        current_value: current.map(|l| level_name(l).to_string()),
        reasons,
    }
}

fn os_setting(setting: &'static str, bound: &str, device: &DeviceInput, minimum: bool) -> SettingVerdict {
    let outside = match (version::parse(&device.os_version), version::parse(bound)) {
        (Some(d), Some(b)) => {
            let o = version::compare(&d, &b);
            if minimum {
                o.is_lt()
            } else {
                o.is_gt()
            }
        }
        // A version that cannot be compared cannot be shown to be within bounds.
        _ => true,
    };
    let word = if minimum { "minimum" } else { "maximum" };
    SettingVerdict {
        setting,
        state: if outside {
            SettingState::Noncompliant
        } else {
            SettingState::Compliant
        },
        current_value: Some(device.os_version.clone()),
        reasons: vec![format!(
            "OS {} against the {word} {bound}: {}.",
            device.os_version,
            if outside { "noncompliant" } else { "compliant" }
        )],
    }
}

/// Evaluates the device against the policies (only those that apply count). `episodes` holds
/// the start of each policy's open noncompliance episode; a policy newly noncompliant starts
/// one at `now`.
pub fn evaluate(
    device: &DeviceInput,
    policies: &[Policy],
    connectors: &[ConnectorInput],
    settings: TenantSettings,
    episodes: &HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Verdict {
    let mut reasons = Vec::new();
    let mut verdicts = Vec::new();
    let mut next_change: Vec<DateTime<Utc>> = Vec::new();
    for policy in policies.iter().filter(|p| applies(p, device)) {
        let mut settings_v = Vec::new();
        if let Some(required) = policy.required_threat_level {
            settings_v.push(threat_setting(required, device, connectors));
        }
        if let Some(min) = &policy.os_minimum_version {
            settings_v.push(os_setting("osMinimumVersion", min, device, true));
        }
        if let Some(max) = &policy.os_maximum_version {
            settings_v.push(os_setting("osMaximumVersion", max, device, false));
        }
        let noncompliant = settings_v.iter().any(|s| s.state == SettingState::Noncompliant);
        let (state, episode_start, deadline) = if noncompliant {
            let t0 = episodes.get(&policy.id).copied().unwrap_or(now);
            let deadline = t0 + Duration::hours(policy.grace_hours());
            if now < deadline {
                next_change.push(deadline);
                (PolicyState::InGracePeriod, Some(t0), Some(deadline))
            } else {
                (PolicyState::Noncompliant, Some(t0), Some(deadline))
            }
        } else {
            (PolicyState::Compliant, None, None)
        };
        verdicts.push(PolicyVerdict {
            policy_id: policy.id.clone(),
            state,
            settings: settings_v,
            episode_start,
            grace_deadline: deadline,
        });
    }
    // Connectors that will turn unresponsive change what counts.
    next_change.extend(
        connectors
            .iter()
            .filter(|c| c.usable && c.toggles.covers(device.platform))
            .filter_map(|c| c.unresponsive_at),
    );

    let checkin_deadline = device.last_check_in + Duration::days(settings.checkin_threshold_days.max(0));
    let stale = now >= checkin_deadline;
    if !stale {
        next_change.push(checkin_deadline);
    }
    let grace: Vec<DateTime<Utc>> = verdicts
        .iter()
        .filter(|v| v.state == PolicyState::InGracePeriod)
        .filter_map(|v| v.grace_deadline)
        .collect();
    let state = if stale {
        reasons.push(format!(
            "The device last checked in at {}, more than {} days ago: noncompliant.",
            device.last_check_in.to_rfc3339(),
            settings.checkin_threshold_days
        ));
        DeviceState::Noncompliant
    } else if verdicts.is_empty() {
        if settings.secure_by_default {
            reasons.push("No compliance policy applies and secureByDefault is on: noncompliant.".into());
            DeviceState::Noncompliant
        } else {
            reasons.push("No compliance policy applies: compliant.".into());
            DeviceState::Compliant
        }
    } else if verdicts.iter().any(|v| v.state == PolicyState::Noncompliant) {
        reasons.push("A policy is noncompliant past its grace period.".into());
        DeviceState::Noncompliant
    } else if !grace.is_empty() {
        reasons.push("A policy is noncompliant within its grace period.".into());
        DeviceState::InGracePeriod
    } else {
        reasons.push("Every applicable policy is compliant.".into());
        DeviceState::Compliant
    };
    Verdict {
        state,
        grace_expires: if state == DeviceState::InGracePeriod {
            grace.iter().min().copied()
        } else {
            None
        },
        reasons,
        policies: verdicts,
        next_change_at: next_change.into_iter().filter(|t| *t > now).min(),
        not_applicable: policies
            .iter()
            .filter(|p| p.family.platform() != device.platform && targeted(p, device))
            .map(|p| p.id.clone())
            .collect(),
    }
}

/// When each action of an episode that began at `start` falls due (product brief 5.6).
pub fn action_schedule(policy: &Policy, start: DateTime<Utc>) -> Vec<(ActionType, DateTime<Utc>)> {
    policy
        .actions
        .iter()
        .filter(|a| a.action_type != ActionType::NoAction)
        .map(|a| (a.action_type, start + Duration::hours(a.grace_period_hours.max(0))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap().into()
    }

    fn device() -> DeviceInput {
        DeviceInput {
            id: "d".into(),
            platform: Platform::Ios,
            os_version: "17.4".into(),
            has_user: true,
            user_groups: ["sales".to_string()].into(),
            device_groups: HashSet::new(),
            last_check_in: t0(),
            reports: HashMap::new(),
        }
    }

    fn policy(required: Option<ThreatLevel>) -> Policy {
        Policy {
            id: "p".into(),
            family: PolicyFamily::Ios,
            required_threat_level: required,
            os_minimum_version: None,
            os_maximum_version: None,
            targets: vec![Target::Group("sales".into())],
            actions: vec![Action {
                action_type: ActionType::Block,
                grace_period_hours: 0,
            }],
        }
    }

    fn connector(id: &str) -> ConnectorInput {
        ConnectorInput {
            id: id.into(),
            usable: true,
            toggles: PlatformToggles {
                ios: true,
                android: true,
                ..Default::default()
            },
            blocked_on_missing_data: false,
            unsupported_os_blocked: false,
            minimum_os_version: None,
            unresponsive_at: None,
        }
    }

    fn settings() -> TenantSettings {
        TenantSettings {
            secure_by_default: false,
            checkin_threshold_days: 30,
        }
    }

    fn report(level: &str) -> Reported {
        Reported::parse_level(level)
            .or_else(|| Reported::parse_health(level))
            .unwrap()
    }

    fn state_with(d: &DeviceInput, p: &Policy, cs: &[ConnectorInput]) -> DeviceState {
        evaluate(d, std::slice::from_ref(p), cs, settings(), &HashMap::new(), t0()).state
    }

    #[test]
    fn threat_levels_rank_against_the_required_level() {
        use DeviceState::*;
        let cases = [
            ("secured", ThreatLevel::Secured, Compliant),
            ("low", ThreatLevel::Secured, Noncompliant),
            ("low", ThreatLevel::Low, Compliant),
            ("medium", ThreatLevel::Low, Noncompliant),
            ("medium", ThreatLevel::Medium, Compliant),
            ("high", ThreatLevel::Medium, Noncompliant),
            ("high", ThreatLevel::High, Compliant),
            ("compromised", ThreatLevel::Medium, Noncompliant),
            ("compromised", ThreatLevel::High, Compliant),
        ];
        for (reported, required, expected) in cases {
            let mut d = device();
            d.reports.insert("c".into(), report(reported));
            assert_eq!(
                state_with(&d, &policy(Some(required)), &[connector("c")]),
                expected,
                "{reported} vs {required:?}"
            );
        }
    }

    #[test]
    fn without_a_usable_connector_the_setting_is_not_evaluated() {
        let mut d = device();
        d.reports.insert("c".into(), report("high"));
        let p = policy(Some(ThreatLevel::Secured));
        assert_eq!(state_with(&d, &p, &[]), DeviceState::Compliant, "no connector");
        let mut android_only = connector("c");
        android_only.toggles = PlatformToggles {
            android: true,
            ..Default::default()
        };
        assert_eq!(
            state_with(&d, &p, &[android_only]),
            DeviceState::Compliant,
            "no connector for iOS"
        );
        let mut silent = connector("c");
        silent.usable = false;
        let v = evaluate(
            &d,
            std::slice::from_ref(&p),
            &[silent],
            settings(),
            &HashMap::new(),
            t0(),
        );
        assert_eq!(v.state, DeviceState::Compliant, "every connector unresponsive");
        assert_eq!(v.policies[0].settings[0].state, SettingState::NotEvaluated);
    }

    #[test]
    fn missing_data_blocks_only_when_configured_or_with_several_connectors() {
        let d = device();
        let p = policy(Some(ThreatLevel::Medium));
        assert_eq!(state_with(&d, &p, &[connector("c")]), DeviceState::Compliant);
        let mut blocking = connector("c");
        blocking.blocked_on_missing_data = true;
        assert_eq!(state_with(&d, &p, &[blocking]), DeviceState::Noncompliant);
        let mut misconfigured = device();
        misconfigured.reports.insert("c".into(), report("misconfigured"));
        let mut blocking = connector("c");
        blocking.blocked_on_missing_data = true;
        assert_eq!(
            state_with(&misconfigured, &p, &[blocking]),
            DeviceState::Noncompliant,
            "no usable data"
        );
        // Two connectors for the platform: the device must report from each.
        let mut one_report = device();
        one_report.reports.insert("a".into(), report("low"));
        assert_eq!(
            state_with(&one_report, &p, &[connector("a"), connector("b")]),
            DeviceState::Noncompliant
        );
        one_report.reports.insert("b".into(), report("secured"));
        assert_eq!(
            state_with(&one_report, &p, &[connector("a"), connector("b")]),
            DeviceState::Compliant
        );
        one_report.reports.insert("b".into(), report("high"));
        assert_eq!(
            state_with(&one_report, &p, &[connector("a"), connector("b")]),
            DeviceState::Noncompliant
        );
    }

    #[test]
    fn unsupported_os_versions_are_blocked_when_the_connector_says_so() {
        let mut d = device();
        d.os_version = "15.1".into();
        d.reports.insert("c".into(), report("secured"));
        let p = policy(Some(ThreatLevel::Low));
        let mut c = connector("c");
        c.minimum_os_version = Some("16.0".into());
        assert_eq!(state_with(&d, &p, &[c.clone()]), DeviceState::Compliant, "not blocked");
        c.unsupported_os_blocked = true;
        assert_eq!(state_with(&d, &p, &[c.clone()]), DeviceState::Noncompliant);
        d.os_version = "16.0".into();
        assert_eq!(state_with(&d, &p, &[c]), DeviceState::Compliant);
    }

    #[test]
    fn os_minimum_and_maximum_compare_numerically() {
        let mut p = policy(None);
        p.os_minimum_version = Some("16.4".into());
        p.os_maximum_version = Some("17.10".into());
        for (os, expected) in [
            ("16.3.9", DeviceState::Noncompliant),
            ("16.4", DeviceState::Compliant),
            ("17.9", DeviceState::Compliant),
            ("17.10.1", DeviceState::Noncompliant),
            ("beta", DeviceState::Noncompliant),
        ] {
            let mut d = device();
            d.os_version = os.into();
            assert_eq!(state_with(&d, &p, &[]), expected, "{os}");
        }
    }

    #[test]
    fn targets_reach_users_and_devices_and_exclusions_win() {
        let mut d = device();
        d.device_groups.insert("kiosks".into());
        let mut p = policy(None);
        p.os_minimum_version = Some("99".into());
        let cases: Vec<(Vec<Target>, bool)> = vec![
            (vec![Target::Group("sales".into())], true),
            (vec![Target::Group("kiosks".into())], true),
            (vec![Target::Group("finance".into())], false),
            (vec![Target::AllLicensedUsers], true),
            (vec![Target::AllDevices], true),
            (vec![Target::AllDevices, Target::ExclusionGroup("kiosks".into())], false),
            (
                vec![Target::Group("sales".into()), Target::ExclusionGroup("sales".into())],
                false,
            ),
            (vec![Target::ExclusionGroup("finance".into())], false),
        ];
        for (targets, applies_) in cases {
            p.targets = targets.clone();
            assert_eq!(applies(&p, &d), applies_, "{targets:?}");
        }
        let mut userless = device();
        userless.has_user = false;
        p.targets = vec![Target::AllLicensedUsers];
        assert!(!applies(&p, &userless), "all licensed users needs a user");
        let mut android = policy(None);
        android.family = PolicyFamily::Android;
        android.targets = vec![Target::AllDevices];
        assert!(!applies(&android, &device()), "another family");
    }

    #[test]
    fn no_policy_is_compliant_unless_secure_by_default() {
        let d = device();
        let v = evaluate(&d, &[], &[], settings(), &HashMap::new(), t0());
        assert_eq!(v.state, DeviceState::Compliant);
        let v = evaluate(
            &d,
            &[],
            &[],
            TenantSettings {
                secure_by_default: true,
                ..settings()
            },
            &HashMap::new(),
            t0(),
        );
        assert_eq!(v.state, DeviceState::Noncompliant);
    }

    #[test]
    fn a_device_past_the_checkin_threshold_is_noncompliant() {
        let d = device();
        let late = t0() + Duration::days(30);
        assert_eq!(
            evaluate(&d, &[], &[], settings(), &HashMap::new(), late - Duration::seconds(1)).state,
            DeviceState::Compliant
        );
        assert_eq!(
            evaluate(&d, &[], &[], settings(), &HashMap::new(), late).state,
            DeviceState::Noncompliant
        );
        assert_eq!(
            evaluate(&d, &[], &[], settings(), &HashMap::new(), t0()).next_change_at,
            Some(late)
        );
    }

    #[test]
    fn grace_periods_run_from_the_start_of_the_episode() {
        let mut d = device();
        d.reports.insert("c".into(), report("high"));
        let mut p = policy(Some(ThreatLevel::Low));
        p.actions = vec![
            Action {
                action_type: ActionType::Notification,
                grace_period_hours: 24,
            },
            Action {
                action_type: ActionType::Block,
                grace_period_hours: 48,
            },
        ];
        let started = evaluate(
            &d,
            std::slice::from_ref(&p),
            &[connector("c")],
            settings(),
            &HashMap::new(),
            t0(),
        );
        assert_eq!(started.state, DeviceState::InGracePeriod);
        assert_eq!(started.grace_expires, Some(t0() + Duration::hours(48)));
        assert_eq!(started.policies[0].episode_start, Some(t0()));
        assert_eq!(started.next_change_at, Some(t0() + Duration::hours(48)));
        let episodes: HashMap<String, DateTime<Utc>> = [("p".to_string(), t0())].into();
        let later = evaluate(
            &d,
            &[p.clone()],
            &[connector("c")],
            settings(),
            &episodes,
            t0() + Duration::hours(47),
        );
        assert_eq!(later.state, DeviceState::InGracePeriod);
        let past = evaluate(
            &d,
            &[p.clone()],
            &[connector("c")],
            settings(),
            &episodes,
            t0() + Duration::hours(48),
        );
        assert_eq!(past.state, DeviceState::Noncompliant);
        assert_eq!(past.grace_expires, None);
        assert_eq!(
            action_schedule(&p, t0()),
            vec![
                (ActionType::Notification, t0() + Duration::hours(24)),
                (ActionType::Block, t0() + Duration::hours(48))
            ]
        );
        // Compliant again: the episode is over.
        d.reports.insert("c".into(), report("low"));
        let healed = evaluate(
            &d,
            &[p],
            &[connector("c")],
            settings(),
            &episodes,
            t0() + Duration::hours(50),
        );
        assert_eq!(
            (healed.state, healed.policies[0].episode_start),
            (DeviceState::Compliant, None)
        );
    }

    #[test]
    fn a_connector_turning_unresponsive_is_a_change_to_come() {
        let d = device();
        let mut c = connector("c");
        c.unresponsive_at = Some(t0() + Duration::days(3));
        let v = evaluate(
            &d,
            &[policy(Some(ThreatLevel::Low))],
            &[c],
            settings(),
            &HashMap::new(),
            t0(),
        );
        assert_eq!(v.next_change_at, Some(t0() + Duration::days(3)));
    }

    #[test]
    fn assigned_policies_of_another_platform_are_not_applicable() {
        let d = device();
        let mut mac = policy(Some(ThreatLevel::Secured));
        mac.id = "mac".into();
        mac.family = PolicyFamily::MacOs;
        let mut unassigned = mac.clone();
        unassigned.id = "other".into();
        unassigned.targets = vec![Target::Group("finance".into())];
        let v = evaluate(&d, &[mac, unassigned], &[], settings(), &HashMap::new(), t0());
        assert!(v.policies.is_empty());
        assert_eq!(v.not_applicable, vec!["mac".to_string()]);
        assert_eq!(v.state, DeviceState::Compliant, "nothing applies");
    }

    #[test]
    fn groups_matter_only_to_policies_assigned_by_group() {
        let mut everyone = policy(None);
        everyone.targets = vec![Target::AllDevices, Target::AllLicensedUsers];
        assert!(!assigned_by_group(&[]));
        assert!(!assigned_by_group(std::slice::from_ref(&everyone)));
        assert!(assigned_by_group(&[everyone.clone(), policy(None)]));
        everyone.targets.push(Target::ExclusionGroup("kiosks".into()));
        assert!(assigned_by_group(&[everyone]));
    }

    #[test]
    fn policy_types_map_to_families() {
        assert_eq!(
            PolicyFamily::from_odata_type("#microsoft.graph.iosCompliancePolicy"),
            Some(PolicyFamily::Ios)
        );
        assert_eq!(
            PolicyFamily::from_odata_type("microsoft.graph.androidWorkProfileCompliancePolicy"),
            Some(PolicyFamily::AndroidWorkProfile)
        );
        assert_eq!(
            PolicyFamily::from_odata_type("#microsoft.graph.windows81CompliancePolicy"),
            None
        );
        assert_eq!(
            PolicyFamily::AndroidDeviceOwner.platform(),
            Platform::AndroidDeviceOwner
        );
    }
}
