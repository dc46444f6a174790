//! Access tokens: what they claim, how they are minted and checked. Lifetimes are on the
//! tenant's virtual clock, so moving a tenant's clock past a token's expiry expires it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{KeyError, KeyRing};
use crate::domain::directory::User;
use crate::domain::tenant::{App, AppKind, Tenant, PARTNER_ROLE};

/// Entra ID's app-only token lifetime (its `expires_in` is 3599).
pub const TOKEN_LIFETIME_SECS: i64 = 3599;
/// Clock skew tolerated on `nbf` and `exp`, as Microsoft's token validation allows.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Graph's resource id and application id: either is a valid `aud` for a Graph token.
/// Exchange Online's resource URIs: a user may sign in for it (its tokens are of no use on
/// this server, which serves no Exchange API), so that Conditional Access policies on Office 365
/// have a resource to apply to.
pub const EXCHANGE_AUDIENCES: &[&str] = &["https://outlook.office365.com", "https://outlook.office.com"];

/// The resource a delegated token is for, as its stored scopes tell: Exchange Online's are
/// kept as full URIs (`https://outlook.office365.com/Mail.Read`), Graph's as bare names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Graph,
    ExchangeOnline,
}

impl Resource {
    pub fn of_scopes(scopes: &[String]) -> Resource {
        if scopes.iter().any(|s| s.starts_with(EXCHANGE_AUDIENCES[0])) {
            Resource::ExchangeOnline
        } else {
            Resource::Graph
        }
    }

    /// The token's `aud`.
    pub fn audience(self) -> &'static str {
        match self {
            Resource::Graph => GRAPH_AUDIENCES[0],
            Resource::ExchangeOnline => EXCHANGE_AUDIENCES[0],
        }
    }

    /// The resource's application id (what Conditional Access policies name).
    pub fn app_id(self) -> &'static str {
        match self {
            Resource::Graph => crate::domain::conditional_access::GRAPH_APP_ID,
            Resource::ExchangeOnline => crate::domain::conditional_access::EXCHANGE_ONLINE_APP_ID,
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Resource::Graph => "Microsoft Graph",
            Resource::ExchangeOnline => "Office 365 Exchange Online",
        }
    }

    /// A granted scope as the token's `scp` names it.
    pub fn scope_name(scope: &str) -> &str {
        scope
            .strip_prefix(EXCHANGE_AUDIENCES[0])
            .and_then(|s| s.strip_prefix('/'))
            .unwrap_or(scope)
    }

    /// A granted scope as the token response's `scope` names it (a full URI).
    pub fn scope_uri(scope: &str) -> String {
        if scope.starts_with("https://") {
            scope.to_string()
        } else {
            format!("https://graph.microsoft.com/{scope}")
        }
    }
}

pub const GRAPH_AUDIENCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_displayname: Option<String>,
    pub appid: String,
    pub appidacr: String,
    pub idp: String,
    /// `app` for app-only tokens, `user` for delegated ones.
    pub idtyp: String,
    pub oid: String,
    pub sub: String,
    pub tid: String,
    pub uti: String,
    pub ver: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
    /// The signed-in user's principal name and display name (delegated tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The catalog connector a partner app's token speaks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
}

/// Graph access tokens are Entra v1.0 tokens whatever endpoint issued them.
pub fn issuer(tenant_id: &str) -> String {
    format!("https://sts.windows.net/{tenant_id}/")
}

/// The object id of an app's service principal in the tenant: stable, derived from both ids.
pub fn service_principal_id(tenant_id: &str, client_id: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{tenant_id}/servicePrincipals/{client_id}").as_bytes(),
    )
    .to_string()
}

pub fn app_claims(tenant: &Tenant, app: &App, now: DateTime<Utc>) -> AccessClaims {
    let iat = now.timestamp();
    let oid = service_principal_id(&tenant.id, &app.client_id);
    AccessClaims {
        aud: GRAPH_AUDIENCES[0].to_string(),
        iss: issuer(&tenant.id),
        iat,
        nbf: iat,
        exp: iat + TOKEN_LIFETIME_SECS,
        app_displayname: Some(app.display_name.clone()),
        appid: app.client_id.clone(),
        appidacr: "1".to_string(),
        idp: issuer(&tenant.id),
        idtyp: "app".to_string(),
        sub: oid.clone(),
        oid,
        tid: tenant.id.clone(),
        uti: Uuid::new_v4().simple().to_string(),
        ver: "1.0".to_string(),
        roles: match app.kind {
            AppKind::Graph => app.permissions.clone(),
            AppKind::Partner => vec![PARTNER_ROLE.to_string()],
        },
        scp: None,
        wids: Vec::new(),
        upn: None,
        name: None,
        connector_id: app.connector_id.clone(),
    }
}

/// The `wids` entry every member user carries: the "User" directory role template.
pub const MEMBER_USER_ROLE: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";

