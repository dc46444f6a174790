//! The background worker on the virtual clock: grace periods and actions for noncompliance,
//! unresponsive partners, the event log, `settle`, and several replicas on one PostgreSQL.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{start_replica, test_database, Backend, Client, TestApp};
use crate::compliance::{create_connector, enroll, heartbeat, report, settle};
use crate::directory::{add_member, create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT};

both_backends!(
    grace_actions_and_an_unresponsive_partner_tell_their_story,
    changes_wait_for_the_worker,
    device_actions_fire_unless_scheduled_actions_are_off,
);

const POLICIES: &str = "/beta/deviceManagement/deviceCompliancePolicies";

async fn get(app: &TestApp, path: &str) -> Value {
    let r = app.req(Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn grace_actions_and_an_unresponsive_partner_tell_their_story(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "pat@contoso.example", "Pat Lee").await;
    let manager = create_user(&app, &token, "it@contoso.example", "IT Desk").await;
    let group = create_group(&app, &token, "Field staff").await;
    let gid = group["id"].as_str().unwrap();
    add_member(&app, &token, gid, &format!("users/{}", user["id"].as_str().unwrap())).await;
    let cc = create_group(&app, &token, "IT").await;
    let cc_id = cc["id"].as_str().unwrap();
    add_member(
        &app,
        &token,
        cc_id,
        &format!("users/{}", manager["id"].as_str().unwrap()),
    )
    .await;
    let phone = enroll(&app, &t, json!({ "deviceName": "pat-iphone", "operatingSystem": "iOS", "osVersion": "17.5", "userPrincipalName": "pat@contoso.example" })).await;
    let did = phone["id"].as_str().unwrap();

    // An email template for the notification action.
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/notificationMessageTemplates", &token)
        .json(&json!({ "displayName": "MTD warning", "defaultLocale": "en-us", "localizedNotificationMessages": [
            { "locale": "en-us", "isDefault": true, "subject": "{{DeviceName}} is at risk", "messageTemplate": "Hello {{UserName}}, open the MTD app on {{DeviceName}}." }
        ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let template = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    // Connector with a 3-day threshold; the partner heartbeats.
    create_connector(
        &app,
        &token,
        LOOKOUT,
        json!({ "iosEnabled": true, "partnerUnresponsivenessThresholdInDays": 3 }),
    )
    .await;
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    heartbeat(&app, &partner).await;
    settle(&app, &t).await;

    // Requires Low; email after 24 h, block after 48 h, a push at once.
    let r = app
        .graph(Method::POST, POLICIES, &token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "iOS low",
            "deviceThreatProtectionEnabled": true,
            "deviceThreatProtectionRequiredSecurityLevel": "low",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 48 },
                { "actionType": "notification", "gracePeriodHours": 24, "notificationTemplateId": template, "notificationMessageCCList": [cc_id] },
                { "actionType": "pushNotification", "gracePeriodHours": 0 }
            ]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let pid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = app
        .graph(Method::POST, &format!("{POLICIES}/{pid}/assign"), &token)
        .json(&json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = settle(&app, &t).await;
    assert_eq!(s["devicesEvaluated"], 1, "{s}");

    let state = |app: &TestApp, token: &str| {
        let path = format!("/v1.0/deviceManagement/managedDevices/{did}");
        let (app_base, http, token) = (app.base.clone(), app.http.clone(), token.to_string());
        async move {
            let d: Value = http
                .get(format!("{app_base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            d["complianceState"].as_str().unwrap().to_string()
        }
    };
    let outbox = |app: &TestApp| {
        let (base, http, tid) = (app.base.clone(), app.http.clone(), t.id.clone());
        async move {
            let body: Value = http
                .get(format!("{base}/_emulator/tenants/{tid}/notifications"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["value"].as_array().unwrap().clone()
        }
    };

    // High: in grace, the push goes at once (within the report's request).
    report(&app, &t, &partner, did, "high").await;
    assert_eq!(state(&app, &token).await, "inGracePeriod");
    let sent = outbox(&app).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["kind"], "push");

    // 23 hours: nothing more. 24 hours: one email, to Pat, CC IT.
    app.advance_clock(&t.id, "PT23H").await;
    settle(&app, &t).await;
    assert_eq!(outbox(&app).await.len(), 1);
    app.advance_clock(&t.id, "PT1H").await;
    let s = settle(&app, &t).await;
    assert_eq!(s["actionsFired"], 1, "{s}");
    let sent = outbox(&app).await;
    assert_eq!(sent.len(), 2);
    let email = &sent[1];
    assert_eq!(email["kind"], "email");
    assert_eq!(email["to"], json!(["pat@contoso.example"]));
    assert_eq!(email["cc"], json!(["it@contoso.example"]));
    assert_eq!(email["subject"], "pat-iphone is at risk");
    assert_eq!(email["body"], "Hello Pat Lee, open the MTD app on pat-iphone.");
    let token = app.admin_token(&t).await;
    assert_eq!(state(&app, &token).await, "inGracePeriod");
    // Settling again fires nothing twice.
    let s = settle(&app, &t).await;
    assert_eq!(s["actionsFired"], 0, "{s}");

    // 48 hours: noncompliant.
    app.advance_clock(&t.id, "PT24H").await;
    settle(&app, &t).await;
    let token = app.admin_token(&t).await;
    assert_eq!(state(&app, &token).await, "noncompliant");

    // Four days without a heartbeat: unresponsive, its data ignored, compliant again.
    app.advance_clock(&t.id, "P4D").await;
    let s = settle(&app, &t).await;
    assert_eq!(s["partnerStateChanges"], 1, "{s}");
    let token = app.admin_token(&t).await;
    assert_eq!(state(&app, &token).await, "compliant");
    assert_eq!(outbox(&app).await.len(), 2);

    // The event log, in order.
    let log = get(&app, &format!("/_emulator/tenants/{}/events", t.id)).await;
    let story: Vec<String> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "complianceStateChanged" => format!(
                "device {} -> {}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            ),
            "partnerStateChanged" => format!("partner {}", e["to"].as_str().unwrap()),
            "actionFired" => format!("action {}", e["actionType"].as_str().unwrap()),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        story,
        [
            "device unknown -> compliant",
            // The heartbeat came before the worker saw the connector not set up.
            "partner enabled",
            "device compliant -> inGracePeriod",
            "action pushNotification",
            "action notification",
            "device inGracePeriod -> noncompliant",
            "partner unresponsive",
            "device noncompliant -> compliant",
        ],
        "{log}"
    );
    let first = &log["value"][0];
    assert!(first["cause"].as_str().unwrap().starts_with("request "), "{first}");
    assert!(first["virtualDateTime"].is_string() && first["wallDateTime"].is_string());
    let unresponsive = &log["value"][6];
    assert!(
        unresponsive["cause"].as_str().unwrap().starts_with("settle "),
        "{unresponsive}"
    );
    // Filters and paging.
    let actions = get(
        &app,
        &format!("/_emulator/tenants/{}/events?kind=actionFired&deviceId={did}", t.id),
    )
    .await;
    assert_eq!(actions["value"].as_array().unwrap().len(), 2);
    let partner_log = get(
        &app,
        &format!("/_emulator/tenants/{}/events?connectorId={LOOKOUT}", t.id),
    )
    .await;
    assert_eq!(partner_log["value"].as_array().unwrap().len(), 2);
    let page = get(&app, &format!("/_emulator/tenants/{}/events?$top=4", t.id)).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 4);
    let next = page["@odata.nextLink"].as_str().unwrap();
    let rest: Value = app.http.get(next).send().await.unwrap().json().await.unwrap();
    assert_eq!(rest["value"].as_array().unwrap().len(), 4);
    assert_eq!(rest["value"][0], log["value"][4]);
    let r = app
        .req(
            Method::GET,
            &format!("/_emulator/tenants/{}/events?kind=everything", t.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn changes_wait_for_the_worker(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let d = enroll(
        &app,
        &t,
        json!({ "deviceName": "w", "operatingSystem": "Windows", "osVersion": "10.0.19045", "ownerType": "company" }),
    )
    .await;
    let did = d["id"].as_str().unwrap();
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "secureByDefault": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let path = format!("/v1.0/deviceManagement/managedDevices/{did}");
    let before: Value = app
        .graph(Method::GET, &path, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["complianceState"], "compliant", "queued, not applied yet");
    let s = settle(&app, &t).await;
    assert_eq!(
        (s["devicesEvaluated"].as_i64(), s["complianceStateChanges"].as_i64()),
        (Some(1), Some(1)),
        "{s}"
    );
    let after: Value = app
        .graph(Method::GET, &path, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["complianceState"], "noncompliant");
    let s = settle(&app, &t).await;
    assert_eq!(s["devicesEvaluated"], 0, "nothing left: {s}");
}

async fn device_actions_fire_unless_scheduled_actions_are_off(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let d = enroll(
        &app,
        &t,
        json!({ "deviceName": "old", "operatingSystem": "iOS", "osVersion": "15.0", "ownerType": "company" }),
    )
    .await;
    let did = d["id"].as_str().unwrap();
    let r = app
        .graph(Method::POST, POLICIES, &token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "iOS 16+",
            "osMinimumVersion": "16.0",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 0 },
                { "actionType": "retire", "gracePeriodHours": 2 },
                { "actionType": "removeResourceAccessProfiles", "gracePeriodHours": 1 }
            ]}]
        }))
        .send()
        .await
        .unwrap();
    let pid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = app
        .graph(Method::POST, &format!("{POLICIES}/{pid}/assign"), &token)
        .json(
            &json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // With isScheduledActionEnabled off, time passes and nothing but the state changes.
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "isScheduledActionEnabled": false } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    settle(&app, &t).await;
    app.advance_clock(&t.id, "PT3H").await;
    let s = settle(&app, &t).await;
    assert_eq!(s["actionsFired"], 0, "{s}");
    let token = app.admin_token(&t).await;
    let path = format!("/beta/deviceManagement/managedDevices/{did}");
    let device: Value = app
        .graph(Method::GET, &path, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(device["complianceState"], "noncompliant");
    assert_eq!(device["managementState"], "managed");
    // Turned back on, the actions due fire at the next pass.
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "isScheduledActionEnabled": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let s = settle(&app, &t).await;
    assert_eq!(s["actionsFired"], 2, "{s}");
    let device: Value = app
        .graph(Method::GET, &path, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(device["managementState"], "retirePending");
    let names: Vec<&str> = device["deviceActionResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actionName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"retire") && names.contains(&"removeResourceAccessProfiles"),
        "{names:?}"
    );

    // Bad input to the logs and to settle.
    for (path, status) in [
        (
            format!("/_emulator/tenants/{}/notifications?$filter=kind eq 'push'", t.id),
            400,
        ),
        (format!("/_emulator/tenants/{}/events?$skiptoken=nonsense", t.id), 400),
        (
            "/_emulator/tenants/00000000-0000-4000-8000-000000000000/events".to_string(),
            404,
        ),
    ] {
        let r = app.req(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let r = app
        .req(
            Method::POST,
            "/_emulator/tenants/00000000-0000-4000-8000-000000000000/settle",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fire_each_action_exactly_once() {
    let db = test_database(Backend::Postgres).await;
    // Migrate once before the replicas race to.
    crate::common::open_store(&db).await;
    let a = start_replica(&db.url, &["--worker-tick-ms", "20"], None).await;
    let b = start_replica(&db.url, &["--worker-tick-ms", "20"], None).await;
    let c = Client::new(&a).await;
    let (http, tid, token) = (c.http.clone(), c.tenant.clone(), c.token.clone());
    let post = |base: &str, path: &str, body: Value| http.post(format!("{base}{path}")).json(&body).send();
    let graph =
        |base: &str, method: Method, path: &str| http.request(method, format!("{base}{path}")).bearer_auth(&token);

    // 30 devices of a user group; a policy with three timed actions.
    let group: Value = graph(&a.base, Method::POST, "/v1.0/groups")
        .json(&json!({ "displayName": "All", "mailEnabled": false, "mailNickname": "all", "securityEnabled": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = group["id"].as_str().unwrap().to_string();
    let mut devices = Vec::new();
    for i in 0..30 {
        let upn = format!("u{i}@contoso.example");
        let u: Value = graph(&b.base, Method::POST, "/v1.0/users")
            .json(&crate::directory::user_body(&upn, &format!("User {i}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = graph(&a.base, Method::POST, &format!("/v1.0/groups/{gid}/members/$ref"))
            .json(&json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", u["id"].as_str().unwrap()) }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        devices.push(json!({ "deviceName": format!("d{i}"), "operatingSystem": "iOS", "osVersion": "17.0", "userPrincipalName": upn }));
    }
    let enrolled: Value = post(
        &b.base,
        &format!("/_emulator/tenants/{tid}/devices"),
        Value::Array(devices),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ids: Vec<String> = enrolled["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let r = graph(
        &a.base,
        Method::POST,
        "/beta/deviceManagement/mobileThreatDefenseConnectors",
    )
    .json(&json!({ "id": LOOKOUT, "iosEnabled": true }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let p: Value = graph(&a.base, Method::POST, POLICIES)
        .json(&json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "p",
            "deviceThreatProtectionEnabled": true,
            "deviceThreatProtectionRequiredSecurityLevel": "secured",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 3 },
                { "actionType": "pushNotification", "gracePeriodHours": 1 },
                { "actionType": "remoteLock", "gracePeriodHours": 2 }
            ]}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = p["id"].as_str().unwrap();
    let r = graph(&b.base, Method::POST, &format!("{POLICIES}/{pid}/assign"))
        .json(&json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The partner reports every device high, half through each replica.
    let app: Value = post(
        &a.base,
        &format!("/_emulator/tenants/{tid}/apps"),
        json!({ "displayName": "Lookout", "kind": "partner", "connectorId": LOOKOUT }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ptok: Value = http
        .post(format!("{}/{tid}/oauth2/v2.0/token", a.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app["clientId"].as_str().unwrap()),
            ("client_secret", app["clientSecret"].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ptok = ptok["access_token"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{}/partner/v1/connector/heartbeat", a.base))
        .bearer_auth(&ptok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let clock: Value = http
        .get(format!("{}/_emulator/tenants/{tid}/clock", a.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let r = http
            .post(format!("{base}/partner/v1/deviceThreatStates"))
            .bearer_auth(&ptok)
            .json(&json!({ "value": [{ "deviceId": id, "threatLevel": "high", "reportedDateTime": clock["now"] }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Past every action, in steps; both replicas' workers race, then both settle.
    for step in ["PT1H", "PT1H", "PT2H"] {
        let r = post(
            &b.base,
            &format!("/_emulator/tenants/{tid}/clock"),
            json!({ "advanceBy": step }),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let (x, y) = tokio::join!(
            post(&a.base, &format!("/_emulator/tenants/{tid}/settle"), json!({})),
            post(&b.base, &format!("/_emulator/tenants/{tid}/settle"), json!({}))
        );
        assert_eq!((x.unwrap().status().as_u16(), y.unwrap().status().as_u16()), (200, 200));
    }

    let mut fired = Vec::new();
    let mut next = Some(format!(
        "{}/_emulator/tenants/{tid}/events?kind=actionFired&$top=1000",
        a.base
    ));
    while let Some(url) = next {
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        for e in page["value"].as_array().unwrap() {
            fired.push((
                e["deviceId"].as_str().unwrap().to_string(),
                e["actionType"].as_str().unwrap().to_string(),
            ));
        }
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(fired.len(), 60, "each device: one push and one lock");
    let mut unique = fired.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 60, "no action fired twice");
    let outbox: Value = http
        .get(format!("{}/_emulator/tenants/{tid}/notifications?$top=1000", b.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outbox["value"].as_array().unwrap().len(), 30, "one push per device");
    // Tokens live on the tenant's clock: four hours later a fresh one is needed.
    let fresh = c.app_token(&c.bootstrap.0, &c.bootstrap.1).await;
    for id in &ids {
        let d: Value = http
            .get(format!("{}/v1.0/deviceManagement/managedDevices/{id}", b.base))
            .bearer_auth(&fresh)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["complianceState"], "noncompliant");
        let locks = d["deviceActionResults"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["actionName"] == "remoteLock")
            .count();
        assert_eq!(locks, 1);
    }
    drop((a.child, b.child));
}
