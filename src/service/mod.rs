//! Use cases: every change and every read the HTTP surfaces (and the worker) make, over the
//! store. A use case takes a [`Ctx`] (the store, the tenant, the tenant's now and the cause)
//! and typed input, and returns [`ServiceError`] on failure. `src/http` parses, calls one
//! function here and renders; it never names the store, and cannot: the store sits in private
//! fields of [`App`] and [`Ctx`].

pub mod app_protection;
pub mod cache;
pub mod clock;
pub mod compliance;
pub mod conditional_access;
pub mod connectors;
pub mod devices;
pub mod directory;
pub mod error;
pub mod faults;
pub mod identity;
pub mod limits;
pub mod partner;
pub mod policies;
pub mod rbac;
pub mod reports;
pub mod settings;
pub mod signin;
pub mod templates;
pub mod tenants;
pub mod worker;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::{tenant_now, Clock};
use crate::identity::keys::KeyRing;
use crate::store::Store;

pub use error::{ServiceError, ServiceResult};

/// What caused a change, as the event log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// An API call, by its request id.
    Request(String),
    /// A tick of the background worker of a replica (the first 8 characters of its owner id).
    Worker(String),
    /// `settle`, by its run id.
    Settle(String),
}

impl Cause {
    /// The `cause` field of events: `request <id>`, `worker <owner> tick`, `settle <run>`.
    pub fn describe(&self) -> String {
        match self {
            Cause::Request(id) => format!("request {id}"),
            Cause::Worker(owner) => format!("worker {owner} tick"),
            Cause::Settle(run) => format!("settle {run}"),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The application's services: what `http::AppState` holds. Its fields are private to
/// `service`, so nothing above it reaches the store.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: Arc<KeyRing>,
    worker: worker::Worker,
    tenants: Arc<cache::TenantCache>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        App {
            keys: Arc::new(KeyRing::new(store.clone(), clock.clone())),
            worker: worker::Worker::new(store.clone(), clock.clone()),
            tenants: Arc::new(cache::TenantCache::default()),
            store,
            clock,
        }
    }

    /// How much of the tenants' logs `settle` keeps (the default otherwise).
    pub fn with_retention(mut self, retention: worker::Retention) -> Self {
        self.worker = self.worker.with_retention(retention);
        self
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn worker(&self) -> &worker::Worker {
        &self.worker
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// The context of a use case in a tenant whose now is known (a caller read it once).
    pub fn cx<'a>(&'a self, tenant_id: &'a str, now: DateTime<Utc>, cause: &'a Cause) -> Ctx<'a> {
        Ctx {
            store: self.store.as_ref(),
            tenant_id,
            now,
            cause,
            cached: None,
            unchecked: false,
        }
    }

    /// The context of a use case in a tenant the request read through the cache
    /// ([`tenants::current`]): reads of what the cache holds come from the entry.
    pub fn cx_cached<'a>(&'a self, cached: &'a cache::CachedTenant, now: DateTime<Utc>, cause: &'a Cause) -> Ctx<'a> {
        Ctx {
            cached: Some(cached),
            ..self.cx(&cached.tenant().id, now, cause)
        }
    }

    /// The context of a use case whose request took the tenant's cache entry without checking
    /// its version ([`tenants::held`]): the use case must read the version with its answer and
    /// hand it to [`Ctx::confirm_version`].
    pub fn cx_unchecked<'a>(
        &'a self,
        cached: &'a cache::CachedTenant,
        now: DateTime<Utc>,
        cause: &'a Cause,
    ) -> Ctx<'a> {
        Ctx {
            unchecked: true,
            ..self.cx_cached(cached, now, cause)
        }
    }

    /// The tenant's now from its stored clock offset.
    pub fn tenant_now(&self, offset_us: i64) -> DateTime<Utc> {
        tenant_now(self.clock.wall_now(), offset_us)
    }
}

/// What every use case in a tenant runs with.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    store: &'a dyn Store,
    pub tenant_id: &'a str,
    /// The tenant's now, read once for the request or the worker's pass.
    pub now: DateTime<Utc>,
    pub cause: &'a Cause,
    /// The tenant's cache entry, checked against the database by this request unless
    /// `unchecked`.
    cached: Option<&'a cache::CachedTenant>,
    /// The request took `cached` without reading the stored version: its use case checks it.
    unchecked: bool,
}

impl<'a> Ctx<'a> {
    fn store(&self) -> &'a dyn Store {
        self.store
    }

    /// Checks the tenant's cache version that a use case read in the statement of its answer
    /// (`None`: the tenant is gone) against the entry the request was admitted with. A request
    /// admitted unchecked with an outdated entry gets [`ServiceError::StaleCache`] and is served
    /// again (see [`cache`]); a checked request has nothing to check.
    fn confirm_version(&self, stored: Option<i64>) -> ServiceResult<()> {
        match self.cached {
            Some(entry) if self.unchecked && !entry.confirms(stored) => Err(ServiceError::StaleCache),
            _ => Ok(()),
        }
    }
}
