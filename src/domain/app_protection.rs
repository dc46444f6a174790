//! App protection (MAM): the iOS and Android app protection policies, the protected apps users
//! register (with or without enrolling the device), and the pure evaluation of a registration
//! against the policies' "Max allowed device threat level" rule, with the MTD connectors whose
//! app protection toggle is on (the seed's "App protection policy evaluation").
//!
//! A registration is evaluated when its app checks in, as the Intune App SDK is told its
//! policies and their verdict then: the verdict and what it decides (allowed, blocked, a
//! selective wipe) are those of the check-in's time on the tenant's clock.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::mtd::{Reported, ThreatLevel};
use crate::domain::policy::{AssignmentTarget, TargetKind};

/// The platforms app protection covers here (Graph's `iosManagedAppProtection` and
/// `androidManagedAppProtection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppPlatform {
    Ios,
    Android,
}

impl AppPlatform {
    /// As the control plane and the store name it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppPlatform::Ios => "iOS",
            AppPlatform::Android => "android",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ios" | "ipados" => Some(AppPlatform::Ios),
            "android" => Some(AppPlatform::Android),
            _ => None,
        }
    }

    /// The policy type's Graph name.
    pub fn policy_type(self) -> &'static str {
        match self {
            AppPlatform::Ios => "iosManagedAppProtection",
            AppPlatform::Android => "androidManagedAppProtection",
        }
    }

    /// The registration type's Graph name.
    pub fn registration_type(self) -> &'static str {
        match self {
            AppPlatform::Ios => "iosManagedAppRegistration",
            AppPlatform::Android => "androidManagedAppRegistration",
        }
    }

    /// The `mobileAppIdentifier` subtype naming the platform's apps, and its key property.
    pub fn app_identifier(self) -> (&'static str, &'static str) {
        match self {
            AppPlatform::Ios => ("iosMobileAppIdentifier", "bundleId"),
            AppPlatform::Android => ("androidMobileAppIdentifier", "packageId"),
        }
    }

    /// The connector's app protection toggle for the platform.
    pub fn mam_toggle(self) -> &'static str {
        match self {
            AppPlatform::Ios => "iosMobileApplicationManagementEnabled",
            AppPlatform::Android => "androidMobileApplicationManagementEnabled",
        }
    }

    /// The connector's "block on missing partner data" toggle for the platform.
    pub fn missing_data_toggle(self) -> &'static str {
        match self {
            AppPlatform::Ios => "iosDeviceBlockedOnMissingPartnerData",
            AppPlatform::Android => "androidDeviceBlockedOnMissingPartnerData",
        }
    }
}

/// An app a policy targets (`managedMobileApp`): its id in the policy and the app's bundle or
/// package id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetedApp {
    pub id: String,
    pub app_id: String,
    pub version: String,
}

/// A `targetedManagedAppPolicyAssignment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppPolicyAssignment {
    pub id: String,
    pub target: AssignmentTarget,
    pub source: String,
    pub source_id: Option<String>,
}

/// An app protection policy as the tenant stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppProtectionPolicy {
    pub tenant_id: String,
    pub id: String,
    pub platform: AppPlatform,
    /// Every writable property the client set, by Graph name.
    pub properties: Map<String, Value>,
    pub assignments: Vec<AppPolicyAssignment>,
    pub apps: Vec<TargetedApp>,
    /// Graph's `version`, an opaque string Intune bumps with every change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub last_modified_at: DateTime<Utc>,
    /// Bumped by every update, for compare-and-set.
    pub revision: i64,
}

/// `managedAppRemediationAction`, less `warn`, which the threat rule refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Remediation {
    /// Blocked where the app's SDK supports the setting; the emulated SDK always does.
    BlockWhenSettingIsSupported,
    Block,
    Wipe,
}

impl Remediation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "block" => Some(Remediation::Block),
            "wipe" => Some(Remediation::Wipe),
            "blockWhenSettingIsSupported" => Some(Remediation::BlockWhenSettingIsSupported),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Remediation::Block => "block",
            Remediation::Wipe => "wipe",
            Remediation::BlockWhenSettingIsSupported => "blockWhenSettingIsSupported",
        }
    }
}

