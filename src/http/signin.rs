//! The authorization endpoint and its pages: the sign-in form, the account picker, Entra's
//! error page, and the way back to the app (a redirect with the code in the query or the
//! fragment, or a self-submitting form). The browser's session is a cookie holding a random id,
//! `HttpOnly`, `SameSite=Lax`, and `Secure` when the request came in over HTTPS.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ops::html_escape;
use super::tls::Https;
use super::AppState;
use crate::service::signin::{self, Authorization, AuthorizeParams, Authorized, PageAction, ResponseMode};

/// The session cookie's name (Entra's own is `ESTSAUTH`).
const SESSION_COOKIE: &str = "ESTSAUTH";

/// The parameters the pages carry from one step to the next; the page's own fields are not.
const PAGE_FIELDS: &[&str] = &["login", "passwd", "account"];

/// The request's parameters: the query's, and on a form POST the body's over them (the first
/// of each name).
fn parameters(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let mut out: HashMap<String, String> = HashMap::new();
    if super::identity::is_form(headers) && !body.is_empty() {
        std::str::from_utf8(body).ok()?;
        let mut seen = std::collections::HashSet::new();
        for (k, v) in form_urlencoded::parse(body) {
            if seen.insert(k.to_string()) {
                out.insert(k.into_owned(), v.into_owned());
            }
        }
    }
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    if out.values().chain(out.keys()).any(|v| v.contains('\0')) {
        return None;
    }
    Some(out)
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn session_cookie(value: &str, https: bool, max_age: Option<i64>) -> HeaderValue {
    let mut cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if https {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("a cookie of ASCII letters and digits")
}

/// `GET` and `POST /{tenant}/oauth2/v2.0/authorize`.
pub(super) async fn authorize(
    State(state): State<AppState>,
    Path(authority): Path<String>,
    RawQuery(query): RawQuery,
    https: Option<axum::Extension<Https>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(params) = parameters(query.as_deref(), &headers, &body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            9002313,
            "Invalid request. Request is malformed or invalid: a parameter is not valid text.",
        );
    };
    let get = |name: &str| params.get(name).cloned();
    let request = AuthorizeParams {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        response_mode: get("response_mode"),
        scope: get("scope"),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        prompt: get("prompt"),
        login_hint: get("login_hint"),
        client_info: params.get("client_info").is_some_and(|v| v == "1"),
    };
    let action = match (params.get("login"), params.get("passwd"), params.get("account")) {
        (Some(login), Some(password), _) => PageAction::Credentials {
            login: login.clone(),
            password: password.clone(),
        },
        (_, _, Some(user_id)) => PageAction::Pick {
            user_id: user_id.clone(),
        },
        _ => PageAction::None,
    };
    let session = session_of(&headers);
    let outcome = signin::authorize(&state.app, &authority, &request, session.as_deref(), action).await;
    let Authorized { answer, session } = match outcome {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in failed");
            return unavailable_page();
        }
    };
    let mut response = render(answer, &params);
    if let Some(session) = session {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session_cookie(&session, https.is_some(), None));
    }
    response
}

/// `GET` and `POST /{tenant}/oauth2/v2.0/logout`: signs the browser's users out, then back to
/// the app when `post_logout_redirect_uri` is one of its redirect URIs.
pub(super) async fn logout(
    State(state): State<AppState>,
    Path(authority): Path<String>,
    RawQuery(query): RawQuery,
    https: Option<axum::Extension<Https>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parameters(query.as_deref(), &headers, &body).unwrap_or_default();
    let session = session_of(&headers);
    let back = signin::logout(
        &state.app,
        &authority,
        session.as_deref(),
        params.get("client_id").map(String::as_str),
        params.get("post_logout_redirect_uri").map(String::as_str),
    )
    .await;
    let mut response = match back {
        Ok(Some(uri)) => {
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&uri) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Ok(None) => html(
            StatusCode::OK,
            "Signed out",
            "<h1>You signed out of your account</h1>\n<p id=\"signed-out\">It's a good idea to close all browser windows.</p>",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "sign-out failed");
            return unavailable_page();
        }
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie("", https.is_some(), Some(0)));
    response
}

fn html(status: StatusCode, title: &str, main: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} - Intune MTD emulator</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\n<body><main>\n{main}\n</main></body></html>\n",
        html_escape(title)
    );
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The pages are never framed (clickjacking), as Entra's are not.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    html(
        status,
        "Sign in",
        &format!(
            "<h1>Sorry, but we're having trouble signing you in.</h1>\n<p id=\"error-code\">AADSTS{code}</p>\n<p id=\"error-message\">AADSTS{code}: {}</p>",
            html_escape(message)
        ),
    )
}

/// The database does not answer: Entra's AADSTS90033, on the page.
fn unavailable_page() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        90033,
        "The directory service is not available. Retry the request later.",
    )
}

