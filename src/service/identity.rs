//! The Entra ID stand-in's use cases: issuing access tokens (client credentials for apps, the
//! password grant for directory users), the signing keys, and whether the database is ready.
//! Failures are [`TokenError`]s in product terms; the identity surface renders them in Entra's
//! shape, which is what token clients parse.

use super::App as Services;
use crate::domain::directory::password_matches;
use crate::domain::directory::User;
use crate::domain::permissions::canonical_permission;
use crate::domain::tenant::{hash_secret, parse_guid, secret_matches, App, AppKind, Tenant};
use crate::identity::keys::{Jwk, KeyError};
use crate::identity::tokens::{
    app_claims, id_claims, sign, user_claims, verify_device_credential, Resource, EXCHANGE_AUDIENCES, GRAPH_AUDIENCES,
};
use crate::store::{DeviceCodeRecord, PoolStats, RefreshTokenRecord, StoreError};

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
    /// The scope names permissions of two resources (Graph and Exchange Online): a token is for
    /// one.
    #[error("the scope names more than one resource")]
    MultipleResources,
    /// A Conditional Access policy refuses the sign-in.
    #[error("a Conditional Access policy refuses the sign-in")]
    ConditionalAccess(crate::domain::conditional_access::Refusal),
    /// The scope asks for no Graph permission at all.
    #[error("the scope names no Microsoft Graph permission")]
    NoGraphScope,
    #[error("no such user")]
    UnknownUser,
    #[error("invalid username or password")]
    BadPassword,
    #[error("the user account is disabled")]
    UserDisabled,
    /// Device flow: no such device code for the app (or it was redeemed already).
    #[error("the device code is not valid")]
    BadDeviceCode,
    /// Device flow: the user has not signed in for the code yet.
    #[error("the user has not signed in for the device code yet")]
    AuthorizationPending,
    /// Device flow: the code's fifteen minutes ran out.
    #[error("the device code expired")]
    DeviceCodeExpired,
    /// No such refresh token for the app (or it was redeemed already: they rotate).
    #[error("the refresh token is not valid")]
    BadRefreshToken,
    #[error("the refresh token expired")]
    RefreshTokenExpired,
    /// A single-page app's refresh token past its fixed 24 hours.
    #[error("the single-page app's refresh token expired")]
    SpaRefreshTokenExpired,
    /// The app may not be granted this delegated permission (its registration does not list it).
    #[error("the app may not be granted '{0}'")]
    NotConsented(String),
    /// Authorization code grant: no such code for the app.
    #[error("the authorization code is not valid")]
    BadAuthorizationCode,
    /// Authorization code grant: the code was redeemed before (its tokens are revoked now).
    #[error("the authorization code was redeemed already")]
    CodeRedeemed,
    /// Authorization code grant: the code's ten minutes ran out.
    #[error("the authorization code expired")]
    CodeExpired,
    /// Authorization code grant: `redirect_uri` is not the one the code was issued for.
    #[error("the redirect URI is not the one the code was issued for")]
    RedirectUriMismatch,
    /// PKCE: the verifier is missing or does not hash to the challenge.
    #[error("the code verifier does not match the code challenge")]
    PkceMismatch,
    /// A code for a web or public-client redirect URI redeemed from a browser page (an
    /// `Origin` header), which only single-page apps may do.
    #[error("cross-origin redemption is for single-page apps only")]
    CrossOriginNotSpa(String),
    /// A single-page app's code redeemed without an `Origin` header.
    #[error("a single-page app's code must be redeemed cross-origin")]
    SpaNeedsCrossOrigin,
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

pub use super::signin::is_alias as is_tenant_alias;

/// The tenant that registered the app `client_id`: what an alias authority (`organizations`,
/// `common`) means on the token endpoint.
pub async fn tenant_of_client(app: &Services, authority: &str, client_id: &str) -> Result<Tenant, TokenError> {
    match super::signin::resolve(app, authority, client_id).await? {
        super::signin::Resolved::Found(found) => Ok(found.0),
        _ => Err(TokenError::UnknownTenant),
    }
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
    check_secret(&client, secret, true)?;
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
    /// The device credential the request carried (`x-ms-RefreshTokenCredential`).
    pub device_credential: Option<&'a str>,
}

