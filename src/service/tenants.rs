//! Tenants, their apps and what the control plane reads of them: creating, resetting and
//! deleting tenants, registering apps, the outbox and the event log, and `settle`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::cache::CachedTenant;
use super::worker::{PassSummary, SettleError};
use super::{App as Services, Cause, Ctx, ServiceError, ServiceResult};
use crate::domain::mtd::catalog_partner;
use crate::domain::permissions::{canonical_permission, GRAPH_APPLICATION_PERMISSIONS};
use crate::domain::tenant::{
    hash_secret, new_client_secret, parse_guid, redirect_uri_problem, App, AppKind, Platform, SignInSettings, Tenant,
};
use crate::schema::device_management;
use crate::store::{DeviceManagementRecord, EventFilter, ListPage, ListQuery, StoreError};

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
    now: DateTime<Utc>,
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
            sign_in: Default::default(),
            created_at: now,
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

pub(super) fn tenant_not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("Tenant '{id}' does not exist."))
}

/// Display names of tenants and apps: 1 to 256 characters, not all blank.
fn check_display_name(name: &str) -> ServiceResult<()> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(ServiceError::invalid(
            "Invalid value for property 'displayName': it must have 1 to 256 characters.",
        ));
    }
    Ok(())
}

/// The tenant named `id`. Tenant ids are GUIDs; anything else cannot name a tenant.
pub async fn get(app: &Services, id: &str) -> ServiceResult<Tenant> {
    Ok(current(app, id).await?.tenant().clone())
}

/// The tenant named `id` as this replica's cache holds it, unchecked, for a request whose
/// reads check the version themselves (see [`super::cache`]); `None` when the replica holds no
/// entry (the caller then takes [`current`]).
pub fn held(app: &Services, id: &str) -> Option<Arc<CachedTenant>> {
    app.tenants.unchecked(&parse_guid(id)?)
}

/// The tenant named `id` through the replica's cache: one read of its cache version when the
/// entry is current (see [`super::cache`]).
pub async fn current(app: &Services, id: &str) -> ServiceResult<Arc<CachedTenant>> {
    let Some(id) = parse_guid(id) else {
        return Err(tenant_not_found(id));
    };
    app.tenants
        .current(app.store.as_ref(), &id)
        .await?
        .ok_or_else(|| tenant_not_found(&id))
}

/// Whether the tenant of `cached` has an app with this client id (a token's `appid`); a
/// statement only when the entry does not know the id.
pub async fn app_registered(app: &Services, cached: &CachedTenant, client_id: &str) -> ServiceResult<bool> {
    Ok(cached.has_app(app.store.as_ref(), client_id).await?)
}

/// A page of the deployment's tenants.
pub async fn list(app: &Services, query: &ListQuery) -> ServiceResult<ListPage<Tenant>> {
    Ok(app.store.list_tenants(query).await?)
}

