//! The Entra ID stand-in's use cases: issuing access tokens (client credentials for apps, the
//! password grant for directory users), the signing keys, and whether the database is ready.
//! Failures are [`TokenError`]s in product terms; the identity surface renders them in Entra's
//! shape, which is what token clients parse.

use super::App as Services;
use crate::domain::directory::password_matches;
use crate::domain::permissions::canonical_permission;
use crate::domain::tenant::{parse_guid, secret_matches, App, AppKind, Tenant};
use crate::identity::keys::{Jwk, KeyError};
use crate::identity::tokens::{app_claims, sign, user_claims, GRAPH_AUDIENCES};
use crate::store::{PoolStats, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the tenant does not exist")]
    UnknownTenant,
    /// No app with this client id in the tenant (or, for the password grant, no Graph app).
    #[error("the app is not registered in the tenant")]
    UnknownApp,
    #[error("the client sent no secret")]
    MissingSecret,
    #[error("the client secret does not match")]
    BadSecret,
    /// A scope item that names no Microsoft Graph permission.
    #[error("the scope '{0}' is not valid")]
    InvalidScope(String),
    /// The scope asks for no Graph permission at all.
    #[error("the scope names no Microsoft Graph permission")]
    NoGraphScope,
    #[error("no such user")]
    UnknownUser,
    #[error("invalid username or password")]
    BadPassword,
    #[error("the user account is disabled")]
    UserDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The tenant a token request or a discovery document names. Tenant ids are GUIDs.
pub async fn find_tenant(app: &Services, tenant: &str) -> Result<Tenant, TokenError> {
    let id = parse_guid(tenant).ok_or(TokenError::UnknownTenant)?;
    app.store.get_tenant(&id).await?.ok_or(TokenError::UnknownTenant)
}

/// Client credentials: an app token for `audience` (one of [`GRAPH_AUDIENCES`]), when the
/// app is registered in the tenant and presents its secret.
pub async fn client_credentials(
    app: &Services,
    tenant: &Tenant,
    client_id: &str,
    secret: Option<&str>,
    audience: &str,
) -> Result<String, TokenError> {
    let client = app
        .store
        .get_app(&tenant.id, client_id)
        .await?
        .ok_or(TokenError::UnknownApp)?;
    let secret = secret.ok_or(TokenError::MissingSecret)?;
    if !secret_matches(secret, &client.secret_hash) {
        return Err(TokenError::BadSecret);
    }
    let mut claims = app_claims(tenant, &client, app.tenant_now(tenant.clock_offset_us));
    claims.aud = audience.trim_end_matches('/').to_string();
    Ok(sign(&app.keys, &claims).await?)
}

/// What a resource-owner password request presents.
pub struct PasswordGrant<'a> {
    pub client_id: &'a str,
    /// A confidential client's secret; a public client sends none.
    pub client_secret: Option<&'a str>,
    pub scope: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

/// Resource-owner password credentials: a directory user signs in through a registered Graph
/// app and gets a delegated token whose `scp` lists the permissions asked for and whose `wids`
/// lists the user's directory roles. Returns the token and the permissions it grants.
pub async fn password(
    app: &Services,
    tenant: &Tenant,
    grant: PasswordGrant<'_>,
) -> Result<(String, Vec<String>), TokenError> {
    let client = app
        .store
        .get_app(&tenant.id, grant.client_id)
        .await?
        .filter(|a| a.kind == AppKind::Graph)
        .ok_or(TokenError::UnknownApp)?;
    if let Some(secret) = grant.client_secret {
        if !secret_matches(secret, &client.secret_hash) {
            return Err(TokenError::BadSecret);
        }
    }
    let scopes = requested_scopes(grant.scope, &client)?;
    let user = app
        .store
        .find_user_by_upn(&tenant.id, grant.username.trim())
        .await?
        .ok_or(TokenError::UnknownUser)?;
    let password_ok = user
        .password_hash
        .as_deref()
        .is_some_and(|h| password_matches(grant.password, h));
    if !password_ok {
        return Err(TokenError::BadPassword);
    }
    if !user.account_enabled {
        return Err(TokenError::UserDisabled);
    }
    let roles = app.store.directory_roles(&tenant.id, &user.id).await?;
    let now = app.tenant_now(tenant.clock_offset_us);
    let claims = user_claims(
        tenant,
        &client,
        &user,
        &scopes,
        &roles,
        grant.client_secret.is_some(),
        now,
    );
    Ok((sign(&app.keys, &claims).await?, scopes))
}

/// OpenID Connect scopes a client may ask for beside resource scopes; they grant no Graph access.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The delegated Graph permissions a `scope` parameter asks for: `https://graph.microsoft.com/X`
/// or a bare `X` (Graph is the default resource); `/.default` asks for the app's configured
/// permissions.
fn requested_scopes(scope: &str, client: &App) -> Result<Vec<String>, TokenError> {
    let mut out: Vec<String> = Vec::new();
    let push = |p: &str, out: &mut Vec<String>| {
        if !out.iter().any(|q| q == p) {
            out.push(p.to_string());
        }
    };
    for item in scope.split(' ').filter(|s| !s.is_empty()) {
        if OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(item)) {
            continue;
        }
        let name = GRAPH_AUDIENCES
            .iter()
            .find_map(|a| {
                let a = a.trim_end_matches('/');
                item.get(..a.len())
                    .filter(|p| p.eq_ignore_ascii_case(a))
                    .and_then(|_| item[a.len()..].strip_prefix('/'))
            })
            .unwrap_or(item);
        if name == ".default" {
            for p in &client.permissions {
                push(p, &mut out);
            }
            continue;
        }
        let canonical = canonical_permission(name).ok_or_else(|| TokenError::InvalidScope(item.to_string()))?;
        push(canonical, &mut out);
    }
    if out.is_empty() {
        return Err(TokenError::NoGraphScope);
    }
    Ok(out)
}