/// Resource-owner password credentials: a directory user signs in through a registered Graph
/// app and gets a delegated token whose `scp` lists the permissions asked for and whose `wids`
/// lists the user's directory roles, with an ID token for `openid` and a refresh token for
/// `offline_access`. Without its secret, the app must allow public client flows
/// (`isFallbackPublicClient`).
pub async fn password(
    app: &Services,
    tenant: &Tenant,
    grant: PasswordGrant<'_>,
) -> Result<DelegatedTokens, TokenError> {
    let client = app
        .store
        .get_app(&tenant.id, grant.client_id)
        .await?
        .filter(|a| a.kind == AppKind::Graph)
        .ok_or(TokenError::UnknownApp)?;
    check_public_client(&client, grant.client_secret)?;
    let mut scopes = requested_scopes(grant.scope, &client)?;
    scopes.extend(oidc_scopes(grant.scope));
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
    let now = app.tenant_now(tenant.clock_offset_us);
    let lineage = Lineage {
        authenticated_client: grant.client_secret.is_some(),
        device_credential: grant.device_credential,
        interactive: true,
        ..Lineage::default()
    };
    delegated_tokens(app, tenant, &client, &user, &scopes, lineage, now).await
}

/// A public-client flow (password, device code): the app's secret when it sends one, and
/// without one only an app that allows public client flows, as Entra's "Allow public client
/// flows" setting (`isFallbackPublicClient`) decides.
fn check_public_client(client: &App, secret: Option<&str>) -> Result<(), TokenError> {
    check_secret(client, secret, !client.sign_in.is_fallback_public_client)
}

/// The app's secret, when sent, must match; when `required`, it must be sent.
fn check_secret(client: &App, secret: Option<&str>, required: bool) -> Result<(), TokenError> {
    match secret {
        Some(secret) if !secret_matches(secret, &client.secret_hash) => Err(TokenError::BadSecret),
        Some(_) => Ok(()),
        None if required => Err(TokenError::MissingSecret),
        None => Ok(()),
    }
}