/// Creates a tenant (`id` already a GUID) with its bootstrap admin app, which holds every
/// Graph permission the emulator knows. `Conflict` when the id is taken.
pub async fn create(
    app: &Services,
    id: Option<String>,
    display_name: Option<String>,
) -> ServiceResult<(Tenant, Registered)> {
    if let Some(name) = &display_name {
        check_display_name(name)?;
    }
    let clock = app.clock();
    let id = id.unwrap_or_else(|| Uuid::new_v4().to_string());
    let mut bootstrap = new_app(
        &id,
        "Emulator bootstrap admin",
        AppKind::Graph,
        GRAPH_APPLICATION_PERMISSIONS.iter().map(|p| p.to_string()).collect(),
        None,
        // A new tenant's clock is the wall clock.
        clock.wall_now(),
    );
    // Users sign in through it with the public-client flows (password, device code) too.
    bootstrap.app.sign_in.is_fallback_public_client = true;
    let tenant = Tenant {
        display_name: display_name.unwrap_or_else(|| format!("Tenant {}", &id[..8])),
        id,
        created_at: clock.wall_now(),
        clock_offset_us: 0,
        bootstrap_client_id: bootstrap.app.client_id.clone(),
        limits: None,
        faults: Vec::new(),
    };
    match app
        .store
        .insert_tenant(&tenant, &bootstrap.app, &fresh_device_management(&tenant.id))
        .await
    {
        Ok(()) => Ok((tenant, bootstrap)),
        Err(StoreError::Conflict(_)) => Err(ServiceError::conflict("A tenant with this id already exists.")),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the tenant named `id` and everything it owns.
pub async fn delete(app: &Services, id: &str) -> ServiceResult<()> {
    let tenant = get(app, id).await?;
    if app.store.delete_tenant(&tenant.id).await? {
        Ok(())
    } else {
        Err(tenant_not_found(id))
    }
}

/// Empties the tenant named `id` back to its just-created state, and returns it so.
pub async fn reset(app: &Services, id: &str) -> ServiceResult<Tenant> {
    let tenant = get(app, id).await?;
    if !app
        .store
        .reset_tenant(&tenant.id, &fresh_device_management(&tenant.id))
        .await?
    {
        return Err(tenant_not_found(id));
    }
    get(app, &tenant.id).await
}

/// An app to register, as the control plane was asked.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub display_name: String,
    pub kind: AppKind,
    pub permissions: Vec<String>,
    pub connector_id: Option<String>,
    pub sign_in: SignInSettings,
}

/// Registers an app in the tenant: a Graph app with known application permissions (each
/// once, by its canonical name), or a partner app speaking for a catalog connector.
pub async fn register_app(app: &Services, tenant: &Tenant, req: NewApp) -> ServiceResult<Registered> {
    check_display_name(&req.display_name)?;
    let mut permissions: Vec<String> = Vec::with_capacity(req.permissions.len());
    for p in &req.permissions {
        let canonical = canonical_permission(p).ok_or_else(|| {
            ServiceError::invalid(format!(
                "Invalid value for property 'permissions': '{p}' is not a Microsoft Graph application permission the emulator knows."
            ))
        })?;
        if !permissions.iter().any(|q| q == canonical) {
            permissions.push(canonical.to_string());
        }
    }
    let connector_id = match (req.kind, &req.connector_id) {
        (AppKind::Graph, None) => None,
        (AppKind::Graph, Some(_)) => {
            return Err(ServiceError::invalid("Only partner apps have a 'connectorId'."));
        }
        (AppKind::Partner, None) => {
            return Err(ServiceError::invalid(
                "A partner app needs 'connectorId', the catalog connector it speaks for.",
            ));
        }
        (AppKind::Partner, Some(id)) => {
            if !permissions.is_empty() {
                return Err(ServiceError::invalid(
                    "Partner apps hold no Graph permissions: their tokens are for the partner API.",
                ));
            }
            let partner = catalog_partner(id).ok_or_else(|| {
                ServiceError::invalid(format!(
                    "Invalid value for property 'connectorId': '{id}' is not a partner of the catalog (GET /_emulator/partners)."
                ))
            })?;
            Some(partner.id.to_string())
        }
    };
    let sign_in = check_sign_in(req.kind, req.sign_in)?;
    let mut registered = new_app(
        &tenant.id,
        req.display_name.trim(),
        req.kind,
        permissions,
        connector_id,
        // On the tenant's clock, as every other time stamp of the tenant.
        app.tenant_now(tenant.clock_offset_us),
    );
    registered.app.sign_in = sign_in;
    app.store.insert_app(&registered.app).await?;
    Ok(registered)
}

/// An app's sign-in settings, checked as Entra checks a registration: redirect URIs that are
/// absolute and safe for their platform, each once, and known delegated permissions.
fn check_sign_in(kind: AppKind, mut s: SignInSettings) -> ServiceResult<SignInSettings> {
    let has_any = !(s.web.redirect_uris.is_empty()
        && s.spa.redirect_uris.is_empty()
        && s.public_client.redirect_uris.is_empty()
        && !s.is_fallback_public_client
        && s.delegated_permissions.is_none());
    if kind == AppKind::Partner && has_any {
        return Err(ServiceError::invalid(
            "Partner apps sign no users in: they have no redirect URIs or delegated permissions.",
        ));
    }
    for (name, platform, list) in [
        ("web", Platform::Web, &mut s.web.redirect_uris),
        ("spa", Platform::Spa, &mut s.spa.redirect_uris),
        (
            "publicClient",
            Platform::PublicClient,
            &mut s.public_client.redirect_uris,
        ),
    ] {
        if list.len() > 256 {
            return Err(ServiceError::invalid(format!(
                "Invalid value for property '{name}.redirectUris': an app has at most 256 redirect URIs."
            )));
        }
        for uri in list.iter() {
            if let Some(problem) = redirect_uri_problem(uri, platform) {
                return Err(ServiceError::invalid(format!(
                    "Invalid value for property '{name}.redirectUris': '{uri}' {problem}."
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        list.retain(|u| seen.insert(u.clone()));
    }
    if let Some(list) = &mut s.delegated_permissions {
        let mut canonical: Vec<String> = Vec::with_capacity(list.len());
        for p in list.iter() {
            let c = canonical_permission(p).ok_or_else(|| {
                ServiceError::invalid(format!(
                    "Invalid value for property 'delegatedPermissions': '{p}' is not a Microsoft Graph delegated permission the emulator knows."
                ))
            })?;
            if !canonical.iter().any(|q| q == c) {
                canonical.push(c.to_string());
            }
        }
        *list = canonical;
    }
    Ok(s)
}

/// Deletes an app registration: its tokens are refused from then on (every token names its app,
/// and the app is checked), its refresh tokens and pending codes are gone. The bootstrap app
/// stays: the tenant's credentials are made of it.
pub async fn delete_app(app: &Services, tenant: &Tenant, client_id: &str) -> ServiceResult<()> {
    let Some(client_id) = parse_guid(client_id) else {
        return Err(ServiceError::not_found(format!(
            "The app '{client_id}' is not registered in the tenant."
        )));
    };
    if client_id == tenant.bootstrap_client_id {
        return Err(ServiceError::invalid(
            "The bootstrap app cannot be deleted: the tenant's own credentials are made of it.",
        ));
    }
    if !app.store.delete_app(&tenant.id, &client_id).await? {
        return Err(ServiceError::not_found(format!(
            "The app '{client_id}' is not registered in the tenant."
        )));
    }
    Ok(())
}

/// The tenant's apps.
pub async fn list_apps(cx: &Ctx<'_>) -> ServiceResult<Vec<App>> {
    Ok(cx.store().list_apps(cx.tenant_id).await?)
}

/// Up to `limit` messages of the tenant's outbox after sequence number `after`, oldest first.
pub async fn notifications(cx: &Ctx<'_>, after: i64, limit: u64) -> ServiceResult<Vec<(i64, Value)>> {
    Ok(cx.store().list_notifications(cx.tenant_id, after, limit).await?)
}

/// Up to `limit` entries of the tenant's event log after sequence number `after`, oldest first.
pub async fn events(cx: &Ctx<'_>, filter: &EventFilter, after: i64, limit: u64) -> ServiceResult<Vec<(i64, Value)>> {
    Ok(cx.store().list_events(cx.tenant_id, filter, after, limit).await?)
}

/// Everything due or pending for the tenant, now, as a run of its own in the event log.
/// `Busy` when another replica holds the tenant for over a minute.
pub async fn settle(app: &Services, tenant: &Tenant) -> ServiceResult<(PassSummary, DateTime<Utc>)> {
    let cause = Cause::Settle(Uuid::new_v4().to_string());
    match app.worker.settle(&tenant.id, tenant.clock_offset_us, &cause).await {
        Ok(done) => Ok(done),
        Err(SettleError::Busy) => Err(ServiceError::Busy(
            "Another replica has been working this tenant for over a minute; try again.".into(),
        )),
        Err(SettleError::Store(e)) => Err(e.into()),
    }
}
