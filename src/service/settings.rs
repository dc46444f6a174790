//! The tenant's `deviceManagement` singleton: its Intune account and the settings that take
//! part in every device's evaluation.

use serde_json::{Map, Value};

use super::{Ctx, ServiceError, ServiceResult};
use crate::schema::device_management::check_settings;
use crate::schema::merge_patch;
use crate::store::{DeviceManagementRecord, DeviceScope, Effects, StoreError};

/// The settings that take part in every device's evaluation (`isScheduledActionEnabled`
/// decides whether actions still to come are due times at all).
const EVALUATED: &[&str] = &[
    "secureByDefault",
    "deviceComplianceCheckinThresholdDays",
    "isScheduledActionEnabled",
];

/// The tenant's `deviceManagement` (every tenant is created with one).
pub async fn device_management(cx: &Ctx<'_>) -> ServiceResult<DeviceManagementRecord> {
    cx.store()
        .get_device_management(cx.tenant_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("tenant {} has no deviceManagement", cx.tenant_id)).into())
}

/// Merges a validated patch into `deviceManagement`. Compare-and-set on the revision, so that
/// concurrent PATCHes of different settings both land; a change of an evaluated setting queues
/// every device for re-evaluation with it.
pub async fn patch_device_management(cx: &Ctx<'_>, patch: Map<String, Value>) -> ServiceResult<()> {
    let touches_compliance = patch
        .get("settings")
        .and_then(Value::as_object)
        .is_some_and(|s| EVALUATED.iter().any(|k| s.contains_key(*k)));
    let fx = if touches_compliance {
        Effects::enqueue(DeviceScope::All)
    } else {
        Effects::none()
    };
    loop {
        let mut record = device_management(cx).await?;
        merge_patch(&mut record.properties, patch.clone());
        if let Some(Value::Object(settings)) = record.properties.get("settings") {
            check_settings(settings).map_err(|e| ServiceError::invalid(e.0))?;
        }
        if cx.store().update_device_management(&record, &fx).await? {
            return Ok(());
        }
    }
}
