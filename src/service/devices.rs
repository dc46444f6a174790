//! Enrolling devices, their check-ins, and remote actions.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{compliance, Ctx, ServiceError, ServiceResult};
use crate::domain::device::{record_pending_action, DeviceApp, ManagedDevice, OwnerType, Platform};
use crate::domain::directory::User;
use crate::domain::tenant::parse_guid;
use crate::store::{DetectedApp, DeviceScope, Effects, ListPage, ListQuery, PolicyStateRow, StoreError};

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
    let stamp = crate::domain::time::rfc3339(now);
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

// ---- use cases ----

fn missing_managed_device(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The managed device '{id}' does not exist."))
}

/// The device with this id, if the id is a GUID and the device is in the tenant.
async fn find(cx: &Ctx<'_>, id: &str) -> ServiceResult<Option<ManagedDevice>> {
    match parse_guid(id) {
        Some(key) => Ok(cx.store().get_device(cx.tenant_id, &key).await?),
        None => Ok(None),
    }
}

/// A managed device of the tenant (Graph's `managedDevices/{id}`). One statement, which also
/// checks the request's cache entry (`Ctx::confirm_version`).
pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<ManagedDevice> {
    let (version, device) = match parse_guid(id) {
        Some(key) => cx.store().get_device_versioned(cx.tenant_id, &key).await?,
        None => (cx.store().tenant_cache_version(cx.tenant_id).await?, None),
    };
    cx.confirm_version(version)?;
    device.ok_or_else(|| missing_managed_device(id))
}

/// The id of the user `user_key` names (an object id or a user principal name), `None` when
/// the tenant has no such user.
pub async fn user_id(cx: &Ctx<'_>, user_key: &str) -> ServiceResult<Option<String>> {
    let store = cx.store();
    let user = match parse_guid(user_key) {
        Some(id) => store.get_user(cx.tenant_id, &id).await?,
        None => store.find_user_by_upn(cx.tenant_id, user_key).await?,
    };
    Ok(user.map(|u| u.id))
}

/// A page of the tenant's managed devices.
pub async fn list(cx: &Ctx<'_>, query: &ListQuery) -> ServiceResult<ListPage<ManagedDevice>> {
    Ok(cx.store().list_devices(cx.tenant_id, query).await?)
}

/// A page of the managed devices of the user `user_key` names; `query` builds the store query
/// for the user's id. `None` when the tenant has no such user.
pub async fn list_of_user<E>(
    cx: &Ctx<'_>,
    user_key: &str,
    query: impl FnOnce(&str) -> Result<ListQuery, E>,
) -> Result<Option<ListPage<ManagedDevice>>, E>
where
    E: From<ServiceError>,
{
    let Some(user_id) = user_id(cx, user_key).await? else {
        return Ok(None);
    };
    let query = query(&user_id)?;
    Ok(Some(list(cx, &query).await?))
}

/// A managed device of the user `user_key` names; `None` when the tenant has no such user.
pub async fn get_of_user(cx: &Ctx<'_>, user_key: &str, id: &str) -> ServiceResult<Option<ManagedDevice>> {
    let Some(user_id) = user_id(cx, user_key).await? else {
        return Ok(None);
    };
    let device = get(cx, id).await?;
    if device.user_id.as_deref() != Some(user_id.as_str()) {
        return Err(missing_managed_device(id));
    }
    Ok(Some(device))
}

/// Applies an admin's validated PATCH: `owner` (a column, since compliance and app visibility
/// depend on it) and the other properties.
pub async fn update(
    cx: &Ctx<'_>,
    id: &str,
    owner: Option<OwnerType>,
    properties: Map<String, Value>,
) -> ServiceResult<()> {
    let mut device = get(cx, id).await?;
    if let Some(o) = owner {
        device.owner_type = o;
    }
    crate::schema::merge_patch(&mut device.properties, properties);
    device
        .properties
        .insert("ownerType".into(), device.owner_type.as_str().into());
    cx.store().update_device(&device, &Effects::none()).await?;
    Ok(())
}

/// Removes the device from Intune.
pub async fn delete(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let device = get(cx, id).await?;
    cx.store()
        .delete_device(cx.tenant_id, &device.id, &Effects::none())
        .await?;
    Ok(())
}

/// Issues a remote action: pending until the device checks in.
pub async fn act(cx: &Ctx<'_>, id: &str, action: RemoteAction) -> ServiceResult<()> {
    let mut device = get(cx, id).await?;
    issue(&mut device, action, cx.now);
    cx.store().update_device(&device, &Effects::none()).await?;
    Ok(())
}

fn missing_detected_app(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The detected app '{id}' does not exist."))
}

/// A page of the tenant's detected apps.
pub async fn list_detected_apps(cx: &Ctx<'_>, query: &ListQuery) -> ServiceResult<ListPage<DetectedApp>> {
    Ok(cx.store().list_detected_apps(cx.tenant_id, query).await?)
}

pub async fn detected_app(cx: &Ctx<'_>, id: &str) -> ServiceResult<DetectedApp> {
    cx.store()
        .get_detected_app(cx.tenant_id, id)
        .await?
        .ok_or_else(|| missing_detected_app(id))
}

/// A page of the managed devices that have the detected app.
pub async fn devices_with_app(cx: &Ctx<'_>, app_id: &str, query: &ListQuery) -> ServiceResult<ListPage<ManagedDevice>> {
    detected_app(cx, app_id).await?;
    Ok(cx.store().devices_with_app(cx.tenant_id, app_id, query).await?)
}

