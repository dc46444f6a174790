//! Enrolling devices, their check-ins, and remote actions.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::domain::device::{ManagedDevice, OwnerType, Platform};
use crate::domain::directory::User;

/// What the control plane was asked to enroll, already validated.
#[derive(Debug, Clone, Default)]
pub struct Enrollment {
    pub id: Option<String>,
    pub device_name: String,
    pub operating_system: String,
    pub platform: Option<Platform>,
    pub os_version: String,
    pub owner_type: Option<OwnerType>,
    pub azure_ad_device_id: Option<String>,
    pub model: Option<String>,
    pub manufacturer: Option<String>,
    pub serial_number: Option<String>,
    pub imei: Option<String>,
    pub phone_number: Option<String>,
    pub enrolled_at: Option<DateTime<Utc>>,
}

fn random_serial() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_ascii_uppercase()
}

/// Intune's generated `managedDeviceName`: `{alias}_{model family}_{M/D/YYYY}_{h:mm AM}`.
fn managed_device_name(user: Option<&User>, kind: &str, at: DateTime<Utc>) -> String {
    let alias = user
        .and_then(|u| u.user_principal_name.split('@').next())
        .unwrap_or("userless")
        .to_string();
    format!("{alias}_{kind}_{}", at.format("%-m/%-d/%Y_%-I:%M %p"))
}

/// A device as Intune enrolls it: what the request says, and for the rest what Intune shows
/// for such a device (manufacturer, registration, encryption, enrollment type...).
pub fn enroll(tenant_id: &str, e: Enrollment, user: Option<&User>, now: DateTime<Utc>) -> ManagedDevice {
    let owner = e.owner_type.unwrap_or(OwnerType::Personal);
    let platform = e
        .platform
        .or_else(|| Platform::default_for(&e.operating_system, owner))
        .unwrap_or(Platform::Windows);
    let os = e.operating_system.as_str();
    let (manufacturer, model, kind, device_type) = match (platform, os) {
        (Platform::Ios, "iPadOS") => ("Apple", "iPad Pro", "iPad", "iPad"),
        (Platform::Ios, _) => ("Apple", "iPhone 15", "iPhone", "iPhone"),
        (Platform::MacOs, _) => ("Apple", "MacBook Pro", "MacOS", "macMDM"),
        (Platform::Windows, _) => ("Microsoft Corporation", "Surface Laptop 5", "Windows", "windowsRT"),
        _ => ("Google", "Pixel 8", "AndroidForWork", "androidForWork"),
    };
    let enrolled_at = e.enrolled_at.unwrap_or(now);
    let apple = matches!(platform, Platform::Ios | Platform::MacOs);
    let company = owner == OwnerType::Company;
    let enrollment_type = match (platform, company) {
        (Platform::Ios | Platform::MacOs, true) => "appleBulkWithUser",
        (Platform::Windows, true) => "windowsAzureADJoin",
        (Platform::Windows, false) => "windowsAutoEnrollment",
        _ => "userEnrollment",
    };
    let mut properties = Map::new();
    let extra = json!({
        "managedDeviceName": managed_device_name(user, kind, enrolled_at),
        "deviceActionResults": [],
        "deviceEnrollmentType": enrollment_type,
        "deviceRegistrationState": "registered",
        "managementAgent": "mdm",
        "exchangeAccessState": "none",
        "exchangeAccessStateReason": "none",
        "isEncrypted": true,
        "isSupervised": apple && company,
        "jailBroken": "False",
        "azureADRegistered": true,
        "aadRegistered": true,
        "deviceCategoryDisplayName": "Unknown",
        "udid": if apple { Value::String(Uuid::new_v4().to_string().to_ascii_uppercase()) } else { Value::Null },
        "wiFiMacAddress": random_mac(),
        "enrolledByUserPrincipalName": user.map(|u| u.user_principal_name.clone()),
        "ownerType": owner.as_str(),
        "deviceType": device_type,
        "joinType": if platform == Platform::Windows && company { "azureADJoined" } else { "azureADRegistered" },
        "androidSecurityPatchLevel": if platform.is_android() { Value::String("2026-10-01".into()) } else { Value::Null },
        "totalStorageSpaceInBytes": 128_000_000_000i64,
        "freeStorageSpaceInBytes": 64_000_000_000i64,
    });
    if let Value::Object(m) = extra {
        properties.extend(m);
    }
    ManagedDevice {
        tenant_id: tenant_id.to_string(),
        id: e.id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        device_name: e.device_name,
        operating_system: e.operating_system,
        os_version: e.os_version,
        platform,
        owner_type: owner,
        user_id: user.map(|u| u.id.clone()),
        user_principal_name: user.map(|u| u.user_principal_name.clone()),
        user_display_name: user.map(|u| u.display_name.clone()),
        email_address: user.and_then(|u| u.mail.clone()),
        azure_ad_device_id: e.azure_ad_device_id.unwrap_or_else(|| Uuid::new_v4().to_string()),
        model: e.model.or(Some(model.to_string())),
        manufacturer: e.manufacturer.or(Some(manufacturer.to_string())),
        serial_number: e.serial_number.or_else(|| Some(random_serial())),
        imei: e.imei,
        phone_number: e.phone_number,
        enrolled_at,
        last_sync_at: enrolled_at,
        compliance_state: "unknown".into(),
        compliance_grace_expires_at: None,
        partner_threat_state: "unknown".into(),
        management_state: "managed".into(),
        properties,
    }
}

