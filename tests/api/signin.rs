//! Interactive sign-in (issue "Sign in as Entra does", items 3 to 5 and 7): app registrations
//! with redirect URIs by platform, `/authorize` with its sign-in page, session cookie, account
//! picker and response modes, and the authorization code grant with PKCE. Each refusal is
//! checked by its AADSTS code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::both_backends;
use crate::common::{Tenant, TestApp};
use crate::compliance::create_connector;
use crate::mtd::LOOKOUT;

both_backends!(
    the_code_flow_with_pkce_signs_a_user_in_once,
    the_session_cookie_serves_prompt_none_and_the_account_picker,
    refusals_carry_entra_codes,
    response_modes_and_the_organizations_authority,
    the_sign_in_pages_escape_what_they_echo,
    a_deleted_app_gets_and_uses_no_tokens,
    public_client_flows_need_the_setting_or_the_secret,
    a_single_page_apps_refresh_tokens_last_24_hours_from_the_sign_in
);

const SPA: &str = "http://localhost:3000/";
const WEB: &str = "https://portal.contoso.example/signin-oidc";
const NATIVE: &str = "msal0000://auth";
const INTUNE_ADMIN: &str = "3a2c62db-5318-420d-8d74-23affee5d9d5";
const SCOPE: &str = "https://graph.microsoft.com/DeviceManagementServiceConfig.Read.All openid profile offline_access";

/// A browser: no automatic redirects, the session cookie kept by hand.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> reqwest::Response {
        let r = match &self.cookie {
            Some(c) => r.header("cookie", format!("ESTSAUTH={c}")),
            None => r,
        };
        let response = r.send().await.unwrap();
        for v in response.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let value = v.strip_prefix("ESTSAUTH=").unwrap().split(';').next().unwrap();
            self.cookie = (!value.is_empty()).then(|| value.to_string());
        }
        response
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let r = self.http.get(url);
        self.send(r).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self.http.post(url).form(form);
        self.send(r).await
    }
}

/// PKCE: a verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!(
        "{}-verifier-{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

struct Setup {
    t: Tenant,
    admin: String,
    client_id: String,
    secret: String,
    user_id: String,
}

const UPN: &str = "adele@contoso.example";
const PASSWORD: &str = "Pa55w.rd!";