/// A delegated access token for `user` through `client`, with the user's directory roles.
async fn user_access_token(
    app: &Services,
    tenant: &Tenant,
    client: &App,
    user: &User,
    scopes: &[String],
    authenticated_client: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, TokenError> {
    let roles = app.store.directory_roles(&tenant.id, &user.id).await?;
    let claims = user_claims(tenant, client, user, scopes, &roles, authenticated_client, now);
    Ok(sign(&app.keys, &claims).await?)
}

/// How long a device code may be signed in for and polled with, and how often to poll.
pub const DEVICE_CODE_LIFETIME_SECS: i64 = 900;
pub const DEVICE_CODE_POLL_INTERVAL_SECS: i64 = 5;

/// A device authorization grant begun: what `/devicecode` answers.
#[derive(Debug, Clone)]
pub struct DeviceFlow {
    pub device_code: String,
    pub user_code: String,
}

/// `/devicecode`: a device code and a user code for a Graph app of the tenant and the delegated
/// scopes it asks for; the user signs in with the user code at `/devicelogin`.
pub async fn start_device_flow(
    app: &Services,
    tenant: &Tenant,
    client_id: &str,
    scope: &str,
) -> Result<DeviceFlow, TokenError> {
    use rand::distributions::{Alphanumeric, DistString, Distribution, Slice};
    let client = app
        .store
        .get_app(&tenant.id, client_id)
        .await?
        .filter(|a| a.kind == AppKind::Graph)
        .ok_or(TokenError::UnknownApp)?;
    let mut scopes = requested_scopes(scope, &client)?;
    scopes.extend(oidc_scopes(scope));
    let now = app.tenant_now(tenant.clock_offset_us);
    // Letters and digits a person cannot confuse, as Entra's codes are: nine of them.
    const USER_CODE_ALPHABET: &[char] = &[
        'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'M', 'N', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X',
        'Y', 'Z', '2', '3', '4', '5', '6', '7', '8', '9',
    ];
    let alphabet = Slice::new(USER_CODE_ALPHABET).expect("an alphabet");
    let flow = {
        let mut rng = rand::thread_rng();
        DeviceFlow {
            device_code: Alphanumeric.sample_string(&mut rng, 64),
            user_code: alphabet.sample_iter(&mut rng).take(9).collect(),
        }
    };
    let record = DeviceCodeRecord {
        device_code_hash: hash_secret(&flow.device_code),
        user_code: flow.user_code.clone(),
        tenant_id: tenant.id.clone(),
        client_id: client.client_id.clone(),
        scopes,
        expires_at: now + chrono::Duration::seconds(DEVICE_CODE_LIFETIME_SECS),
        user_id: None,
    };
    app.store.insert_device_code(&record, now).await?;
    Ok(flow)
}

/// Why `/devicelogin` refused a sign-in.
#[derive(Debug, thiserror::Error)]
pub enum DeviceLoginError {
    #[error("That code didn't work. Check the code and try again.")]
    UnknownCode,
    #[error("That code has expired. Go back to the device and get a new code.")]
    Expired,
    #[error("This code was used already. Go back to the device and get a new code.")]
    Used,
    #[error("Your account or password is incorrect.")]
    BadCredentials,
    #[error("Your account has been locked (it is disabled). Contact your administrator.")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `/devicelogin`: the user the code's tenant knows by `username` signs in with `password` for
/// the device that holds `user_code`. Returns the app's display name.
pub async fn approve_device_code(
    app: &Services,
    user_code: &str,
    username: &str,
    password: &str,
) -> Result<String, DeviceLoginError> {
    let user_code: String = user_code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let code = app
        .store
        .device_code_by_user_code(&user_code)
        .await?
        .ok_or(DeviceLoginError::UnknownCode)?;
    let tenant = app
        .store
        .get_tenant(&code.tenant_id)
        .await?
        .ok_or(DeviceLoginError::UnknownCode)?;
    if app.tenant_now(tenant.clock_offset_us) >= code.expires_at {
        return Err(DeviceLoginError::Expired);
    }
    if code.user_id.is_some() {
        return Err(DeviceLoginError::Used);
    }
    let user = app
        .store
        .find_user_by_upn(&tenant.id, username.trim())
        .await?
        .filter(|u| {
            u.password_hash
                .as_deref()
                .is_some_and(|h| password_matches(password, h))
        })
        .ok_or(DeviceLoginError::BadCredentials)?;
    if !user.account_enabled {
        return Err(DeviceLoginError::Disabled);
    }
    if !app.store.approve_device_code(&user_code, &user.id).await? {
        return Err(DeviceLoginError::Used);
    }
    let client = app.store.get_app(&tenant.id, &code.client_id).await?;
    Ok(client.map(|c| c.display_name).unwrap_or_default())
}

/// What a user's sign-in gives the app: the access token with the Graph permissions granted,
/// and, when asked for, an ID token (`openid`) and a refresh token (`offline_access`).
#[derive(Debug, Clone)]
pub struct DelegatedTokens {
    pub access_token: String,
    /// The Graph permissions in the access token.
    pub scopes: Vec<String>,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub user_id: String,
}

/// How long a refresh token may go unused, on the tenant's clock (Entra's default: 90 days).
pub const REFRESH_TOKEN_LIFETIME_DAYS: i64 = 90;

/// Where a set of delegated tokens comes from: the nonce its ID token carries and the
/// authorization code its refresh tokens descend from.
#[derive(Debug, Clone, Copy, Default)]
struct Lineage<'a> {
    nonce: Option<&'a str>,
    family: Option<&'a str>,
    /// The app presented its secret (the access token's `appidacr` is 1).
    authenticated_client: bool,
    /// A single-page app's sign-in: the refresh token expires then, whatever its rotations.
    single_page_app_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The device credential the request carried.
    device_credential: Option<&'a str>,
    /// The device a refresh token's sign-in came from.
    device_id: Option<&'a str>,
    /// Signed in through a browser (Conditional Access's `browser` client app type), else a
    /// mobile or desktop client.
    browser: bool,
    /// The user signed in (not a refresh token's redemption).
    interactive: bool,
}

/// How long a single-page app's refresh tokens last, from the sign-in (Entra: 24 hours).
pub const SPA_REFRESH_TOKEN_LIFETIME_HOURS: i64 = 24;

async fn delegated_tokens(
    app: &Services,
    tenant: &Tenant,
    client: &App,
    user: &User,
    granted: &[String],
    lineage: Lineage<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<DelegatedTokens, TokenError> {
    let is_oidc = |s: &String| OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(s));
    let graph: Vec<String> = granted.iter().filter(|s| !is_oidc(s)).cloned().collect();
    let asked = |name: &str| granted.iter().any(|s| s.eq_ignore_ascii_case(name));
    // The device: the one the request's credential names (a credential of another tenant, or
    // one not signed by this deployment, names none), else the one the refresh token's
    // sign-in came from.
    let device_id: Option<String> = match lineage.device_credential {
        Some(credential) => verify_device_credential(&app.keys, credential)
            .await
            .filter(|c| c.tid.eq_ignore_ascii_case(&tenant.id))
            .map(|c| c.deviceid),
        None => lineage.device_id.map(str::to_string),
    };
    let evaluation = super::conditional_access::sign_in(
        app,
        super::conditional_access::UserSignIn {
            tenant,
            client,
            user,
            resource: Resource::of_scopes(&graph),
            client_app_type: if lineage.browser {
                "browser"
            } else {
                "mobileAppsAndDesktopClients"
            },
            device_id: device_id.as_deref(),
            interactive: lineage.interactive,
            now,
        },
    )
    .await?;
    if let Some(refusal) = evaluation.refusal {
        return Err(TokenError::ConditionalAccess(refusal));
    }
    let access_token = user_access_token(app, tenant, client, user, &graph, lineage.authenticated_client, now).await?;
    let id_token = if asked("openid") {
        Some(sign(&app.keys, &id_claims(tenant, client, user, lineage.nonce, now)).await?)
    } else {
        None
    };
    let refresh_token = if asked("offline_access") {
        use rand::distributions::{Alphanumeric, DistString};
        let text = Alphanumeric.sample_string(&mut rand::thread_rng(), 96);
        app.store
            .insert_refresh_token(&RefreshTokenRecord {
                token_hash: hash_secret(&text),
                tenant_id: tenant.id.clone(),
                client_id: client.client_id.clone(),
                user_id: user.id.clone(),
                scopes: granted.to_vec(),
                expires_at: lineage
                    .single_page_app_until
                    .unwrap_or(now + chrono::Duration::days(REFRESH_TOKEN_LIFETIME_DAYS)),
                family: lineage.family.map(str::to_string),
                single_page_app: lineage.single_page_app_until.is_some(),
                device_id: device_id.clone(),
            })
            .await?;
        Some(text)
    } else {
        None
    };
    Ok(DelegatedTokens {
        access_token,
        scopes: graph,
        id_token,
        refresh_token,
        user_id: user.id.clone(),
    })
}

/// The app and the user a delegated grant names, both still there and the user enabled.
async fn app_and_user(
    app: &Services,
    tenant: &Tenant,
    client_id: &str,
    user_id: &str,
) -> Result<(App, User), TokenError> {
    let client = app
        .store
        .get_app(&tenant.id, client_id)
        .await?
        .ok_or(TokenError::UnknownApp)?;
    let user = app
        .store
        .get_user(&tenant.id, user_id)
        .await?
        .ok_or(TokenError::UnknownUser)?;
    if !user.account_enabled {
        return Err(TokenError::UserDisabled);
    }
    Ok((client, user))
}

/// The token endpoint's device code grant: pending until the user signs in, then the user's
/// tokens, once.
pub async fn redeem_device_code(
    app: &Services,
    tenant: &Tenant,
    client_id: &str,
    client_secret: Option<&str>,
    device_code: &str,
    device_credential: Option<&str>,
) -> Result<DelegatedTokens, TokenError> {
    let code = app
        .store
        .device_code(&tenant.id, &hash_secret(device_code))
        .await?
        .filter(|c| c.client_id.eq_ignore_ascii_case(client_id))
        .ok_or(TokenError::BadDeviceCode)?;
    let now = app.tenant_now(tenant.clock_offset_us);
    if now >= code.expires_at {
        return Err(TokenError::DeviceCodeExpired);
    }
    let Some(user_id) = &code.user_id else {
        return Err(TokenError::AuthorizationPending);
    };
    let (client, user) = app_and_user(app, tenant, &code.client_id, user_id).await?;
    check_public_client(&client, client_secret)?;
    if !app.store.take_device_code(&tenant.id, &code.device_code_hash).await? {
        return Err(TokenError::BadDeviceCode);
    }
    let lineage = Lineage {
        device_credential,
        interactive: true,
        ..Lineage::default()
    };
    delegated_tokens(app, tenant, &client, &user, &code.scopes, lineage, now).await
}

/// The token endpoint's refresh token grant: the token is spent and a new set issued, with the
/// scopes first granted (rotation: each refresh token works once).
pub async fn redeem_refresh_token(
    app: &Services,
    tenant: &Tenant,
    client_id: &str,
    refresh_token: &str,
    origin: Option<&str>,
    device_credential: Option<&str>,
) -> Result<DelegatedTokens, TokenError> {
    let token_hash = hash_secret(refresh_token);
    // A single-page app's tokens are redeemed from a page (cross-origin), every other app's
    // not: only a token of the kind the request's origin allows is taken, so a refused one is
    // not spent.
    let from_page = origin.is_some();
    let Some(record) = app.store.take_refresh_token(&tenant.id, &token_hash, from_page).await? else {
        return Err(
            match (app.store.refresh_token_kind(&tenant.id, &token_hash).await?, origin) {
                (Some(true), None) => TokenError::SpaNeedsCrossOrigin,
                (Some(false), Some(origin)) => TokenError::CrossOriginNotSpa(origin.to_string()),
                _ => TokenError::BadRefreshToken,
            },
        );
    };
    if !record.client_id.eq_ignore_ascii_case(client_id) {
        return Err(TokenError::BadRefreshToken);
    }
    let now = app.tenant_now(tenant.clock_offset_us);
    if now >= record.expires_at {
        return Err(if record.single_page_app {
            TokenError::SpaRefreshTokenExpired
        } else {
            TokenError::RefreshTokenExpired
        });
    }
    let (client, user) = app_and_user(app, tenant, &record.client_id, &record.user_id).await?;
    let lineage = Lineage {
        family: record.family.as_deref(),
        single_page_app_until: record.single_page_app.then_some(record.expires_at),
        device_credential,
        device_id: record.device_id.as_deref(),
        browser: record.single_page_app,
        ..Lineage::default()
    };
    match delegated_tokens(app, tenant, &client, &user, &record.scopes, lineage, now).await {
        // Refused by Conditional Access, the refresh token stays: redeemed again once the
        // device is compliant (or the policy changed), it is evaluated again.
        Err(TokenError::ConditionalAccess(r)) => {
            app.store.insert_refresh_token(&record).await?;
            Err(TokenError::ConditionalAccess(r))
        }
        other => other,
    }
}

/// What an authorization code grant presents.
#[derive(Debug, Clone, Copy)]
pub struct CodeGrant<'a> {
    pub client_id: &'a str,
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    /// The request's `Origin` header: a browser page's cross-origin request.
    pub origin: Option<&'a str>,
    /// The device credential the request carried (`x-ms-RefreshTokenCredential`).
    pub device_credential: Option<&'a str>,
}

