//! Interactive sign-in: the authorization endpoint's use cases. A request is checked as Entra
//! checks it (the app, then its redirect URI, then the rest), the browser's session says who is
//! signed in already, and a user who signs in or is picked gets an authorization code for the
//! app's redirect URI. The identity surface renders the pages and the redirects.

use chrono::{DateTime, Utc};

use super::identity::{oidc_scopes, requested_scopes, TokenError};
use super::App as Services;
use crate::domain::directory::{password_matches, User};
use crate::domain::pkce;
use crate::domain::tenant::{hash_secret, parse_guid, App, Platform, Tenant};
use crate::store::{AuthorizationCodeRecord, StoreError};

/// How long an authorization code may be redeemed, on the tenant's clock (Entra: ten minutes).
pub const CODE_LIFETIME_SECS: i64 = 600;

/// The authorities that name no tenant: the signed-in user's tenant is meant (here, the tenant
/// that registered the app).
const TENANT_ALIASES: &[&str] = &["organizations", "common"];

/// The parameters of an authorization request, as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    /// `client_info=1`: MSAL asks for the account's ids beside the code.
    pub client_info: bool,
}

/// What the browser did on the emulator's sign-in page, besides repeating the request.
#[derive(Debug, Clone)]
pub enum PageAction {
    /// Only the authorization request.
    None,
    /// The sign-in form: a user name and a password.
    Credentials { login: String, password: String },
    /// The account picker: a user signed in on this browser already.
    Pick { user_id: String },
}

/// How the code (or the error) travels back to the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// A signed-in account as the account picker lists it.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: String,
    pub user_principal_name: String,
    pub display_name: String,
}

/// What the authorization endpoint answers.
#[derive(Debug, Clone)]
pub enum Authorization {
    /// The request cannot be sent back to its redirect URI (unknown tenant or app, a redirect
    /// URI the app does not list): Entra's error page, with its AADSTS code.
    ErrorPage { code: u32, message: String },
    /// The sign-in form, with the name to fill in and what went wrong last time.
    SignIn {
        app_name: String,
        login_hint: String,
        problem: Option<String>,
    },
    /// The account picker.
    PickAccount { app_name: String, accounts: Vec<Account> },
    /// Back to the app: `params` (a code, or an error) to the redirect URI in `mode`.
    Redirect {
        redirect_uri: String,
        mode: ResponseMode,
        params: Vec<(String, String)>,
    },
}

/// The answer and, when a user signed in, the browser session to remember (a new session id
/// when the browser had none).
#[derive(Debug, Clone)]
pub struct Authorized {
    pub answer: Authorization,
    pub session: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request checked up to the point where its redirect URI can be trusted.
struct Checked {
    tenant: Tenant,
    client: App,
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
}

impl Checked {
    fn redirect(&self, mut params: Vec<(String, String)>) -> Authorization {
        if let Some(state) = &self.state {
            params.push(("state".into(), state.clone()));
        }
        Authorization::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode,
            params,
        }
    }

    /// An OAuth error sent back to the app, with Entra's AADSTS code in the description.
    fn error(&self, error: &str, code: u32, description: &str, now: DateTime<Utc>) -> Authorization {
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ");
        let trace = uuid::Uuid::new_v4();
        let correlation = uuid::Uuid::new_v4();
        self.redirect(vec![
            ("error".into(), error.into()),
            (
                "error_description".into(),
                format!(
                    "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
                ),
            ),
            (
                "error_uri".into(),
                format!("https://login.microsoftonline.com/error?code={code}"),
            ),
        ])
    }
}

fn page(code: u32, message: String) -> Authorized {
    Authorized {
        answer: Authorization::ErrorPage { code, message },
        session: None,
    }
}

/// What an authority and a client id name.
pub(super) enum Resolved {
    /// The authority is neither an alias nor a tenant's id.
    NoTenant,
    /// No such app in the tenant (or, for an alias, in any one tenant).
    NoApp,
    Found(Box<(Tenant, App)>),
}

