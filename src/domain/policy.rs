//! Compliance policies as the tenant stores them: the settings (by Graph name), the actions for
//! noncompliance and the assignments, with the write rules Intune enforces on them. Evaluation
//! reads them through [`StoredPolicy::rules`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::compliance::{Action, ActionType, Policy, PolicyFamily, Target};
use crate::domain::mtd::ThreatLevel;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    pub tenant_id: String,
    pub id: String,
    pub family: PolicyFamily,
    /// Every writable property the client set, by Graph name (`displayName`, the settings...).
    pub properties: Map<String, Value>,
    pub scheduled_actions: Vec<ScheduledActionRule>,
    pub assignments: Vec<Assignment>,
    /// Graph's `version`: 1 at creation, bumped by every change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub last_modified_at: DateTime<Utc>,
    /// Bumped by every update, for compare-and-set.
    pub revision: i64,
}

/// A `deviceComplianceScheduledActionForRule` with its `scheduledActionConfigurations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledActionRule {
    pub id: String,
    pub rule_name: Option<String>,
    pub scheduled_action_configurations: Vec<ActionItem>,
}

/// A `deviceComplianceActionItem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionItem {
    pub id: String,
    pub action_type: String,
    pub grace_period_hours: i64,
    pub notification_template_id: Option<String>,
    #[serde(rename = "notificationMessageCCList")]
    pub notification_message_cc_list: Vec<String>,
}

/// The kinds of `deviceAndAppManagementAssignmentTarget` Intune accepts for compliance policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    #[serde(rename = "groupAssignmentTarget")]
    Group,
    #[serde(rename = "exclusionGroupAssignmentTarget")]
    ExclusionGroup,
    #[serde(rename = "allLicensedUsersAssignmentTarget")]
    AllLicensedUsers,
    #[serde(rename = "allDevicesAssignmentTarget")]
    AllDevices,
    #[serde(rename = "configurationManagerCollectionAssignmentTarget")]
    ConfigurationManagerCollection,
}

pub const TARGET_KINDS: &[(TargetKind, &str)] = &[
    (TargetKind::Group, "groupAssignmentTarget"),
    (TargetKind::ExclusionGroup, "exclusionGroupAssignmentTarget"),
    (TargetKind::AllLicensedUsers, "allLicensedUsersAssignmentTarget"),
    (TargetKind::AllDevices, "allDevicesAssignmentTarget"),
    (
        TargetKind::ConfigurationManagerCollection,
        "configurationManagerCollectionAssignmentTarget",
    ),
];

impl TargetKind {
    pub fn odata_name(self) -> &'static str {
        TARGET_KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("")
    }

    /// From `@odata.type`, with or without `#microsoft.graph.`.
    pub fn parse(t: &str) -> Option<Self> {
        let bare = t.trim_start_matches('#').trim_start_matches("microsoft.graph.");
        TARGET_KINDS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(bare))
            .map(|(k, _)| *k)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentTarget {
    pub kind: TargetKind,
    pub group_id: Option<String>,
    pub collection_id: Option<String>,
    pub filter_id: Option<String>,
    pub filter_type: String,
}

/// A `deviceCompliancePolicyAssignment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub target: AssignmentTarget,
    pub source: String,
    pub source_id: Option<String>,
}

/// The id Intune gives an assignment: the policy's and the group's (or the target kind's, for
/// targets without a group).
pub fn assignment_id(policy_id: &str, target: &AssignmentTarget) -> String {
    let key = target
        .group_id
        .clone()
        .or_else(|| target.collection_id.clone())
        .unwrap_or_else(|| match target.kind {
            TargetKind::AllDevices => "adadadad-808e-44e2-905a-0b7873a8a531".into(),
            _ => "acacacac-9df4-4c7d-9d50-4ef0226f57a9".into(),
        });
    format!("{policy_id}_{key}")
}

/// The action types of `deviceComplianceActionType` and what evaluation makes of them.
pub fn action_type(name: &str) -> Option<ActionType> {
    Some(match name {
        "noAction" => ActionType::NoAction,
        "notification" => ActionType::Notification,
        "block" => ActionType::Block,
        "retire" => ActionType::Retire,
        "wipe" => ActionType::Wipe,
        "removeResourceAccessProfiles" => ActionType::RemoveResourceAccessProfiles,
        "pushNotification" => ActionType::PushNotification,
        "remoteLock" => ActionType::RemoteLock,
        _ => return None,
    })
}

