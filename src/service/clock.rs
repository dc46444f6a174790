//! Moving a tenant's virtual clock: forward only.

use chrono::{DateTime, Utc};

use crate::clock::{tenant_now, Clock};
use crate::domain::duration::IsoDuration;
use crate::domain::tenant::Tenant;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockMove {
    AdvanceBy(IsoDuration),
    SetTo(DateTime<Utc>),
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("tenant not found")]
    TenantNotFound,
    #[error("Time never goes back: {target} is before the tenant's now, {now}.")]
    Backwards { target: String, now: String },
    #[error("The clock cannot be moved that far.")]
    OutOfRange,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Moves the clock and returns the tenant with its new offset and its now.
pub async fn move_clock(
    store: &dyn Store,
    clock: &dyn Clock,
    tenant_id: &str,
    mv: ClockMove,
) -> Result<(Tenant, DateTime<Utc>), ClockError> {
    // Compare-and-set: a concurrent move makes this one re-read and apply on top of it.
    loop {
        let mut tenant = store.get_tenant(tenant_id).await?.ok_or(ClockError::TenantNotFound)?;
        let wall = clock.wall_now();
        let now = tenant_now(wall, tenant.clock_offset_us);
        let target = match mv {
            ClockMove::AdvanceBy(d) => d.after(now).ok_or(ClockError::OutOfRange)?,
            ClockMove::SetTo(t) => t,
        };
        if target < now {
            return Err(ClockError::Backwards {
                target: rfc3339(target),
                now: rfc3339(now),
            });
        }
        let step = (target - now).num_microseconds().ok_or(ClockError::OutOfRange)?;
        let offset = tenant.clock_offset_us.checked_add(step).ok_or(ClockError::OutOfRange)?;
        if store
            .set_clock_offset(tenant_id, tenant.clock_offset_us, offset)
            .await?
        {
            tenant.clock_offset_us = offset;
            return Ok((tenant, tenant_now(wall, offset)));
        }
    }
}

pub use crate::domain::time::rfc3339;