/// Why a threat remediation refuses `warn` (graph-reference 4).
pub const WARN_REFUSED: &str = "Invalid value for property 'mobileThreatDefenseRemediationAction': 'warn' isn't a supported value for this property; use block, wipe or blockWhenSettingIsSupported.";

fn level(name: &str) -> Option<ThreatLevel> {
    Some(match name {
        "secured" => ThreatLevel::Secured,
        "low" => ThreatLevel::Low,
        "medium" => ThreatLevel::Medium,
        "high" => ThreatLevel::High,
        _ => return None,
    })
}

pub fn level_name(l: ThreatLevel) -> &'static str {
    match l {
        ThreatLevel::Secured => "secured",
        ThreatLevel::Low => "low",
        ThreatLevel::Medium => "medium",
        ThreatLevel::High => "high",
    }
}

/// Microsoft's apps, for `appGroupType` `allMicrosoftApps` and `allCoreMicrosoftApps`: the
/// emulator takes every app whose id starts with `com.microsoft.` as one.
fn is_microsoft_app(app_id: &str) -> bool {
    app_id.to_ascii_lowercase().starts_with("com.microsoft.")
}

impl AppProtectionPolicy {
    fn text(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }

    pub fn display_name(&self) -> String {
        self.text("displayName").unwrap_or_default().to_string()
    }

    /// The "Max allowed device threat level" the policy sets, if any.
    pub fn maximum_threat_level(&self) -> Option<ThreatLevel> {
        self.text("maximumAllowedDeviceThreatLevel").and_then(level)
    }

    /// What the policy does when the rule fails (`block` when unset, Graph's default).
    pub fn remediation(&self) -> Remediation {
        self.text("mobileThreatDefenseRemediationAction")
            .and_then(Remediation::parse)
            .unwrap_or(Remediation::Block)
    }

    /// Whether the policy protects the app: every app for `allApps`, Microsoft's for
    /// `allMicrosoftApps` and `allCoreMicrosoftApps`, else the apps it targets (the default
    /// `selectedPublicApps`).
    pub fn covers_app(&self, app_id: &str) -> bool {
        match self.text("appGroupType").unwrap_or("selectedPublicApps") {
            "allApps" => true,
            "allMicrosoftApps" | "allCoreMicrosoftApps" => is_microsoft_app(app_id),
            _ => self.apps.iter().any(|a| a.app_id.eq_ignore_ascii_case(app_id)),
        }
    }

    /// Whether the policy is assigned to the user: a group that includes them (or all
    /// licensed users) and no exclusion group that holds them. App protection targets users.
    pub fn targets_user(&self, user_groups: &HashSet<String>) -> bool {
        let included = self.assignments.iter().any(|a| match a.target.kind {
            TargetKind::AllLicensedUsers => true,
            TargetKind::Group => a.target.group_id.as_ref().is_some_and(|g| user_groups.contains(g)),
            _ => false,
        });
        let excluded = self.assignments.iter().any(|a| {
            a.target.kind == TargetKind::ExclusionGroup
                && a.target.group_id.as_ref().is_some_and(|g| user_groups.contains(g))
        });
        included && !excluded
    }

    /// The policy applies to the registration: same platform, the app, the user.
    pub fn applies_to(&self, platform: AppPlatform, app_id: &str, user_groups: &HashSet<String>) -> bool {
        self.platform == platform && self.covers_app(app_id) && self.targets_user(user_groups)
    }
}

/// A `managedAppOperation` on a registration: the emulator records selective wipes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppOperation {
    pub id: String,
    pub display_name: String,
    /// `pending` until the app reports the wipe done, then `completed`.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub last_modified_at: DateTime<Utc>,
}

/// A protected app a user signed in to on a device (`managedAppRegistration`).
#[derive(Debug, Clone, PartialEq)]
pub struct AppRegistration {
    pub tenant_id: String,
    pub id: String,
    pub user_id: String,
    /// The Entra device id: the key partners report the device by.
    pub azure_ad_device_id: String,
    pub platform: AppPlatform,
    /// Bundle id (iOS) or package id (Android).
    pub app_id: String,
    pub application_version: String,
    pub management_sdk_version: String,
    pub platform_version: String,
    pub device_name: String,
    pub device_model: Option<String>,
    pub device_manufacturer: Option<String>,
    /// The managed device when the device is enrolled (found by its Entra device id).
    pub managed_device_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The verdict the app was last told (`allowed`, `blocked`, `wipe`, `wiped`).
    pub verdict: Option<String>,
    /// The policies that applied at the last check-in.
    pub applied_policy_ids: Vec<String>,
    pub operations: Vec<AppOperation>,
    /// Bumped by every update, for compare-and-set.
    pub revision: i64,
}