pub const ONE_BLOCK_ACTION: &str = "Compliance policy must have one and only one block scheduled action";

pub const THREAT_LEVEL_USER_GROUPS_ONLY: &str = "The Require the device to be at or under the Device Threat Level setting supports only user groups. Targeting device groups with this setting is not supported.";

/// Intune's rule for the actions of a policy: exactly one `block` among all of them.
pub fn check_one_block(rules: &[ScheduledActionRule]) -> Result<(), &'static str> {
    let blocks = rules
        .iter()
        .flat_map(|r| &r.scheduled_action_configurations)
        .filter(|a| a.action_type == "block")
        .count();
    if blocks == 1 {
        Ok(())
    } else {
        Err(ONE_BLOCK_ACTION)
    }
}

/// `gracePeriodHours` must be 0 to 8760 (a year).
pub fn check_grace_hours(hours: i64) -> Result<(), String> {
    if (0..=8760).contains(&hours) {
        Ok(())
    } else {
        Err(format!(
            "Invalid value for property 'gracePeriodHours': {hours} is outside the allowed range of 0 to 8760."
        ))
    }
}

fn level(name: &str) -> Option<ThreatLevel> {
    Some(match name {
        "secured" => ThreatLevel::Secured,
        "low" => ThreatLevel::Low,
        "medium" => ThreatLevel::Medium,
        "high" => ThreatLevel::High,
        _ => return None,
    })
}

impl StoredPolicy {
    fn text(&self, name: &str) -> Option<String> {
        self.properties
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    }

    pub fn display_name(&self) -> String {
        self.text("displayName").unwrap_or_default()
    }

    /// The policy requires a device threat level (the setting the seed's story is about).
    pub fn threat_level_required(&self) -> Option<ThreatLevel> {
        let enabled = self
            .properties
            .get("deviceThreatProtectionEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !enabled {
            return None;
        }
        self.properties
            .get("deviceThreatProtectionRequiredSecurityLevel")
            .and_then(Value::as_str)
            .and_then(level)
    }

    /// What evaluation needs of the policy.
    pub fn rules(&self) -> Policy {
        let targets = self
            .assignments
            .iter()
            .filter_map(|a| match (a.target.kind, &a.target.group_id) {
                (TargetKind::Group, Some(g)) => Some(Target::Group(g.clone())),
                (TargetKind::ExclusionGroup, Some(g)) => Some(Target::ExclusionGroup(g.clone())),
                (TargetKind::AllLicensedUsers, _) => Some(Target::AllLicensedUsers),
                (TargetKind::AllDevices, _) => Some(Target::AllDevices),
                // Configuration Manager collections hold no device the emulator manages.
                _ => None,
            })
            .collect();
        let actions = self
            .scheduled_actions
            .iter()
            .flat_map(|r| &r.scheduled_action_configurations)
            .filter_map(|a| {
                action_type(&a.action_type).map(|t| Action {
                    action_type: t,
                    grace_period_hours: a.grace_period_hours,
                })
            })
            .collect();
        Policy {
            id: self.id.clone(),
            family: self.family,
            required_threat_level: self.threat_level_required(),
            os_minimum_version: self.text("osMinimumVersion"),
            os_maximum_version: self.text("osMaximumVersion"),
            targets,
            actions,
        }
    }
}

/// A `notificationMessageTemplate` with its `localizedNotificationMessages`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationTemplate {
    pub tenant_id: String,
    pub id: String,
    pub properties: Map<String, Value>,
    pub messages: Vec<LocalizedMessage>,
    pub created_at: DateTime<Utc>,
    pub last_modified_at: DateTime<Utc>,
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalizedMessage {
    pub id: String,
    pub locale: String,
    pub subject: String,
    pub message_template: String,
    pub is_default: bool,
    pub last_modified_date_time: DateTime<Utc>,
}

impl NotificationTemplate {
    /// The message for `locale`, else the default one, else the first.
    pub fn message_for(&self, locale: Option<&str>) -> Option<&LocalizedMessage> {
        locale
            .and_then(|l| self.messages.iter().find(|m| m.locale.eq_ignore_ascii_case(l)))
            .or_else(|| self.messages.iter().find(|m| m.is_default))
            .or_else(|| self.messages.first())
    }
}

/// The id Intune gives a localized message: the template's and the locale.
pub fn localized_message_id(template_id: &str, locale: &str) -> String {
    format!("{template_id}_{}", locale.to_ascii_lowercase())
}