/// A delegated token: `user` signed in through `app`, granted `scopes`; `directory_roles` are
/// the user's role template ids; `authenticated_client` says whether the app sent its secret.
pub fn user_claims(
    tenant: &Tenant,
    app: &App,
    user: &User,
    scopes: &[String],
    directory_roles: &[String],
    authenticated_client: bool,
    now: DateTime<Utc>,
) -> AccessClaims {
    let iat = now.timestamp();
    let mut wids: Vec<String> = directory_roles.to_vec();
    wids.push(MEMBER_USER_ROLE.to_string());
    AccessClaims {
        aud: Resource::of_scopes(scopes).audience().to_string(),
        iss: issuer(&tenant.id),
        iat,
        nbf: iat,
        exp: iat + TOKEN_LIFETIME_SECS,
        app_displayname: Some(app.display_name.clone()),
        appid: app.client_id.clone(),
        appidacr: if authenticated_client { "1" } else { "0" }.to_string(),
        idp: issuer(&tenant.id),
        idtyp: "user".to_string(),
        oid: user.id.clone(),
        sub: pairwise_subject(&user.id, &app.client_id),
        tid: tenant.id.clone(),
        uti: Uuid::new_v4().simple().to_string(),
        ver: "1.0".to_string(),
        roles: Vec::new(),
        scp: Some(
            scopes
                .iter()
                .map(|s| Resource::scope_name(s))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        wids,
        upn: Some(user.user_principal_name.clone()),
        name: Some(user.display_name.clone()),
        connector_id: None,
    }
}

/// A v2.0 ID token (OpenID Connect) for `user` signing in to `app`, when `openid` was asked
/// for: its audience is the app, its issuer the one the discovery document names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub oid: String,
    pub preferred_username: String,
    pub sub: String,
    pub tid: String,
    pub uti: String,
    pub ver: String,
}

/// The v2.0 issuer of a tenant, as its OpenID configuration names it.
pub fn v2_issuer(tenant_id: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant_id}/v2.0")
}

pub fn id_claims(tenant: &Tenant, app: &App, user: &User, nonce: Option<&str>, now: DateTime<Utc>) -> IdClaims {
    let iat = now.timestamp();
    IdClaims {
        aud: app.client_id.clone(),
        iss: v2_issuer(&tenant.id),
        iat,
        nbf: iat,
        exp: iat + TOKEN_LIFETIME_SECS,
        name: user.display_name.clone(),
        nonce: nonce.map(str::to_string),
        oid: user.id.clone(),
        preferred_username: user.user_principal_name.clone(),
        sub: pairwise_subject(&user.id, &app.client_id),
        tid: tenant.id.clone(),
        uti: Uuid::new_v4().simple().to_string(),
        ver: "2.0".to_string(),
    }
}

/// Entra's `sub` is pairwise: stable per user and app, not the object id.
fn pairwise_subject(user_id: &str, client_id: &str) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("{user_id}/{client_id}").as_bytes())
        .simple()
        .to_string()
}

pub async fn sign(keys: &KeyRing, claims: &impl Serialize) -> Result<String, KeyError> {
    let key = keys.active().await?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| KeyError::Key(e.to_string()))
}

/// Why a presented token is refused; the text goes to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("Access token is empty.")]
    Missing,
    #[error("IDX14100: JWT is not well formed. The token needs to be in JWS Compact Serialization Format.")]
    Malformed,
    #[error("Access token validation failure. Invalid signature.")]
    BadSignature,
    #[error("Access token validation failure. Invalid audience.")]
    WrongAudience,
    #[error("Lifetime validation failed, the token is expired.")]
    Expired,
    #[error("Lifetime validation failed, the token is not yet valid.")]
    NotYetValid,
    #[error("Access token validation failure. Invalid tenant.")]
    UnknownTenant,
    /// The token's app is not (or no longer) registered in its tenant.
    #[error("Access token validation failure. The application the token was issued to does not exist in the tenant.")]
    UnknownApp,
    /// A delegated token's user was deleted or disabled since it was issued.
    #[error("Access token validation failure. The signed-in user does not exist in the tenant or is disabled.")]
    UserGone,
}

/// Checks signature and audience. Lifetime is checked by the caller against the tenant's
/// clock (see `check_lifetime`), which is only known once `tid` is read.
///
/// A token verified before is not verified again: checking an RS256 signature was half the CPU
/// of a Graph GET, and a client presents one token for up to an hour. The keys a token can be
/// signed with are never replaced, so the answer cannot change.
pub async fn verify_signature(keys: &KeyRing, token: &str) -> Result<Arc<AccessClaims>, TokenRejection> {
    if let Some(claims) = keys.verified(token) {
        return Ok(claims);
    }
    let claims = Arc::new(verify_uncached(keys, token).await?);
    keys.remember_verified(token, claims.clone());
    Ok(claims)
}

