//! Pure rules and types: no I/O, no clock reads.

pub mod duration;
pub mod permissions;
pub mod tenant;
