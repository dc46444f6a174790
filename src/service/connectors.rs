//! The tenant's Mobile Threat Defense connectors as the admin manages them
//! (`/deviceManagement/mobileThreatDefenseConnectors`). A change of a connector's toggles or
//! settings decides which devices its partner's data reaches, so it marks those devices for
//! re-evaluation.

use serde_json::{Map, Value};

use super::{compliance, Ctx, ServiceError, ServiceResult};
use crate::domain::mtd::{catalog_partner, Connector};
use crate::store::{Effects, StoreError};

fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("The mobile threat defense connector '{id}' does not exist."))
}

/// The admin center allows 1 to 365 days before a partner is unresponsive.
fn check_settings(props: &Map<String, Value>) -> ServiceResult<()> {
    if let Some(days) = props
        .get("partnerUnresponsivenessThresholdInDays")
        .and_then(Value::as_i64)
    {
        if !(1..=365).contains(&days) {
            return Err(ServiceError::invalid(format!(
                "Invalid value for property 'partnerUnresponsivenessThresholdInDays': {days} is outside the allowed range of 1 to 365."
            )));
        }
    }
    Ok(())
}

/// The app protection toggles: "Only one partner per platform may be enabled for Mobile
/// Application Management (MAM) evaluation" (the connector's property descriptions).
const MAM_TOGGLES: &[(&str, &str)] = &[
    ("androidMobileApplicationManagementEnabled", "Android"),
    ("iosMobileApplicationManagementEnabled", "iOS"),
    ("windowsMobileApplicationManagementEnabled", "Windows"),
];

/// Refuses a connector (`id`, with its properties as they would be) that turns on an app
/// protection toggle another connector of the tenant has on.
async fn check_single_mam_partner(cx: &Ctx<'_>, id: &str, props: &Map<String, Value>) -> ServiceResult<()> {
    let on: Vec<&(&str, &str)> = MAM_TOGGLES
        .iter()
        .filter(|(t, _)| props.get(*t).and_then(Value::as_bool) == Some(true))
        .collect();
    if on.is_empty() {
        return Ok(());
    }
    for other in list(cx).await?.iter().filter(|c| !c.id.eq_ignore_ascii_case(id)) {
        if let Some((toggle, platform)) = on.iter().find(|(t, _)| other.flag(t)) {
            return Err(ServiceError::invalid(format!(
                "Invalid value for property '{toggle}': only one partner per platform may be enabled for Mobile Application Management (MAM) evaluation, and the connector '{}' is enabled for {platform}.",
                other.id
            )));
        }
    }
    Ok(())
}

/// A connector change re-evaluates the devices on the platforms the connectors (as they were
/// and as they are) take data for.
pub(crate) fn connectors_effects(connectors: &[&Connector]) -> Effects {
    Effects {
        enqueue: compliance::connectors_scope(connectors).into_iter().collect(),
        ..Effects::default()
    }
}

/// The tenant's connectors.
pub async fn list(cx: &Ctx<'_>) -> ServiceResult<Vec<Connector>> {
    Ok(cx.store().list_connectors(cx.tenant_id).await?)
}

/// One connector, by its catalog id (any case).
pub async fn get(cx: &Ctx<'_>, id: &str) -> ServiceResult<Connector> {
    cx.store()
        .get_connector(cx.tenant_id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(|| not_found(id))
}

/// Creates the connector to the catalog partner `id` with the admin's validated properties.
pub async fn create(cx: &Ctx<'_>, id: Option<&str>, properties: Map<String, Value>) -> ServiceResult<Connector> {
    check_settings(&properties)?;
    let id = id.ok_or_else(|| {
        ServiceError::invalid(
            "The property 'id' is required: it names the partner of the catalog the connector is for.",
        )
    })?;
    let partner = catalog_partner(id).ok_or_else(|| {
        ServiceError::invalid(format!(
            "Invalid value for property 'id': '{id}' is not a Mobile Threat Defense partner Intune knows."
        ))
    })?;
    check_single_mam_partner(cx, partner.id, &properties).await?;
    let connector = Connector {
        tenant_id: cx.tenant_id.to_string(),
        id: partner.id.to_string(),
        properties,
        partner_metadata: Map::new(),
        set_up: false,
        deprovisioned: false,
        error_code: 0,
        last_heartbeat_at: None,
        created_at: cx.now,
        revision: 0,
    };
    match cx
        .store()
        .insert_connector(&connector, &connectors_effects(&[&connector]))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::conflict(format!(
                "The tenant already has a connector for '{}'.",
                partner.display_name
            )));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(connector)
}

/// Merges the admin's validated properties into the connector.
pub async fn update(cx: &Ctx<'_>, id: &str, properties: Map<String, Value>) -> ServiceResult<()> {
    check_settings(&properties)?;
    // Compare-and-set: a heartbeat or a partner update in between is kept.
    loop {
        let before = get(cx, id).await?;
        let mut c = before.clone();
        crate::schema::merge_patch(&mut c.properties, properties.clone());
        check_single_mam_partner(cx, &c.id, &c.properties).await?;
        // Toggles and per-platform settings decide which devices its data reaches.
        if cx
            .store()
            .update_connector(&c, &connectors_effects(&[&before, &c]))
            .await?
        {
            return Ok(());
        }
    }
}

/// Deletes the connector and the reports its partner sent.
pub async fn delete(cx: &Ctx<'_>, id: &str) -> ServiceResult<()> {
    let c = get(cx, id).await?;
    if cx
        .store()
        .delete_connector(cx.tenant_id, &c.id, &connectors_effects(&[&c]))
        .await?
    {
        Ok(())
    } else {
        Err(not_found(id))
    }
}