/// The header a sign-in carries its device's credential in: where browsers send the device's
/// PRT cookie to Entra (`x-ms-RefreshTokenCredential`).
pub const DEVICE_CREDENTIAL_HEADER: &str = "x-ms-RefreshTokenCredential";
const DEVICE_CREDENTIAL_TYPE: &str = "deviceCredential";

/// A device's credential: the emulator's stand-in for the Primary Refresh Token through which
/// Entra knows the device a sign-in comes from. Issued by the control plane per device, signed
/// with the deployment's keys; it names the device by its Entra id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceCredentialClaims {
    pub iss: String,
    pub tid: String,
    /// The device's Entra id (`managedDevice.azureADDeviceId`).
    pub deviceid: String,
    pub iat: i64,
    pub typ: String,
}

impl DeviceCredentialClaims {
    pub fn new(tenant_id: &str, device_id: &str, now: DateTime<Utc>) -> Self {
        DeviceCredentialClaims {
            iss: issuer(tenant_id),
            tid: tenant_id.to_string(),
            deviceid: device_id.to_string(),
            iat: now.timestamp(),
            typ: DEVICE_CREDENTIAL_TYPE.to_string(),
        }
    }
}

/// A device credential's claims when its signature is the deployment's; none otherwise.
pub async fn verify_device_credential(keys: &KeyRing, token: &str) -> Option<DeviceCredentialClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.alg != Algorithm::RS256 {
        return None;
    }
    let key = keys.decoding_key(&header.kid?).await.ok()??;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<DeviceCredentialClaims>(token, &key, &validation)
        .ok()?
        .claims;
    (claims.typ == DEVICE_CREDENTIAL_TYPE).then_some(claims)
}

async fn verify_uncached(keys: &KeyRing, token: &str) -> Result<AccessClaims, TokenRejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenRejection::BadSignature);
    }
    let kid = header.kid.ok_or(TokenRejection::BadSignature)?;
    let key = keys
        .decoding_key(&kid)
        .await
        .map_err(|_| TokenRejection::BadSignature)?
        .ok_or(TokenRejection::BadSignature)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        _ => TokenRejection::Malformed,
    })?;
    if !GRAPH_AUDIENCES.contains(&data.claims.aud.as_str()) {
        return Err(TokenRejection::WrongAudience);
    }
    Ok(data.claims)
}

pub fn check_lifetime(claims: &AccessClaims, tenant_now: DateTime<Utc>) -> Result<(), TokenRejection> {
    let now = tenant_now.timestamp();
    if claims.exp + CLOCK_SKEW_SECS <= now {
        return Err(TokenRejection::Expired);
    }
    if claims.nbf - CLOCK_SKEW_SECS > now {
        return Err(TokenRejection::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn claims(now: DateTime<Utc>) -> AccessClaims {
        let tenant = Tenant {
            id: "t".into(),
            display_name: "T".into(),
            created_at: now,
            clock_offset_us: 0,
            bootstrap_client_id: "c".into(),
            limits: None,
            faults: Vec::new(),
        };
        let app = App {
            tenant_id: "t".into(),
            client_id: "c".into(),
            display_name: "App".into(),
            kind: crate::domain::tenant::AppKind::Graph,
            secret_hash: String::new(),
            permissions: vec!["X.Read.All".into()],
            connector_id: None,
            sign_in: Default::default(),
            created_at: now,
        };
        app_claims(&tenant, &app, now)
    }

    #[test]
    fn lifetime_follows_the_clock_it_is_given_with_skew() {
        let now = Utc::now();
        let c = claims(now);
        assert_eq!(c.exp - c.iat, TOKEN_LIFETIME_SECS);
        assert!(check_lifetime(&c, now).is_ok());
        assert!(check_lifetime(&c, now + Duration::seconds(TOKEN_LIFETIME_SECS + CLOCK_SKEW_SECS - 1)).is_ok());
        assert_eq!(
            check_lifetime(&c, now + Duration::seconds(TOKEN_LIFETIME_SECS + CLOCK_SKEW_SECS)),
            Err(TokenRejection::Expired)
        );
        assert_eq!(
            check_lifetime(&c, now - Duration::seconds(CLOCK_SKEW_SECS + 1)),
            Err(TokenRejection::NotYetValid)
        );
    }

    #[test]
    fn app_tokens_carry_the_app_permissions_as_roles() {
        let c = claims(Utc::now());
        assert_eq!(c.idtyp, "app");
        assert_eq!(c.roles, vec!["X.Read.All".to_string()]);
        assert_eq!(c.iss, "https://sts.windows.net/t/");
        assert_eq!(c.oid, service_principal_id("t", "c"));
        assert_ne!(service_principal_id("t", "c"), service_principal_id("u", "c"));
    }
}
