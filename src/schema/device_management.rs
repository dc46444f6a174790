//! The `deviceManagement` singleton and its settings (the Python SDKs' models, msgraph-sdk
//! 1.61.0 and msgraph-beta-sdk 1.66.0, list these properties). Navigation properties are served
//! as their own paths, not here.

use serde_json::{json, Map, Value};

use super::{prop, Avail, Default, EnumType, StructType, Ty, Writable};

use Avail::{BetaOnly, Both};
use Writable::{No, Yes};

pub static SUBSCRIPTION_STATE: EnumType = EnumType {
    name: "deviceManagementSubscriptionState",
    members: &[
        ("pending", Both),
        ("active", Both),
        ("warning", Both),
        ("disabled", Both),
        ("deleted", Both),
        ("blocked", Both),
        ("lockedOut", Both),
    ],
};

pub static DERIVED_CREDENTIAL_PROVIDER: EnumType = EnumType {
    name: "derivedCredentialProviderType",
    members: &[
        ("notConfigured", Both),
        ("entrustDataCard", Both),
        ("purebred", Both),
        ("xTec", Both),
        ("intercede", Both),
    ],
};

/// Defaults as a new Intune account has them.
pub const DEFAULT_CHECKIN_THRESHOLD_DAYS: i64 = 30;

