//! The browser test (issue "Sign in as Entra does"): a single-page app on another origin signs
//! a user in through the emulator's `/authorize` page with `@azure/msal-browser` (the code flow
//! with PKCE), redeems the code cross-origin, and reads Graph with CORS, in headless Chromium
//! (Debian's package, driven by playwright-core). `scripts/test` installs both; the driver is
//! `tests/browser/signin.mjs`. The screenshot is kept in `target/test-output/browser/`.

use serde_json::{json, Value};

use crate::both_backends;
use crate::common::TestApp;
use crate::compliance::create_connector;
use crate::https::{ca_file, start_https};
use crate::mtd::LOOKOUT;

both_backends!(a_single_page_app_signs_in_with_msal_browser_and_reads_graph);

async fn a_single_page_app_signs_in_with_msal_browser_and_reads_graph(app: TestApp) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let driver = root.join("tests/browser");
    assert!(
        driver.join("node_modules/playwright-core").is_dir(),
        "the browser test's packages are missing: run scripts/test (it runs `npm ci` in tests/browser)"
    );
    let chromium = std::env::var("MTD_EMULATOR_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's chromium package (scripts/test does, as root)"
    );

    let t = app.create_tenant().await;
    let admin = app.admin_token(&t).await;
    create_connector(&app, &admin, LOOKOUT, json!({ "iosEnabled": true })).await;
    let upn = "adele@contoso.example";
    let user = crate::directory::create_user(&app, &admin, upn, "Adele Vance").await;
    crate::signin::grant_intune_admin(&app, &t, user["id"].as_str().unwrap()).await;
    // The app's origin has a port of the driver's choosing: loopback ports are not compared.
    let r = app
        .req(reqwest::Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
        .json(&json!({ "displayName": "Contoso admin console", "spa": { "redirectUris": ["http://localhost/"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let registered: Value = r.json().await.unwrap();
    let client_id = registered["clientId"].as_str().unwrap();

    let https = start_https(&app).await;
    let port = https.rsplit(':').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&app, &dir).await;
    let out_dir = root.join("target/test-output/browser");
    std::fs::create_dir_all(&out_dir).unwrap();
    let screenshot = out_dir.join(format!("signin-{:?}.png", app.backend).to_lowercase());
    let _ = std::fs::remove_file(&screenshot);
    let out = tokio::process::Command::new("node")
        .arg(driver.join("signin.mjs"))
        .args(["--emulator", &format!("https://localhost:{port}")])
        .arg("--ca")
        .arg(&ca)
        .args([
            "--tenant",
            &t.id,
            "--client",
            client_id,
            "--user",
            upn,
            "--password",
            "Pa55w.rd!",
        ])
        .arg("--screenshot")
        .arg(&screenshot)
        .args(["--chromium", &chromium])
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(
        seen["signInPage"]["title"], "Sign in to your account - Intune MTD emulator",
        "{seen}"
    );
    assert!(seen["app"].as_str().unwrap().starts_with("http://localhost:"), "{seen}");
    assert_eq!(seen["status"], format!("Signed in as {upn}; 1 connector(s)"), "{seen}");
    assert_eq!(seen["rows"][0][0], LOOKOUT, "{seen}");
    assert_eq!(seen["rows"][0][2], "true", "{seen}");
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    eprintln!("browser test screenshot: {}", screenshot.display());
}
