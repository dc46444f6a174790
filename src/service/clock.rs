//! Moving a tenant's virtual clock: forward only.

use chrono::{DateTime, Utc};

use super::{App, ServiceError, ServiceResult};
use crate::clock::tenant_now;
use crate::domain::duration::IsoDuration;
use crate::domain::tenant::Tenant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockMove {
    AdvanceBy(IsoDuration),
    SetTo(DateTime<Utc>),
}

fn out_of_range() -> ServiceError {
    ServiceError::invalid("The clock cannot be moved that far.")
}

/// Moves the tenant's clock and returns the tenant with its new offset. What the move made due
/// (grace deadlines, check-in thresholds, partners turning unresponsive, actions) the worker
/// finds from the devices' due times; `settle` forces it.
pub async fn move_clock(app: &App, tenant_id: &str, mv: ClockMove) -> ServiceResult<Tenant> {
    let store = app.store.as_ref();
    // Compare-and-set: a concurrent move makes this one re-read and apply on top of it.
    loop {
        let mut tenant = store
            .get_tenant(tenant_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("Tenant '{tenant_id}' does not exist.")))?;
        let now = tenant_now(app.clock().wall_now(), tenant.clock_offset_us);
        let target = match mv {
            ClockMove::AdvanceBy(d) => d.after(now).ok_or_else(out_of_range)?,
            ClockMove::SetTo(t) => t,
        };
        if target < now {
            return Err(ServiceError::invalid(format!(
                "Time never goes back: {} is before the tenant's now, {}.",
                rfc3339(target),
                rfc3339(now)
            )));
        }
        let step = (target - now).num_microseconds().ok_or_else(out_of_range)?;
        let offset = tenant.clock_offset_us.checked_add(step).ok_or_else(out_of_range)?;
        if store
            .set_clock_offset(tenant_id, tenant.clock_offset_us, offset)
            .await?
        {
            tenant.clock_offset_us = offset;
            return Ok(tenant);
        }
    }
}

pub use crate::domain::time::rfc3339;
