//! What the Graph surface serves, as `openapi.yaml` describes it: every entity and action body
//! with a table, the polymorphic families, and the few small types written here by hand (the
//! assignment targets, the directory `device` a group's members show, `wipe`'s parameters).

use super::app_protection::{
    ANDROID_MANAGED_APP_PROTECTION, ANDROID_MANAGED_APP_REGISTRATION, ANDROID_MOBILE_APP_IDENTIFIER,
    IOS_MANAGED_APP_PROTECTION, IOS_MANAGED_APP_REGISTRATION, IOS_MOBILE_APP_IDENTIFIER, MANAGED_APP_OPERATION,
    MANAGED_APP_POLICY_DEPLOYMENT_SUMMARY, MANAGED_MOBILE_APP, TARGETED_MANAGED_APP_POLICY_ASSIGNMENT,
};
use super::compliance::{
    ANDROID_COMPLIANCE_POLICY, ANDROID_DEVICE_OWNER_COMPLIANCE_POLICY, ANDROID_WORK_PROFILE_COMPLIANCE_POLICY,
    DEVICE_AND_APP_MANAGEMENT_ASSIGNMENT_FILTER_TYPE, DEVICE_COMPLIANCE_ACTION_ITEM,
    DEVICE_COMPLIANCE_POLICY_ASSIGNMENT, DEVICE_COMPLIANCE_SCHEDULED_ACTION_FOR_RULE, IOS_COMPLIANCE_POLICY,
    LOCALIZED_NOTIFICATION_MESSAGE, MAC_OS_COMPLIANCE_POLICY, NOTIFICATION_MESSAGE_TEMPLATE,
    WINDOWS10_COMPLIANCE_POLICY,
};
use super::compliance_status::{
    DEVICE_COMPLIANCE_DEVICE_OVERVIEW, DEVICE_COMPLIANCE_DEVICE_STATUS, DEVICE_COMPLIANCE_POLICY_STATE,
    DEVICE_COMPLIANCE_USER_OVERVIEW, DEVICE_COMPLIANCE_USER_STATUS,
};
use super::device_management::DEVICE_MANAGEMENT;
use super::directory::{GROUP, USER};
use super::managed_device::{DETECTED_APP, MANAGED_DEVICE};
use super::mtd_connector::MOBILE_THREAT_DEFENSE_CONNECTOR;
use super::openapi::{Described, Family, Navigation};
use super::rbac::{
    DEVICE_AND_APP_MANAGEMENT_ROLE_ASSIGNMENT, DEVICE_AND_APP_MANAGEMENT_ROLE_DEFINITION, RESOURCE_OPERATION,
    ROLE_PERMISSION,
};
use super::{prop, Avail, Default, EnumType, Prop, StructType, Ty, Writable};

use Avail::{BetaOnly, Both};
use Writable::{No, Yes};

/// `deviceCompliancePolicy`: `androidDeviceOwnerCompliancePolicy` is beta only.
pub static DEVICE_COMPLIANCE_POLICY: Family = Family {
    name: "deviceCompliancePolicy",
    members: &[
        (&ANDROID_COMPLIANCE_POLICY, Both),
        (&ANDROID_WORK_PROFILE_COMPLIANCE_POLICY, Both),
        (&ANDROID_DEVICE_OWNER_COMPLIANCE_POLICY, BetaOnly),
        (&IOS_COMPLIANCE_POLICY, Both),
        (&MAC_OS_COMPLIANCE_POLICY, Both),
        (&WINDOWS10_COMPLIANCE_POLICY, Both),
    ],
};

/// The assignment filter both versions' targets carry on beta.
const FILTER_ID: Prop = prop(
    "deviceAndAppManagementAssignmentFilterId",
    Ty::String,
    BetaOnly,
    true,
    Yes,
    Default::Null,
);
const FILTER_TYPE: Prop = prop(
    "deviceAndAppManagementAssignmentFilterType",
    Ty::Enum(&DEVICE_AND_APP_MANAGEMENT_ASSIGNMENT_FILTER_TYPE),
    BetaOnly,
    false,
    Yes,
    Default::Str("none"),
);
const GROUP_ID: Prop = prop("groupId", Ty::String, Both, true, Yes, Default::Null);