fn random_mac() -> String {
    let b = Uuid::new_v4().into_bytes();
    b[..6].iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAction {
    Retire,
    Wipe,
    RemoteLock,
}

impl RemoteAction {
    pub fn name(self) -> &'static str {
        match self {
            RemoteAction::Retire => "retire",
            RemoteAction::Wipe => "wipe",
            RemoteAction::RemoteLock => "remoteLock",
        }
    }
}

impl RemoteAction {
    pub fn parse(name: &str) -> Option<Self> {
        [RemoteAction::Retire, RemoteAction::Wipe, RemoteAction::RemoteLock]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// The `managementState` the action puts the device in until it completes.
    pub fn pending_state(self) -> Option<&'static str> {
        match self {
            RemoteAction::Retire => Some("retirePending"),
            RemoteAction::Wipe => Some("wipePending"),
            RemoteAction::RemoteLock => None,
        }
    }
}

/// Records a pending device action in the device's properties as Intune shows it: one
/// `deviceActionResults` entry per action name, the latest.
pub fn record_pending_action(properties: &mut Map<String, Value>, name: &str, now: DateTime<Utc>) {
    let stamp = crate::service::clock::rfc3339(now);
    let entry = json!({
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

/// Records an issued remote action: its pending result, and for retire and wipe the pending
/// management state.
pub fn issue(device: &mut ManagedDevice, action: RemoteAction, now: DateTime<Utc>) {
    record_pending_action(&mut device.properties, action.name(), now);
    if let Some(state) = action.pending_state() {
        device.management_state = state.into();
    }
}

/// What a check-in did with the device's pending actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInOutcome {
    StillManaged,
    /// A retire or wipe completed: the device leaves Intune.
    Removed,
}

/// A check-in: the device reports its OS version, syncs, and carries out pending actions.
pub fn check_in(device: &mut ManagedDevice, os_version: Option<String>, now: DateTime<Utc>) -> CheckInOutcome {
    if let Some(v) = os_version {
        device.os_version = v;
    }
    device.last_sync_at = now;
    let stamp = crate::service::clock::rfc3339(now);
    let mut removed = false;
    if let Some(Value::Array(items)) = device.properties.get_mut("deviceActionResults") {
        for r in items.iter_mut() {
            if r.get("actionState").and_then(Value::as_str) == Some("pending") {
                r["actionState"] = "done".into();
                r["lastUpdatedDateTime"] = stamp.clone().into();
                removed |= matches!(r.get("actionName").and_then(Value::as_str), Some("retire" | "wipe"));
            }
        }
    }
    if removed {
        CheckInOutcome::Removed
    } else {
        CheckInOutcome::StillManaged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(now: DateTime<Utc>) -> ManagedDevice {
        let e = Enrollment {
            device_name: "d".into(),
            operating_system: "iOS".into(),
            os_version: "17.1".into(),
            owner_type: Some(OwnerType::Company),
            ..Default::default()
        };
        enroll("t", e, None, now)
    }

    #[test]
    fn enrollment_fills_what_intune_shows() {
        let now = Utc::now();
        let d = device(now);
        assert_eq!(d.platform, Platform::Ios);
        assert_eq!(d.manufacturer.as_deref(), Some("Apple"));
        assert_eq!(
            (
                d.compliance_state.as_str(),
                d.partner_threat_state.as_str(),
                d.management_state.as_str()
            ),
            ("unknown", "unknown", "managed")
        );
        assert_eq!(d.properties["isSupervised"], true);
        assert_eq!(d.properties["deviceEnrollmentType"], "appleBulkWithUser");
        assert!(d.properties["managedDeviceName"]
            .as_str()
            .unwrap()
            .starts_with("userless_iPhone_"));
        assert_eq!(d.enrolled_at, now);
        assert_eq!(d.last_sync_at, now);
    }

    #[test]
    fn actions_are_pending_until_the_device_checks_in() {
        let now = Utc::now();
        let mut d = device(now);
        issue(&mut d, RemoteAction::RemoteLock, now);
        issue(&mut d, RemoteAction::RemoteLock, now);
        assert_eq!(
            d.properties["deviceActionResults"].as_array().unwrap().len(),
            1,
            "one result per action"
        );
        assert_eq!(d.management_state, "managed");
        let later = now + chrono::Duration::hours(1);
        assert_eq!(
            check_in(&mut d, Some("17.2".into()), later),
            CheckInOutcome::StillManaged
        );
        assert_eq!(d.properties["deviceActionResults"][0]["actionState"], "done");
        assert_eq!((d.os_version.as_str(), d.last_sync_at), ("17.2", later));

        issue(&mut d, RemoteAction::Retire, later);
        assert_eq!(d.management_state, "retirePending");
        assert_eq!(check_in(&mut d, None, later), CheckInOutcome::Removed);
    }
}
