//! Use cases: what the HTTP handlers (and, later, the worker) do, over the store.

pub mod clock;
pub mod compliance;
pub mod devices;
pub mod rbac;
pub mod tenants;
pub mod worker;
