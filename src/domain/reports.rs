//! Intune's reports as export jobs produce them (`deviceManagement/reports/exportJobs`): the
//! reports the emulator serves, their columns (raw values and the localized `_loc` twins), the
//! `filter` syntax on their filterable columns, and the CSV and JSON files of an export.

use std::io::Write;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::domain::compliance::{compliance_status, PolicyFamily};
use crate::domain::device::ManagedDevice;

/// The reports the emulator serves, as exports and (some) as synchronous actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    DeviceCompliance,
    DeviceNonCompliance,
    Devices,
    DevicesWithoutCompliancePolicy,
    DeviceStatusByCompliacePolicy,
    DeviceStatusSummaryByCompliacePolicy,
    DevicesStatusByPolicyPlatformCompliance,
}

/// What one row of a report stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// A managed device.
    Device,
    /// A compliance policy's result on a device.
    DevicePolicy,
    /// A compliance policy, with its devices counted.
    Policy,
}

impl Report {
    pub fn parse(name: &str) -> Option<Self> {
        REPORTS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(r, _)| *r)
    }

    pub fn name(self) -> &'static str {
        REPORTS
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, n)| *n)
            .unwrap_or_default()
    }

    pub fn grain(self) -> Grain {
        match self {
            Report::DeviceStatusByCompliacePolicy | Report::DevicesStatusByPolicyPlatformCompliance => {
                Grain::DevicePolicy
            }
            Report::DeviceStatusSummaryByCompliacePolicy => Grain::Policy,
            _ => Grain::Device,
        }
    }

    /// Every column, in the order of an export whose `select` is empty.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Report::DeviceCompliance | Report::DeviceNonCompliance => DEVICE_COMPLIANCE_COLUMNS,
            Report::Devices => DEVICES_COLUMNS,
            Report::DevicesWithoutCompliancePolicy => WITHOUT_POLICY_COLUMNS,
            Report::DeviceStatusByCompliacePolicy => BY_POLICY_COLUMNS,
            Report::DeviceStatusSummaryByCompliacePolicy => SUMMARY_COLUMNS,
            Report::DevicesStatusByPolicyPlatformCompliance => BY_PLATFORM_COLUMNS,
        }
    }

    /// The columns a `filter` may name (memdocs'; for the per-policy reports, which memdocs lists
    /// without filters, those the admin center was seen sending).
    pub fn filterable(self) -> &'static [&'static str] {
        match self {
            Report::DeviceCompliance => &["ComplianceState", "OS", "OwnerType", "DeviceType"],
            Report::DeviceNonCompliance => &["OS", "OwnerType", "DeviceType", "UserId", "ComplianceState"],
            Report::Devices => &[
                "CategoryName",
                "CompliantState",
                "CreatedDate",
                "DeviceType",
                "EnrollmentType",
                "JailBroken",
                "LastContact",
                "ManagementAgents",
                "ManagementState",
                "OwnerType",
            ],
            Report::DevicesWithoutCompliancePolicy => &[],
            Report::DeviceStatusByCompliacePolicy => &["PolicyId", "PolicyStatus"],
            Report::DeviceStatusSummaryByCompliacePolicy => &["PolicyId"],
            Report::DevicesStatusByPolicyPlatformCompliance => &["PolicyId", "PolicyStatus", "PolicyPlatformType"],
        }
    }

    /// How the report localizes: as asked, except `Devices`, which "will not honor the
    /// localizationType parameter" (memdocs) and shows the text of its values.
    pub fn localization(self, asked: Localization) -> Localization {
        match self {
            Report::Devices => Localization::Replace,
            _ => asked,
        }
    }

    /// Whether a device is a row of a device report: `DeviceNonCompliance` lists the devices
    /// that are not compliant (noncompliant, in grace period, conflict, error);
    /// `DevicesWithoutCompliancePolicy` those that no compliance policy applies to.
    pub fn includes(self, d: &ManagedDevice, has_policy: bool) -> bool {
        match self {
            Report::DeviceNonCompliance => !matches!(d.compliance_state.as_str(), "compliant" | "unknown"),
            Report::DevicesWithoutCompliancePolicy => !has_policy,
            _ => true,
        }
    }
}

pub const REPORTS: &[(Report, &str)] = &[
    (Report::DeviceCompliance, "DeviceCompliance"),
    (Report::DeviceNonCompliance, "DeviceNonCompliance"),
    (Report::Devices, "Devices"),
    (Report::DevicesWithoutCompliancePolicy, "DevicesWithoutCompliancePolicy"),
    (
        Report::DeviceStatusByCompliacePolicy,
        "DeviceStatusByCompliacePolicyReport",
    ),
    (
        Report::DeviceStatusSummaryByCompliacePolicy,
        "DeviceStatusSummaryByCompliacePolicyReport",
    ),
    (
        Report::DevicesStatusByPolicyPlatformCompliance,
        "DevicesStatusByPolicyPlatformComplianceReport",
    ),
];

/// The columns of `DeviceCompliance` and `DeviceNonCompliance` (the 22 memdocs lists), in the
/// order of the files Intune writes (an observed header; `docs/reports.md`).
pub const DEVICE_COMPLIANCE_COLUMNS: &[&str] = &[
    "DeviceId",
    "IntuneDeviceId",
    "AadDeviceId",
    "PartnerDeviceId",
    "DeviceName",
    "DeviceType",
    "OSDescription",
    "OSVersion",
    "OwnerType",
    "LastContact",
    "InGracePeriodUntil",
    "IMEI",
    "SerialNumber",
    "PrimaryUser",
    "UserId",
    "UPN",
    "UserEmail",
    "UserName",
    "DeviceHealthThreatLevel",
    "RetireAfterDatetime",
    "ComplianceState",
    "OS",
];

