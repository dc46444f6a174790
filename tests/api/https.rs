//! HTTPS (issue "Sign in as Entra does", item 1): Microsoft's auth libraries, which refuse an
//! `http` authority, sign in to the emulator's HTTPS listener with its local CA trusted, and the
//! Graph SDK takes Azure Identity's credential as it is. The CA is the deployment's: kept in the
//! database, printed by `intune-mtd-emulator ca`, the same on every start.

use serde_json::json;

use crate::both_backends;
use crate::common::{open_store, TestApp};
use crate::compliance::create_connector;
use crate::mtd::LOOKOUT;
use crate::sdk::python;

both_backends!(
    msal_and_azure_identity_sign_in_over_https,
    msal_signs_a_user_in_with_the_device_code_flow,
    msal_device_code_flow_meets_conditional_access_from_a_phone
);

/// Starts the HTTPS listener beside `app`'s, as `serve` does; returns its base URL.
pub async fn start_https(app: &TestApp) -> String {
    let store = open_store(&app.db).await;
    let args = intune_mtd_emulator::config::TlsArgs {
        https_listen: "127.0.0.1:0".parse().unwrap(),
        no_https: false,
        tls_names: Vec::new(),
        tls_cert: None,
        tls_key: None,
    };
    let config = intune_mtd_emulator::tls_config(store.as_ref(), &args).await.unwrap();
    let tcp = tokio::net::TcpListener::bind(args.https_listen).await.unwrap();
    let base = format!("https://{}", tcp.local_addr().unwrap());
    let listener = intune_mtd_emulator::http::tls::TlsListener::new(tcp, config).unwrap();
    tokio::spawn(intune_mtd_emulator::run_https(
        listener,
        app.state.clone(),
        std::future::pending(),
    ));
    base
}