/// A tenant with a connector, an Intune administrator and an app with a redirect URI of each
/// platform.
async fn setup(app: &TestApp) -> Setup {
    let t = app.create_tenant().await;
    let admin = app.admin_token(&t).await;
    create_connector(app, &admin, LOOKOUT, json!({ "iosEnabled": true })).await;
    let user = crate::directory::create_user(app, &admin, UPN, "Adele Vance").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    grant_intune_admin(app, &t, &user_id).await;
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
        .json(&json!({
            "displayName": "Contoso admin console",
            "spa": { "redirectUris": [SPA] },
            "web": { "redirectUris": [WEB] },
            "publicClient": { "redirectUris": [NATIVE] },
            "delegatedPermissions": ["DeviceManagementServiceConfig.Read.All"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["spa"]["redirectUris"], json!([SPA]), "{body}");
    assert_eq!(
        body["delegatedPermissions"],
        json!(["DeviceManagementServiceConfig.Read.All"])
    );
    Setup {
        t,
        admin,
        client_id: body["clientId"].as_str().unwrap().to_string(),
        secret: body["clientSecret"].as_str().unwrap().to_string(),
        user_id,
    }
}

/// Makes the user an Intune Administrator (a directory role, in the token's `wids`).
pub async fn grant_intune_admin(app: &TestApp, t: &Tenant, user_id: &str) {
    let r = app
        .req(
            Method::PUT,
            &format!("/_emulator/tenants/{}/users/{user_id}/directoryRoles", t.id),
        )
        .json(&json!({ "roles": [INTUNE_ADMIN] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The authorization request's URL.
fn authorize_url(app: &TestApp, authority: &str, params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    format!("{}/{authority}/oauth2/v2.0/authorize?{query}", app.base)
}

/// The parameters a redirect carries, in its query or fragment.
fn redirect_params(r: &reqwest::Response) -> (String, std::collections::HashMap<String, String>) {
    assert_eq!(r.status(), StatusCode::FOUND, "a redirect");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let (target, params) = location
        .split_once('#')
        .or_else(|| location.split_once('?'))
        .unwrap_or((&location, ""));
    (
        target.to_string(),
        form_urlencoded::parse(params.as_bytes()).into_owned().collect(),
    )
}

fn spa_request<'a>(s: &'a Setup, challenge: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("client_id", s.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", SPA),
        ("response_mode", "fragment"),
        ("scope", SCOPE),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

/// Signs in on the page the request shows (or, when the browser's session has a user already,
/// takes the code that comes without a page); returns the redirect's parameters.
async fn sign_in(
    app: &TestApp,
    browser: &mut Browser,
    authority: &str,
    params: &[(&str, &str)],
    upn: &str,
) -> std::collections::HashMap<String, String> {
    let page = browser.get(&authorize_url(app, authority, params)).await;
    if page.status() == StatusCode::FOUND {
        return redirect_params(&page).1;
    }
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"passwd\""), "{html}");
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.retain(|(k, _)| *k != "prompt");
    form.push(("login", upn));
    form.push(("passwd", PASSWORD));
    let r = browser
        .post(&format!("{}/{authority}/oauth2/v2.0/authorize", app.base), &form)
        .await;
    redirect_params(&r).1
}

async fn redeem(app: &TestApp, tenant: &str, form: &[(&str, &str)], origin: Option<&str>) -> reqwest::Response {
    let mut r = app
        .req(Method::POST, &format!("/{tenant}/oauth2/v2.0/token"))
        .form(form);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send().await.unwrap()
}

/// Entra's error document with this AADSTS code; returns the description.
pub async fn assert_entra(r: reqwest::Response, status: u16, error: &str, code: u64) -> String {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    description.to_string()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn the_code_flow_with_pkce_signs_a_user_in_once(app: TestApp) {
    let s = setup(&app).await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new();
    let params = spa_request(&s, &challenge, &[("client_info", "1")]);
    let back = sign_in(&app, &mut browser, &s.t.id, &params, UPN).await;
    assert_eq!(back["state"], "st-123");
    let info: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&back["client_info"]).unwrap()).unwrap();
    assert_eq!(info, json!({ "uid": s.user_id, "utid": s.t.id }));
    assert!(browser.cookie.is_some(), "the sign-in set the session cookie");

    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", s.client_id.as_str()),
        ("code", back["code"].as_str()),
        ("redirect_uri", SPA),
        ("code_verifier", verifier.as_str()),
        ("client_info", "1"),
    ];
    let r = redeem(&app, &s.t.id, &form, Some("http://localhost:3000")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://localhost:3000");
    let tokens: Value = r.json().await.unwrap();
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["oid"], s.user_id.as_str());
    assert_eq!(id["aud"], s.client_id.as_str());
    assert_eq!(id["preferred_username"], UPN);
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["scp"], "DeviceManagementServiceConfig.Read.All");
    assert!(tokens["client_info"].is_string());
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            tokens["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);

    // The code again: refused, and the refresh token of its first redemption is revoked.
    let r = redeem(&app, &s.t.id, &form, Some("http://localhost:3000")).await;
    assert_entra(r, 400, "invalid_grant", 54005).await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", s.client_id.as_str()),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let r = redeem(&app, &s.t.id, &refresh, Some("http://localhost:3000")).await;
    assert_entra(r, 400, "invalid_grant", 70000).await;
}

async fn the_session_cookie_serves_prompt_none_and_the_account_picker(app: TestApp) {
    let s = setup(&app).await;
    let (_, challenge) = pkce();
    let mut browser = Browser::new();

    // No session: prompt=none is refused back to the app.
    let params = spa_request(&s, &challenge, &[("prompt", "none")]);
    let r = browser.get(&authorize_url(&app, &s.t.id, &params)).await;
    let (target, back) = redirect_params(&r);
    assert_eq!(target, SPA);
    assert_eq!(back["error"], "login_required");
    assert!(back["error_description"].starts_with("AADSTS50058: "));
    assert_eq!(back["state"], "st-123");

    sign_in(&app, &mut browser, &s.t.id, &spa_request(&s, &challenge, &[]), UPN).await;
    // Signed in: prompt=none and a plain request get a code without a page.
    for extra in [vec![("prompt", "none")], vec![]] {
        let r = browser
            .get(&authorize_url(&app, &s.t.id, &spa_request(&s, &challenge, &extra)))
            .await;
        let (_, back) = redirect_params(&r);
        assert!(back.contains_key("code"), "{back:?}");
    }

    // A second user on the same browser: then the picker.
    let admin = &s.admin;
    let other = crate::directory::create_user(&app, admin, "megan@contoso.example", "Megan Bowen").await;
    let other_id = other["id"].as_str().unwrap();
    let back = sign_in(
        &app,
        &mut browser,
        &s.t.id,
        &spa_request(&s, &challenge, &[("prompt", "login")]),
        "megan@contoso.example",
    )
    .await;
    assert!(back.contains_key("code"));
    let r = browser
        .get(&authorize_url(&app, &s.t.id, &spa_request(&s, &challenge, &[])))
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Pick an account") && html.contains(UPN) && html.contains("megan@contoso.example"));
    let mut pick = spa_request(&s, &challenge, &[]);
    pick.push(("account", other_id));
    let r = browser
        .post(&format!("{}/{}/oauth2/v2.0/authorize", app.base, s.t.id), &pick)
        .await;
    assert!(redirect_params(&r).1.contains_key("code"));
    // prompt=none with two accounts needs a hint.
    let r = browser
        .get(&authorize_url(
            &app,
            &s.t.id,
            &spa_request(&s, &challenge, &[("prompt", "none")]),
        ))
        .await;
    assert_eq!(redirect_params(&r).1["error"], "interaction_required");
    let r = browser
        .get(&authorize_url(
            &app,
            &s.t.id,
            &spa_request(&s, &challenge, &[("prompt", "none"), ("login_hint", UPN)]),
        ))
        .await;
    assert!(redirect_params(&r).1.contains_key("code"));

    // Logout ends the session and sends the browser back to a registered URI only.
    let r = browser
        .get(&format!(
            "{}/{}/oauth2/v2.0/logout?post_logout_redirect_uri={}",
            app.base,
            s.t.id,
            urlencoding(SPA)
        ))
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], SPA);
    assert!(browser.cookie.is_none(), "the cookie is cleared");
    let r = app
        .req(
            Method::GET,
            &format!(
                "/{}/oauth2/v2.0/logout?post_logout_redirect_uri=https://evil.example/",
                s.t.id
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an unregistered URI gets the signed-out page");
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn refusals_carry_entra_codes(app: TestApp) {
    let s = setup(&app).await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new();

    // An unregistered redirect URI: Entra's page, not a redirect.
    let mut params = spa_request(&s, &challenge, &[]);
    params[2] = ("redirect_uri", "http://localhost:3000/elsewhere");
    let r = browser.get(&authorize_url(&app, &s.t.id, &params)).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("AADSTS50011"), "{html}");
    // An unknown app: the page too.
    let r = browser
        .get(&authorize_url(
            &app,
            &s.t.id,
            &[("client_id", &uuid::Uuid::new_v4().to_string()), ("redirect_uri", SPA)],
        ))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS700016"));
    // A single-page app without PKCE, and a permission the app does not list: back to the app.
    let r = browser
        .get(&authorize_url(
            &app,
            &s.t.id,
            &[
                ("client_id", &s.client_id),
                ("response_type", "code"),
                ("redirect_uri", SPA),
                ("scope", SCOPE),
            ],
        ))
        .await;
    let back = redirect_params(&r).1;
    assert_eq!(back["error"], "invalid_request");
    assert!(back["error_description"].starts_with("AADSTS9002325: "));
    let mut params = spa_request(&s, &challenge, &[]);
    params[4] = ("scope", "DeviceManagementManagedDevices.ReadWrite.All openid");
    let r = browser.get(&authorize_url(&app, &s.t.id, &params)).await;
    let back = redirect_params(&r).1;
    assert_eq!(back["error"], "consent_required");
    assert!(back["error_description"].starts_with("AADSTS65001: "));

    // A wrong password shows the page again.
    let page = spa_request(&s, &challenge, &[]);
    let mut form = page.clone();
    form.extend([("login", UPN), ("passwd", "wrong")]);
    let r = browser
        .post(&format!("{}/{}/oauth2/v2.0/authorize", app.base, s.t.id), &form)
        .await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your account or password is incorrect"));

    let code_for = |back: std::collections::HashMap<String, String>| back["code"].clone();
    // Wrong verifier.
    let code = code_for(sign_in(&app, &mut browser, &s.t.id, &page, UPN).await);
    let form = |code: &str, verifier: &str| -> Vec<(String, String)> {
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("client_id".into(), s.client_id.clone()),
            ("code".into(), code.into()),
            ("redirect_uri".into(), SPA.into()),
            ("code_verifier".into(), verifier.into()),
        ]
    };
    let post = |f: Vec<(String, String)>, origin: Option<&'static str>| {
        let mut r = app
            .req(Method::POST, &format!("/{}/oauth2/v2.0/token", s.t.id))
            .form(&f);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let wrong = pkce().0;
    let r = post(form(&code, &wrong), Some("http://localhost:3000")).await.unwrap();
    assert_entra(r, 400, "invalid_grant", 501481).await;
    // A single-page app's code redeemed without an Origin.
    let code = code_for(sign_in(&app, &mut browser, &s.t.id, &page, UPN).await);
    let r = post(form(&code, &verifier), None).await.unwrap();
    assert_entra(r, 400, "invalid_request", 9002327).await;
    // Another redirect URI than the code's.
    let mut f = form(&code, &verifier);
    f[3].1 = WEB.into();
    let r = post(f, Some("http://localhost:3000")).await.unwrap();
    assert_entra(r, 400, "invalid_grant", 70000).await;

    // A web app's code: redeemed from a browser page is refused; without the secret too.
    let web = [
        ("client_id", s.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", WEB),
        ("response_mode", "form_post"),
        ("scope", SCOPE),
    ];
    let r = browser.get(&authorize_url(&app, &s.t.id, &web)).await;
    let html = r.text().await.unwrap();
    let code = html
        .split("name=\"code\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries the code")
        .to_string();
    let mut f = form(&code, "");
    f[3].1 = WEB.into();
    f.pop();
    let r = post(f.clone(), Some("https://portal.contoso.example")).await.unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "the page is not let read the refusal"
    );
    let description = assert_entra(r, 400, "invalid_request", 9002326).await;
    assert!(description.contains("Request origin: 'https://portal.contoso.example'"));
    let r = post(f.clone(), None).await.unwrap();
    assert_entra(r, 401, "invalid_client", 7000218).await;
    f.push(("client_secret".into(), s.secret.clone()));
    let r = post(f, None).await.unwrap();
    assert_eq!(r.status(), 200, "the web app with its secret");

    // A code ten minutes old has expired.
    let code = code_for(sign_in(&app, &mut browser, &s.t.id, &page, UPN).await);
    app.advance_clock(&s.t.id, "PT10M1S").await;
    let r = post(form(&code, &verifier), Some("http://localhost:3000"))
        .await
        .unwrap();
    assert_entra(r, 400, "invalid_grant", 70008).await;

    // A deleted user: the code cannot be redeemed.
    let code = code_for(sign_in(&app, &mut browser, &s.t.id, &page, UPN).await);
    let r = app
        .graph(Method::DELETE, &format!("/v1.0/users/{}", s.user_id), &s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = post(form(&code, &verifier), Some("http://localhost:3000"))
        .await
        .unwrap();
    assert_entra(r, 400, "invalid_grant", 50034).await;
    // ... and a session that signed them in no longer does.
    let r = browser
        .get(&authorize_url(
            &app,
            &s.t.id,
            &spa_request(&s, &challenge, &[("prompt", "none")]),
        ))
        .await;
    assert_eq!(redirect_params(&r).1["error"], "login_required");
}

async fn response_modes_and_the_organizations_authority(app: TestApp) {
    let s = setup(&app).await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new();
    // A native app through `organizations`, the code in the query.
    let params = [
        ("client_id", s.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", NATIVE),
        ("scope", SCOPE),
        ("state", "a b&c"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("login_hint", UPN),
    ];
    let page = browser.get(&authorize_url(&app, "organizations", &params)).await;
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{UPN}\"")), "the hint fills the name in");
    let mut form = params.to_vec();
    form.extend([("login", UPN), ("passwd", PASSWORD)]);
    let r = browser
        .post(&format!("{}/organizations/oauth2/v2.0/authorize", app.base), &form)
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("msal0000://auth?code="), "{location}");
    let (_, back) = redirect_params(&r);
    assert_eq!(back["state"], "a b&c");
    let token_form = [
        ("grant_type", "authorization_code"),
        ("client_id", s.client_id.as_str()),
        ("code", back["code"].as_str()),
        ("redirect_uri", NATIVE),
        ("code_verifier", verifier.as_str()),
        ("scope", SCOPE),
    ];
    let r = redeem(&app, "organizations", &token_form, None).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["tid"], s.t.id.as_str());

    // The metadata of `organizations` has the issuer template clients fill with `tid`.
    let r = app
        .req(Method::GET, "/organizations/v2.0/.well-known/openid-configuration")
        .send()
        .await
        .unwrap();
    let meta: Value = r.json().await.unwrap();
    assert_eq!(meta["issuer"], "https://login.microsoftonline.com/{tenantid}/v2.0");
    assert!(meta["authorization_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/organizations/oauth2/v2.0/authorize"));
    let r = app
        .req(
            Method::GET,
            &format!("/{}/v2.0/.well-known/openid-configuration", s.t.id),
        )
        .send()
        .await
        .unwrap();
    let meta: Value = r.json().await.unwrap();
    assert!(meta["end_session_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/oauth2/v2.0/logout"));
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("authorization_code")));
    // A plain PKCE challenge is the verifier itself.
    let plain = "p".repeat(50);
    let params = [
        ("client_id", s.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", NATIVE),
        ("scope", SCOPE),
        ("code_challenge", plain.as_str()),
        ("response_mode", "fragment"),
    ];
    let r = browser.get(&authorize_url(&app, &s.t.id, &params)).await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("msal0000://auth#code="), "{location}");
    let back = redirect_params(&r).1;
    let token_form = [
        ("grant_type", "authorization_code"),
        ("client_id", s.client_id.as_str()),
        ("code", back["code"].as_str()),
        ("redirect_uri", NATIVE),
        ("code_verifier", plain.as_str()),
    ];
    assert_eq!(redeem(&app, &s.t.id, &token_form, None).await.status(), 200);
}