/// `Devices` (the 66 memdocs lists, in its order: no real header was found).
pub const DEVICES_COLUMNS: &[&str] = &[
    "AndroidPatchLevel",
    "CategoryId",
    "CategoryName",
    "CertExpirationDate",
    "ClientRegistrationStatus",
    "CompliantState",
    "CreatedDate",
    "DeviceEnrollmentType",
    "DeviceId",
    "DeviceName",
    "DeviceRegistrationState",
    "DeviceState",
    "DeviceType",
    "EasAccessState",
    "EasActivationStatus",
    "EasID",
    "EasLastSyncSuccessUtc",
    "EasStateReason",
    "EncryptionStatus",
    "EncryptionStatusString",
    "EnrolledByUser",
    "EnrollmentType",
    "EntitySource",
    "ExtendedProperties",
    "GraphDeviceIsManaged",
    "HasUnlockToken",
    "IMEI",
    "InGracePeriodUntil",
    "IsManaged",
    "JailBroken",
    "JoinType",
    "LastContact",
    "LastLoggedOnUserUPN",
    "ManagedBy",
    "ManagedDeviceName",
    "ManagementAgents",
    "ManagementState",
    "Manufacturer",
    "MDMStatus",
    "MDMWinsOverGPStartTime",
    "MEID",
    "Model",
    "OS",
    "OSVersion",
    "Ownership",
    "OwnerType",
    "PhoneNumber",
    "PrimaryUser",
    "ReferenceId",
    "RetireAfterDatetime",
    "SCCMCoManagementFeatures",
    "SerialNumber",
    "SkuFamily",
    "SkuNumber",
    "StagedDeviceType",
    "StorageFree",
    "StorageTotal",
    "SubscriberCarrierNetwork",
    "SupervisedStatus",
    "SupervisedStatusString",
    "UPN",
    "UserApprovedEnrollment",
    "UserEmail",
    "UserId",
    "UserName",
    "WifiMacAddress",
];

/// `DevicesWithoutCompliancePolicy`, in the order of an observed header.
pub const WITHOUT_POLICY_COLUMNS: &[&str] = &[
    "DeviceId",
    "DeviceName",
    "DeviceModel",
    "DeviceType",
    "OSDescription",
    "OSVersion",
    "OwnerType",
    "ManagementAgents",
    "UserId",
    "LastContactedUserId",
    "PrimaryUser",
    "UPN",
    "UserEmail",
    "UserName",
    "LastContact",
    "AadDeviceId",
    "ComplianceState",
    "OS",
];

/// `DeviceStatusByCompliacePolicyReport` (memdocs' order).
pub const BY_POLICY_COLUMNS: &[&str] = &[
    "AadDeviceId",
    "DeviceId",
    "DeviceName",
    "LastContact",
    "ManagementAgents",
    "OS",
    "PolicyId",
    "PolicyStatus",
    "UPN",
    "UserId",
    "UserName",
];

/// `DeviceStatusSummaryByCompliacePolicyReport` (memdocs' order).
pub const SUMMARY_COLUMNS: &[&str] = &[
    "NumberOfCompliantDevices",
    "NumberOfNonCompliantDevices",
    "NumberOfOtherDevices",
    "OS",
    "PolicyId",
];

/// `DevicesStatusByPolicyPlatformComplianceReport` (memdocs' order).
pub const BY_PLATFORM_COLUMNS: &[&str] = &[
    "AadDeviceId",
    "ComplianceState",
    "DeviceId",
    "DeviceName",
    "InGracePeriodUntil",
    "LastContact",
    "Model",
    "OS",
    "PolicyId",
    "PolicyPlatformType",
    "PolicyStatus",
    "UPN",
];

/// Columns with a localized twin (`<column>_loc`), as the observed headers have them.
pub const LOCALIZABLE: &[&str] = &[
    "OwnerType",
    "DeviceHealthThreatLevel",
    "ComplianceState",
    "OS",
    "ManagementAgents",
    "PolicyStatus",
    "PolicyPlatformType",
];

/// `complianceState` members: their numbers (the CSDL's) and English text ("Compliant", "Not
/// compliant" and "Not evaluated" observed; the others the emulator's).
const COMPLIANCE_STATES: &[(&str, i64, &str)] = &[
    ("unknown", 0, "Not evaluated"),
    ("compliant", 1, "Compliant"),
    ("noncompliant", 2, "Not compliant"),
    ("conflict", 3, "Conflict"),
    ("error", 4, "Error"),
    ("inGracePeriod", 254, "In grace period"),
    ("configManager", 255, "Config Manager"),
];

/// `managedDeviceOwnerType` members ("Company" and "Personal" observed).
const OWNER_TYPES: &[(&str, i64, &str)] = &[
    ("unknown", 0, "Unknown"),
    ("company", 1, "Company"),
    ("personal", 2, "Personal"),
];

/// `managedDevicePartnerReportedHealthState` members (numbers from the CSDL; the text is the
/// emulator's: no sample was found).
const THREAT_STATES: &[(&str, i64, &str)] = &[
    ("unknown", 0, "Unknown"),
    ("activated", 1, "Activated"),
    ("deactivated", 2, "Deactivated"),
    ("secured", 3, "Secured"),
    ("lowSeverity", 4, "Low"),
    ("mediumSeverity", 5, "Medium"),
    ("highSeverity", 6, "High"),
    ("unresponsive", 7, "Unresponsive"),
    ("compromised", 8, "Compromised"),
    ("misconfigured", 9, "Misconfigured"),
];