/// The tenant and app an authority and a client id name: a tenant id, or an alias resolved
/// through the app (the tenant that registered it).
pub(super) async fn resolve(app: &Services, authority: &str, client_id: &str) -> Result<Resolved, StoreError> {
    if is_alias(authority) {
        let Some(client) = app.store.find_app_anywhere(client_id).await? else {
            return Ok(Resolved::NoApp);
        };
        return Ok(match app.store.get_tenant(&client.tenant_id).await? {
            Some(tenant) => Resolved::Found(Box::new((tenant, client))),
            None => Resolved::NoApp,
        });
    }
    let Some(tenant) = tenant_of_authority(app, authority).await? else {
        return Ok(Resolved::NoTenant);
    };
    Ok(match app.store.get_app(&tenant.id, client_id).await? {
        Some(client) => Resolved::Found(Box::new((tenant, client))),
        None => Resolved::NoApp,
    })
}

/// The tenant an authority names, for the routes that have no app to go by (logout, the
/// discovery documents of an alias): None for an alias or an unknown tenant.
pub async fn tenant_of_authority(app: &Services, authority: &str) -> Result<Option<Tenant>, StoreError> {
    match parse_guid(authority) {
        Some(id) => app.store.get_tenant(&id).await,
        None => Ok(None),
    }
}

/// Whether `authority` is `organizations` or `common`.
pub fn is_alias(authority: &str) -> bool {
    TENANT_ALIASES.iter().any(|a| a.eq_ignore_ascii_case(authority))
}