/// The token endpoint's authorization code grant: the code `/authorize` issued, redeemed once
/// by the app it was issued to, with the same redirect URI and the PKCE verifier; as the
/// redirect URI's platform requires, with the app's secret (web) or from a browser (single-page
/// app). A code redeemed twice is refused, and the refresh tokens of its first redemption
/// revoked.
pub async fn redeem_authorization_code(
    app: &Services,
    tenant: &Tenant,
    grant: CodeGrant<'_>,
) -> Result<DelegatedTokens, TokenError> {
    use crate::domain::tenant::Platform;
    let code_hash = hash_secret(grant.code);
    let (code, redeemed) = app
        .store
        .authorization_code(&tenant.id, &code_hash)
        .await?
        .filter(|(c, _)| c.client_id.eq_ignore_ascii_case(grant.client_id))
        .ok_or(TokenError::BadAuthorizationCode)?;
    if redeemed {
        app.store.revoke_refresh_token_family(&tenant.id, &code_hash).await?;
        return Err(TokenError::CodeRedeemed);
    }
    let now = app.tenant_now(tenant.clock_offset_us);
    if now >= code.expires_at {
        return Err(TokenError::CodeExpired);
    }
    if code.redirect_uri != grant.redirect_uri {
        return Err(TokenError::RedirectUriMismatch);
    }
    let (client, user) = app_and_user(app, tenant, &code.client_id, &code.user_id).await?;
    let platform = client.sign_in.platform_of(&code.redirect_uri);
    match (platform, grant.origin) {
        (Some(Platform::Spa), None) => return Err(TokenError::SpaNeedsCrossOrigin),
        (Some(Platform::Spa), Some(_)) => {}
        (_, Some(origin)) => return Err(TokenError::CrossOriginNotSpa(origin.to_string())),
        _ => {}
    }
    check_secret(&client, grant.client_secret, platform == Some(Platform::Web))?;
    if let Some(challenge) = &code.code_challenge {
        let verifier = grant.code_verifier.ok_or(TokenError::PkceMismatch)?;
        if !crate::domain::pkce::verifies(verifier, challenge, code.code_challenge_method.as_deref()) {
            return Err(TokenError::PkceMismatch);
        }
    }
    if !app.store.mark_code_redeemed(&tenant.id, &code_hash).await? {
        app.store.revoke_refresh_token_family(&tenant.id, &code_hash).await?;
        return Err(TokenError::CodeRedeemed);
    }
    let lineage = Lineage {
        nonce: code.nonce.as_deref(),
        family: Some(&code_hash),
        authenticated_client: grant.client_secret.is_some(),
        single_page_app_until: (platform == Some(Platform::Spa))
            .then(|| now + chrono::Duration::hours(SPA_REFRESH_TOKEN_LIFETIME_HOURS)),
        device_credential: grant.device_credential,
        device_id: None,
        // The user signed in through a browser (the sign-in page).
        browser: true,
        interactive: true,
    };
    delegated_tokens(app, tenant, &client, &user, &code.scopes, lineage, now).await
}