/// `complianceStatus` members, a policy's result on a device (numbers from the docs; "Compliant"
/// 2 and "Not compliant" 4 observed as `PolicyStatus`; the other texts the emulator's).
const POLICY_STATUSES: &[(&str, i64, &str)] = &[
    ("unknown", 0, "Unknown"),
    ("notApplicable", 1, "Not applicable"),
    ("compliant", 2, "Compliant"),
    ("remediated", 3, "Remediated"),
    ("nonCompliant", 4, "Not compliant"),
    ("error", 5, "Error"),
    ("conflict", 6, "Conflict"),
    ("notAssigned", 7, "Not assigned"),
];

/// `managementAgentType` members (numbers from the CSDL; texts the emulator's).
const MANAGEMENT_AGENTS: &[(&str, i64, &str)] = &[
    ("eas", 1, "EAS"),
    ("mdm", 2, "MDM"),
    ("easMdm", 3, "EAS/MDM"),
    ("intuneClient", 4, "Intune client"),
    ("easIntuneClient", 5, "EAS/Intune client"),
    ("configurationManagerClient", 8, "ConfigMgr"),
    ("configurationManagerClientMdm", 10, "Co-managed"),
    ("configurationManagerClientMdmEas", 11, "Co-managed/EAS"),
    ("unknown", 16, "Unknown"),
    ("jamf", 32, "Jamf"),
    ("googleCloudDevicePolicyController", 64, "Google"),
];

/// `managementState` members (numbers from the CSDL; texts the emulator's).
const MANAGEMENT_STATES: &[(&str, i64, &str)] = &[
    ("managed", 0, "Managed"),
    ("retirePending", 1, "Retire pending"),
    ("retireFailed", 2, "Retire failed"),
    ("wipePending", 3, "Wipe pending"),
    ("wipeFailed", 4, "Wipe failed"),
    ("unhealthy", 5, "Unhealthy"),
    ("deletePending", 6, "Delete pending"),
    ("retireIssued", 7, "Retire issued"),
    ("wipeIssued", 8, "Wipe issued"),
    ("wipeCanceled", 9, "Wipe canceled"),
    ("retireCanceled", 10, "Retire canceled"),
    ("discovered", 11, "Discovered"),
];

/// `policyPlatformType` members of the compliance policy families (numbers from the docs; 6
/// "Windows10AndLater" and 2 "iOS" observed as `PolicyPlatformType`).
const PLATFORM_TYPES: &[(&str, i64, &str)] = &[
    ("android", 0, "Android"),
    ("androidForWork", 1, "AndroidForWork"),
    ("iOS", 2, "iOS"),
    ("macOS", 3, "macOS"),
    ("windows10AndLater", 6, "Windows10AndLater"),
    ("androidWorkProfile", 7, "AndroidWorkProfile"),
    ("all", 100, "All"),
];

fn members(column: &str) -> &'static [(&'static str, i64, &'static str)] {
    match column {
        "ComplianceState" | "CompliantState" => COMPLIANCE_STATES,
        "OwnerType" | "Ownership" => OWNER_TYPES,
        "DeviceHealthThreatLevel" => THREAT_STATES,
        "PolicyStatus" => POLICY_STATUSES,
        "ManagementAgents" => MANAGEMENT_AGENTS,
        "ManagementState" => MANAGEMENT_STATES,
        "PolicyPlatformType" => PLATFORM_TYPES,
        _ => &[],
    }
}

/// A cell: text, the number of an enumeration member with its localized name, a code with
/// its localized text (`OS`), or a count.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Enum(i64, &'static str),
    Coded(String, String),
    Count(i64),
}

fn member(column: &str, name: &str) -> Cell {
    members(column)
        .iter()
        .find(|(m, _, _)| *m == name)
        .map_or(Cell::Enum(0, "Unknown"), |(_, n, text)| Cell::Enum(*n, text))
}

/// Dates as the reports write them: UTC, to the second, without an offset (observed:
/// `2022-12-01T18:09:01`).
fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// An OS as the report codes it and names it (`IOS`/`iOS` and `Windows`/`Windows` observed;
/// `MacOS`, as a live exporter saw a platform code named; `Android` the emulator's).
fn os_coded(operating_system: &str) -> Cell {
    let (code, text) = match operating_system.to_ascii_lowercase().as_str() {
        "ios" | "ipados" => ("IOS", "iOS"),
        "macos" => ("MacOS", "macOS"),
        "windows" => ("Windows", "Windows"),
        "android" => ("Android", "Android"),
        _ => ("Other", "Other"),
    };
    Cell::Coded(code.to_string(), text.to_string())
}

/// The OS of a compliance policy family.
fn family_os(family: PolicyFamily) -> Cell {
    os_coded(match family {
        PolicyFamily::Ios => "iOS",
        PolicyFamily::MacOs => "macOS",
        PolicyFamily::Windows10 => "Windows",
        PolicyFamily::Android | PolicyFamily::AndroidWorkProfile | PolicyFamily::AndroidDeviceOwner => "Android",
    })
}

/// A compliance policy family's `policyPlatformType` (fully managed Android as `androidForWork`,
/// the emulator's choice).
fn platform_type(family: PolicyFamily) -> Cell {
    member(
        "PolicyPlatformType",
        match family {
            PolicyFamily::Android => "android",
            PolicyFamily::AndroidDeviceOwner => "androidForWork",
            PolicyFamily::Ios => "iOS",
            PolicyFamily::MacOs => "macOS",
            PolicyFamily::Windows10 => "windows10AndLater",
            PolicyFamily::AndroidWorkProfile => "androidWorkProfile",
        },
    )
}