/// The request's parameters as hidden fields, so that the page's form repeats the request.
fn hidden_fields(params: &HashMap<String, String>, skip: &[&str]) -> String {
    let mut names: Vec<&String> = params
        .keys()
        .filter(|k| !PAGE_FIELDS.contains(&k.as_str()) && !skip.contains(&k.as_str()))
        .collect();
    names.sort();
    names
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                html_escape(k),
                html_escape(&params[*k])
            )
        })
        .collect()
}

fn render(answer: Authorization, params: &HashMap<String, String>) -> Response {
    match answer {
        Authorization::ErrorPage { code, message } => error_page(StatusCode::BAD_REQUEST, code, &message),
        Authorization::SignIn {
            app_name,
            login_hint,
            problem,
        } => {
            let problem = problem
                .map(|p| format!("<p id=\"error\" role=\"alert\">{}</p>\n", html_escape(&p)))
                .unwrap_or_default();
            html(
                StatusCode::OK,
                "Sign in to your account",
                &format!(
                    "<h1>Sign in</h1>\n<p>to continue to <span id=\"app-name\">{app}</span></p>\n{problem}\
                     <form method=\"post\" action=\"authorize\">\n{hidden}\
                     <label>Email or username <input name=\"login\" type=\"email\" value=\"{login}\" autocomplete=\"username\" required></label>\n\
                     <label>Password <input name=\"passwd\" type=\"password\" autocomplete=\"current-password\" required></label>\n\
                     <button type=\"submit\" id=\"sign-in\">Sign in</button>\n</form>",
                    app = html_escape(&app_name),
                    hidden = hidden_fields(params, &["prompt"]),
                    login = html_escape(&login_hint),
                ),
            )
        }
        Authorization::PickAccount { app_name, accounts } => {
            let hidden = hidden_fields(params, &["prompt"]);
            let mut list = String::new();
            for a in &accounts {
                list.push_str(&format!(
                    "<li><form method=\"post\" action=\"authorize\">\n{hidden}<input type=\"hidden\" name=\"account\" value=\"{id}\">\
                     <button type=\"submit\" class=\"account\">{name} <small>{upn}</small></button></form></li>\n",
                    id = html_escape(&a.user_id),
                    name = html_escape(&a.display_name),
                    upn = html_escape(&a.user_principal_name),
                ));
            }
            html(
                StatusCode::OK,
                "Pick an account",
                &format!(
                    "<h1>Pick an account</h1>\n<p>to continue to <span id=\"app-name\">{app}</span></p>\n<ul id=\"accounts\">\n{list}</ul>\n\
                     <form method=\"post\" action=\"authorize\">\n{hidden}<input type=\"hidden\" name=\"prompt\" value=\"login\">\
                     <button type=\"submit\" id=\"another-account\">Use another account</button></form>",
                    app = html_escape(&app_name),
                ),
            )
        }
        Authorization::Redirect {
            redirect_uri,
            mode,
            params,
        } => {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            let location = match mode {
                ResponseMode::Query => {
                    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
                    format!("{redirect_uri}{sep}{encoded}")
                }
                ResponseMode::Fragment => format!("{redirect_uri}#{encoded}"),
                ResponseMode::FormPost => {
                    let fields: String = params
                        .iter()
                        .map(|(k, v)| {
                            format!(
                                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                                html_escape(k),
                                html_escape(v)
                            )
                        })
                        .collect();
                    return html(
                        StatusCode::OK,
                        "Working...",
                        &format!(
                            "<form method=\"post\" name=\"hiddenform\" action=\"{}\">{fields}\
                             <noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\"></noscript></form>\n\
                             <script>document.forms[0].submit();</script>",
                            html_escape(&redirect_uri)
                        ),
                    );
                }
            };
            let mut r = StatusCode::FOUND.into_response();
            match HeaderValue::from_str(&location) {
                Ok(v) => {
                    r.headers_mut().insert(header::LOCATION, v);
                    r.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    r
                }
                Err(_) => error_page(
                    StatusCode::BAD_REQUEST,
                    50011,
                    "The redirect URI cannot be sent in a Location header.",
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_session_cookie_of_letters_and_digits_is_read() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; ESTSAUTH=abc123; b=2"));
        assert_eq!(session_of(&h).as_deref(), Some("abc123"));
        h.insert(header::COOKIE, HeaderValue::from_static("ESTSAUTH=\"x;y\""));
        assert_eq!(session_of(&h), None);
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_over_https() {
        let c = session_cookie("abc", true, None);
        assert_eq!(c, "ESTSAUTH=abc; Path=/; HttpOnly; SameSite=Lax; Secure");
        let c = session_cookie("abc", false, None);
        assert_eq!(c, "ESTSAUTH=abc; Path=/; HttpOnly; SameSite=Lax");
    }
}