/// The detected apps of one managed device.
pub async fn detected_apps_of_device(cx: &Ctx<'_>, id: &str) -> ServiceResult<Vec<DetectedApp>> {
    let device = get(cx, id).await?;
    Ok(cx.store().detected_apps_of_device(cx.tenant_id, &device.id).await?)
}

// ---- the control plane's simulated devices ----

fn missing_device(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The device '{id}' does not exist."))
}

async fn simulated(cx: &Ctx<'_>, id: &str) -> ServiceResult<ManagedDevice> {
    find(cx, id).await?.ok_or_else(|| missing_device(id))
}

/// How an enrollment names the device's primary user.
#[derive(Debug, Clone)]
pub enum UserKey {
    Id(String),
    UserPrincipalName(String),
}

/// One device of an enrollment call, already validated; `index` is its place in a call of
/// several (messages name it), `None` for a call of one.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    pub index: Option<usize>,
    pub enrollment: Enrollment,
    pub user: Option<UserKey>,
}

fn invalid_at(index: Option<usize>, message: &str) -> ServiceError {
    match index {
        Some(i) => ServiceError::invalid(format!("Device {i}: {message}")),
        None => ServiceError::invalid(message),
    }
}

/// Enrolls the devices, all or none, and evaluates their compliance: the answer shows it.
pub async fn enroll_devices(cx: &Ctx<'_>, requests: Vec<EnrollRequest>) -> ServiceResult<Vec<ManagedDevice>> {
    let store = cx.store();
    let mut devices = Vec::with_capacity(requests.len());
    let mut seen = std::collections::HashSet::new();
    for r in requests {
        let user = match &r.user {
            None => None,
            Some(key) => {
                let user = match key {
                    UserKey::Id(id) => match parse_guid(id) {
                        Some(id) => store.get_user(cx.tenant_id, &id).await?,
                        None => None,
                    },
                    UserKey::UserPrincipalName(upn) => store.find_user_by_upn(cx.tenant_id, upn).await?,
                };
                let unknown = || {
                    let (property, value) = match key {
                        UserKey::Id(id) => ("userId", id),
                        UserKey::UserPrincipalName(upn) => ("userPrincipalName", upn),
                    };
                    invalid_at(
                        r.index,
                        &format!("Invalid value for property '{property}': '{value}' is not a user of the tenant."),
                    )
                };
                Some(user.ok_or_else(unknown)?)
            }
        };
        let device = enroll(cx.tenant_id, r.enrollment, user.as_ref(), cx.now);
        if !seen.insert(device.id.clone()) || !seen.insert(device.azure_ad_device_id.clone()) {
            return Err(invalid_at(
                r.index,
                "its id or azureADDeviceId repeats another device of the call.",
            ));
        }
        devices.push(device);
    }
    // Queued with the enrolment, then evaluated at once: if the evaluation fails, the worker
    // evaluates them.
    let fx = Effects::evaluate_now(DeviceScope::Devices(devices.iter().map(|d| d.id.clone()).collect()));
    match store.insert_devices(cx.tenant_id, &devices, &fx).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::conflict(
                "A device with this id or azureADDeviceId is already enrolled.",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    compliance::evaluate_now(cx, &mut devices).await?;
    Ok(devices)
}

/// The device checks in: reports its OS version, syncs and carries out its pending actions.
/// Returns the device as it is after (with its compliance evaluated, if still managed).
pub async fn check_in_device(
    cx: &Ctx<'_>,
    id: &str,
    os_version: Option<String>,
) -> ServiceResult<(ManagedDevice, CheckInOutcome)> {
    let mut device = simulated(cx, id).await?;
    let outcome = check_in(&mut device, os_version, cx.now);
    match outcome {
        CheckInOutcome::StillManaged => {
            // Queued with the check-in, then evaluated at once.
            let fx = Effects::evaluate_now(DeviceScope::Devices(vec![device.id.clone()]));
            cx.store().update_device(&device, &fx).await?;
            compliance::evaluate_now(cx, std::slice::from_mut(&mut device)).await?;
        }
        CheckInOutcome::Removed => {
            cx.store()
                .delete_device(cx.tenant_id, &device.id, &Effects::none())
                .await?;
        }
    }
    Ok((device, outcome))
}

/// Replaces the device's app inventory.
pub async fn set_apps(cx: &Ctx<'_>, id: &str, apps: &[DeviceApp]) -> ServiceResult<()> {
    let device = simulated(cx, id).await?;
    if !cx.store().set_device_apps(cx.tenant_id, &device.id, apps).await? {
        return Err(missing_device(id));
    }
    Ok(())
}

/// The device's app inventory as it reported it (managed or not).
pub async fn apps(cx: &Ctx<'_>, id: &str) -> ServiceResult<Vec<DeviceApp>> {
    let device = simulated(cx, id).await?;
    Ok(cx.store().device_apps(cx.tenant_id, &device.id).await?)
}

/// The device's evaluation at the tenant's now, step by step (`trace`), and what is stored for
/// it (they agree unless something changed without re-evaluation).
pub struct Explained {
    pub trace: Value,
    pub stored: Vec<PolicyStateRow>,
}

pub async fn explain(cx: &Ctx<'_>, id: &str) -> ServiceResult<Explained> {
    let device = simulated(cx, id).await?;
    let store = cx.store();
    let ctx = compliance::load_context(store, cx.tenant_id, cx.now).await?;
    let input = store
        .evaluation_inputs(cx.tenant_id, std::slice::from_ref(&device.id), true)
        .await?
        .pop()
        .ok_or_else(|| missing_device(id))?;
    let stored = store
        .policy_states_of_devices(cx.tenant_id, std::slice::from_ref(&device.id))
        .await?;
    Ok(Explained {
        trace: compliance::explain(&ctx, &input),
        stored,
    })
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
