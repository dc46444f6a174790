//! The official Python SDKs (msgraph-sdk, msgraph-beta-sdk) against the real server. The
//! interpreter comes from `MTD_EMULATOR_TEST_PYTHON`, else the project's `.venv`, which
//! `scripts/test` prepares.

use std::path::PathBuf;

use crate::both_backends;
use crate::common::TestApp;

both_backends!(
    python_sdks_read_and_patch_device_management,
    python_sdks_page_devices_and_manage_groups,
    python_sdks_manage_mtd_connectors,
    python_sdks_create_assign_and_read_compliance_policies,
    python_sdks_read_rbac_with_a_delegated_token,
    python_beta_sdk_creates_and_assigns_app_protection_and_reads_registrations,
    python_sdks_export_reports_and_read_report_streams,
    python_sdk_retries_through_a_503_rule_and_a_429_with_retry_after,
);

pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("MTD_EMULATOR_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(venv.exists(), "the SDK tests need Python with msgraph-sdk and msgraph-beta-sdk: run scripts/test, or set MTD_EMULATOR_TEST_PYTHON");
    venv
}

pub async fn run_sdk_script(script: &str, args: &[&str]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk").join(script);
    let output = tokio::process::Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .await
        .expect("run python");
    assert!(
        output.status.success(),
        "{script} failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn python_sdks_read_and_patch_device_management(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    run_sdk_script("device_management.py", &[&app.base, &token]).await;
}

async fn python_sdks_page_devices_and_manage_groups(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let devices: Vec<serde_json::Value> = (0..7)
        .map(|i| serde_json::json!({ "deviceName": format!("d{i}"), "operatingSystem": if i < 5 { "iOS" } else { "Android" }, "osVersion": "17.0" }))
        .collect();
    let r = app
        .req(reqwest::Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&devices)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let ios: Vec<&str> = created["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["operatingSystem"] == "iOS")
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    run_sdk_script("directory_devices.py", &[&app.base, &token, &ios.join(",")]).await;
}

async fn python_sdks_manage_mtd_connectors(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    run_sdk_script("connectors.py", &[&app.base, &token]).await;
}

async fn python_sdks_create_assign_and_read_compliance_policies(app: TestApp) {
    use crate::compliance::{create_connector, enroll, heartbeat, report};
    use crate::directory::{add_member, create_group, create_user};
    use crate::mtd::{partner_token, LOOKOUT};
    use serde_json::json;

    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "sam@contoso.example", "Sam").await;
    let group = create_group(&app, &token, "MTD users").await;
    let gid = group["id"].as_str().unwrap();
    add_member(&app, &token, gid, &format!("users/{}", user["id"].as_str().unwrap())).await;
    let device = enroll(
        &app,
        &t,
        json!({ "deviceName": "sam-iphone", "operatingSystem": "iOS", "osVersion": "17.2", "userPrincipalName": "sam@contoso.example" }),
    )
    .await;
    let did = device["id"].as_str().unwrap();
    create_connector(&app, &token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    heartbeat(&app, &partner).await;
    report(&app, &t, &partner, did, "high").await;
    run_sdk_script("compliance.py", &[&app.base, &token, &t.id, gid, did]).await;
}

async fn python_sdks_export_reports_and_read_report_streams(app: TestApp) {
    use crate::compliance::{report, settle};
    use crate::reports::phones_under_a_threat_policy;

    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (pid, ids, partner) = phones_under_a_threat_policy(&app, &t, &token, &["megan-iphone", "megan-spare"]).await;
    report(&app, &t, &partner, &ids[0], "high").await;
    report(&app, &t, &partner, &ids[1], "secured").await;
    settle(&app, &t).await;
    run_sdk_script("reports.py", &[&app.base, &token, &t.id, &pid, &ids[0], &ids[1]]).await;
}

async fn python_sdks_read_rbac_with_a_delegated_token(app: TestApp) {
    use crate::directory::{add_member, create_group, create_user};
    use crate::rbac::{assign_role, user_token, ESM};

    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "ines@contoso.example", "Ines").await;
    let group = create_group(&app, &token, "Security admins").await;
    let gid = group["id"].as_str().unwrap();
    let r = add_member(&app, &token, gid, &format!("users/{}", user["id"].as_str().unwrap())).await;
    assert_eq!(r.status(), 204);
    assign_role(&app, &token, ESM, &[gid]).await;
    let (client, _) = app.register_app(&t.id, &[]).await;
    let delegated = user_token(
        &app,
        &t.id,
        &client,
        "ines@contoso.example",
        "https://graph.microsoft.com/DeviceManagementRBAC.ReadWrite.All",
    )
    .await;
    run_sdk_script("rbac.py", &[&app.base, &delegated]).await;
}

/// The beta SDK creates and assigns the policy and reads the registrations; the policy it made
/// then blocks the user's Outlook when the partner reports a medium threat.
async fn python_beta_sdk_creates_and_assigns_app_protection_and_reads_registrations(app: TestApp) {
    use crate::directory::{add_member, create_group, create_user};
    use crate::mtd::{partner_token, LOOKOUT};
    use reqwest::Method;
    use serde_json::{json, Value};

    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "nestor@contoso.example", "Nestor").await;
    let uid = user["id"].as_str().unwrap();
    let group = create_group(&app, &token, "Outlook users").await;
    let gid = group["id"].as_str().unwrap();
    add_member(&app, &token, gid, &format!("users/{uid}")).await;
    let device = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/appRegistrations", t.id))
        .json(&json!({ "userId": uid, "azureADDeviceId": device, "platform": "iOS", "appIdentifier": "com.microsoft.Office.Outlook", "platformVersion": "17.5", "deviceName": "Nestor's iPhone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let registration: Value = r.json().await.unwrap();
    run_sdk_script("app_protection.py", &[&app.base, &token, gid, uid]).await;

    let r = app
        .graph(
            Method::POST,
            "/beta/deviceManagement/mobileThreatDefenseConnectors",
            &token,
        )
        .json(&json!({ "id": LOOKOUT, "iosMobileApplicationManagementEnabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    let r = app
        .req(Method::POST, "/partner/v1/connector/heartbeat")
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let clock: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/clock", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = app
        .req(Method::POST, "/partner/v1/deviceThreatStates")
        .bearer_auth(&partner)
        .json(&json!({ "value": [{ "deviceId": device, "threatLevel": "medium", "reportedDateTime": clock["now"] }] }))
        .send()
        .await
        .unwrap();
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["value"][0]["status"], "accepted", "{outcome}");
    let r = app
        .req(
            Method::POST,
            &format!(
                "/_emulator/tenants/{}/appRegistrations/{}/checkIn",
                t.id,
                registration["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    let told: Value = r.json().await.unwrap();
    assert_eq!(told["access"], "blocked", "{told}");
    assert_eq!(told["policies"][0]["displayName"], "Outlook on iOS (SDK)");
}

/// Kiota's retry handler, as the SDK sets it up by default, against a fault rule's 503 and the
/// devices bucket's 429. An observing rule (no effect) records what each retry carried.
async fn python_sdk_retries_through_a_503_rule_and_a_429_with_retry_after(app: TestApp) {
    use crate::faults::add_rule;
    use crate::throttling::put_limits;
    use serde_json::json;

    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let devices = json!({ "method": "GET", "path": "/deviceManagement/managedDevices" });
    let fail = add_rule(
        &app,
        &t,
        json!({ "match": devices, "status": 503, "retryAfterSeconds": 1, "count": 1 }),
    )
    .await;
    let observe = add_rule(&app, &t, json!({ "match": devices })).await;
    run_sdk_script("retries.py", &[&app.base, &token, &t.id, "fault"]).await;
    let seen: Vec<(serde_json::Value, serde_json::Value)> = app
        .events(&t, "requestFaulted")
        .await
        .iter()
        .map(|e| (e["ruleId"].clone(), e["retryAttempt"].clone()))
        .collect();
    assert_eq!(
        seen,
        [(fail["id"].clone(), json!(null)), (observe["id"].clone(), json!("1"))],
        "the 503, then the retry with Retry-Attempt: 1"
    );

    // The devices bucket allows the app one request per window of 2 s.
    put_limits(
        &app,
        &t,
        json!({
            "windowSeconds": 2,
            "buckets": { "devices": { "tenantWrites": 100, "appWrites": 100, "tenantRequests": 100, "appRequests": 1 } }
        }),
    )
    .await;
    run_sdk_script("retries.py", &[&app.base, &token, &t.id, "throttled"]).await;
    let throttled = app.events(&t, "requestThrottled").await;
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0]["retryAfterSent"], true);
    let attempts: Vec<serde_json::Value> = app
        .events(&t, "requestFaulted")
        .await
        .iter()
        .skip(2)
        .map(|e| e["retryAttempt"].clone())
        .collect();
    assert_eq!(
        attempts,
        [json!(null), json!(null), json!("1")],
        "the warm-up, the first list, then the 429's retry"
    );
}