impl AppRegistration {
    pub fn pending_wipe(&self) -> Option<&AppOperation> {
        self.operations
            .iter()
            .find(|o| o.display_name == "Wipe" && o.state == "pending")
    }

    pub fn wiped(&self) -> bool {
        self.operations
            .iter()
            .any(|o| o.display_name == "Wipe" && o.state == "completed")
    }
}

/// What evaluation needs of an MTD connector, for the registration's platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConnectorInput {
    pub id: String,
    /// The connector's app protection toggle for the platform.
    pub mam_enabled: bool,
    /// Set up, not deprovisioned and not unresponsive: its data counts.
    pub usable: bool,
    pub blocked_on_missing_data: bool,
}

/// What one policy's threat rule made of the registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOutcome {
    pub policy_id: String,
    pub display_name: String,
    /// `passed`, `failed` or `notEvaluated`.
    pub state: &'static str,
    pub remediation: Option<Remediation>,
    pub reasons: Vec<String>,
}

/// What the app is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppAccess {
    Allowed,
    Blocked,
    /// A selective wipe of the app's corporate data.
    Wipe,
}

impl AppAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            AppAccess::Allowed => "allowed",
            AppAccess::Blocked => "blocked",
            AppAccess::Wipe => "wipe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppVerdict {
    pub access: AppAccess,
    /// The message the user sees when access is refused.
    pub message: Option<String>,
    pub policies: Vec<PolicyOutcome>,
}

/// What the user sees when a threat blocks the app: Intune's wording for the "Max allowed
/// device threat level" conditional launch failure.
pub const BLOCKED_MESSAGE: &str = "Your organization's data can't be accessed by this app: your device's threat level is higher than your organization allows. Resolve the threats your Mobile Threat Defense app reports, then try again.";

pub const WIPE_MESSAGE: &str = "Your organization's data was removed from this app: your device's threat level is higher than your organization allows.";

/// Evaluates a registration against the policies that apply to it (`applies_to`), with the
/// connectors and the partners' reports for its device (by connector id).
pub fn evaluate(
    platform: AppPlatform,
    policies: &[&AppProtectionPolicy],
    connectors: &[AppConnectorInput],
    reports: &HashMap<String, Reported>,
) -> AppVerdict {
    let mut outcomes = Vec::with_capacity(policies.len());
    let mut worst: Option<Remediation> = None;
    for p in policies {
        let (state, reasons) = threat_rule(platform, p, connectors, reports);
        let remediation = (state == "failed").then(|| p.remediation());
        if let Some(r) = remediation {
            worst = Some(worst.map_or(r, |w| w.max(r)));
        }
        outcomes.push(PolicyOutcome {
            policy_id: p.id.clone(),
            display_name: p.display_name(),
            state,
            remediation,
            reasons,
        });
    }
    let (access, message) = match worst {
        None => (AppAccess::Allowed, None),
        Some(Remediation::Wipe) => (AppAccess::Wipe, Some(WIPE_MESSAGE.to_string())),
        Some(_) => (AppAccess::Blocked, Some(BLOCKED_MESSAGE.to_string())),
    };
    AppVerdict {
        access,
        message,
        policies: outcomes,
    }
}