async fn the_sign_in_pages_escape_what_they_echo(app: TestApp) {
    let s = setup(&app).await;
    let script = "\"><script>alert('x')</script>";
    let (_, challenge) = pkce();
    let mut browser = Browser::new();
    let mut params = spa_request(&s, &challenge, &[("login_hint", script), ("extra", script)]);
    params[5] = ("state", script);
    let r = browser.get(&authorize_url(&app, &s.t.id, &params)).await;
    assert_eq!(r.status(), 200);
    let cookie_free = r.headers().get("set-cookie").is_none();
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
    assert!(cookie_free);
    // Every field of the form posted with script: the page shows it escaped.
    let mut form = params.clone();
    form.extend([("login", script), ("passwd", script)]);
    let r = browser
        .post(&format!("{}/{}/oauth2/v2.0/authorize", app.base, s.t.id), &form)
        .await;
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    // The error page escapes the redirect URI it quotes.
    let mut params = spa_request(&s, &challenge, &[]);
    params[2] = ("redirect_uri", "http://localhost:3000/<script>alert(1)</script>");
    let r = browser.get(&authorize_url(&app, &s.t.id, &params)).await;
    let html = r.text().await.unwrap();
    assert!(html.contains("AADSTS50011") && !html.contains("<script>"), "{html}");
    // The cookie is HttpOnly and SameSite=Lax, and not Secure over http.
    let mut form = spa_request(&s, &challenge, &[]);
    form.extend([("login", UPN), ("passwd", PASSWORD)]);
    let r = Browser::new()
        .http
        .post(format!("{}/{}/oauth2/v2.0/authorize", app.base, s.t.id))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("ESTSAUTH="), "{cookie}");
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
}

