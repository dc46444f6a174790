//! What an MTD partner does through its connector (`/partner/v1`): heartbeats, metadata,
//! deprovisioning, bulk threat reports, and the reads of the devices and apps its connector
//! lets it see. The connector is the one the partner's token names.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::connectors::connectors_effects;
use super::{compliance, Ctx, ServiceError, ServiceResult};
use crate::domain::device::{DeviceApp, ManagedDevice, OwnerType, Platform, PLATFORMS};
use crate::domain::mtd::{
    decide, is_unresponsive, stale_in_store, Accepted, Connector, Outcome, PlatformToggles, ReportItem, ReportTarget,
};
use crate::domain::tenant::parse_guid;
use crate::store::{
    Effects, Evaluated, EvaluationInput, ListPage, ListQuery, ListScope, ReportBatch, ReportTargetRow, StoreError,
    TenantRows,
};

fn fresh_connector(cx: &Ctx<'_>, connector_id: &str) -> Connector {
    Connector {
        tenant_id: cx.tenant_id.to_string(),
        id: connector_id.to_string(),
        properties: Map::new(),
        partner_metadata: Map::new(),
        set_up: true,
        deprovisioned: false,
        error_code: 0,
        last_heartbeat_at: Some(cx.now),
        created_at: cx.now,
        revision: 0,
    }
}

/// The connector, which must be set up and not deprovisioned for anything but a heartbeat.
async fn usable_connector(cx: &Ctx<'_>, connector_id: &str) -> ServiceResult<Connector> {
    match cx.store().get_connector(cx.tenant_id, connector_id).await? {
        Some(c) if c.deprovisioned => Err(ServiceError::conflict(
            "The connector is deprovisioned (partnerState 'unavailable'): send a heartbeat to provision it again.",
        )),
        Some(c) if c.set_up => Ok(c),
        _ => Err(ServiceError::conflict(
            "The connector is not set up (partnerState 'notSetUp'): the partner must send a heartbeat first.",
        )),
    }
}

/// The partner is alive. Provisions the connector on the first heartbeat, and brings an
/// unresponsive or deprovisioned one back.
pub async fn heartbeat(cx: &Ctx<'_>, connector_id: &str) -> ServiceResult<()> {
    let fresh = fresh_connector(cx, connector_id);
    let now = cx.now;
    // A connector whose data did not count (new, deprovisioned or unresponsive) counts again:
    // the devices it covers are re-evaluated. The store refreshes the threat states of a
    // connector provisioned again in the same change.
    let counted = move |c: &Connector| c.set_up && !c.deprovisioned && !is_unresponsive(&c.status(), now);
    let fx_if = |before: Option<&Connector>| -> Effects {
        if before.is_some_and(counted) {
            return Effects::none();
        }
        let after = before.cloned().unwrap_or_else(|| fresh.clone());
        connectors_effects(&[&after])
    };
    cx.store().record_heartbeat(&fresh, cx.now, &fx_if).await?;
    Ok(())
}

/// The partner's metadata (`updates`, already validated) and its error code (non-zero puts the
/// connector in `error`).
pub async fn update_metadata(
    cx: &Ctx<'_>,
    connector_id: &str,
    updates: Map<String, Value>,
    error_code: Option<i64>,
) -> ServiceResult<()> {
    loop {
        let mut c = usable_connector(cx, connector_id).await?;
        c.partner_metadata.extend(updates.clone());
        if let Some(code) = error_code {
            c.error_code = code;
        }
        // Minimum OS versions take part in evaluation.
        if cx.store().update_connector(&c, &connectors_effects(&[&c])).await? {
            return Ok(());
        }
    }
}

/// Deprovisions the connector: it becomes `unavailable` and its data stops counting until the
/// next heartbeat.
pub async fn deprovision(cx: &Ctx<'_>, connector_id: &str) -> ServiceResult<()> {
    loop {
        let mut c = usable_connector(cx, connector_id).await?;
        c.deprovisioned = true;
        // The store stops counting its reports in the same change.
        if cx.store().update_connector(&c, &connectors_effects(&[&c])).await? {
            return Ok(());
        }
    }
}

/// Applies a call's threat reports (parsed, one per item) and evaluates the reported devices in
/// one pass and one transaction (`ingest_reports`), each report accepted, stale or rejected: the
/// reported devices' compliance is up to date before the partner hears back. The outcomes are in
/// the order of `items`.
pub async fn report_threat_states(
    cx: &Ctx<'_>,
    connector_id: &str,
    items: &[ReportItem],
) -> ServiceResult<Vec<Outcome>> {
    let connector = usable_connector(cx, connector_id).await?;
    let mut keys: Vec<String> = items
        .iter()
        .filter(|i| i.reported.is_ok())
        .map(|i| i.device_key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    let mut batch = ReportBatchOf {
        cx,
        items,
        targets: HashMap::new(),
        toggles: connector.toggles(),
        outcomes: Vec::new(),
        cause: cx.cause.describe(),
        lookups: compliance::ActionLookups::default(),
    };
    cx.store()
        .ingest_reports(cx.tenant_id, &connector.id, &keys, cx.now, &mut batch)
        .await?
        .ok_or_else(|| ServiceError::not_found("The tenant does not exist."))?;
    let mut outcomes = batch.outcomes;
    // Reports for devices no managed device has may be for unenrolled devices with protected
    // apps (app protection without enrollment): decided and stored in a transaction of their
    // own. A replay of the whole batch is harmless: its reports are stale on both sides.
    let unknown: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Outcome::Rejected { code, .. } if code == "unknownDevice"))
        .map(|(i, _)| i)
        .collect();
    if !unknown.is_empty() {
        let rest: Vec<ReportItem> = unknown.iter().map(|&i| items[i].clone()).collect();
        let decided = super::app_protection::report_unenrolled(cx, &connector, &rest).await?;
        for (i, o) in unknown.into_iter().zip(decided) {
            if let Some(o) = o {
                outcomes[i] = o;
            }
        }
    }
    Ok(outcomes)
}