pub static GROUP_ASSIGNMENT_TARGET: StructType = StructType {
    name: "groupAssignmentTarget",
    is_entity: false,
    props: &[FILTER_ID, FILTER_TYPE, GROUP_ID],
};
pub static EXCLUSION_GROUP_ASSIGNMENT_TARGET: StructType = StructType {
    name: "exclusionGroupAssignmentTarget",
    is_entity: false,
    props: &[FILTER_ID, FILTER_TYPE, GROUP_ID],
};
pub static ALL_LICENSED_USERS_ASSIGNMENT_TARGET: StructType = StructType {
    name: "allLicensedUsersAssignmentTarget",
    is_entity: false,
    props: &[FILTER_ID, FILTER_TYPE],
};
pub static ALL_DEVICES_ASSIGNMENT_TARGET: StructType = StructType {
    name: "allDevicesAssignmentTarget",
    is_entity: false,
    props: &[FILTER_ID, FILTER_TYPE],
};
pub static CONFIGURATION_MANAGER_COLLECTION_ASSIGNMENT_TARGET: StructType = StructType {
    name: "configurationManagerCollectionAssignmentTarget",
    is_entity: false,
    props: &[
        FILTER_ID,
        FILTER_TYPE,
        prop("collectionId", Ty::String, Both, true, Yes, Default::Null),
    ],
};

/// `deviceAndAppManagementAssignmentTarget`, as compliance policy assignments take it.
pub static ASSIGNMENT_TARGET: Family = Family {
    name: "deviceAndAppManagementAssignmentTarget",
    members: &[
        (&GROUP_ASSIGNMENT_TARGET, Both),
        (&EXCLUSION_GROUP_ASSIGNMENT_TARGET, Both),
        (&ALL_LICENSED_USERS_ASSIGNMENT_TARGET, Both),
        (&ALL_DEVICES_ASSIGNMENT_TARGET, Both),
        (&CONFIGURATION_MANAGER_COLLECTION_ASSIGNMENT_TARGET, Both),
    ],
};

/// The Entra `device` of an enrolled device, as a group's members show it (the properties the
/// emulator knows; Entra has more).
pub static DEVICE: StructType = StructType {
    name: "device",
    is_entity: true,
    props: &[
        prop("id", Ty::String, Both, false, No, Default::Str("")),
        prop("accountEnabled", Ty::Bool, Both, true, No, Default::Null),
        prop("deviceId", Ty::String, Both, true, No, Default::Null),
        prop("displayName", Ty::String, Both, true, No, Default::Null),
        prop("operatingSystem", Ty::String, Both, true, No, Default::Null),
        prop("operatingSystemVersion", Ty::String, Both, true, No, Default::Null),
        prop("isCompliant", Ty::Bool, Both, true, No, Default::Null),
        prop("isManaged", Ty::Bool, Both, true, No, Default::Null),
    ],
};

/// `directoryObject`, as a group's members are: users and devices.
pub static DIRECTORY_OBJECT: Family = Family {
    name: "directoryObject",
    members: &[(&USER, Both), (&DEVICE, Both)],
};

const fn param(name: &'static str, ty: Ty, avail: Avail) -> Prop {
    prop(name, ty, avail, true, Yes, Default::Null)
}

static OBLITERATION_BEHAVIOR: EnumType = EnumType {
    name: "obliterationBehavior",
    members: &[
        ("default", BetaOnly),
        ("doNotObliterate", BetaOnly),
        ("obliterateWithWarning", BetaOnly),
        ("always", BetaOnly),
        ("unknownFutureValue", BetaOnly),
    ],
};

/// The parameters of the `wipe` action, per version.
pub static WIPE_PARAMETERS: StructType = StructType {
    name: "wipeRequestBody",
    is_entity: false,
    props: &[
        param("keepEnrollmentData", Ty::Bool, Both),
        param("keepUserData", Ty::Bool, Both),
        param("macOsUnlockCode", Ty::String, Both),
        param("persistEsimDataPlan", Ty::Bool, Both),
        param("obliterationBehavior", Ty::Enum(&OBLITERATION_BEHAVIOR), BetaOnly),
        param("useProtectedWipe", Ty::Bool, BetaOnly),
    ],
};

/// `managedAppPolicy`, as `managedAppPolicies` lists it and a registration's applied and
/// intended policies are: the app protection policies the emulator serves.
pub static MANAGED_APP_POLICY: Family = Family {
    name: "managedAppPolicy",
    members: &[
        (&IOS_MANAGED_APP_PROTECTION, Both),
        (&ANDROID_MANAGED_APP_PROTECTION, Both),
    ],
};

/// The abstract `managedAppPolicy` itself, for the navigation properties typed with it (which
/// the document describes as the family).
static MANAGED_APP_POLICY_BASE: StructType = StructType {
    name: "managedAppPolicy",
    is_entity: true,
    props: &[],
};

