//! Managed devices as Intune keeps them, and their app inventory.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The compliance-policy family a device belongs to: it decides which policy types apply and
/// which MTD connector toggle covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    AndroidDeviceAdministrator,
    AndroidWorkProfile,
    AndroidDeviceOwner,
    Ios,
    MacOs,
    Windows,
}

pub const PLATFORMS: &[Platform] = &[
    Platform::AndroidDeviceAdministrator,
    Platform::AndroidWorkProfile,
    Platform::AndroidDeviceOwner,
    Platform::Ios,
    Platform::MacOs,
    Platform::Windows,
];

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::AndroidDeviceAdministrator => "androidDeviceAdministrator",
            Platform::AndroidWorkProfile => "androidWorkProfile",
            Platform::AndroidDeviceOwner => "androidDeviceOwner",
            Platform::Ios => "iOS",
            Platform::MacOs => "macOS",
            Platform::Windows => "windows",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        PLATFORMS.iter().copied().find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// The family an operating system enrolls into when the caller does not say: Android
    /// Enterprise work profile is Intune's default for personal Android devices, fully managed
    /// (device owner) for corporate ones.
    pub fn default_for(operating_system: &str, owner: OwnerType) -> Option<Self> {
        match operating_system.to_ascii_lowercase().as_str() {
            "ios" | "ipados" => Some(Platform::Ios),
            "macos" => Some(Platform::MacOs),
            "windows" => Some(Platform::Windows),
            "android" => Some(if owner == OwnerType::Company {
                Platform::AndroidDeviceOwner
            } else {
                Platform::AndroidWorkProfile
            }),
            _ => None,
        }
    }

    /// Whether a family may run an operating system.
    pub fn runs(self, operating_system: &str) -> bool {
        Platform::default_for(operating_system, OwnerType::Personal)
            .is_some_and(|p| p.is_android() == self.is_android() && (self.is_android() || p == self))
    }

    pub fn is_android(self) -> bool {
        matches!(
            self,
            Platform::AndroidDeviceAdministrator | Platform::AndroidWorkProfile | Platform::AndroidDeviceOwner
        )
    }
}

/// The operating system names Intune reports, in their casing.
pub fn canonical_operating_system(s: &str) -> Option<&'static str> {
    ["iOS", "iPadOS", "Android", "macOS", "Windows"]
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(s))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerType {
    Company,
    Personal,
}

impl OwnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Company => "company",
            OwnerType::Personal => "personal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "company" | "corporate" => Some(OwnerType::Company),
            "personal" => Some(OwnerType::Personal),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManagedDevice {
    pub tenant_id: String,
    pub id: String,
    pub device_name: String,
    pub operating_system: String,
    pub os_version: String,
    pub platform: Platform,
    pub owner_type: OwnerType,
    pub user_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    pub email_address: Option<String>,
    pub azure_ad_device_id: String,
    pub model: Option<String>,
    pub manufacturer: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub phone_number: Option<String>,
    pub enrolled_at: DateTime<Utc>,
    pub last_sync_at: DateTime<Utc>,
    /// `complianceState` member name.
    pub compliance_state: String,
    pub compliance_grace_expires_at: Option<DateTime<Utc>>,
    /// `partnerReportedThreatState` member name.
    pub partner_threat_state: String,
    /// `managementState` member name.
    pub management_state: String,
    /// Every other Graph property (`deviceActionResults`, `notes`, `jailBroken`, ...).
    pub properties: Map<String, Value>,
}

/// One app of a device's inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceApp {
    pub bundle_id: String,
    pub display_name: String,
    pub version: String,
    /// Installed and managed by Intune (as opposed to installed by the user).
    pub managed: bool,
    pub size_in_bytes: i64,
    pub publisher: Option<String>,
}

/// The `detectedApp` id of an app: Intune groups the inventory by name, version and platform,
/// and so does this stable hash of the three.
pub fn detected_app_id(platform: &str, display_name: &str, version: &str) -> String {
    let h = crate::domain::tenant::hash_secret(&format!("{platform}\u{1f}{display_name}\u{1f}{version}"));
    h[..44].to_string()
}

/// The `detectedAppPlatformType` of a device family.
pub fn detected_app_platform(p: Platform) -> &'static str {
    match p {
        Platform::AndroidDeviceAdministrator => "androidDeviceAdministrator",
        Platform::AndroidWorkProfile => "androidWorkProfile",
        Platform::AndroidDeviceOwner => "androidDedicatedAndFullyManaged",
        Platform::Ios => "ios",
        Platform::MacOs => "macOS",
        Platform::Windows => "windows",
    }
}

/// Records a pending device action in the device's properties as Intune shows it: one
/// `deviceActionResults` entry per action name, the latest.
pub fn record_pending_action(properties: &mut Map<String, Value>, name: &str, now: DateTime<Utc>) {
    let stamp = crate::domain::time::rfc3339(now);
    let entry = serde_json::json!({
        "actionName": name,
        "actionState": "pending",
        "startDateTime": stamp,
        "lastUpdatedDateTime": stamp,
    });
    let results = properties
        .entry("deviceActionResults")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = results {
        items.retain(|r| r.get("actionName").and_then(Value::as_str) != Some(name));
        items.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operating_systems_map_to_families() {
        assert_eq!(
            Platform::default_for("iPadOS", OwnerType::Personal),
            Some(Platform::Ios)
        );
        assert_eq!(
            Platform::default_for("android", OwnerType::Personal),
            Some(Platform::AndroidWorkProfile)
        );
        assert_eq!(
            Platform::default_for("Android", OwnerType::Company),
            Some(Platform::AndroidDeviceOwner)
        );
        assert_eq!(Platform::default_for("Linux", OwnerType::Company), None);
        assert!(Platform::AndroidDeviceAdministrator.runs("Android"));
        assert!(!Platform::AndroidDeviceAdministrator.runs("iOS"));
        assert!(Platform::Ios.runs("iPadOS"));
        assert!(!Platform::MacOs.runs("iOS"));
    }

    #[test]
    fn detected_app_ids_are_stable_and_distinct() {
        let a = detected_app_id("ios", "Outlook", "4.1");
        assert_eq!(a, detected_app_id("ios", "Outlook", "4.1"));
        assert_ne!(a, detected_app_id("ios", "Outlook", "4.2"));
        assert_ne!(a, detected_app_id("macOS", "Outlook", "4.1"));
        assert_eq!(a.len(), 44);
    }
}
