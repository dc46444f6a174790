//! The Entra ID stand-in: token endpoint, signing keys, OpenID configuration. Errors take
//! Entra's shape (`error`, `error_description` with an AADSTS code, `error_codes`, ...), not
//! Graph's, because that is what token clients parse.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use uuid::Uuid;

use super::extract::BaseUrl;
use super::routes::{Access, RouteTable, Surface};
use super::AppState;
use crate::domain::tenant::Tenant;
use crate::identity::tokens::{GRAPH_AUDIENCES, TOKEN_LIFETIME_SECS};
use crate::service::identity::{self, PasswordGrant, TokenError};

pub fn routes() -> RouteTable {
    let mut t = RouteTable::new(Surface::Identity);
    t.route(Method::POST, "/{tenantId}/oauth2/v2.0/token", Access::Public, token)
        .route(
            Method::POST,
            "/{tenantId}/oauth2/v2.0/devicecode",
            Access::Public,
            devicecode,
        )
        .route(
            Method::GET,
            "/{tenantId}/oauth2/v2.0/authorize",
            Access::Public,
            super::signin::authorize,
        )
        .route(
            Method::POST,
            "/{tenantId}/oauth2/v2.0/authorize",
            Access::Public,
            super::signin::authorize,
        )
        .route(
            Method::GET,
            "/{tenantId}/oauth2/v2.0/logout",
            Access::Public,
            super::signin::logout,
        )
        .route(
            Method::POST,
            "/{tenantId}/oauth2/v2.0/logout",
            Access::Public,
            super::signin::logout,
        )
        .route(Method::GET, "/devicelogin", Access::Public, devicelogin_page)
        .route(Method::POST, "/devicelogin", Access::Public, devicelogin)
        .route(Method::GET, "/{tenantId}/discovery/v2.0/keys", Access::Public, keys)
        .route(
            Method::GET,
            "/{tenantId}/v2.0/.well-known/openid-configuration",
            Access::Public,
            openid_configuration,
        );
    t
}

/// AADSTS9002326: a token redeemed cross-origin by what is not a single-page app.
const CROSS_ORIGIN_NOT_SPA: u32 = 9002326;

struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
    /// Seconds sent as `Retry-After`.
    retry_after: Option<u32>,
    /// What MSAL reads as the error's classification (`message_only`).
    suberror: Option<&'static str>,
}

impl EntraError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        EntraError {
            status,
            error,
            code,
            description: description.into(),
            retry_after: None,
            suberror: None,
        }
    }

    /// The directory cannot be read now (the database does not answer): OAuth's
    /// `temporarily_unavailable` with AADSTS90033 (MsodsServiceUnavailable) and `Retry-After`.
    fn unavailable() -> Self {
        EntraError {
            retry_after: Some(super::error::OUTAGE_RETRY_AFTER_S),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                90033,
                "The directory service is not available. Retry the request later.",
            )
        }
    }

    fn missing(parameter: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    }
}

