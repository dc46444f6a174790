//! What every Graph and partner request reads before its own work, kept in process: the tenant
//! (with its clock offset) and the tenant's role definitions and role assignments.
//!
//! # The rule
//!
//! A tenant's entry is valid while the tenant row's `cache_version` is the one the entry was
//! loaded at. Every write that changes what is cached moves `cache_version` in its own
//! transaction: a clock move, a reset, and every insert, update or delete of a role definition
//! or assignment; deleting the tenant deletes the row. Each request reads `cache_version` first
//! (one primary-key read, [`TenantCache::current`]) and uses the entry only when the version is
//! equal; otherwise it loads the tenant again (row and version in one statement), and the roles
//! when first needed. So a write committed through any replica sharing the database is seen by
//! the next request on every replica. Data is always read after the version it is filed under,
//! so an entry can only be newer than its version says (which costs a reload), never older.
//! New tenants start at a random version, so a tenant deleted and created again under the same
//! id does not take up a version a replica still holds.
//!
//! A request may skip that first read when the one statement that reads its answer also reads
//! `cache_version` (the GET routes declared with `RouteTable::get_checked`, for app-only callers,
//! whose admission needs the tenant but not its roles). It is admitted with the entry as this
//! replica holds it ([`TenantCache::unchecked`]); when the version its statement read differs
//! from the entry's, the answer is dropped and the request is served again through
//! [`TenantCache::current`]. Such a request is one statement when the entry is current.
//!
//! The tenant's registered client ids are cached too, to check the `appid` of every token: an
//! id the entry does not know is looked up again (an app registered since), so a token whose app
//! the tenant does not have (the tenant was deleted and created again under the same id, or
//! reset) is refused, and a known app costs no statement.
//!
//! Not cached: the user's group memberships (read per delegated request) and anything a
//! handler reads for its own work. Signing keys are cached by [`crate::identity::keys::KeyRing`]:
//! the deployment has one, never replaced, and an unknown key id reloads them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::OnceCell;

use crate::domain::rbac::{RoleAssignment, RoleDefinition};
use crate::domain::tenant::Tenant;
use crate::store::{Store, StoreError};

/// A tenant as loaded at one cache version.
pub struct CachedTenant {
    version: i64,
    tenant: Tenant,
    roles: OnceCell<Arc<TenantRoles>>,
    /// The client ids of the tenant's apps, as last read.
    apps: RwLock<Option<Arc<HashSet<String>>>>,
}

impl std::fmt::Debug for CachedTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTenant")
            .field("version", &self.version)
            .field("tenant", &self.tenant.id)
            .field("roles_loaded", &self.roles.initialized())
            .finish()
    }
}

/// The tenant's custom role definitions (by id) and its role assignments, oldest first.
pub(super) struct TenantRoles {
    pub definitions: HashMap<String, RoleDefinition>,
    pub assignments: Vec<RoleAssignment>,
}

impl CachedTenant {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Whether `stored`, the tenant's `cache_version` as a statement read it (`None`: no such
    /// tenant), is the version this entry was loaded at.
    pub(super) fn confirms(&self, stored: Option<i64>) -> bool {
        stored == Some(self.version)
    }

    /// Whether the tenant has an app with this client id: from the set this entry holds, read
    /// again when it does not name the id (an app registered since the set was read).
    pub(super) async fn has_app(&self, store: &dyn Store, client_id: &str) -> Result<bool, StoreError> {
        let held = self.apps.read().unwrap_or_else(PoisonError::into_inner).clone();
        if held.is_some_and(|apps| apps.contains(client_id)) {
            return Ok(true);
        }
        let apps: HashSet<String> = store
            .list_apps(&self.tenant.id)
            .await?
            .into_iter()
            .map(|a| a.client_id)
            .collect();
        let found = apps.contains(client_id);
        *self.apps.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(apps));
        Ok(found)
    }

    /// The roles, loaded on first use after the version was read (see the module's rule).
    pub(super) async fn roles(&self, store: &dyn Store) -> Result<Arc<TenantRoles>, StoreError> {
        self.roles
            .get_or_try_init(|| async {
                let assignments = store.list_role_assignments(&self.tenant.id, None).await?;
                let definitions = store
                    .list_role_definitions(&self.tenant.id)
                    .await?
                    .into_iter()
                    .map(|r| (r.id.clone(), r))
                    .collect();
                Ok(Arc::new(TenantRoles {
                    definitions,
                    assignments,
                }))
            })
            .await
            .cloned()
    }
}

/// The replica's entries, one per tenant it has served; a deleted tenant's goes at its next
/// request.
#[derive(Default)]
pub struct TenantCache {
    entries: RwLock<HashMap<String, Arc<CachedTenant>>>,
}

impl TenantCache {
    /// The tenant `id` (a GUID in the directory's spelling) as it is now: the entry if the
    /// stored cache version still matches it, else freshly loaded. None when it does not exist.
    pub(super) async fn current(&self, store: &dyn Store, id: &str) -> Result<Option<Arc<CachedTenant>>, StoreError> {
        let Some(version) = store.tenant_cache_version(id).await? else {
            self.evict(id);
            return Ok(None);
        };
        if let Some(entry) = self.read().get(id) {
            if entry.version == version {
                return Ok(Some(entry.clone()));
            }
        }
        let Some((tenant, version)) = store.get_tenant_versioned(id).await? else {
            self.evict(id);
            return Ok(None);
        };
        let entry = Arc::new(CachedTenant {
            version,
            tenant,
            roles: OnceCell::new(),
            apps: RwLock::new(None),
        });
        // A concurrent request may file an older load over this one: the next request then
        // finds the version unequal and loads again, which costs a read, never correctness.
        self.write().insert(id.to_string(), entry.clone());
        Ok(Some(entry))
    }

    /// The entry this replica holds for tenant `id`, without reading the stored version: for a
    /// request that reads the version with its answer and checks it ([`CachedTenant::confirms`]).
    /// `None` when the replica holds none.
    pub(super) fn unchecked(&self, id: &str) -> Option<Arc<CachedTenant>> {
        self.read().get(id).cloned()
    }

    fn evict(&self, id: &str) {
        self.write().remove(id);
    }

    // A panic while holding the lock leaves a map that is still whole (inserts and removes
    // of whole entries), so a poisoned lock is used as it is.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<CachedTenant>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<CachedTenant>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}