async fn a_deleted_app_gets_and_uses_no_tokens(app: TestApp) {
    let s = setup(&app).await;
    // A user signed in through the app, with a refresh token.
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new();
    let back = sign_in(&app, &mut browser, &s.t.id, &spa_request(&s, &challenge, &[]), UPN).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", s.client_id.as_str()),
        ("code", back["code"].as_str()),
        ("redirect_uri", SPA),
        ("code_verifier", verifier.as_str()),
    ];
    let r = redeem(&app, &s.t.id, &form, Some("http://localhost:3000")).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let user_token = tokens["access_token"].as_str().unwrap().to_string();
    // An app-only token of the same app.
    let app_token = app.token(&s.t.id, &s.client_id, &s.secret).await;
    let connectors = "/v1.0/deviceManagement/mobileThreatDefenseConnectors";
    for token in [&user_token, &app_token] {
        let r = app.graph(Method::GET, connectors, token).send().await.unwrap();
        assert!(r.status() == 200 || r.status() == 403, "{}", r.status());
    }
    assert_eq!(
        app.graph(Method::GET, connectors, &user_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let delete = |client: String| {
        app.req(Method::DELETE, &format!("/_emulator/tenants/{}/apps/{client}", s.t.id))
            .send()
    };
    assert_eq!(delete(s.client_id.clone()).await.unwrap().status(), 204);
    assert_eq!(delete(s.client_id.clone()).await.unwrap().status(), 404);
    let r = delete(s.t.client_id.clone()).await.unwrap();
    crate::common::assert_error(r, 400, "BadRequest").await;

    // Its tokens are refused, and it gets no more.
    for token in [&user_token, &app_token] {
        let r = app.graph(Method::GET, connectors, token).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = app.token_response(&s.t.id, &s.client_id, &s.secret).await;
    assert_entra(r, 400, "unauthorized_client", 700016).await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", s.client_id.as_str()),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let r = redeem(&app, &s.t.id, &refresh, Some("http://localhost:3000")).await;
    assert_entra(r, 400, "invalid_grant", 70000).await;
    let r = browser
        .get(&authorize_url(&app, &s.t.id, &spa_request(&s, &challenge, &[])))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS700016"));
}

/// The password grant (and the device code grant) without the app's secret only for an app that
/// allows public client flows; with `openid` and `offline_access` it gives ID and refresh tokens.
async fn public_client_flows_need_the_setting_or_the_secret(app: TestApp) {
    let s = setup(&app).await;
    let password = |client: String, secret: Option<String>| {
        let mut form = vec![
            ("grant_type", "password".to_string()),
            ("client_id", client),
            ("username", UPN.to_string()),
            ("password", PASSWORD.to_string()),
            ("scope", SCOPE.to_string()),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret));
        }
        app.req(Method::POST, &format!("/{}/oauth2/v2.0/token", s.t.id))
            .form(&form)
            .send()
    };
    // The console's registration does not allow public client flows.
    let r = password(s.client_id.clone(), None).await.unwrap();
    assert_entra(r, 401, "invalid_client", 7000218).await;
    let r = password(s.client_id.clone(), Some(s.secret.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["appidacr"], "1");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["preferred_username"], UPN);
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    // The bootstrap app does.
    let r = password(s.t.client_id.clone(), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["appidacr"], "0");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["aud"],
        s.t.client_id.as_str()
    );
}