/// The OpenID Connect scopes `scope` asks for, lower-case.
pub(super) fn oidc_scopes(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in scope.split(' ') {
        if let Some(o) = OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(item)) {
            if !out.iter().any(|x| x == o) {
                out.push(o.to_string());
            }
        }
    }
    out
}

/// OpenID Connect scopes a client may ask for beside resource scopes; they grant no Graph access.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The delegated Graph permissions a `scope` parameter asks for: `https://graph.microsoft.com/X`
/// or a bare `X` (Graph is the default resource); `/.default` asks for the app's configured
/// permissions.
pub(super) fn requested_scopes(scope: &str, client: &App) -> Result<Vec<String>, TokenError> {
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
        let exchange = EXCHANGE_AUDIENCES.iter().find_map(|a| {
            item.get(..a.len())
                .filter(|p| p.eq_ignore_ascii_case(a))
                .and_then(|_| item[a.len()..].strip_prefix('/'))
        });
        if let Some(name) = exchange {
            // Exchange Online's permissions are not the emulator's to know: any name but
            // `.default` (the app's configured Exchange permissions, of which it has none).
            if name.is_empty() || name == ".default" || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.') {
                return Err(TokenError::InvalidScope(item.to_string()));
            }
            push(&format!("{}/{name}", EXCHANGE_AUDIENCES[0]), &mut out);
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
        if !client.sign_in.allows(canonical) {
            return Err(TokenError::NotConsented(item.to_string()));
        }
        push(canonical, &mut out);
    }
    if out.is_empty() {
        return Err(TokenError::NoGraphScope);
    }
    if Resource::of_scopes(&out) == Resource::ExchangeOnline && out.iter().any(|s| !s.starts_with("https://")) {
        return Err(TokenError::MultipleResources);
    }
    Ok(out)
}

/// The public signing keys of the tenant named `tenant`, as a JWKS lists them.
pub async fn jwks(app: &Services, tenant: &str) -> Result<Vec<Jwk>, TokenError> {
    if !is_tenant_alias(tenant) {
        find_tenant(app, tenant).await?;
    }
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
