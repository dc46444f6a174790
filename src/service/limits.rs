//! Throttling as a tenant switches it on (`/_emulator/tenants/{tid}/limits`): each Graph or
//! partner request is counted toward its counters (one statement), and one over a limit is
//! refused, logged in the event log and counted on `/metrics`. A tenant without limits costs
//! nothing: its limits come with the cached tenant.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{App, Cause, ServiceError, ServiceResult};
use crate::domain::limits::{admit, Admission, Counter, Limits};
use crate::domain::tenant::Tenant;
use crate::domain::time::rfc3339;
use crate::store::Event;

/// The tenant's limits (none: throttling is off).
pub async fn get(app: &App, tenant_id: &str) -> ServiceResult<Option<Limits>> {
    let tenant = super::tenants::get(app, tenant_id).await?;
    Ok(tenant.limits)
}

/// Switches throttling on with these limits (validated; buckets left out get Microsoft's), or
/// off (`None`). Every counter starts afresh.
pub async fn set(app: &App, tenant_id: &str, limits: Option<Limits>) -> ServiceResult<Option<Limits>> {
    let limits = limits
        .map(Limits::validated)
        .transpose()
        .map_err(ServiceError::invalid)?;
    if !app.store.set_limits(tenant_id, limits.as_ref()).await? {
        return Err(super::tenants::tenant_not_found(tenant_id));
    }
    Ok(limits)
}

/// The request a limit is checked for, as the event log tells it.
pub struct Request<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub app_id: &'a str,
    pub cause: &'a Cause,
}

/// Counts the request toward `counters` and decides; a refusal is logged in the tenant's event
/// log (`requestThrottled`) and counted on `/metrics` (`throttled_requests_total`).
pub async fn check(
    app: &App,
    tenant: &Tenant,
    limits: &Limits,
    now: DateTime<Utc>,
    counters: &[Counter],
    request: Request<'_>,
) -> ServiceResult<Admission> {
    if counters.is_empty() {
        return Ok(Admission::Serve);
    }
    let keys: Vec<(String, i64)> = counters.iter().map(|c| (c.key.clone(), c.window_start)).collect();
    let counts = app.store.count_requests(&tenant.id, &keys).await?;
    let admission = admit(limits, counters, &counts, now);
    if let Admission::Refuse {
        rule,
        retry_after,
        limit,
    } = &admission
    {
        // Rules are named `<bucket>.<scope>.<what>` (`global` and `partner` for the limits
        // outside Intune's buckets).
        let bucket = rule.split('.').next().unwrap_or_default().to_string();
        metrics::counter!(
            "throttled_requests_total",
            "tenant" => tenant.id.clone(),
            "rule" => rule.clone(),
            "bucket" => bucket,
        )
        .increment(1);
        let event = Event {
            kind: "requestThrottled".into(),
            device_id: None,
            connector_id: None,
            document: json!({
                "kind": "requestThrottled",
                "rule": rule,
                "limit": limit,
                "retryAfterSeconds": retry_after,
                "retryAfterSent": !limits.omit_retry_after,
                "method": request.method,
                "route": request.route,
                "appId": request.app_id,
                "virtualDateTime": rfc3339(now),
                "cause": request.cause.describe(),
            }),
            virtual_at: now,
        };
        app.store.append_events(&tenant.id, &[event]).await?;
    }
    Ok(admission)
}