/// `intune-mtd-emulator ca` on the test's database.
async fn ca_of(app: &TestApp) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_intune-mtd-emulator"))
        .args(["ca", "--database-url", &app.db.url, "--log-filter", "warn"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the deployment's CA to a file in `dir`, for `SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE`.
pub async fn ca_file(app: &TestApp, dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("emulator-ca.pem");
    std::fs::write(&path, ca_of(app).await).unwrap();
    path
}

/// Item 5's device code grant, through MSAL's PublicClientApplication over HTTPS; the user
/// approves on `/devicelogin` over HTTP, and the Graph SDK reads with the delegated token.
async fn msal_signs_a_user_in_with_the_device_code_flow(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    create_connector(&app, &token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let upn = "adele@contoso.example";
    let user = crate::directory::create_user(&app, &token, upn, "Adele Vance").await;
    crate::signin::grant_intune_admin(&app, &t, user["id"].as_str().unwrap()).await;
    let (client, _) = app.register_app(&t.id, &[]).await;
    let https = start_https(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&app, &dir).await;
    run_with_ca(
        "device_flow.py",
        &[&https, &app.base, &t.id, &client, upn, "Pa55w.rd!"],
        &ca,
    )
    .await;
}

/// Runs a script of `tests/sdk` with the emulator's CA trusted; fails with its output.
async fn run_with_ca(script: &str, args: &[&str], ca: &std::path::Path) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let out = tokio::process::Command::new(python())
        .arg(&path)
        .args(args)
        .env("SSL_CERT_FILE", ca)
        .env("REQUESTS_CA_BUNDLE", ca)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn msal_and_azure_identity_sign_in_over_https(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    create_connector(&app, &token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let https = start_https(&app).await;

    // The CA the server signed with is the one `ca` prints, and it stays the same.
    let ca = ca_of(&app).await;
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(ca_of(&app).await, ca);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("emulator-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();

    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/signin.py");
    let run = |trusted: Option<&std::path::Path>| {
        let mut cmd = tokio::process::Command::new(python());
        cmd.arg(&script)
            .args([&https, &t.id, &t.client_id, &t.client_secret])
            .env_remove("SSL_CERT_DIR");
        match trusted {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca).env("REQUESTS_CA_BUNDLE", ca),
            None => cmd.env_remove("SSL_CERT_FILE").env_remove("REQUESTS_CA_BUNDLE"),
        };
        cmd.output()
    };
    let out = run(Some(&ca_file)).await.unwrap();
    assert!(
        out.status.success(),
        "signin.py failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the CA trusted, the libraries refuse the certificate: the test proves the trust.
    let untrusted = run(None).await.unwrap();
    assert!(!untrusted.status.success());
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
}

both_backends!(pages_on_other_origins_may_call_graph_identity_and_partner_but_not_the_control_plane);

/// CORS (item 2): a page on `http://localhost:3000` may call Graph, the identity endpoints and
/// the partner API (preflight answered, its origin echoed, the headers it reads exposed); the
/// control plane gives browsers nothing.
async fn pages_on_other_origins_may_call_graph_identity_and_partner_but_not_the_control_plane(app: TestApp) {
    use reqwest::Method;
    const ORIGIN: &str = "http://localhost:3000";
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    for path in [
        "/v1.0/deviceManagement/mobileThreatDefenseConnectors".to_string(),
        "/beta/deviceManagement/managedDevices".to_string(),
        format!("/{}/oauth2/v2.0/token", t.id),
        "/partner/v1/deviceThreatStates".to_string(),
    ] {
        let r = app
            .req(Method::OPTIONS, &path)
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,client-request-id",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], ORIGIN, "{path}");
        let allowed = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("client-request-id"),
            "{path}: {allowed}"
        );
        assert!(
            h["access-control-allow-methods"].to_str().unwrap().contains("POST"),
            "{path}"
        );
    }
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            &token,
        )
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["request-id", "client-request-id", "location"] {
        assert!(exposed.contains(h), "{h} exposed: {exposed}");
    }
    for path in [
        "/_emulator/tenants".to_string(),
        format!("/_emulator/tenants/{}/clock", t.id),
    ] {
        let r = app
            .req(Method::OPTIONS, &path)
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{path} is closed to browsers: {:?}",
            r.headers()
        );
    }
}

both_backends!(
    device_codes_expire_on_the_tenant_clock_and_the_page_escapes_what_it_echoes,
    revoking_a_users_sessions_ends_its_refresh_tokens
);

/// Item 7: `POST /users/{id}/revokeSignInSessions` (Graph's own action) ends the user's refresh
/// tokens; another user's keep working.
async fn revoking_a_users_sessions_ends_its_refresh_tokens(app: TestApp) {
    use reqwest::Method;
    let t = app.create_tenant().await;
    let admin = app.admin_token(&t).await;
    let (client, _) = app.register_app(&t.id, &[]).await;
    let mut refresh = Vec::new();
    for upn in ["adele@contoso.example", "lee@contoso.example"] {
        crate::directory::create_user(&app, &admin, upn, upn).await;
        let flow: serde_json::Value = app
            .req(Method::POST, &format!("/{}/oauth2/v2.0/devicecode", t.id))
            .form(&[
                ("client_id", client.as_str()),
                ("scope", "User.Read.All openid offline_access"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = app
            .req(Method::POST, "/devicelogin")
            .form(&[
                ("otc", flow["user_code"].as_str().unwrap()),
                ("login", upn),
                ("passwd", "Pa55w.rd!"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let tokens: serde_json::Value = app
            .req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", client.as_str()),
                ("device_code", flow["device_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(tokens["id_token"].is_string(), "{tokens}");
        refresh.push(tokens["refresh_token"].as_str().expect("a refresh token").to_string());
    }
    let r = app
        .graph(
            Method::POST,
            "/v1.0/users/adele@contoso.example/revokeSignInSessions",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["value"], true);
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#Edm.Boolean"));
    let redeem = |token: String| {
        let client = client.clone();
        let tenant = t.id.clone();
        let app = &app;
        async move {
            app.req(Method::POST, &format!("/{tenant}/oauth2/v2.0/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client.as_str()),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = redeem(refresh[0].clone()).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(body["error_codes"], json!([70000]));
    let r = redeem(refresh[1].clone()).await;
    assert_eq!(r.status(), 200, "Lee's sessions are not Adele's");
}

/// A device code lives fifteen minutes of the tenant's clock, for the poller and for the page;
/// the page echoes what it was sent only escaped.
async fn device_codes_expire_on_the_tenant_clock_and_the_page_escapes_what_it_echoes(app: TestApp) {
    use reqwest::Method;
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    crate::directory::create_user(&app, &token, "adele@contoso.example", "Adele Vance").await;
    let (client, _) = app.register_app(&t.id, &[]).await;
    let start = |scope: &'static str| {
        app.req(Method::POST, &format!("/{}/oauth2/v2.0/devicecode", t.id))
            .form(&[("client_id", client.as_str()), ("scope", scope)])
            .send()
    };
    let r = start("User.Read.All offline_access").await.unwrap();
    assert_eq!(r.status(), 200);
    let flow: serde_json::Value = r.json().await.unwrap();
    assert_eq!(flow["verification_uri"], format!("{}/devicelogin", app.base));
    let user_code = flow["user_code"].as_str().unwrap().to_string();
    let device_code = flow["device_code"].as_str().unwrap().to_string();
    let poll = || {
        app.req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", client.as_str()),
                ("device_code", device_code.as_str()),
            ])
            .send()
    };
    let pending: serde_json::Value = poll().await.unwrap().json().await.unwrap();
    assert_eq!(pending["error"], "authorization_pending");

    app.advance_clock(&t.id, "PT16M").await;
    let r = poll().await.unwrap();
    assert_eq!(r.status(), 400);
    let expired: serde_json::Value = r.json().await.unwrap();
    assert_eq!(expired["error"], "expired_token", "{expired}");
    assert_eq!(expired["error_codes"], json!([70020]));
    let r = app
        .req(Method::POST, "/devicelogin")
        .form(&[
            ("otc", user_code.as_str()),
            ("login", "adele@contoso.example"),
            ("passwd", "Pa55w.rd!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("That code has expired"));

    // Unknown scopes and apps are refused as the token endpoint refuses them.
    let r = start("NotAPermission.Read").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");

    let script = "<script>alert('x')</script>";
    let r = app
        .req(Method::POST, "/devicelogin")
        .form(&[("otc", script), ("login", script), ("passwd", script)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") || page.contains("&lt;script&gt;"),
        "{page}"
    );
    let r = app
        .req(Method::GET, "/devicelogin?otc=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22")
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script") && page.contains("&lt;script&gt;"), "{page}");
}

/// Conditional Access through MSAL Python's device code flow: the phone's credential rides on
/// MSAL's token requests; refused with AADSTS53000 while the partner reports a high threat, signed
/// in once it reports the phone secured.
async fn msal_device_code_flow_meets_conditional_access_from_a_phone(app: TestApp) {
    use crate::compliance::{report, settle};
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (_, ids, partner) = crate::reports::phones_under_a_threat_policy(&app, &t, &token, &["megan-iphone"]).await;
    crate::conditional_access::create_ca_policy(
        &app,
        &token,
        json!({
            "displayName": "Office 365 from compliant devices",
            "state": "enabled",
            "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["Office365"] } },
            "grantControls": { "operator": "OR", "builtInControls": ["compliantDevice"] }
        }),
    )
    .await;
    let credential = crate::conditional_access::credential(&app, &t, &ids[0]).await;
    let (client, _) = app.register_app(&t.id, &[]).await;
    let https = start_https(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&app, &dir).await;
    for (level, outcome) in [("high", "refused"), ("secured", "allowed")] {
        report(&app, &t, &partner, &ids[0], level).await;
        settle(&app, &t).await;
        let args = [
            https.as_str(),
            app.base.as_str(),
            t.id.as_str(),
            client.as_str(),
            "megan@contoso.example",
            "Pa55w.rd!",
            credential.as_str(),
            outcome,
        ];
        run_with_ca("ca_device_flow.py", &args, &ca).await;
    }
}