impl EntraError {
    /// Entra's error document, stamped with the wall time `now` (from the server's clock).
    fn render(self, now: chrono::DateTime<chrono::Utc>) -> Response {
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let trace_id = Uuid::new_v4().to_string();
        let correlation_id = Uuid::new_v4().to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        let mut body = body;
        if let Some(suberror) = self.suberror {
            body["suberror"] = json!(suberror);
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.code == CROSS_ORIGIN_NOT_SPA {
            // The page is not told: no CORS headers, so the browser reports a CORS error.
            response.extensions_mut().insert(super::WithoutCors);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The tenant in the path: Entra's refusal when there is none.
async fn find_tenant(state: &AppState, tenant: &str) -> Result<Tenant, Response> {
    identity::find_tenant(&state.app, tenant)
        .await
        .map_err(|e| not_a_tenant(state, e, tenant))
}

/// A failed tenant lookup: Entra's "tenant not found", or a 5xx in Graph's envelope.
fn not_a_tenant(state: &AppState, e: TokenError, tenant: &str) -> Response {
    match e {
        TokenError::UnknownTenant => EntraError::tenant_not_found(tenant).render(state.app.clock().wall_now()),
        TokenError::Store(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "tenant lookup refused for now");
            EntraError::unavailable().render(state.app.clock().wall_now())
        }
        e => super::error::ApiError::internal(e).into_response(),
    }
}

/// The client's id and secret: `client_secret_post` (in the form) or `client_secret_basic` (in
/// the Authorization header); the id is required, the secret is not (public clients send none).
fn client_of(
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<(String, Option<String>), EntraError> {
    let basic = basic_credentials(headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()))
        .ok_or_else(|| EntraError::missing("client_id"))?;
    let secret = form.get("client_secret").cloned().or_else(|| basic.map(|b| b.1));
    Ok((client_id, secret))
}

/// `client_secret_basic`: credentials in the Authorization header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    Some((unescape(id), unescape(secret)))
}

/// The first parameter of a form body that decodes to the NUL character or to bytes that are not
/// UTF-8 (`form_urlencoded` would pass the one and replace the other).
fn invalid_form_text(body: &[u8]) -> Option<String> {
    for pair in body.split(|b| *b == b'&') {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let name = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        let decode = |raw: &[u8]| -> Vec<u8> {
            let spaced: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
            percent_encoding::percent_decode(&spaced).collect()
        };
        let (n, v) = (decode(name), decode(value));
        let bad = |b: &[u8]| b.contains(&0) || std::str::from_utf8(b).is_err();
        if bad(&n) || bad(&v) {
            return Some(String::from_utf8_lossy(&n).replace('\0', "\\0"));
        }
    }
    None
}

async fn token(
    State(state): State<AppState>,
    Path(authority): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The form is read once; its errors are told after the tenant's.
    let form = form_of(&headers, &body);
    // `organizations` and `common` name the tenant of the app that asks.
    let tenant = if identity::is_tenant_alias(&authority) {
        let client_id = form
            .as_ref()
            .ok()
            .and_then(|f| client_of(&headers, f).ok())
            .map(|(id, _)| id)
            .unwrap_or_default();
        identity::tenant_of_client(&state.app, &authority, &client_id).await
    } else {
        identity::find_tenant(&state.app, &authority).await
    };
    let tenant = match tenant.map_err(|e| not_a_tenant(&state, e, &authority)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let issued = match form {
        Ok(form) => issue(&state, &tenant, &headers, &form).await,
        Err(e) => Err(e),
    };
    match issued {
        Ok(r) => r,
        Err(e) => e.render(state.app.clock().wall_now()),
    }
}

/// Whether the body is form-encoded.
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The parameters of a form-encoded body (the first of each name); none for another content
/// type, so each missing parameter is named.
fn form_of(headers: &HeaderMap, body: &[u8]) -> Result<std::collections::HashMap<String, String>, EntraError> {
    let mut form = std::collections::HashMap::new();
    if is_form(headers) {
        if let Some(name) = invalid_form_text(body) {
            return Err(EntraError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                9002313,
                format!("Invalid request. Request is malformed or invalid: the parameter '{name}' is not valid text."),
            ));
        }
        for (k, v) in form_urlencoded::parse(body) {
            form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    Ok(form)
}

async fn issue(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<Response, EntraError> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| EntraError::missing("grant_type"))?;
    // Only a single-page app redeems tokens from a browser page (an `Origin` header): its
    // codes and refresh tokens, which the grants below check. Every other grant is refused
    // cross-origin, as Entra refuses it.
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let (Some(origin), false) = (
        origin,
        matches!(grant_type.as_str(), "authorization_code" | "refresh_token"),
    ) {
        return Err(entra(
            TokenError::CrossOriginNotSpa(origin.to_string()),
            tenant,
            "",
            "",
            "",
        ));
    }
    match grant_type.as_str() {
        "client_credentials" => {}
        "password" => return password_grant(state, tenant, headers, form).await,
        DEVICE_CODE_GRANT => return device_code_grant(state, tenant, headers, form).await,
        "refresh_token" => return refresh_token_grant(state, tenant, headers, form).await,
        "authorization_code" => return authorization_code_grant(state, tenant, headers, form).await,
        _ => {
            return Err(EntraError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ));
        }
    }
    let (client_id, secret) = client_of(headers, form)?;
    let scope = form.get("scope").ok_or_else(|| EntraError::missing("scope"))?;
    let resource = scope.trim().strip_suffix("/.default").ok_or_else(|| {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    })?;
    let audience = GRAPH_AUDIENCES.iter().find(|a| a.trim_end_matches('/') == resource.trim_end_matches('/')).ok_or_else(|| {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                tenant.id
            ),
        )
    })?;
    let access_token = identity::client_credentials(&state.app, tenant, &client_id, secret.as_deref(), audience)
        .await
        .map_err(|e| entra(e, tenant, &client_id, scope, ""))?;
    Ok(token_response(json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
        "ext_expires_in": TOKEN_LIFETIME_SECS,
        "access_token": access_token,
    })))
}