/// The `DeviceType` code (a number, no `_loc`, as observed), in the Intune Data Warehouse's
/// device types: iPhone 8, iPad 9, Android 11, Android for Work 17, Android Enterprise 18,
/// Mac (MDM) 14, Windows desktop 0.
pub fn device_type(d: &ManagedDevice) -> u8 {
    use crate::domain::device::Platform;
    match d.platform {
        Platform::Ios
            if d.model
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("ipad")) =>
        {
            9
        }
        Platform::Ios => 8,
        Platform::AndroidDeviceAdministrator => 11,
        Platform::AndroidWorkProfile => 17,
        Platform::AndroidDeviceOwner => 18,
        Platform::MacOs => 14,
        Platform::Windows => 0,
    }
}

/// A Graph property of the device as report text (`True`/`False` for booleans).
fn property(d: &ManagedDevice, name: &str) -> Cell {
    Cell::Text(match d.properties.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    })
}

/// One cell of a device's row. Columns the emulator has no data for are empty.
pub fn device_cell(column: &str, d: &ManagedDevice) -> Cell {
    let text = |s: &str| Cell::Text(s.to_string());
    let opt = |s: &Option<String>| Cell::Text(s.clone().unwrap_or_default());
    match column {
        "DeviceId" | "IntuneDeviceId" => text(&d.id),
        "AadDeviceId" | "ReferenceId" => text(&d.azure_ad_device_id),
        "DeviceName" => text(&d.device_name),
        "DeviceType" => Cell::Text(device_type(d).to_string()),
        "OSDescription" => text(&d.operating_system),
        "OS" => os_coded(&d.operating_system),
        "OSVersion" => text(&d.os_version),
        "OwnerType" | "Ownership" => member(column, d.owner_type.as_str()),
        "LastContact" => Cell::Text(time(d.last_sync_at)),
        "CreatedDate" => Cell::Text(time(d.enrolled_at)),
        "InGracePeriodUntil" => Cell::Text(d.compliance_grace_expires_at.map(time).unwrap_or_default()),
        "IMEI" => opt(&d.imei),
        "SerialNumber" => opt(&d.serial_number),
        "PhoneNumber" => opt(&d.phone_number),
        "Model" | "DeviceModel" => opt(&d.model),
        "Manufacturer" => opt(&d.manufacturer),
        "PrimaryUser" | "UserId" | "LastContactedUserId" => opt(&d.user_id),
        "UPN" | "LastLoggedOnUserUPN" => opt(&d.user_principal_name),
        "UserEmail" => opt(&d.email_address),
        "UserName" => opt(&d.user_display_name),
        "DeviceHealthThreatLevel" => member(column, &d.partner_threat_state),
        // The Entra device id is the id partners report the device by.
        "PartnerDeviceId" => text(&d.azure_ad_device_id),
        "ComplianceState" | "CompliantState" => member(column, &d.compliance_state),
        "ManagementState" => member(column, &d.management_state),
        "ManagementAgents" => match d.properties.get("managementAgent").and_then(Value::as_str) {
            Some(agent) => member(column, agent),
            None => member(column, "mdm"),
        },
        "IsManaged" | "GraphDeviceIsManaged" => text("True"),
        "ManagedBy" => text("Intune"),
        "ManagedDeviceName" => property(d, "managedDeviceName"),
        "AndroidPatchLevel" => property(d, "androidSecurityPatchLevel"),
        "CategoryName" => property(d, "deviceCategoryDisplayName"),
        "DeviceEnrollmentType" | "EnrollmentType" => property(d, "deviceEnrollmentType"),
        "DeviceRegistrationState" => property(d, "deviceRegistrationState"),
        "EasAccessState" => property(d, "exchangeAccessState"),
        "EasStateReason" => property(d, "exchangeAccessStateReason"),
        "EasActivationStatus" => property(d, "easActivated"),
        "EasID" => property(d, "easDeviceId"),
        "EasLastSyncSuccessUtc" => property(d, "exchangeLastSuccessfulSyncDateTime"),
        "EncryptionStatus" | "EncryptionStatusString" => property(d, "isEncrypted"),
        "EnrolledByUser" => property(d, "enrolledByUserPrincipalName"),
        "JailBroken" => property(d, "jailBroken"),
        "JoinType" => property(d, "joinType"),
        "MEID" => property(d, "meid"),
        "SkuFamily" => property(d, "skuFamily"),
        "SkuNumber" => property(d, "skuNumber"),
        "StorageFree" => property(d, "freeStorageSpaceInBytes"),
        "StorageTotal" => property(d, "totalStorageSpaceInBytes"),
        "SubscriberCarrierNetwork" => property(d, "subscriberCarrier"),
        "SupervisedStatus" | "SupervisedStatusString" => property(d, "isSupervised"),
        "WifiMacAddress" => property(d, "wiFiMacAddress"),
        _ => text(""),
    }
}

/// A compliance policy's result on a device, as the per-policy reports show it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    pub policy_id: String,
    /// The stored state: `compliant`, `inGracePeriod`, `noncompliant` or `notApplicable`.
    pub state: String,
    /// The policy's family (none when the policy is gone).
    pub family: Option<PolicyFamily>,
}

/// A compliance policy with its devices counted (`DeviceStatusSummaryByCompliacePolicyReport`):
/// compliant, not compliant (in a grace period or not), and the rest (not applicable).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySummary {
    pub policy_id: String,
    pub family: PolicyFamily,
    pub compliant: i64,
    pub noncompliant: i64,
    pub other: i64,
}