/// The `notificationTemplateBrandingOptions` flags, in declared order.
pub const BRANDING_OPTIONS: &[&str] = &[
    "none",
    "includeCompanyLogo",
    "includeCompanyName",
    "includeContactInformation",
    "includeCompanyPortalLink",
    "includeDeviceDetails",
    "unknownFutureValue",
];

/// Canonical form of a flags value (`"includeCompanyLogo, includeCompanyName"`): members in
/// declared order, comma-separated; `None` when a member is unknown.
pub fn canonical_branding(value: &str) -> Option<String> {
    let mut set = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let m = BRANDING_OPTIONS.iter().find(|m| m.eq_ignore_ascii_case(part))?;
        set.push(*m);
    }
    let mut members: Vec<&str> = BRANDING_OPTIONS
        .iter()
        .copied()
        .filter(|m| set.contains(m) && *m != "none")
        .collect();
    if members.is_empty() {
        members.push("none");
    }
    Some(members.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(t: &str) -> ActionItem {
        ActionItem {
            id: "a".into(),
            action_type: t.into(),
            grace_period_hours: 0,
            notification_template_id: None,
            notification_message_cc_list: vec![],
        }
    }

    fn rules(items: Vec<ActionItem>) -> Vec<ScheduledActionRule> {
        vec![ScheduledActionRule {
            id: "r".into(),
            rule_name: Some("PasswordRequired".into()),
            scheduled_action_configurations: items,
        }]
    }

    #[test]
    fn a_policy_needs_exactly_one_block_action() {
        assert_eq!(check_one_block(&rules(vec![])), Err(ONE_BLOCK_ACTION));
        assert_eq!(
            check_one_block(&rules(vec![item("notification")])),
            Err(ONE_BLOCK_ACTION)
        );
        assert_eq!(
            check_one_block(&rules(vec![item("block"), item("block")])),
            Err(ONE_BLOCK_ACTION)
        );
        assert_eq!(
            check_one_block(&rules(vec![item("block"), item("notification")])),
            Ok(())
        );
    }

    #[test]
    fn grace_hours_are_zero_to_a_year() {
        assert!(check_grace_hours(0).is_ok());
        assert!(check_grace_hours(8760).is_ok());
        assert!(check_grace_hours(-1).is_err());
        assert!(check_grace_hours(8761).is_err());
    }

    #[test]
    fn target_kinds_parse_with_or_without_namespace() {
        assert_eq!(
            TargetKind::parse("#microsoft.graph.groupAssignmentTarget"),
            Some(TargetKind::Group)
        );
        assert_eq!(
            TargetKind::parse("microsoft.graph.allDevicesAssignmentTarget"),
            Some(TargetKind::AllDevices)
        );
        assert_eq!(
            TargetKind::parse("exclusionGroupAssignmentTarget"),
            Some(TargetKind::ExclusionGroup)
        );
        assert_eq!(
            TargetKind::parse("#microsoft.graph.deviceAndAppManagementAssignmentTarget"),
            None
        );
    }

    #[test]
    fn branding_flags_are_canonical() {
        assert_eq!(
            canonical_branding("includeCompanyName, includeCompanyLogo").as_deref(),
            Some("includeCompanyLogo,includeCompanyName")
        );
        assert_eq!(canonical_branding("").as_deref(), Some("none"));
        assert_eq!(canonical_branding("none").as_deref(), Some("none"));
        assert_eq!(canonical_branding("bogus"), None);
    }

    #[test]
    fn the_threat_rule_needs_the_toggle_and_a_real_level() {
        let mut p = StoredPolicy {
            tenant_id: "t".into(),
            id: "p".into(),
            family: PolicyFamily::Ios,
            properties: Map::new(),
            scheduled_actions: rules(vec![item("block")]),
            assignments: vec![],
            version: 1,
            created_at: Utc::now(),
            last_modified_at: Utc::now(),
            revision: 0,
        };
        p.properties
            .insert("deviceThreatProtectionRequiredSecurityLevel".into(), "medium".into());
        assert_eq!(p.threat_level_required(), None);
        p.properties.insert("deviceThreatProtectionEnabled".into(), true.into());
        assert_eq!(p.threat_level_required(), Some(ThreatLevel::Medium));
        p.properties
            .insert("deviceThreatProtectionRequiredSecurityLevel".into(), "notSet".into());
        assert_eq!(p.threat_level_required(), None);
    }
}