fn token_response(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Resource-owner password credentials: a directory user signs in through a registered app
/// (a public client, or a confidential one presenting its secret).
async fn password_grant(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<Response, EntraError> {
    let (client_id, secret) = client_of(headers, form)?;
    let scope = form.get("scope").ok_or_else(|| EntraError::missing("scope"))?;
    let username = form.get("username").ok_or_else(|| EntraError::missing("username"))?;
    let password = form.get("password").ok_or_else(|| EntraError::missing("password"))?;
    let grant = PasswordGrant {
        client_id: &client_id,
        client_secret: secret.as_deref(),
        scope,
        username,
        password,
        device_credential: device_credential(headers),
    };
    let tokens = identity::password(&state.app, tenant, grant)
        .await
        .map_err(|e| entra(e, tenant, &client_id, scope, username))?;
    Ok(token_response(delegated_token_body(&tokens, tenant, form)))
}

/// The device credential a token request carries, where browsers carry the device's PRT cookie.
fn device_credential(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(crate::identity::tokens::DEVICE_CREDENTIAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A delegated access token's answer: the token and the Graph permissions it grants.
fn delegated_access_body(access_token: &str, scopes: &[String]) -> serde_json::Value {
    json!({
        "token_type": "Bearer",
        "scope": scopes
            .iter()
            .map(|s| crate::identity::tokens::Resource::scope_uri(s))
            .collect::<Vec<_>>()
            .join(" "),
        "expires_in": TOKEN_LIFETIME_SECS,
        "ext_expires_in": TOKEN_LIFETIME_SECS,
        "access_token": access_token,
    })
}

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device authorization grant's polling: `authorization_pending` until the user signs in at
/// `/devicelogin`, then the user's delegated token, once.
async fn device_code_grant(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<Response, EntraError> {
    let (client_id, secret) = client_of(headers, form)?;
    let device_code = form
        .get("device_code")
        .or_else(|| form.get("code"))
        .ok_or_else(|| EntraError::missing("device_code"))?;
    let tokens = identity::redeem_device_code(
        &state.app,
        tenant,
        &client_id,
        secret.as_deref(),
        device_code,
        device_credential(headers),
    )
    .await
    .map_err(|e| entra(e, tenant, &client_id, "", ""))?;
    Ok(token_response(delegated_token_body(&tokens, tenant, form)))
}

/// The authorization code grant: the code `/authorize` gave, with the PKCE verifier.
async fn authorization_code_grant(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<Response, EntraError> {
    let (client_id, secret) = client_of(headers, form)?;
    let code = form.get("code").ok_or_else(|| EntraError::missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| EntraError::missing("redirect_uri"))?;
    let grant = identity::CodeGrant {
        client_id: &client_id,
        code,
        redirect_uri,
        code_verifier: form.get("code_verifier").map(String::as_str),
        client_secret: secret.as_deref(),
        origin: headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        device_credential: device_credential(headers),
    };
    let tokens = identity::redeem_authorization_code(&state.app, tenant, grant)
        .await
        .map_err(|e| entra(e, tenant, &client_id, "", ""))?;
    Ok(token_response(delegated_token_body(&tokens, tenant, form)))
}

/// The refresh token grant: a new access token (and ID and refresh tokens), the old refresh
/// token spent.
async fn refresh_token_grant(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<Response, EntraError> {
    let client_id = form.get("client_id").ok_or_else(|| EntraError::missing("client_id"))?;
    let refresh_token = form
        .get("refresh_token")
        .ok_or_else(|| EntraError::missing("refresh_token"))?;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let tokens = identity::redeem_refresh_token(
        &state.app,
        tenant,
        client_id,
        refresh_token,
        origin,
        device_credential(headers),
    )
    .await
    .map_err(|e| entra(e, tenant, client_id, "", ""))?;
    Ok(token_response(delegated_token_body(&tokens, tenant, form)))
}

/// A delegated grant's answer. `client_info` (the account's ids, which MSAL keys its cache by)
/// when the request asks for it with `client_info=1`.
fn delegated_token_body(
    tokens: &identity::DelegatedTokens,
    tenant: &Tenant,
    form: &std::collections::HashMap<String, String>,
) -> serde_json::Value {
    let mut body = delegated_access_body(&tokens.access_token, &tokens.scopes);
    if let Some(id_token) = &tokens.id_token {
        body["id_token"] = json!(id_token);
    }
    if let Some(refresh_token) = &tokens.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    if form.get("client_info").is_some_and(|v| v == "1") {
        let info = json!({ "uid": tokens.user_id, "utid": tenant.id }).to_string();
        body["client_info"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(info));
    }
    body
}

/// `/devicecode`: begins the device authorization grant.
async fn devicecode(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = match find_tenant(&state, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let started = async {
        let form = form_of(&headers, &body)?;
        let client_id = form.get("client_id").ok_or_else(|| EntraError::missing("client_id"))?;
        let scope = form.get("scope").ok_or_else(|| EntraError::missing("scope"))?;
        identity::start_device_flow(&state.app, &tenant, client_id, scope)
            .await
            .map_err(|e| entra(e, &tenant, client_id, scope, ""))
    };
    match started.await {
        Ok(flow) => {
            let uri = format!("{base}/devicelogin");
            token_response(json!({
                "user_code": flow.user_code,
                "device_code": flow.device_code,
                "verification_uri": uri,
                "expires_in": identity::DEVICE_CODE_LIFETIME_SECS,
                "interval": identity::DEVICE_CODE_POLL_INTERVAL_SECS,
                "message": format!(
                    "To sign in, use a web browser to open the page {uri} and enter the code {} to authenticate.",
                    flow.user_code
                ),
            }))
        }
        Err(e) => e.render(state.app.clock().wall_now()),
    }
}

/// The page where a user enters a device's code and signs in, as Entra's `/devicelogin`.
fn devicelogin_html(status: StatusCode, notice: Option<(&str, bool)>, code: &str, username: &str) -> Response {
    use super::ops::html_escape;
    let notice = match notice {
        Some((text, ok)) => format!(
            "<p id=\"{}\" role=\"status\">{}</p>",
            if ok { "done" } else { "error" },
            html_escape(text)
        ),
        None => String::new(),
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Enter code - Intune MTD emulator</title></head>\n\
         <body><main><h1>Enter code</h1>\n{notice}\n\
         <form method=\"post\" action=\"devicelogin\">\n\
         <label>Code <input name=\"otc\" value=\"{code}\" autocomplete=\"off\" required></label>\n\
         <label>Email or username <input name=\"login\" value=\"{username}\" autocomplete=\"username\" required></label>\n\
         <label>Password <input name=\"passwd\" type=\"password\" autocomplete=\"current-password\" required></label>\n\
         <button type=\"submit\">Sign in</button>\n</form></main></body></html>\n",
        code = html_escape(code),
        username = html_escape(username),
    );
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn devicelogin_page(RawQuery(query): RawQuery) -> Response {
    let code = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "otc")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    devicelogin_html(StatusCode::OK, None, &code, "")
}

/// Signs the user in for the code: the device's next poll gets the token.
async fn devicelogin(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match form_of(&headers, &body) {
        Ok(f) => f,
        Err(_) => {
            return devicelogin_html(
                StatusCode::BAD_REQUEST,
                Some(("The form is not valid text.", false)),
                "",
                "",
            )
        }
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let (code, login, password) = (field("otc"), field("login"), field("passwd"));
    match identity::approve_device_code(&state.app, code, login, password).await {
        Ok(app_name) => devicelogin_html(
            StatusCode::OK,
            Some((
                &format!(
                    "You have signed in to the {app_name} application on your device. You may now close this window."
                ),
                true,
            )),
            "",
            "",
        ),
        Err(identity::DeviceLoginError::Store(e)) => {
            if e.is_unavailable() {
                tracing::warn!(error = %e, "device sign-in refused for now");
            } else {
                tracing::error!(error = %e, "device sign-in failed");
            }
            devicelogin_html(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(("Sorry, we could not sign you in just now. Try again.", false)),
                code,
                login,
            )
        }
        Err(e) => devicelogin_html(StatusCode::BAD_REQUEST, Some((&e.to_string(), false)), code, login),
    }
}

/// A refused token request in Entra's words, with the request's own values quoted.
fn entra(e: TokenError, tenant: &Tenant, client_id: &str, scope: &str, username: &str) -> EntraError {
    match e {
        TokenError::UnknownTenant => EntraError::tenant_not_found(&tenant.id),
        TokenError::UnknownApp => EntraError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                tenant.id
            ),
        ),
        TokenError::MissingSecret => EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ),
        TokenError::BadSecret => EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ),
        TokenError::InvalidScope(item) => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope '{item}' is not valid."
            ),
        ),
        TokenError::NoGraphScope => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!("The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not name a Microsoft Graph permission."),
        ),
        TokenError::UnknownUser => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50034,
            format!(
                "The user account {}does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                match username.trim() {
                    "" => String::new(),
                    name => format!("{name} "),
                },
                tenant.id
            ),
        ),
        TokenError::BadPassword => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        TokenError::UserDisabled => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50057,
            "The user account is disabled.",
        ),
        TokenError::BadDeviceCode => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'device_code' is not valid.",
        ),
        TokenError::AuthorizationPending => EntraError::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            70016,
            "The provided request has not yet been authorized by the user. The user must input their code.",
        ),
        TokenError::DeviceCodeExpired => EntraError::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        ),
        TokenError::BadRefreshToken => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'refresh_token' is not valid: it is unknown, or was redeemed already.",
        ),
        TokenError::SpaRefreshTokenExpired => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700084,
            "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page.",
        ),
        TokenError::RefreshTokenExpired => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
        ),
        TokenError::NotConsented(item) => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{client_id}'. The app registration does not list the delegated permission '{item}'. Send an interactive authorization request for this user and resource."
            ),
        ),
        TokenError::BadAuthorizationCode => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The provided value for the 'code' parameter is not valid.",
        ),
        TokenError::CodeRedeemed => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ),
        TokenError::CodeExpired => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ),
        TokenError::RedirectUriMismatch => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code.",
        ),
        TokenError::PkceMismatch => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ),
        TokenError::CrossOriginNotSpa(origin) => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            CROSS_ORIGIN_NOT_SPA,
            format!("Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '{origin}'."),
        ),
        TokenError::SpaNeedsCrossOrigin => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            9002327,
            "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        ),
        TokenError::MultipleResources => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            28000,
            format!("Provided value for the input parameter scope '{scope}' is not valid because it contains more than one resource. Scope {scope} is not valid."),
        ),
        TokenError::ConditionalAccess(refusal) => {
            use crate::domain::conditional_access::Refusal;
            // As Entra's responses show them: a block is `interaction_required` with nothing
            // the user can do (`message_only`); the device and app requirements are
            // `invalid_grant`; MFA asks for interaction.
            let (error, suberror) = match refusal {
                Refusal::Blocked => ("interaction_required", Some("message_only")),
                Refusal::MfaRequired => ("interaction_required", Some("basic_action")),
                _ => ("invalid_grant", None),
            };
            EntraError {
                suberror,
                ..EntraError::new(StatusCode::BAD_REQUEST, error, refusal.code(), refusal.message())
            }
        }
        TokenError::Store(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "token request refused for now");
            EntraError::unavailable()
        }
        e @ (TokenError::Store(_) | TokenError::Keys(_)) => {
            tracing::error!(error = %e, "token endpoint failed");
            EntraError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                50000,
                "There was an error issuing a token.",
            )
        }
    }
}

