//! Time. Nothing else reads the system clock: a tenant's "now" is wall time plus its virtual
//! offset, which only ever grows.

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn wall_now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall_now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The tenant's time: wall time moved forward by the tenant's offset.
pub fn tenant_now(wall: DateTime<Utc>, offset_us: i64) -> DateTime<Utc> {
    wall + Duration::microseconds(offset_us)
}
