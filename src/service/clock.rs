//! Moving a tenant's virtual clock: forward only.

use chrono::{DateTime, Utc};

use super::{Ctx, ServiceError, ServiceResult};
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
pub async fn move_clock(cx: &Ctx<'_>, mv: ClockMove) -> ServiceResult<Tenant> {
    let store = cx.store();
    // Compare-and-set: a concurrent move makes this one re-read and apply on top of it.
    loop {
        let mut tenant = store
            .get_tenant(cx.tenant_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("Tenant '{}' does not exist.", cx.tenant_id)))?;
        let now = tenant_now(cx.clock().wall_now(), tenant.clock_offset_us);
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
            .set_clock_offset(cx.tenant_id, tenant.clock_offset_us, offset)
            .await?
        {
            tenant.clock_offset_us = offset;
            return Ok(tenant);
        }
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