/// A call's threat reports, decided and evaluated inside `ingest_reports`' transaction.
struct ReportBatchOf<'a> {
    cx: &'a Ctx<'a>,
    items: &'a [ReportItem],
    /// The devices the items name, by key (what `decide` was given).
    targets: HashMap<String, ReportTarget>,
    toggles: PlatformToggles,
    outcomes: Vec<Outcome>,
    cause: String,
    lookups: compliance::ActionLookups,
}

#[async_trait::async_trait]
impl ReportBatch for ReportBatchOf<'_> {
    fn accept(&mut self, rows: Vec<ReportTargetRow>) -> Vec<Accepted> {
        let mut targets: HashMap<String, ReportTarget> = HashMap::with_capacity(rows.len() * 2);
        for row in rows {
            // Whether a report is newer than the stored one is decided as it is stored
            // (`kept_out`), with the device locked.
            let target = ReportTarget {
                device_id: row.device_id.clone(),
                platform: row.platform,
                stored_at: None,
            };
            targets.insert(row.azure_ad_device_id.clone(), target.clone());
            targets.insert(row.device_id, target);
        }
        let (outcomes, accepted) = decide(self.items, &targets, self.toggles);
        self.outcomes = outcomes;
        self.targets = targets;
        accepted
    }

    fn kept_out(&mut self, stored: HashMap<String, DateTime<Utc>>) {
        stale_in_store(self.items, &self.targets, &mut self.outcomes, &stored);
    }

    async fn evaluate(&mut self, tenant: TenantRows, inputs: Vec<EvaluationInput>) -> Result<Evaluated, StoreError> {
        let ctx = compliance::TenantContext::new(tenant, self.cx.now);
        let batch = compliance::evaluate_batch(
            self.cx.store(),
            &ctx,
            self.cx.tenant_id,
            &inputs,
            &self.cause,
            &mut self.lookups,
        )
        .await?;
        Ok(batch.evaluated)
    }
}

/// A page of the managed devices on the platforms the connector takes data for (`query`
/// narrowed to them); `None` when the connector takes data for none.
pub async fn list_devices(
    cx: &Ctx<'_>,
    connector_id: &str,
    query: ListQuery,
) -> ServiceResult<Option<ListPage<ManagedDevice>>> {
    let connector = usable_connector(cx, connector_id).await?;
    let toggles = connector.toggles();
    let platforms: Vec<Platform> = PLATFORMS.iter().filter(|p| toggles.covers(**p)).copied().collect();
    if platforms.is_empty() {
        return Ok(None);
    }
    let query = ListQuery {
        scope: ListScope::PartnerDevices(platforms),
        ..query
    };
    Ok(Some(cx.store().list_devices(cx.tenant_id, &query).await?))
}

/// What App Sync shows a partner of one iOS/iPadOS device.
pub struct AppSync {
    pub device: ManagedDevice,
    pub apps: Vec<DeviceApp>,
}

/// App Sync for iOS/iPadOS. Refused unless the admin allowed it; personal devices show only
/// Intune-managed apps unless the personal toggle is on; corporate devices show all.
pub async fn device_apps(cx: &Ctx<'_>, connector_id: &str, device_key: &str) -> ServiceResult<AppSync> {
    let connector = usable_connector(cx, connector_id).await?;
    let not_found = || {
        ServiceError::not_found(format!(
            "The device '{device_key}' does not exist or is not on a platform the connector takes data for."
        ))
    };
    let key = parse_guid(device_key).ok_or_else(not_found)?;
    let store = cx.store();
    let device = match store.get_device(cx.tenant_id, &key).await? {
        Some(d) => Some(d),
        None => store.find_device_by_entra_id(cx.tenant_id, &key).await?,
    };
    let device = device
        .filter(|d| connector.toggles().covers(d.platform))
        .ok_or_else(not_found)?;
    if device.platform != Platform::Ios {
        return Err(ServiceError::invalid("App Sync covers iOS/iPadOS devices only."));
    }
    if !connector.flag("allowPartnerToCollectIOSApplicationMetadata") {
        return Err(ServiceError::forbidden(
            "App Sync for iOS devices is not enabled on this connector.",
        ));
    }
    let all = device.owner_type == OwnerType::Company
        || connector.flag("allowPartnerToCollectIOSPersonalApplicationMetadata");
    let mut apps = store.device_apps(cx.tenant_id, &device.id).await?;
    apps.retain(|a| all || a.managed);
    Ok(AppSync { device, apps })
}

/// The devices with protected apps the connector may report for app protection (its app
/// protection toggles' platforms), enrolled or not.
pub async fn list_app_devices(
    cx: &Ctx<'_>,
    connector_id: &str,
) -> ServiceResult<Vec<super::app_protection::AppDevice>> {
    let connector = usable_connector(cx, connector_id).await?;
    super::app_protection::app_devices(cx, &connector).await
}
