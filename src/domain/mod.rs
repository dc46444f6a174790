//! Pure rules and types: no I/O, no clock reads.

pub mod app_protection;
pub mod compliance;
pub mod conditional_access;
pub mod device;
pub mod directory;
pub mod duration;
pub mod faults;
pub mod limits;
pub mod mtd;
pub mod permissions;
pub mod pkce;
pub mod policy;
pub mod rbac;
pub mod reports;
pub mod tenant;
pub mod time;
pub mod version;