/// `/authorize`: checks the request, then signs the user in (or finds them signed in on the
/// browser's `session`) and sends an authorization code to the app's redirect URI.
pub async fn authorize(
    app: &Services,
    authority: &str,
    params: &AuthorizeParams,
    session: Option<&str>,
    action: PageAction,
) -> Result<Authorized, SignInError> {
    // What cannot go back to the app is shown on the page.
    let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(page(
            900144,
            "The request body must contain the following parameter: 'client_id'.".into(),
        ));
    };
    let (tenant, client) = match resolve(app, authority, client_id).await? {
        Resolved::Found(found) => *found,
        Resolved::NoTenant => {
            return Ok(page(
                90002,
                format!("Tenant '{authority}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
            ))
        }
        Resolved::NoApp => {
            return Ok(page(
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{authority}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ))
        }
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(page(
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.".into(),
        ));
    };
    let Some(platform) = client.sign_in.platform_of(redirect_uri) else {
        return Ok(page(
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                client.client_id
            ),
        ));
    };
    let mode = match params.response_mode.as_deref() {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => ResponseMode::Query,
    };
    let checked = Checked {
        tenant,
        client,
        redirect_uri: redirect_uri.to_string(),
        mode,
        state: params.state.clone(),
    };
    let now = app.tenant_now(checked.tenant.clock_offset_us);
    let refuse = |error: &str, code: u32, description: &str| Authorized {
        answer: checked.error(error, code, description, now),
        session: None,
    };

    // From here on, errors go back to the app.
    if let Some(other) = params
        .response_mode
        .as_deref()
        .filter(|m| !matches!(*m, "query" | "fragment" | "form_post"))
    {
        return Ok(refuse(
            "invalid_request",
            900144,
            &format!("The provided value for the input parameter 'response_mode' is not valid: '{other}'. Expected 'query', 'fragment' or 'form_post'."),
        ));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Ok(refuse(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.",
            ))
        }
        Some(other) => {
            return Ok(refuse(
                "unsupported_response_type",
                70005,
                &format!("The app requested an unsupported response type '{other}': the emulator issues authorization codes ('code')."),
            ))
        }
    }
    let scope = params.scope.as_deref().unwrap_or("");
    let mut scopes = match requested_scopes(scope, &checked.client) {
        Ok(s) => s,
        Err(TokenError::NotConsented(item)) => {
            return Ok(refuse(
                "consent_required",
                65001,
                &format!(
                    "The user or administrator has not consented to use the application with ID '{}' named '{}'. The app registration does not list the delegated permission '{item}'.",
                    checked.client.client_id, checked.client.display_name
                ),
            ))
        }
        Err(TokenError::InvalidScope(item)) => {
            return Ok(refuse(
                "invalid_scope",
                70011,
                &format!("The provided value for the input parameter 'scope' is not valid. The scope '{item}' is not valid."),
            ))
        }
        Err(_) => {
            return Ok(refuse(
                "invalid_scope",
                70011,
                &format!("The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not name a Microsoft Graph permission."),
            ))
        }
    };
    scopes.extend(oidc_scopes(scope));
    let challenge = params.code_challenge.as_deref().filter(|c| !c.is_empty());
    let method = params.code_challenge_method.as_deref().filter(|m| !m.is_empty());
    match (challenge, method) {
        (None, Some(_)) => {
            return Ok(refuse(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code_challenge'.",
            ))
        }
        (Some(c), m) => {
            if let Some(m) = m.filter(|m| !pkce::method_is_known(m)) {
                return Ok(refuse(
                    "invalid_request",
                    501483,
                    &format!(
                        "Invalid value for the 'code_challenge_method' parameter: '{m}'. Expected 'S256' or 'plain'."
                    ),
                ));
            }
            if !pkce::challenge_is_valid(c) {
                return Ok(refuse(
                    "invalid_request",
                    501491,
                    "Invalid size of Code_Challenge parameter: it has 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.",
                ));
            }
        }
        (None, None) if platform == Platform::Spa => {
            return Ok(refuse(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
            ))
        }
        (None, None) => {}
    }
    let prompt = params.prompt.as_deref().unwrap_or("");
    if !matches!(prompt, "" | "login" | "none" | "select_account" | "consent") {
        return Ok(refuse(
            "invalid_request",
            90023,
            &format!("Invalid value for the 'prompt' parameter: '{prompt}'. Expected 'login', 'none', 'consent' or 'select_account'."),
        ));
    }

    // Who is signed in on this browser, in the app's tenant.
    let mut accounts: Vec<User> = Vec::new();
    if let Some(session) = session {
        for (tenant_id, user_id) in app.store.session_users(&hash_secret(session)).await? {
            if tenant_id != checked.tenant.id {
                continue;
            }
            if let Some(user) = app.store.get_user(&tenant_id, &user_id).await? {
                if user.account_enabled {
                    accounts.push(user);
                }
            }
        }
    }
    let issuer = Issuer {
        app,
        checked: &checked,
        scopes: &scopes,
        params,
        now,
    };
    let hint = params.login_hint.as_deref().map(str::trim).unwrap_or("");
    let sign_in_page = |problem: Option<String>, login: &str| Authorized {
        answer: Authorization::SignIn {
            app_name: checked.client.display_name.clone(),
            login_hint: login.to_string(),
            problem,
        },
        session: None,
    };

    match action {
        PageAction::Credentials { login, password } => {
            let user = app.store.find_user_by_upn(&checked.tenant.id, login.trim()).await?;
            let Some(user) = user.filter(|u| {
                u.password_hash
                    .as_deref()
                    .is_some_and(|h| password_matches(&password, h))
            }) else {
                return Ok(sign_in_page(
                    Some(
                        "Your account or password is incorrect. If you don't remember your password, reset it now."
                            .into(),
                    ),
                    &login,
                ));
            };
            if !user.account_enabled {
                return Ok(sign_in_page(
                    Some(
                        "Your account has been locked. Contact your support person to unlock it, then try again."
                            .into(),
                    ),
                    &login,
                ));
            }
            let session = match session {
                Some(s) => s.to_string(),
                None => {
                    use rand::distributions::{Alphanumeric, DistString};
                    Alphanumeric.sample_string(&mut rand::thread_rng(), 48)
                }
            };
            app.store
                .add_session_user(&hash_secret(&session), &checked.tenant.id, &user.id, now)
                .await?;
            return issuer.issue(&user, Some(session)).await;
        }
        PageAction::Pick { user_id } => {
            if let Some(user) = accounts.iter().find(|u| u.id == user_id) {
                return issuer.issue(user, None).await;
            }
            return Ok(sign_in_page(None, hint));
        }
        PageAction::None => {}
    }

    let hinted = accounts
        .iter()
        .find(|u| !hint.is_empty() && u.user_principal_name.eq_ignore_ascii_case(hint));
    match prompt {
        "login" => Ok(sign_in_page(None, hint)),
        "none" => match (hinted, accounts.as_slice()) {
            (Some(user), _) | (None, [user]) => issuer.issue(user, None).await,
            (None, []) => Ok(refuse(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            )),
            (None, _) => Ok(refuse(
                "interaction_required",
                16000,
                "Several users are signed in; the request must name one with login_hint, or the user must pick one.",
            )),
        },
        "select_account" if !accounts.is_empty() => Ok(Authorized {
            answer: Authorization::PickAccount {
                app_name: checked.client.display_name.clone(),
                accounts: accounts.iter().map(account).collect(),
            },
            session: None,
        }),
        _ => match (hinted, accounts.as_slice()) {
            (Some(user), _) => issuer.issue(user, None).await,
            (None, [user]) if hint.is_empty() => issuer.issue(user, None).await,
            (None, []) => Ok(sign_in_page(None, hint)),
            (None, _) if !hint.is_empty() => Ok(sign_in_page(None, hint)),
            (None, _) => Ok(Authorized {
                answer: Authorization::PickAccount {
                    app_name: checked.client.display_name.clone(),
                    accounts: accounts.iter().map(account).collect(),
                },
                session: None,
            }),
        },
    }
}