/// `managedAppRegistration`: a protected app a user signed in to on an iOS or Android device.
pub static MANAGED_APP_REGISTRATION: Family = Family {
    name: "managedAppRegistration",
    members: &[
        (&IOS_MANAGED_APP_REGISTRATION, Both),
        (&ANDROID_MANAGED_APP_REGISTRATION, Both),
    ],
};

/// `mobileAppIdentifier`, as a targeted app, a deployment summary and a registration name the
/// app: a bundle id (iOS) or a package id (Android). Intune's `macAppIdentifier` and
/// `windowsAppIdentifier` are not served.
pub static MOBILE_APP_IDENTIFIER: Family = Family {
    name: "mobileAppIdentifier",
    members: &[
        (&IOS_MOBILE_APP_IDENTIFIER, Both),
        (&ANDROID_MOBILE_APP_IDENTIFIER, Both),
    ],
};

/// The families, by base type name: a property of the base type is described as the family.
pub static FAMILIES: &[&Family] = &[
    &DEVICE_COMPLIANCE_POLICY,
    &ASSIGNMENT_TARGET,
    &DIRECTORY_OBJECT,
    &MANAGED_APP_POLICY,
    &MANAGED_APP_REGISTRATION,
    &MOBILE_APP_IDENTIFIER,
];

/// The navigation properties the document shows.
pub static NAVIGATION: &[Navigation] = &[
    Navigation {
        owner: "deviceCompliancePolicy",
        name: "scheduledActionsForRule",
        ty: Ty::Collection(&Ty::Struct(&DEVICE_COMPLIANCE_SCHEDULED_ACTION_FOR_RULE)),
        description: "The actions for noncompliance: required on create (one rule with one and only one block action), shown with $expand=scheduledActionsForRule($expand=scheduledActionConfigurations), changed with scheduleActionsForRules.",
    },
    Navigation {
        owner: "deviceCompliancePolicy",
        name: "assignments",
        ty: Ty::Collection(&Ty::Struct(&DEVICE_COMPLIANCE_POLICY_ASSIGNMENT)),
        description: "Shown with $expand=assignments; changed with assign.",
    },
    Navigation {
        owner: "deviceCompliancePolicy",
        name: "deviceStatuses",
        ty: Ty::Collection(&Ty::Struct(&DEVICE_COMPLIANCE_DEVICE_STATUS)),
        description: "Shown with $expand=deviceStatuses.",
    },
    Navigation {
        owner: "deviceCompliancePolicy",
        name: "userStatuses",
        ty: Ty::Collection(&Ty::Struct(&DEVICE_COMPLIANCE_USER_STATUS)),
        description: "Shown with $expand=userStatuses.",
    },
    Navigation {
        owner: "deviceCompliancePolicy",
        name: "deviceStatusOverview",
        ty: Ty::Struct(&DEVICE_COMPLIANCE_DEVICE_OVERVIEW),
        description: "Shown with $expand=deviceStatusOverview.",
    },
    Navigation {
        owner: "deviceCompliancePolicy",
        name: "userStatusOverview",
        ty: Ty::Struct(&DEVICE_COMPLIANCE_USER_OVERVIEW),
        description: "Shown with $expand=userStatusOverview.",
    },
    Navigation {
        owner: "deviceComplianceScheduledActionForRule",
        name: "scheduledActionConfigurations",
        ty: Ty::Collection(&Ty::Struct(&DEVICE_COMPLIANCE_ACTION_ITEM)),
        description: "The rule's actions; shown with $expand=scheduledActionConfigurations.",
    },
    Navigation {
        owner: "notificationMessageTemplate",
        name: "localizedNotificationMessages",
        ty: Ty::Collection(&Ty::Struct(&LOCALIZED_NOTIFICATION_MESSAGE)),
        description: "Shown with $expand=localizedNotificationMessages.",
    },
    Navigation {
        owner: "iosManagedAppProtection",
        name: "apps",
        ty: Ty::Collection(&Ty::Struct(&MANAGED_MOBILE_APP)),
        description: "The protected apps: may be given inline on create, shown with $expand=apps, changed with targetApps.",
    },
    Navigation {
        owner: "iosManagedAppProtection",
        name: "assignments",
        ty: Ty::Collection(&Ty::Struct(&TARGETED_MANAGED_APP_POLICY_ASSIGNMENT)),
        description: "Shown with $expand=assignments; changed with assign (refused inline on create).",
    },
    Navigation {
        owner: "iosManagedAppProtection",
        name: "deploymentSummary",
        ty: Ty::Struct(&MANAGED_APP_POLICY_DEPLOYMENT_SUMMARY),
        description: "Read at the policy's deploymentSummary path (not with $expand).",
    },
    Navigation {
        owner: "androidManagedAppProtection",
        name: "apps",
        ty: Ty::Collection(&Ty::Struct(&MANAGED_MOBILE_APP)),
        description: "The protected apps: may be given inline on create, shown with $expand=apps, changed with targetApps.",
    },
    Navigation {
        owner: "androidManagedAppProtection",
        name: "assignments",
        ty: Ty::Collection(&Ty::Struct(&TARGETED_MANAGED_APP_POLICY_ASSIGNMENT)),
        description: "Shown with $expand=assignments; changed with assign (refused inline on create).",
    },
    Navigation {
        owner: "androidManagedAppProtection",
        name: "deploymentSummary",
        ty: Ty::Struct(&MANAGED_APP_POLICY_DEPLOYMENT_SUMMARY),
        description: "Read at the policy's deploymentSummary path (not with $expand).",
    },
    Navigation {
        owner: "managedAppRegistration",
        name: "appliedPolicies",
        ty: Ty::Collection(&Ty::Struct(&MANAGED_APP_POLICY_BASE)),
        description: "The policies that applied at the app's last check-in; shown with $expand=appliedPolicies.",
    },
    Navigation {
        owner: "managedAppRegistration",
        name: "intendedPolicies",
        ty: Ty::Collection(&Ty::Struct(&MANAGED_APP_POLICY_BASE)),
        description: "The policies that apply to the app's user and app now; shown with $expand=intendedPolicies.",
    },
    Navigation {
        owner: "managedAppRegistration",
        name: "operations",
        ty: Ty::Collection(&Ty::Struct(&MANAGED_APP_OPERATION)),
        description: "The selective wipes of the app's corporate data; shown with $expand=operations.",
    },
];

