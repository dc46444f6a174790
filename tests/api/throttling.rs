//! Intune's throttling, switched on per tenant (`/_emulator/tenants/{tid}/limits`): the buckets'
//! documented limits per app and per tenant over windows of the tenant's clock, 429 with
//! `Retry-After` and Graph's envelope, the quirk of a 429 without `Retry-After`, the partner
//! API's own limit, the event log, and the reset.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::mtd::{partner_token, LOOKOUT};

both_backends!(
    the_devices_bucket_refuses_an_apps_2001st_request_until_the_window_passes,
    two_apps_share_the_tenants_budget,
    the_quirks_and_the_partner_limit_are_the_tenants_to_choose,
);

const DEVICES: &str = "/v1.0/deviceManagement/managedDevices?$top=1";

pub(crate) async fn put_limits(app: &TestApp, t: &Tenant, body: Value) -> Value {
    let r = app
        .req(Method::PUT, &format!("/_emulator/tenants/{}/limits", t.id))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Sends `n` GETs of the devices list with `token`, a few at a time; returns their statuses.
async fn burst(app: &TestApp, token: &str, n: usize) -> Vec<u16> {
    const CLIENTS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let http = app.http.clone();
        let url = format!("{}{DEVICES}", app.base);
        let token = token.to_string();
        let share = n / CLIENTS + usize::from(c < n % CLIENTS);
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(share);
            for _ in 0..share {
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                out.push(r.status().as_u16());
            }
            out
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all
}

/// Moves the tenant's clock to the start of its next window of `seconds` (windows are
/// multiples of their length since the epoch), so that a test's requests fall in one window
/// whatever the time of day.
async fn to_window_start(app: &TestApp, t: &Tenant, seconds: i64) {
    let now = app.tenant_now(&t.id).await;
    let next = (now.timestamp() / seconds + 1) * seconds;
    let to = chrono::DateTime::from_timestamp(next, 0).unwrap();
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/clock", t.id))
        .json(&json!({ "setTo": to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn other_app(app: &TestApp, t: &Tenant) -> String {
    let (id, secret) = app
        .register_app(&t.id, &["DeviceManagementManagedDevices.Read.All"])
        .await;
    app.token(&t.id, &id, &secret).await
}

async fn the_devices_bucket_refuses_an_apps_2001st_request_until_the_window_passes(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    // Off by default: nothing is counted.
    let r = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/limits", t.id))
        .send()
        .await
        .unwrap();
    let off: Value = r.json().await.unwrap();
    assert_eq!(off["enabled"], false);
    assert_eq!(off["buckets"]["devices"]["appRequests"], 2000, "{off}");
    // At the start of a window, so that the burst stays inside one.
    to_window_start(&app, &t, 20).await;

    let on = put_limits(&app, &t, json!({})).await;
    assert_eq!(on["enabled"], true);
    let statuses = burst(&app, &token, 2000).await;
    assert!(statuses.iter().all(|s| *s == 200), "the first 2,000 are served");
    let r = app.graph(Method::GET, DEVICES, &token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(r.headers()["x-emulator-rule"], "devices.app.requests");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["code"], "throttledRequest");
    // Other buckets are not this one's: the connectors are still served.
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let events = app.events(&t, "requestThrottled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["rule"], "devices.app.requests");
    assert_eq!(events[0]["limit"], 2000);

    // The window is the tenant's: past it, the app is served again.
    app.advance_clock(&t.id, "PT20S").await;
    let r = app.graph(Method::GET, DEVICES, &token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // The reset switches throttling off.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/reset", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/limits", t.id))
        .send()
        .await
        .unwrap();
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["enabled"], false);
}

async fn two_apps_share_the_tenants_budget(app: TestApp) {
    let t = app.create_tenant().await;
    let a = app.admin_token(&t).await;
    let b = other_app(&app, &t).await;
    let c = other_app(&app, &t).await;
    // A long window, entered at its start: the tenant's clock cannot cross it mid-test (a
    // test started a few seconds before a whole hour of the clock was served again past it).
    to_window_start(&app, &t, 3600).await;
    put_limits(&app, &t, json!({ "windowSeconds": 3600 })).await;
    let (sa, sb) = tokio::join!(burst(&app, &a, 2000), burst(&app, &b, 2000));
    assert!(sa.iter().chain(&sb).all(|s| *s == 200), "two apps, 2,000 each");
    // The tenant's 4,000 are spent: a third app, which has sent nothing, is refused.
    let r = app.graph(Method::GET, DEVICES, &c).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-emulator-rule"], "devices.tenant.requests");
    assert_error(r, 429, "TooManyRequests").await;
}

async fn the_quirks_and_the_partner_limit_are_the_tenants_to_choose(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    for bad in [
        json!({ "windowSeconds": 0 }),
        json!({ "nope": 1 }),
        json!({ "buckets": { "devices": { "appRequests": 1 } } }),
        json!({ "enabled": "yes" }),
        json!({ "ruleHeader": "bad header" }),
    ] {
        let r = app
            .req(Method::PUT, &format!("/_emulator/tenants/{}/limits", t.id))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    let tight = json!({ "tenantWrites": 10, "appWrites": 10, "tenantRequests": 2, "appRequests": 2 });
    to_window_start(&app, &t, 3600).await;
    put_limits(
        &app,
        &t,
        json!({ "windowSeconds": 3600, "omitRetryAfter": true, "ruleHeader": null,
                "buckets": { "devices": tight }, "partnerRequests": 2 }),
    )
    .await;
    assert_eq!(burst(&app, &token, 2).await, [200, 200]);
    let r = app.graph(Method::GET, DEVICES, &token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(
        r.headers().get("retry-after").is_none(),
        "Intune's quirk: no Retry-After"
    );
    assert!(r.headers().get("x-emulator-rule").is_none(), "no rule header asked for");
    let events = app.events(&t, "requestThrottled").await;
    assert_eq!(events[0]["retryAfterSent"], false);

    // The partner API counts per connector.
    crate::compliance::create_connector(&app, &token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    let heartbeat = || {
        app.req(Method::POST, "/partner/v1/connector/heartbeat")
            .bearer_auth(&partner)
            .send()
    };
    for _ in 0..2 {
        assert!(heartbeat().await.unwrap().status().is_success());
    }
    let r = heartbeat().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        app.events(&t, "requestThrottled").await.last().unwrap()["rule"],
        "partner.requests"
    );

    // Off again.
    let r = app
        .req(Method::DELETE, &format!("/_emulator/tenants/{}/limits", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(heartbeat().await.unwrap().status().is_success());
    let r = app.graph(Method::GET, DEVICES, &token).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