fn account(u: &User) -> Account {
    Account {
        user_id: u.id.clone(),
        user_principal_name: u.user_principal_name.clone(),
        display_name: u.display_name.clone(),
    }
}

/// What a code is issued for, once the request has passed its checks.
struct Issuer<'a> {
    app: &'a Services,
    checked: &'a Checked,
    scopes: &'a [String],
    params: &'a AuthorizeParams,
    now: DateTime<Utc>,
}

impl Issuer<'_> {
    /// A new code for `user`, sent to the app.
    async fn issue(&self, user: &User, session: Option<String>) -> Result<Authorized, SignInError> {
        let code = issue_code(self, user).await?;
        let mut out = vec![("code".to_string(), code)];
        if self.params.client_info {
            use base64::Engine as _;
            let info = serde_json::json!({ "uid": user.id, "utid": self.checked.tenant.id }).to_string();
            out.push((
                "client_info".into(),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(info),
            ));
        }
        out.push(("session_state".into(), uuid::Uuid::new_v4().to_string()));
        Ok(Authorized {
            answer: self.checked.redirect(out),
            session,
        })
    }
}

/// Stores a new authorization code for `user` and returns its text.
async fn issue_code(issuer: &Issuer<'_>, user: &User) -> Result<String, SignInError> {
    use rand::distributions::{Alphanumeric, DistString};
    let Issuer {
        app,
        checked,
        scopes,
        params,
        now,
    } = issuer;
    let now = *now;
    let code = Alphanumeric.sample_string(&mut rand::thread_rng(), 96);
    let challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
    let record = AuthorizationCodeRecord {
        code_hash: hash_secret(&code),
        tenant_id: checked.tenant.id.clone(),
        client_id: checked.client.client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: checked.redirect_uri.clone(),
        code_challenge_method: challenge
            .as_ref()
            .map(|_| params.code_challenge_method.clone().unwrap_or_else(|| "plain".into())),
        code_challenge: challenge,
        nonce: params.nonce.clone().filter(|n| !n.is_empty()),
        scopes: scopes.to_vec(),
        expires_at: now + chrono::Duration::seconds(CODE_LIFETIME_SECS),
    };
    app.store.insert_authorization_code(&record, now).await?;
    Ok(code)
}

/// Where `/logout` sends the browser once its session is ended: `post_logout_redirect_uri`
/// when it is a redirect URI of the app named (or, naming none, of an app of the tenant).
pub async fn logout(
    app: &Services,
    authority: &str,
    session: Option<&str>,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
) -> Result<Option<String>, SignInError> {
    if let Some(session) = session {
        app.store.end_session(&hash_secret(session)).await?;
    }
    let Some(uri) = post_logout_redirect_uri.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let apps: Vec<App> = match (client_id, tenant_of_authority(app, authority).await?) {
        (Some(c), Some(t)) => app.store.get_app(&t.id, c).await?.into_iter().collect(),
        (Some(c), None) => app.store.find_app_anywhere(c).await?.into_iter().collect(),
        (None, Some(t)) => app.store.list_apps(&t.id).await?,
        (None, None) => Vec::new(),
    };
    Ok(apps
        .iter()
        .any(|a| a.sign_in.platform_of(uri).is_some())
        .then(|| uri.to_string()))
}
