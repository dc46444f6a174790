//! Creating, resetting and registering apps in tenants.

use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::permissions::GRAPH_APPLICATION_PERMISSIONS;
use crate::domain::tenant::{hash_secret, new_client_secret, App, AppKind, Tenant};
use crate::schema::device_management;
use crate::store::{DeviceManagementRecord, Store, StoreError};

/// An app as registered, with the secret shown only this once.
pub struct Registered {
    pub app: App,
    pub client_secret: String,
}

pub fn new_app(
    tenant_id: &str,
    display_name: &str,
    kind: AppKind,
    permissions: Vec<String>,
    connector_id: Option<String>,
    clock: &dyn Clock,
) -> Registered {
    let client_secret = new_client_secret();
    Registered {
        app: App {
            tenant_id: tenant_id.to_string(),
            client_id: Uuid::new_v4().to_string(),
            display_name: display_name.to_string(),
            kind,
            secret_hash: hash_secret(&client_secret),
            permissions,
            connector_id,
            created_at: clock.wall_now(),
        },
        client_secret,
    }
}

fn fresh_device_management(tenant_id: &str) -> DeviceManagementRecord {
    DeviceManagementRecord {
        tenant_id: tenant_id.to_string(),
        properties: device_management::initial_properties(tenant_id),
        revision: 0,
    }
}

/// Creates a tenant with its bootstrap admin app (every Graph permission the emulator knows).
/// `Conflict` when the id is taken.
pub async fn create_tenant(
    store: &dyn Store,
    clock: &dyn Clock,
    id: Option<String>,
    display_name: Option<String>,
) -> Result<(Tenant, Registered), StoreError> {
    let id = id.unwrap_or_else(|| Uuid::new_v4().to_string());
    let bootstrap = new_app(
        &id,
        "Emulator bootstrap admin",
        AppKind::Graph,
        GRAPH_APPLICATION_PERMISSIONS.iter().map(|p| p.to_string()).collect(),
        None,
        clock,
    );
    let tenant = Tenant {
        display_name: display_name.unwrap_or_else(|| format!("Tenant {}", &id[..8])),
        id,
        created_at: clock.wall_now(),
        clock_offset_us: 0,
        bootstrap_client_id: bootstrap.app.client_id.clone(),
    };
    store
        .insert_tenant(&tenant, &bootstrap.app, &fresh_device_management(&tenant.id))
        .await?;
    Ok((tenant, bootstrap))
}

pub async fn reset_tenant(store: &dyn Store, tenant_id: &str) -> Result<bool, StoreError> {
    store.reset_tenant(tenant_id, &fresh_device_management(tenant_id)).await
}