pub static SETTINGS: StructType = StructType {
    name: "deviceManagementSettings",
    is_entity: false,
    props: &[
        prop(
            "androidDeviceAdministratorEnrollmentEnabled",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "derivedCredentialProvider",
            Ty::Enum(&DERIVED_CREDENTIAL_PROVIDER),
            BetaOnly,
            false,
            Yes,
            Default::Str("notConfigured"),
        ),
        prop("derivedCredentialUrl", Ty::String, BetaOnly, true, Yes, Default::Null),
        prop(
            "deviceComplianceCheckinThresholdDays",
            Ty::Int32,
            Both,
            false,
            Yes,
            Default::Int(DEFAULT_CHECKIN_THRESHOLD_DAYS),
        ),
        prop(
            "deviceInactivityBeforeRetirementInDay",
            Ty::Int32,
            BetaOnly,
            false,
            Yes,
            Default::Int(0),
        ),
        prop(
            "enableAutopilotDiagnostics",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "enableDeviceGroupMembershipReport",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "enableEnhancedTroubleshootingExperience",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "enableLogCollection",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "enhancedJailBreak",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "ignoreDevicesForUnsupportedSettingsEnabled",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop(
            "isScheduledActionEnabled",
            Ty::Bool,
            Both,
            false,
            Yes,
            Default::Bool(true),
        ),
        prop(
            "m365AppDiagnosticsEnabled",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop("secureByDefault", Ty::Bool, Both, false, Yes, Default::Bool(false)),
    ],
};

static RGB_COLOR: StructType = StructType {
    name: "rgbColor",
    is_entity: false,
    props: &[
        prop("r", Ty::Int32, Both, false, Yes, Default::Int(0)),
        prop("g", Ty::Int32, Both, false, Yes, Default::Int(0)),
        prop("b", Ty::Int32, Both, false, Yes, Default::Int(0)),
    ],
};

static MIME_CONTENT: StructType = StructType {
    name: "mimeContent",
    is_entity: false,
    props: &[
        prop("type", Ty::String, Both, true, Yes, Default::Null),
        prop("value", Ty::String, Both, true, Yes, Default::Null),
    ],
};

static INTUNE_BRAND: StructType = StructType {
    name: "intuneBrand",
    is_entity: false,
    props: &[
        prop("displayName", Ty::String, Both, true, Yes, Default::Null),
        prop("contactITName", Ty::String, Both, true, Yes, Default::Null),
        prop("contactITPhoneNumber", Ty::String, Both, true, Yes, Default::Null),
        prop("contactITEmailAddress", Ty::String, Both, true, Yes, Default::Null),
        prop("contactITNotes", Ty::String, Both, true, Yes, Default::Null),
        prop("privacyUrl", Ty::String, Both, true, Yes, Default::Null),
        prop("onlineSupportSiteUrl", Ty::String, Both, true, Yes, Default::Null),
        prop("onlineSupportSiteName", Ty::String, Both, true, Yes, Default::Null),
        prop("themeColor", Ty::Struct(&RGB_COLOR), Both, true, Yes, Default::Null),
        prop("showLogo", Ty::Bool, Both, false, Yes, Default::Bool(false)),
        prop(
            "lightBackgroundLogo",
            Ty::Struct(&MIME_CONTENT),
            Both,
            true,
            Yes,
            Default::Null,
        ),
        prop(
            "darkBackgroundLogo",
            Ty::Struct(&MIME_CONTENT),
            Both,
            true,
            Yes,
            Default::Null,
        ),
        prop("showNameNextToLogo", Ty::Bool, Both, false, Yes, Default::Bool(false)),
        prop(
            "showDisplayNameNextToLogo",
            Ty::Bool,
            Both,
            false,
            Yes,
            Default::Bool(false),
        ),
    ],
};

static USER_EXPERIENCE_ANALYTICS_SETTINGS: StructType = StructType {
    name: "userExperienceAnalyticsSettings",
    is_entity: false,
    props: &[prop(
        "configurationManagerDataConnectorConfigured",
        Ty::Bool,
        Both,
        false,
        Yes,
        Default::Bool(false),
    )],
};

pub static DEVICE_MANAGEMENT: StructType = StructType {
    name: "deviceManagement",
    is_entity: true,
    props: &[
        prop("id", Ty::String, Both, false, No, Default::Str("")),
        prop(
            "intuneAccountId",
            Ty::Guid,
            Both,
            false,
            No,
            Default::Str("00000000-0000-0000-0000-000000000000"),
        ),
        prop(
            "subscriptionState",
            Ty::Enum(&SUBSCRIPTION_STATE),
            Both,
            false,
            No,
            Default::Str("active"),
        ),
        prop("settings", Ty::Struct(&SETTINGS), Both, true, Yes, Default::Struct),
        prop(
            "intuneBrand",
            Ty::Struct(&INTUNE_BRAND),
            Both,
            true,
            Yes,
            Default::Struct,
        ),
        prop(
            "userExperienceAnalyticsSettings",
            Ty::Struct(&USER_EXPERIENCE_ANALYTICS_SETTINGS),
            Both,
            true,
            Yes,
            Default::Struct,
        ),
        // Reports of Windows Defender state, which the emulator does not model.
        prop("deviceProtectionOverview", Ty::String, Both, true, No, Default::Null),
        prop("windowsMalwareOverview", Ty::String, Both, true, No, Default::Null),
        prop(
            "accountMoveCompletionDateTime",
            Ty::DateTimeOffset,
            BetaOnly,
            true,
            No,
            Default::Null,
        ),
        prop(
            "deviceComplianceReportSummarizationDateTime",
            Ty::DateTimeOffset,
            BetaOnly,
            false,
            No,
            Default::Str("0001-01-01T00:00:00Z"),
        ),
        prop(
            "lastReportAggregationDateTime",
            Ty::DateTimeOffset,
            BetaOnly,
            false,
            No,
            Default::Str("0001-01-01T00:00:00Z"),
        ),
        prop(
            "legacyPcManangementEnabled",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop("maximumDepTokens", Ty::Int32, BetaOnly, false, No, Default::Int(2000)),
        prop(
            "unlicensedAdminstratorsEnabled",
            Ty::Bool,
            BetaOnly,
            false,
            Yes,
            Default::Bool(false),
        ),
        prop("subscriptions", Ty::String, BetaOnly, false, No, Default::Str("intune")),
    ],
};

/// What a new tenant's `deviceManagement` stores. The account id is derived from the tenant,
/// so it is stable across resets.
pub fn initial_properties(tenant_id: &str) -> Map<String, Value> {
    let account = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("intune-account/{tenant_id}").as_bytes(),
    )
    .to_string();
    let Value::Object(m) = json!({
        "id": account,
        "intuneAccountId": account,
        "subscriptionState": "active",
        "settings": {
            "deviceComplianceCheckinThresholdDays": DEFAULT_CHECKIN_THRESHOLD_DAYS,
            "isScheduledActionEnabled": true,
            "secureByDefault": false,
        },
    }) else {
        unreachable!("a JSON object literal")
    };
    m
}

/// Limits the Intune admin center enforces on the settings ("compliance status validity
/// period" is 1 to 120 days).
pub fn check_settings(settings: &Map<String, Value>) -> Result<(), super::Invalid> {
    if let Some(days) = settings
        .get("deviceComplianceCheckinThresholdDays")
        .and_then(Value::as_i64)
    {
        if !(1..=120).contains(&days) {
            return Err(super::Invalid(format!(
                "Invalid value for property 'deviceComplianceCheckinThresholdDays': {days} is outside the allowed range of 1 to 120 days."
            )));
        }
    }
    if let Some(days) = settings
        .get("deviceInactivityBeforeRetirementInDay")
        .and_then(Value::as_i64)
    {
        if days != 0 && !(30..=270).contains(&days) {
            return Err(super::Invalid(format!(
                "Invalid value for property 'deviceInactivityBeforeRetirementInDay': {days} must be 0 (off) or between 30 and 270."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ApiVersion;
    use crate::schema::{render, validate_patch, View};

    #[test]
    fn a_new_tenant_has_the_documented_defaults() {
        let v1 = render(
            &DEVICE_MANAGEMENT,
            &initial_properties("t"),
            View {
                version: ApiVersion::V1,
                include_unknown_enum_members: false,
            },
        );
        assert_eq!(
            v1["settings"],
            json!({"deviceComplianceCheckinThresholdDays": 30, "isScheduledActionEnabled": true, "secureByDefault": false})
        );
        assert_eq!(v1["subscriptionState"], "active");
        assert_eq!(v1["id"], v1["intuneAccountId"]);
        assert!(v1.get("maximumDepTokens").is_none());
        let beta = render(
            &DEVICE_MANAGEMENT,
            &initial_properties("t"),
            View {
                version: ApiVersion::Beta,
                include_unknown_enum_members: false,
            },
        );
        assert_eq!(beta["settings"].as_object().unwrap().len(), 14);
        assert_eq!(beta["settings"]["derivedCredentialProvider"], "notConfigured");
    }

    #[test]
    fn settings_limits_are_enforced() {
        for (days, ok) in [(0, false), (1, true), (30, true), (120, true), (121, false)] {
            let patch = validate_patch(
                &DEVICE_MANAGEMENT,
                &json!({"settings": {"deviceComplianceCheckinThresholdDays": days}}),
                ApiVersion::V1,
            )
            .unwrap();
            let settings = patch["settings"].as_object().unwrap();
            assert_eq!(check_settings(settings).is_ok(), ok, "{days}");
        }
        let bad = json!({"deviceInactivityBeforeRetirementInDay": 10});
        assert!(check_settings(bad.as_object().unwrap()).is_err());
    }
}