/// The "Max allowed device threat level" rule of one policy: the same rules as the compliance
/// setting (product brief 5.2), with the connectors' app protection toggles in place of their
/// platform toggles.
fn threat_rule(
    platform: AppPlatform,
    p: &AppProtectionPolicy,
    connectors: &[AppConnectorInput],
    reports: &HashMap<String, Reported>,
) -> (&'static str, Vec<String>) {
    let Some(max) = p.maximum_threat_level() else {
        return (
            "notEvaluated",
            vec!["The policy sets no maximum allowed device threat level.".into()],
        );
    };
    let enabled: Vec<&AppConnectorInput> = connectors.iter().filter(|c| c.mam_enabled).collect();
    if enabled.is_empty() {
        return (
            "notEvaluated",
            vec![format!(
                "No MTD connector is enabled for app protection on {} ({} is off on every connector): the rule is not evaluated.",
                platform.as_str(),
                platform.mam_toggle()
            )],
        );
    }
    let usable: Vec<&&AppConnectorInput> = enabled.iter().filter(|c| c.usable).collect();
    if usable.is_empty() {
        return (
            "notEvaluated",
            vec!["Every MTD connector enabled for app protection on the platform is unresponsive or not provisioned: its data is ignored, not evaluated.".into()],
        );
    }
    let mut reasons = Vec::new();
    let mut passed = true;
    for c in usable {
        let report = reports.get(&c.id);
        match report.and_then(|r| r.rank()) {
            Some(level) => {
                let ok = level <= max;
                passed &= ok;
                reasons.push(format!(
                    "Connector {}: the device reports {}; the policy allows up to {}: {}.",
                    c.id,
                    report.map(|r| r.graph_state()).unwrap_or("nothing"),
                    level_name(max),
                    if ok { "passed" } else { "failed" }
                ));
            }
            None => {
                passed &= !c.blocked_on_missing_data;
                let what = report
                    .map(|r| format!("{} (no usable data)", r.graph_state()))
                    .unwrap_or_else(|| "no report".into());
                let why = if c.blocked_on_missing_data {
                    format!(
                        "{} is on, so the app is not allowed without partner data: failed",
                        platform.missing_data_toggle()
                    )
                } else {
                    "missing data is allowed: passed".into()
                };
                reasons.push(format!("Connector {}: {what}; {why}.", c.id));
            }
        }
    }
    (if passed { "passed" } else { "failed" }, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn policy(max: &str, remediation: &str) -> AppProtectionPolicy {
        let mut properties = Map::new();
        properties.insert("displayName".into(), "Outlook".into());
        properties.insert("maximumAllowedDeviceThreatLevel".into(), max.into());
        properties.insert("mobileThreatDefenseRemediationAction".into(), remediation.into());
        AppProtectionPolicy {
            tenant_id: "t".into(),
            id: "p".into(),
            platform: AppPlatform::Ios,
            properties,
            assignments: vec![AppPolicyAssignment {
                id: "a".into(),
                target: AssignmentTarget {
                    kind: TargetKind::Group,
                    group_id: Some("g".into()),
                    collection_id: None,
                    filter_id: None,
                    filter_type: "none".into(),
                },
                source: "direct".into(),
                source_id: None,
            }],
            apps: vec![TargetedApp {
                id: "com.microsoft.Office.Outlook.ios".into(),
                app_id: "com.microsoft.Office.Outlook".into(),
                version: "1".into(),
            }],
            version: 1,
            created_at: t0(),
            last_modified_at: t0(),
            revision: 0,
        }
    }

    fn connector(mam: bool, usable: bool, blocked: bool) -> AppConnectorInput {
        AppConnectorInput {
            id: "c".into(),
            mam_enabled: mam,
            usable,
            blocked_on_missing_data: blocked,
        }
    }

    fn reports(level: Option<&str>) -> HashMap<String, Reported> {
        level
            .map(|l| HashMap::from([("c".to_string(), Reported::parse_level(l).unwrap())]))
            .unwrap_or_default()
    }

    #[test]
    fn a_level_above_the_maximum_blocks_and_one_at_it_passes() {
        let p = policy("low", "block");
        let v = evaluate(
            AppPlatform::Ios,
            &[&p],
            &[connector(true, true, false)],
            &reports(Some("medium")),
        );
        assert_eq!(v.access, AppAccess::Blocked);
        assert_eq!(v.message.as_deref(), Some(BLOCKED_MESSAGE));
        assert_eq!(v.policies[0].state, "failed");
        let v = evaluate(
            AppPlatform::Ios,
            &[&p],
            &[connector(true, true, false)],
            &reports(Some("low")),
        );
        assert_eq!(v.access, AppAccess::Allowed);
        assert_eq!(v.policies[0].state, "passed");
        let v = evaluate(
            AppPlatform::Ios,
            &[&p],
            &[connector(true, true, false)],
            &reports(Some("secured")),
        );
        assert_eq!(v.access, AppAccess::Allowed);
    }

    #[test]
    fn the_strongest_remediation_of_the_failing_policies_wins() {
        let block = policy("low", "block");
        let mut wipe = policy("medium", "wipe");
        wipe.id = "w".into();
        let c = [connector(true, true, false)];
        let v = evaluate(AppPlatform::Ios, &[&block, &wipe], &c, &reports(Some("high")));
        assert_eq!(v.access, AppAccess::Wipe);
        // Only the block policy fails at medium.
        let v = evaluate(AppPlatform::Ios, &[&block, &wipe], &c, &reports(Some("medium")));
        assert_eq!(v.access, AppAccess::Blocked);
        assert_eq!(v.policies[1].state, "passed");
        let soft = policy("low", "blockWhenSettingIsSupported");
        let v = evaluate(AppPlatform::Ios, &[&soft], &c, &reports(Some("high")));
        assert_eq!(v.access, AppAccess::Blocked);
    }

    #[test]
    fn without_an_enabled_usable_connector_the_rule_is_not_evaluated() {
        let p = policy("secured", "block");
        let high = reports(Some("high"));
        let v = evaluate(AppPlatform::Ios, &[&p], &[connector(false, true, true)], &high);
        assert_eq!((v.access, v.policies[0].state), (AppAccess::Allowed, "notEvaluated"));
        let v = evaluate(AppPlatform::Ios, &[&p], &[connector(true, false, true)], &high);
        assert_eq!((v.access, v.policies[0].state), (AppAccess::Allowed, "notEvaluated"));
        let mut none = p.clone();
        none.properties.remove("maximumAllowedDeviceThreatLevel");
        let v = evaluate(AppPlatform::Ios, &[&none], &[connector(true, true, false)], &high);
        assert_eq!(v.policies[0].state, "notEvaluated");
    }

    #[test]
    fn missing_data_passes_unless_the_connector_blocks_on_it() {
        let p = policy("low", "block");
        let v = evaluate(AppPlatform::Ios, &[&p], &[connector(true, true, false)], &reports(None));
        assert_eq!(v.access, AppAccess::Allowed);
        let v = evaluate(AppPlatform::Ios, &[&p], &[connector(true, true, true)], &reports(None));
        assert_eq!(v.access, AppAccess::Blocked);
        assert!(v.policies[0].reasons[0].contains("iosDeviceBlockedOnMissingPartnerData"));
        // A health state carries no level: missing data too.
        let r = HashMap::from([("c".to_string(), Reported::Activated)]);
        let v = evaluate(AppPlatform::Ios, &[&p], &[connector(true, true, true)], &r);
        assert_eq!(v.access, AppAccess::Blocked);
    }

    #[test]
    fn a_policy_applies_to_its_apps_and_its_users_less_exclusions() {
        let mut p = policy("low", "block");
        let g: HashSet<String> = ["g".to_string()].into();
        assert!(p.applies_to(AppPlatform::Ios, "com.microsoft.office.outlook", &g));
        assert!(!p.applies_to(AppPlatform::Android, "com.microsoft.Office.Outlook", &g));
        assert!(!p.applies_to(AppPlatform::Ios, "com.example.notes", &g));
        assert!(!p.applies_to(AppPlatform::Ios, "com.microsoft.Office.Outlook", &HashSet::new()));
        p.properties.insert("appGroupType".into(), "allApps".into());
        assert!(p.applies_to(AppPlatform::Ios, "com.example.notes", &g));
        p.properties.insert("appGroupType".into(), "allMicrosoftApps".into());
        assert!(!p.applies_to(AppPlatform::Ios, "com.example.notes", &g));
        assert!(p.applies_to(AppPlatform::Ios, "com.microsoft.skype.teams", &g));
        let mut exclusion = p.assignments[0].clone();
        exclusion.target.kind = TargetKind::ExclusionGroup;
        exclusion.target.group_id = Some("x".into());
        p.assignments.push(exclusion);
        let both: HashSet<String> = ["g".to_string(), "x".to_string()].into();
        assert!(!p.applies_to(AppPlatform::Ios, "com.microsoft.Office.Outlook", &both));
    }
}