impl PolicySummary {
    pub fn new(policy_id: &str, family: PolicyFamily) -> Self {
        PolicySummary {
            policy_id: policy_id.to_string(),
            family,
            compliant: 0,
            noncompliant: 0,
            other: 0,
        }
    }

    /// Counts `n` devices in a stored state for the policy.
    pub fn count(&mut self, state: &str, n: i64) {
        match compliance_status(state) {
            "compliant" => self.compliant += n,
            "nonCompliant" => self.noncompliant += n,
            _ => self.other += n,
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone)]
pub enum Row {
    Device(Arc<ManagedDevice>),
    DevicePolicy(Arc<ManagedDevice>, PolicyResult),
    Policy(PolicySummary),
}

/// A row's cell in `column` (one of its report's columns).
pub fn cell(column: &str, row: &Row) -> Cell {
    match row {
        Row::Device(d) => device_cell(column, d),
        Row::DevicePolicy(d, p) => match column {
            "PolicyId" => Cell::Text(p.policy_id.clone()),
            "PolicyStatus" => member(column, compliance_status(&p.state)),
            "PolicyPlatformType" => p.family.map_or(Cell::Enum(0, "Unknown"), platform_type),
            _ => device_cell(column, d),
        },
        Row::Policy(s) => match column {
            "PolicyId" => Cell::Text(s.policy_id.clone()),
            "OS" => family_os(s.family),
            "NumberOfCompliantDevices" => Cell::Count(s.compliant),
            "NumberOfNonCompliantDevices" => Cell::Count(s.noncompliant),
            "NumberOfOtherDevices" => Cell::Count(s.other),
            _ => Cell::Text(String::new()),
        },
    }
}

/// `localizationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Localization {
    /// Each localizable column holds the raw number, and `<column>_loc` the localized text.
    AdditionalColumn,
    /// Each localizable column holds the localized text.
    Replace,
}

impl Localization {
    /// Accepted in any case (memdocs' examples send PascalCase).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "localizedvaluesasadditionalcolumn" => Some(Localization::AdditionalColumn),
            "replacelocalizablevalues" => Some(Localization::Replace),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Localization::AdditionalColumn => "localizedValuesAsAdditionalColumn",
            Localization::Replace => "replaceLocalizableValues",
        }
    }
}

/// The file's columns: the selected ones, each localizable one followed by its `_loc` twin
/// when localized values come as an additional column.
pub fn file_columns(selected: &[&'static str], localization: Localization) -> Vec<String> {
    let mut out = Vec::with_capacity(selected.len() * 2);
    for c in selected {
        out.push((*c).to_string());
        if localization == Localization::AdditionalColumn && LOCALIZABLE.contains(c) {
            out.push(format!("{c}_loc"));
        }
    }
    out
}

/// A row's cells, cell by cell of `file_columns`.
pub fn row_cells(selected: &[&'static str], localization: Localization, row: &Row) -> Vec<Value> {
    let mut out = Vec::with_capacity(selected.len() * 2);
    for c in selected {
        match (cell(c, row), localization) {
            (Cell::Text(t), _) => out.push(Value::String(t)),
            (Cell::Count(n), _) => out.push(Value::from(n)),
            (Cell::Enum(n, text), Localization::AdditionalColumn) => {
                out.push(Value::from(n));
                out.push(Value::String(text.to_string()));
            }
            (Cell::Enum(_, text), Localization::Replace) => out.push(Value::String(text.to_string())),
            (Cell::Coded(code, text), Localization::AdditionalColumn) => {
                out.push(Value::String(code));
                out.push(Value::String(text));
            }
            (Cell::Coded(_, text), Localization::Replace) => out.push(Value::String(text)),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// filter
// ---------------------------------------------------------------------------------------------

/// A report `filter`: comparisons of a filterable column with a quoted value (`eq`, `ne`),
/// combined with `and` and `or` and grouped with parentheses, as Intune's examples write them:
/// `(ComplianceState eq '2') and ((OwnerType eq '1') or (OwnerType eq '2'))`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        column: &'static str,
        negate: bool,
        value: String,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Quoted(String),
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => return Err("A quoted value in the filter is not closed.".into()),
                    }
                }
                out.push(Token::Quoted(s));
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        s.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(s));
            }
            other => return Err(format!("Unexpected character '{other}' in the filter.")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    filterable: &'a [&'static str],
    report: &'a str,
}

impl Parser<'_> {
    fn keyword(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expression(&mut self) -> Result<Filter, String> {
        let mut left = self.conjunction()?;
        while self.keyword("or") {
            self.at += 1;
            let right = self.conjunction()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Filter, String> {
        let mut left = self.term()?;
        while self.keyword("and") {
            self.at += 1;
            let right = self.term()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Filter, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.expression()?;
                if self.tokens.get(self.at) != Some(&Token::Close) {
                    return Err("A parenthesis in the filter is not closed.".into());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Word(name)) if self.filterable.is_empty() => {
                Err(format!("The {} report cannot be filtered ('{name}').", self.report))
            }
            Some(Token::Word(name)) => {
                let column = self
                    .filterable
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&name))
                    .copied()
                    .ok_or_else(|| {
                        format!(
                            "The column '{name}' cannot be filtered in the {} report; filter on {}.",
                            self.report,
                            self.filterable.join(", ")
                        )
                    })?;
                self.at += 1;
                let negate = match self.tokens.get(self.at) {
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("eq") => false,
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("ne") => true,
                    _ => return Err(format!("Expected 'eq' or 'ne' after '{column}' in the filter.")),
                };
                self.at += 1;
                let value = match self.tokens.get(self.at) {
                    Some(Token::Quoted(v)) => v.clone(),
                    _ => {
                        return Err(format!(
                            "Expected a quoted value after '{column}' in the filter, as in ({column} eq '1')."
                        ))
                    }
                };
                self.at += 1;
                Ok(Filter::Compare { column, negate, value })
            }
            _ => Err("Expected a comparison such as (OwnerType eq '1') in the filter.".into()),
        }
    }
}