/// Every type a Graph route takes or answers, in the order `openapi.yaml` lists them.
pub static SERVED: &[Described] = &[
    Described::Struct(&DEVICE_MANAGEMENT),
    Described::Struct(&USER),
    Described::Struct(&GROUP),
    Described::Family(&DIRECTORY_OBJECT),
    Described::Struct(&MANAGED_DEVICE),
    Described::Struct(&WIPE_PARAMETERS),
    Described::Struct(&DETECTED_APP),
    Described::Struct(&MOBILE_THREAT_DEFENSE_CONNECTOR),
    Described::Family(&DEVICE_COMPLIANCE_POLICY),
    Described::Struct(&DEVICE_COMPLIANCE_POLICY_ASSIGNMENT),
    Described::Struct(&DEVICE_COMPLIANCE_SCHEDULED_ACTION_FOR_RULE),
    Described::Struct(&DEVICE_COMPLIANCE_ACTION_ITEM),
    Described::Struct(&DEVICE_COMPLIANCE_DEVICE_STATUS),
    Described::Struct(&DEVICE_COMPLIANCE_USER_STATUS),
    Described::Struct(&DEVICE_COMPLIANCE_DEVICE_OVERVIEW),
    Described::Struct(&DEVICE_COMPLIANCE_USER_OVERVIEW),
    Described::Struct(&DEVICE_COMPLIANCE_POLICY_STATE),
    Described::Struct(&NOTIFICATION_MESSAGE_TEMPLATE),
    Described::Struct(&LOCALIZED_NOTIFICATION_MESSAGE),
    Described::Struct(&DEVICE_AND_APP_MANAGEMENT_ROLE_DEFINITION),
    Described::Struct(&DEVICE_AND_APP_MANAGEMENT_ROLE_ASSIGNMENT),
    Described::Struct(&RESOURCE_OPERATION),
    Described::Struct(&ROLE_PERMISSION),
    Described::Family(&MANAGED_APP_POLICY),
    Described::Struct(&TARGETED_MANAGED_APP_POLICY_ASSIGNMENT),
    Described::Struct(&MANAGED_MOBILE_APP),
    Described::Struct(&MANAGED_APP_POLICY_DEPLOYMENT_SUMMARY),
    Described::Family(&MANAGED_APP_REGISTRATION),
    Described::Struct(&MANAGED_APP_OPERATION),
    Described::Family(&MOBILE_APP_IDENTIFIER),
];
