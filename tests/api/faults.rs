//! Fault rules per tenant (`/_emulator/tenants/{tid}/faults`): errors in Graph's envelope, latency
//! and dropped connections, matched by surface, method, path template and app, fired by count
//! and by a seeded probability; logged, named in a header, and gone with the tenant's reset.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};

both_backends!(
    a_rule_fails_exactly_the_next_two_gets_of_managed_devices,
    a_seeded_rule_fails_the_same_requests_on_every_run,
    a_connection_dropped_after_commit_keeps_the_partners_reports,
    rules_are_checked_and_go_with_the_tenants_reset,
);

const DEVICES: &str = "/v1.0/deviceManagement/managedDevices";

pub(crate) async fn add_rule(app: &TestApp, t: &Tenant, rule: Value) -> Value {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/faults", t.id))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{rule}");
    r.json().await.unwrap()
}

async fn rule_state(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let r = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/faults/{id}", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn patch_rule(app: &TestApp, t: &Tenant, id: &str, patch: Value) -> reqwest::Response {
    app.req(Method::PATCH, &format!("/_emulator/tenants/{}/faults/{id}", t.id))
        .json(&patch)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.graph(Method::GET, path, token).send().await.unwrap()
}

async fn a_rule_fails_exactly_the_next_two_gets_of_managed_devices(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let rule = add_rule(
        &app,
        &t,
        json!({
            "displayName": "two 503s",
            "match": { "method": "GET", "path": "/deviceManagement/managedDevices" },
            "status": 503,
            "retryAfterSeconds": 7,
            "count": 2,
        }),
    )
    .await;
    let id = rule["id"].as_str().unwrap().to_string();
    assert_eq!(
        (rule["probability"].as_f64(), rule["remaining"].as_i64()),
        (Some(1.0), Some(2))
    );

    // Another route and another method do not match.
    assert_eq!(
        get(&app, &token, "/v1.0/deviceManagement/mobileThreatDefenseConnectors")
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&app, &token, &format!("{DEVICES}/0b7e0000-0000-4000-8000-000000000000"))
            .await
            .status(),
        404
    );

    for _ in 0..2 {
        let r = get(&app, &token, DEVICES).await;
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(r.headers()["x-emulator-rule"], id.as_str());
        assert_error(r, 503, "serviceNotAvailable").await;
    }
    for _ in 0..2 {
        let r = get(&app, &token, DEVICES).await;
        assert_eq!(r.status(), 200, "the rule has fired its count");
        assert!(r.headers().get("x-emulator-rule").is_none());
    }
    let state = rule_state(&app, &t, &id).await;
    assert_eq!(
        (
            state["matched"].as_i64(),
            state["fired"].as_i64(),
            state["remaining"].as_i64()
        ),
        (Some(4), Some(2), Some(0))
    );

    let events = app.events(&t, "requestFaulted").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["ruleId"], id.as_str());
    assert_eq!(events[0]["effect"], "status:503");
    assert_eq!(events[0]["route"], "/v1.0/deviceManagement/managedDevices");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "faulted_requests_total{{tenant=\"{}\",rule=\"{id}\",bucket=\"devices\"}} 2",
            t.id
        )),
        "{metrics}"
    );

    // Patched, its counters start afresh: it is armed again, now for one 500 in Intune's words.
    let r = patch_rule(
        &app,
        &t,
        &id,
        json!({ "status": 500, "count": 1, "retryAfterSeconds": null }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(&app, &token, DEVICES).await;
    assert!(r.headers().get("retry-after").is_none());
    let message = assert_error(r, 500, "InternalServerError").await;
    assert!(
        message.contains("\"_version\": 3") && message.contains("An internal server error has occurred"),
        "{message}"
    );
    assert_eq!(get(&app, &token, DEVICES).await.status(), 200);

    // Latency, for one app only: the rules are tried in order, the first that fires decides.
    let (other_id, other_secret) = app
        .register_app(&t.id, &["DeviceManagementManagedDevices.Read.All"])
        .await;
    let other = app.token(&t.id, &other_id, &other_secret).await;
    let slow = add_rule(
        &app,
        &t,
        json!({ "match": { "appId": other_id, "surface": "graph" }, "latency": { "fixedMs": 300 }, "ruleHeader": "x-slow" }),
    )
    .await;
    let started = Instant::now();
    let r = get(&app, &token, DEVICES).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-slow").is_none(), "another app is not slowed");
    let started_other = Instant::now();
    let r = get(&app, &other, DEVICES).await;
    assert_eq!(r.status(), 200);
    assert!(started_other.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.headers()["x-slow"], slow["id"].as_str().unwrap());
    assert!(started.elapsed() >= Duration::from_millis(300));
    let last = app.events(&t, "requestFaulted").await.pop().unwrap();
    assert_eq!(
        (last["effect"].as_str(), last["latencyMs"].as_i64()),
        (Some("latency"), Some(300))
    );
}

/// Forty GETs' statuses.
async fn run(app: &TestApp, token: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..40 {
        out.push(get(app, token, DEVICES).await.status().as_u16());
    }
    out
}

async fn a_seeded_rule_fails_the_same_requests_on_every_run(app: TestApp) {
    let rule = json!({ "match": { "path": "/deviceManagement/managedDevices" }, "status": 504, "probability": 0.3, "seed": 20261204 });
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let created = add_rule(&app, &t, rule.clone()).await;
    let first = run(&app, &token).await;
    let failed = first.iter().filter(|s| **s == 504).count();
    assert!((4..=20).contains(&failed), "30% of 40: {first:?}");
    assert!(first.iter().all(|s| *s == 504 || *s == 200));

    // The same rule again (its counters afresh), and the same rule in another tenant.
    let id = created["id"].as_str().unwrap();
    assert_eq!(patch_rule(&app, &t, id, json!({})).await.status(), 200);
    assert_eq!(run(&app, &token).await, first);
    let other = app.create_tenant().await;
    let other_token = app.admin_token(&other).await;
    add_rule(&app, &other, rule).await;
    assert_eq!(run(&app, &other_token).await, first);

    // Another seed, another sequence.
    assert_eq!(patch_rule(&app, &t, id, json!({ "seed": 7 })).await.status(), 200);
    assert_ne!(run(&app, &token).await, first);
}

async fn a_connection_dropped_after_commit_keeps_the_partners_reports(app: TestApp) {
    use crate::mtd::{enroll, partner, report, setup_connector, threat_state};
    let t = app.create_tenant().await;
    let devices = enroll(
        &app,
        &t,
        json!([
            { "deviceName": "a", "operatingSystem": "iOS", "osVersion": "17.1" },
            { "deviceName": "b", "operatingSystem": "iOS", "osVersion": "17.1" },
        ]),
    )
    .await;
    let ids: Vec<String> = devices.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    let (graph_tok, partner_tok) = setup_connector(&app, &t, json!({ "iosEnabled": true })).await;
    let batch = |level: &str, at: &str| json!({ "value": ids.iter().map(|id| json!({ "deviceId": id, "threatLevel": level, "reportedDateTime": at })).collect::<Vec<_>>() });
    let send = |body: Value| {
        let partner_tok = partner_tok.clone();
        let app = &app;
        async move {
            partner(app, Method::POST, "/partner/v1/deviceThreatStates", &partner_tok)
                .await
                .json(&body)
                .send()
                .await
        }
    };

    // Dropped once the request was read: nothing is stored, the client gets no answer.
    add_rule(
        &app,
        &t,
        json!({ "match": { "surface": "partner", "method": "POST", "path": "/partner/v1/deviceThreatStates" }, "disconnect": "afterRead", "count": 1 }),
    )
    .await;
    assert!(send(batch("high", "2026-01-01T10:00:00Z")).await.is_err(), "no answer");
    assert_eq!(threat_state(&app, &graph_tok, &ids[0]).await, "unknown");

    // Dropped after commit: stored, though the client got no answer; the replay is stale.
    add_rule(
        &app,
        &t,
        json!({ "match": { "surface": "partner", "path": "/partner/v1/deviceThreatStates" }, "disconnect": "afterCommit", "count": 1 }),
    )
    .await;
    assert!(send(batch("high", "2026-01-01T11:00:00Z")).await.is_err(), "no answer");
    for id in &ids {
        assert_eq!(threat_state(&app, &graph_tok, id).await, "highSeverity");
    }
    let replay = report(
        &app,
        &partner_tok,
        batch("high", "2026-01-01T11:00:00Z")["value"].clone(),
    )
    .await;
    let statuses: Vec<&str> = replay["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["stale", "stale"]);
    let effects: Vec<Value> = app
        .events(&t, "requestFaulted")
        .await
        .iter()
        .map(|e| e["effect"].clone())
        .collect();
    assert_eq!(
        effects,
        [json!("disconnect:afterRead"), json!("disconnect:afterCommit")]
    );
}

async fn rules_are_checked_and_go_with_the_tenants_reset(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let url = format!("/_emulator/tenants/{}/faults", t.id);
    for (bad, why) in [
        (json!({ "status": 418 }), "a status no rule answers with"),
        (
            json!({ "status": 503, "disconnect": "afterRead" }),
            "a status and a dropped connection",
        ),
        (json!({ "probability": 1.5 }), "a probability over 1"),
        (json!({ "count": 0 }), "a count of 0"),
        (
            json!({ "latency": { "minMs": 10 } }),
            "a uniform latency without its maximum",
        ),
        (
            json!({ "match": { "path": "deviceManagement" } }),
            "a path that is not a template",
        ),
        (json!({ "match": { "verb": "GET" } }), "an unknown condition"),
        (
            json!({ "startDateTime": "2026-02-01T00:00:00Z", "endDateTime": "2026-01-01T00:00:00Z" }),
            "a window ending before it starts",
        ),
        (json!([]), "not an object"),
    ] {
        let r = app.req(Method::POST, &url).json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{why}");
        assert_error(r, 400, "BadRequest").await;
    }
    let r = app
        .req(Method::GET, &format!("{url}/0b7e0000-0000-4000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;

    // A window on the tenant's clock: active from a day on.
    let now = app.tenant_now(&t.id).await;
    let start = (now + chrono::Duration::days(1)).to_rfc3339();
    add_rule(&app, &t, json!({ "status": 502, "startDateTime": start })).await;
    assert_eq!(get(&app, &token, DEVICES).await.status(), 200);
    app.advance_clock(&t.id, "P1D").await;
    let token = app.admin_token(&t).await;
    let r = get(&app, &token, DEVICES).await;
    assert_error(r, 502, "UnknownError").await;
    let listed: Value = app.req(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);

    // The reset takes the rules away.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/reset", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Value = app.req(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["value"], json!([]));
    let token = app.admin_token(&t).await;
    assert_eq!(get(&app, &token, DEVICES).await.status(), 200);

    // DELETE of one rule, and of all.
    let a = add_rule(&app, &t, json!({ "status": 500 })).await;
    add_rule(&app, &t, json!({ "status": 504 })).await;
    let r = app
        .req(Method::DELETE, &format!("{url}/{}", a["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_error(get(&app, &token, DEVICES).await, 504, "UnknownError").await;
    assert_eq!(app.req(Method::DELETE, &url).send().await.unwrap().status(), 204);
    assert_eq!(get(&app, &token, DEVICES).await.status(), 200);
}