/// Entra gives single-page apps refresh tokens of a fixed 24 hours, which rotation does not
/// extend, redeemed cross-origin only; a desktop app's last 90 days of inactivity.
async fn a_single_page_apps_refresh_tokens_last_24_hours_from_the_sign_in(app: TestApp) {
    let s = setup(&app).await;
    let origin = Some("http://localhost:3000");
    let mut refresh_tokens = Vec::new();
    for (redirect, origin) in [(SPA, origin), (NATIVE, None)] {
        let (verifier, challenge) = pkce();
        let params = [
            ("client_id", s.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", SCOPE),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let back = sign_in(&app, &mut Browser::new(), &s.t.id, &params, UPN).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", s.client_id.as_str()),
            ("code", back["code"].as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.as_str()),
        ];
        let r = redeem(&app, &s.t.id, &form, origin).await;
        assert_eq!(r.status(), 200);
        let tokens: Value = r.json().await.unwrap();
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_string());
    }
    let refresh = |token: String, origin: Option<&'static str>| {
        let form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("client_id", s.client_id.clone()),
            ("refresh_token", token),
        ];
        let mut r = app
            .req(Method::POST, &format!("/{}/oauth2/v2.0/token", s.t.id))
            .form(&form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let (mut spa, mut native) = (refresh_tokens[0].clone(), refresh_tokens[1].clone());
    // Without an Origin, the single-page app's token is refused (and stays usable).
    let r = refresh(spa.clone(), None).await.unwrap();
    assert_entra(r, 400, "invalid_request", 9002327).await;
    // 23 hours on, both rotate.
    app.advance_clock(&s.t.id, "PT23H").await;
    for (token, origin) in [(&mut spa, origin), (&mut native, None)] {
        let r = refresh(token.clone(), origin).await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        *token = body["refresh_token"].as_str().unwrap().to_string();
    }
    // 25 hours after the sign-in, the single-page app's successor has expired; the desktop
    // app's has not.
    app.advance_clock(&s.t.id, "PT2H").await;
    let r = refresh(spa, origin).await.unwrap();
    assert_entra(r, 400, "invalid_grant", 700084).await;
    // The desktop app's refresh token from a browser page: refused, without CORS headers, and
    // not spent.
    let r = refresh(native.clone(), origin).await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_entra(r, 400, "invalid_request", 9002326).await;
    assert_eq!(refresh(native, None).await.unwrap().status(), 200);
    // Nor do the other grants run from a page.
    let r = app
        .req(Method::POST, &format!("/{}/oauth2/v2.0/token", s.t.id))
        .header("origin", "http://localhost:3000")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s.client_id.as_str()),
            ("client_secret", s.secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_entra(r, 400, "invalid_request", 9002326).await;
}