/// The public signing keys of the tenant named `tenant`, as a JWKS lists them.
pub async fn jwks(app: &Services, tenant: &str) -> Result<Vec<Jwk>, TokenError> {
    find_tenant(app, tenant).await?;
    Ok(app.keys.jwks().await?)
}

/// An access token for an app of a tenant (its bootstrap app unless `client_id` names one),
/// minted without a secret: what the `token` command prints.
pub async fn mint_app_token(app: &Services, tenant: &str, client_id: Option<String>) -> Result<String, MintError> {
    let tenant_id = parse_guid(tenant).ok_or_else(|| MintError::NotATenantId(tenant.to_string()))?;
    let tenant = app
        .store
        .get_tenant(&tenant_id)
        .await?
        .ok_or(MintError::NoTenant(tenant_id))?;
    let client_id = client_id.unwrap_or_else(|| tenant.bootstrap_client_id.clone());
    let client = app
        .store
        .get_app(&tenant.id, &client_id)
        .await?
        .ok_or_else(|| MintError::NoApp {
            client_id,
            tenant_id: tenant.id.clone(),
        })?;
    let now = app.tenant_now(tenant.clock_offset_us);
    Ok(sign(&app.keys, &app_claims(&tenant, &client, now)).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("'{0}' is not a tenant id")]
    NotATenantId(String),
    #[error("tenant {0} does not exist")]
    NoTenant(String),
    #[error("app {client_id} is not registered in tenant {tenant_id}")]
    NoApp { client_id: String, tenant_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// What the database answers a readiness or health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseStatus {
    /// It answers, with every migration this build knows applied.
    Ready,
    /// It answers, but the migrations are not all applied.
    NotMigrated,
    /// It did not answer within the probe's time; the cause is for the log.
    Unreachable(String),
}

/// Asks the database whether it is ready, waiting at most `within`: a probe answers in time
/// even while the database is down.
pub async fn database_status(app: &Services, within: std::time::Duration) -> DatabaseStatus {
    match tokio::time::timeout(within, app.store.ready()).await {
        Ok(Ok(true)) => DatabaseStatus::Ready,
        Ok(Ok(false)) => DatabaseStatus::NotMigrated,
        Ok(Err(e)) => DatabaseStatus::Unreachable(e.to_string()),
        Err(_) => DatabaseStatus::Unreachable(format!("no answer within {} ms", within.as_millis())),
    }
}

/// The database pool's size and idle connections, for the metrics.
pub fn pool_stats(app: &Services) -> PoolStats {
    app.store.pool_stats()
}