/// Parses a report's `filter`.
pub fn parse_filter(text: &str, report: Report) -> Result<Filter, String> {
    let mut p = Parser {
        tokens: tokens(text)?,
        at: 0,
        filterable: report.filterable(),
        report: report.name(),
    };
    let f = p.expression()?;
    if p.at != p.tokens.len() {
        return Err("The filter has text after its end; combine comparisons with 'and' or 'or'.".into());
    }
    Ok(f)
}

impl Filter {
    /// A comparison matches the raw value (a member's number, as the file shows it) or, for
    /// enumerations, the localized or Graph name, in any case.
    pub fn matches(&self, row: &Row) -> bool {
        match self {
            Filter::Compare { column, negate, value } => {
                let hit = match cell(column, row) {
                    Cell::Text(t) => t.eq_ignore_ascii_case(value),
                    Cell::Count(n) => value.trim() == n.to_string(),
                    Cell::Coded(code, text) => code.eq_ignore_ascii_case(value) || text.eq_ignore_ascii_case(value),
                    Cell::Enum(n, text) => {
                        value.trim() == n.to_string()
                            || text.eq_ignore_ascii_case(value)
                            || members(column)
                                .iter()
                                .any(|(m, k, _)| *k == n && m.eq_ignore_ascii_case(value))
                    }
                };
                hit != *negate
            }
            Filter::And(a, b) => a.matches(row) && b.matches(row),
            Filter::Or(a, b) => a.matches(row) || b.matches(row),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

fn csv_field(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// An export's zip, written as the rows come: one file, named after the job, holding CSV in
/// UTF-8 with a byte order mark and a header row (as observed; CRLF line ends), or JSON as
/// `{"values": [row objects]}` (the emulator's choice: unconfirmed). Only the compressed zip is
/// held in memory, never the rows.
pub struct ExportWriter {
    zip: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    format: Format,
    columns: Vec<String>,
    rows: u64,
}

fn io_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl ExportWriter {
    pub fn start(job_id: &str, format: Format, columns: Vec<String>) -> Result<Self, String> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file(format!("{job_id}.{}", format.as_str()), options)
            .map_err(io_error)?;
        let head = match format {
            Format::Csv => {
                let header: Vec<String> = columns.iter().map(|c| csv_field(&Value::String(c.clone()))).collect();
                format!("\u{feff}{}\r\n", header.join(","))
            }
            Format::Json => "{\"values\":[".to_string(),
        };
        zip.write_all(head.as_bytes()).map_err(io_error)?;
        Ok(ExportWriter {
            zip,
            format,
            columns,
            rows: 0,
        })
    }

    /// One row, cell by cell of the columns.
    pub fn row(&mut self, cells: Vec<Value>) -> Result<(), String> {
        let line = match self.format {
            Format::Csv => {
                let fields: Vec<String> = cells.iter().map(csv_field).collect();
                format!("{}\r\n", fields.join(","))
            }
            Format::Json => {
                let m: Map<String, Value> = self.columns.iter().cloned().zip(cells).collect();
                let sep = if self.rows == 0 { "" } else { "," };
                format!("{sep}{}", Value::Object(m))
            }
        };
        self.rows += 1;
        self.zip.write_all(line.as_bytes()).map_err(io_error)
    }

    /// The zip's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        if self.format == Format::Json {
            self.zip.write_all(b"]}").map_err(io_error)?;
        }
        Ok(self.zip.finish().map_err(io_error)?.into_inner())
    }
}

/// What an export job was asked for (its request's fields, validated).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequest {
    pub format: String,
    pub localization_type: String,
    /// The columns asked for, in their canonical spelling (empty: every column).
    pub select: Vec<String>,
    pub filter: Option<String>,
    pub search: Option<String>,
}

/// An export job (`deviceManagementExportJob`), without its file.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportJob {
    pub tenant_id: String,
    /// `<ReportName>_<guid>`.
    pub id: String,
    pub report_name: String,
    pub request: ExportRequest,
    /// `notStarted`, `inProgress`, `completed` or `failed`.
    pub status: String,
    pub requested_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The secret the file's url carries, as a shared access signature does.
    pub token: Option<String>,
}

/// How long a completed export's url serves its file, on the tenant's clock.
/// (Microsoft's one example expires about six hours after the request.)
pub const EXPORT_LIFETIME_HOURS: i64 = 6;