async fn keys(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    match identity::jwks(&state.app, &tenant).await {
        Ok(keys) => Json(json!({ "keys": keys })).into_response(),
        Err(e) => not_a_tenant(&state, e, &tenant),
    }
}

async fn openid_configuration(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    BaseUrl(base): BaseUrl,
) -> Response {
    // `organizations` and `common` describe every tenant: the issuer is a template that
    // clients fill with the token's `tid`, as Entra's metadata has it.
    let (tid, issuer) = if identity::is_tenant_alias(&tenant) {
        let alias = tenant.to_ascii_lowercase();
        (alias, crate::identity::tokens::v2_issuer("{tenantid}"))
    } else {
        let tenant = match find_tenant(&state, &tenant).await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let issuer = crate::identity::tokens::v2_issuer(&tenant.id);
        (tenant.id, issuer)
    };
    Json(json!({
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        // As in Entra ID: the v2.0 metadata names the v2.0 issuer, while Graph access tokens
        // are v1.0 tokens issued by https://sts.windows.net/{tid}/.
        "issuer": issuer,
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "frontchannel_logout_supported": true,
        "http_logout_supported": true,
        "request_uri_parameter_supported": false,
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
        "grant_types_supported": ["authorization_code", "client_credentials", "password", DEVICE_CODE_GRANT, "refresh_token"],
    }))
    .into_response()
}