/// Whether a row matches a `search` (beta): its device's name, user or ids, or its policy's
/// id, contain it.
pub fn search_matches(search: &str, row: &Row) -> bool {
    let s = search.to_ascii_lowercase();
    let hit = |v: &str| v.to_ascii_lowercase().contains(&s);
    let device = |d: &ManagedDevice| {
        [
            Some(d.device_name.as_str()),
            d.user_principal_name.as_deref(),
            d.user_display_name.as_deref(),
            Some(d.id.as_str()),
            Some(d.azure_ad_device_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .any(hit)
    };
    match row {
        Row::Device(d) => device(d),
        Row::DevicePolicy(d, p) => device(d) || hit(&p.policy_id),
        Row::Policy(p) => hit(&p.policy_id),
    }
}

// ---------------------------------------------------------------------------------------------
// Synchronous report actions (`get*Report`)
// ---------------------------------------------------------------------------------------------

/// A column's `PropertyType` in a synchronous report's `Schema` (observed: `ComplianceState` a
/// String holding the number, `OwnerType` and `PolicyPlatformType` Int32, counts Int64; the rest
/// follow).
pub fn property_type(column: &str) -> &'static str {
    match column {
        "OwnerType"
        | "DeviceHealthThreatLevel"
        | "DeviceType"
        | "PolicyStatus"
        | "PolicyPlatformType"
        | "ManagementAgents" => "Int32",
        "NumberOfCompliantDevices" | "NumberOfNonCompliantDevices" | "NumberOfOtherDevices" => "Int64",
        "LastContact" | "InGracePeriodUntil" | "RetireAfterDatetime" | "CreatedDate" => "DateTime",
        _ => "String",
    }
}

/// A row in a synchronous report: its cells with `_loc` twins after the localizable ones (as
/// `file_columns` with `localizedValuesAsAdditionalColumn`), typed as `property_type` says, with
/// `null` for empty dates.
pub fn report_row(selected: &[&'static str], row: &Row) -> Vec<Value> {
    let mut out = Vec::with_capacity(selected.len() * 2);
    for c in selected {
        match cell(c, row) {
            Cell::Text(t) if property_type(c) == "DateTime" && t.is_empty() => out.push(Value::Null),
            Cell::Text(t) if property_type(c) == "Int32" => {
                out.push(t.parse::<i64>().map(Value::from).unwrap_or(Value::String(t)))
            }
            Cell::Text(t) => out.push(Value::String(t)),
            Cell::Count(n) => out.push(Value::from(n)),
            Cell::Enum(n, text) => {
                out.push(if property_type(c) == "String" {
                    Value::String(n.to_string())
                } else {
                    Value::from(n)
                });
                out.push(Value::String(text.to_string()));
            }
            Cell::Coded(code, text) => {
                out.push(Value::String(code));
                out.push(Value::String(text));
            }
        }
    }
    out
}

/// The `Schema` of a synchronous report over `selected`.
pub fn report_schema(selected: &[&'static str]) -> Vec<Value> {
    let mut out = Vec::new();
    for c in selected {
        out.push(serde_json::json!({ "Column": c, "PropertyType": property_type(c) }));
        if LOCALIZABLE.contains(c) {
            out.push(serde_json::json!({ "Column": format!("{c}_loc"), "PropertyType": "String" }));
        }
    }
    out
}

/// An `orderBy` entry: a report column and its direction (`asc` when not said).
pub fn parse_order(entry: &str, columns: &[&'static str]) -> Result<(&'static str, bool), String> {
    let mut parts = entry.split_whitespace();
    let name = parts.next().unwrap_or_default();
    let column = columns
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| format!("Cannot order by '{name}': it is not a column of the report."))?;
    let descending = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("Unknown order '{other}' for '{column}': use asc or desc.")),
    };
    if parts.next().is_some() {
        return Err(format!("Cannot order by '{entry}'."));
    }
    Ok((column, descending))
}

/// Compares two rows by a column as the report shows it (numbers as numbers).
pub fn compare_by(column: &str, a: &Row, b: &Row) -> std::cmp::Ordering {
    let key = |r: &Row| match cell(column, r) {
        Cell::Enum(n, _) | Cell::Count(n) => (n, String::new()),
        Cell::Text(t) => (t.parse::<i64>().unwrap_or(i64::MIN), t.to_ascii_lowercase()),
        Cell::Coded(c, _) => (i64::MIN, c.to_ascii_lowercase()),
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_intune_writes_them_and_refuse_other_columns() {
        let f = parse_filter(
            "(ComplianceState eq '2') and ((OwnerType eq '1') or (ownertype eq 'Personal'))",
            Report::DeviceCompliance,
        )
        .unwrap();
        assert!(matches!(f, Filter::And(_, _)));
        let e = parse_filter("(UserId eq 'x')", Report::DeviceCompliance).unwrap_err();
        assert!(e.contains("cannot be filtered"), "{e}");
        assert!(parse_filter("(UserId eq 'x')", Report::DeviceNonCompliance).is_ok());
        assert!(parse_filter("(OS eq 'iOS'", Report::DeviceCompliance).is_err());
        assert!(parse_filter("OS eq iOS", Report::DeviceCompliance).is_err());
        assert!(parse_filter("(OS eq 'iOS') OS", Report::DeviceCompliance).is_err());
        assert!(parse_filter("(OS gt 'iOS')", Report::DeviceCompliance).is_err());
    }

    #[test]
    fn additional_columns_follow_their_localizable_column() {
        let cols = file_columns(
            &["DeviceName", "ComplianceState", "DeviceHealthThreatLevel"],
            Localization::AdditionalColumn,
        );
        assert_eq!(
            cols,
            [
                "DeviceName",
                "ComplianceState",
                "ComplianceState_loc",
                "DeviceHealthThreatLevel",
                "DeviceHealthThreatLevel_loc"
            ]
        );
        // Every column, as the observed header has them.
        assert_eq!(
            file_columns(DEVICE_COMPLIANCE_COLUMNS, Localization::AdditionalColumn).join(","),
            "DeviceId,IntuneDeviceId,AadDeviceId,PartnerDeviceId,DeviceName,DeviceType,OSDescription,OSVersion,OwnerType,OwnerType_loc,LastContact,InGracePeriodUntil,IMEI,SerialNumber,PrimaryUser,UserId,UPN,UserEmail,UserName,DeviceHealthThreatLevel,DeviceHealthThreatLevel_loc,RetireAfterDatetime,ComplianceState,ComplianceState_loc,OS,OS_loc"
        );
        let cols = file_columns(&["ComplianceState"], Localization::Replace);
        assert_eq!(cols, ["ComplianceState"]);
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_json_is_one_document() {
        use std::io::Read;
        let read = |zip: Vec<u8>| {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
            assert_eq!(archive.len(), 1);
            let mut file = archive.by_index(0).unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            (file.name().to_string(), text)
        };
        let rows = [
            vec![Value::from("x, y"), Value::from(3)],
            vec![Value::from("say \"hi\""), Value::from("")],
        ];
        let mut w = ExportWriter::start("J_1", Format::Csv, vec!["A".into(), "B".into()]).unwrap();
        for r in &rows {
            w.row(r.clone()).unwrap();
        }
        let (name, text) = read(w.finish().unwrap());
        assert_eq!(name, "J_1.csv");
        assert_eq!(text, "\u{feff}A,B\r\n\"x, y\",3\r\n\"say \"\"hi\"\"\",\r\n");
        let mut w = ExportWriter::start("J_2", Format::Json, vec!["A".into(), "B".into()]).unwrap();
        for r in &rows {
            w.row(r.clone()).unwrap();
        }
        let (name, text) = read(w.finish().unwrap());
        assert_eq!(name, "J_2.json");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["values"][0], serde_json::json!({ "A": "x, y", "B": 3 }));
        assert_eq!(doc["values"].as_array().unwrap().len(), 2);
        let empty = ExportWriter::start("J_3", Format::Json, vec!["A".into()]).unwrap();
        let (_, text) = read(empty.finish().unwrap());
        assert_eq!(text, "{\"values\":[]}");
    }

    fn iphone() -> ManagedDevice {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        ManagedDevice {
            tenant_id: "t".into(),
            id: "d1".into(),
            device_name: "Alice's iPhone".into(),
            operating_system: "iOS".into(),
            os_version: "18.1".into(),
            platform: crate::domain::device::Platform::Ios,
            owner_type: crate::domain::device::OwnerType::Company,
            user_id: Some("u1".into()),
            user_principal_name: Some("alice@contoso.com".into()),
            user_display_name: Some("Alice".into()),
            email_address: None,
            azure_ad_device_id: "e1".into(),
            model: Some("iPhone 15".into()),
            manufacturer: Some("Apple".into()),
            serial_number: None,
            imei: None,
            phone_number: None,
            enrolled_at: t,
            last_sync_at: t,
            compliance_state: "noncompliant".into(),
            compliance_grace_expires_at: None,
            partner_threat_state: "highSeverity".into(),
            management_state: "managed".into(),
            properties: Map::new(),
        }
    }

    #[test]
    fn devices_without_a_policy_have_the_observed_header() {
        assert_eq!(
            file_columns(
                Report::DevicesWithoutCompliancePolicy.columns(),
                Localization::AdditionalColumn
            )
            .join(","),
            "DeviceId,DeviceName,DeviceModel,DeviceType,OSDescription,OSVersion,OwnerType,OwnerType_loc,ManagementAgents,ManagementAgents_loc,UserId,LastContactedUserId,PrimaryUser,UPN,UserEmail,UserName,LastContact,AadDeviceId,ComplianceState,ComplianceState_loc,OS,OS_loc"
        );
        let e = parse_filter("(OS eq 'iOS')", Report::DevicesWithoutCompliancePolicy).unwrap_err();
        assert!(e.contains("cannot be filtered"), "{e}");
        // `Devices` shows text whatever was asked.
        assert_eq!(
            Report::Devices.localization(Localization::AdditionalColumn),
            Localization::Replace
        );
    }

    #[test]
    fn a_policy_result_is_a_compliance_status_and_summaries_count_by_it() {
        let row = |state: &str, family| {
            Row::DevicePolicy(
                Arc::new(iphone()),
                PolicyResult {
                    policy_id: "p1".into(),
                    state: state.into(),
                    family,
                },
            )
        };
        // In its grace period a device already fails the policy, as Graph's deviceStatuses say.
        assert_eq!(
            cell("PolicyStatus", &row("inGracePeriod", Some(PolicyFamily::Ios))),
            Cell::Enum(4, "Not compliant")
        );
        assert_eq!(
            cell("PolicyStatus", &row("compliant", None)),
            Cell::Enum(2, "Compliant")
        );
        assert_eq!(
            cell("PolicyPlatformType", &row("compliant", Some(PolicyFamily::Windows10))),
            Cell::Enum(6, "Windows10AndLater")
        );
        let f = parse_filter(
            "(PolicyId eq 'p1') and (PolicyStatus eq '4')",
            Report::DeviceStatusByCompliacePolicy,
        )
        .unwrap();
        assert!(f.matches(&row("noncompliant", None)));
        assert!(!f.matches(&row("notApplicable", None)));
        let mut s = PolicySummary::new("p1", PolicyFamily::Ios);
        s.count("compliant", 3);
        s.count("inGracePeriod", 1);
        s.count("noncompliant", 2);
        s.count("notApplicable", 5);
        assert_eq!((s.compliant, s.noncompliant, s.other), (3, 3, 5));
        let summary = Row::Policy(s);
        assert_eq!(cell("NumberOfOtherDevices", &summary), Cell::Count(5));
        assert_eq!(cell("OS", &summary), Cell::Coded("IOS".into(), "iOS".into()));
    }
}
