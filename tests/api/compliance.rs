//! Compliance policies, their assignments and actions, the evaluation of product brief section 5
//! and every view of it: the device's state, its policy states, the policy's statuses and
//! overviews, and the explain trace.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::directory::{add_member, create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT, ZIMPERIUM};

both_backends!(
    the_seed_story_from_secured_to_high_with_grace,
    policy_writes_are_refused_as_intune_refuses_them,
    threat_policies_go_to_user_groups_only,
    policies_are_created_read_patched_expanded_and_deleted,
    assignments_and_actions_have_their_own_paths,
    targets_exclusions_and_status_views,
    missing_data_unresponsive_partners_and_tenant_settings,
    notification_templates_and_test_messages,
);

const POLICIES: &str = "/beta/deviceManagement/deviceCompliancePolicies";

fn block(hours: i64) -> Value {
    json!([{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
        { "actionType": "block", "gracePeriodHours": hours, "notificationTemplateId": "", "notificationMessageCCList": [] }
    ]}])
}

/// An iOS policy requiring at most `level`, with a block action after `grace` hours.
fn ios_threat_policy(name: &str, level: &str, grace: i64) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.iosCompliancePolicy",
        "displayName": name,
        "deviceThreatProtectionEnabled": true,
        "deviceThreatProtectionRequiredSecurityLevel": level,
        "scheduledActionsForRule": block(grace),
    })
}

pub(crate) async fn create_policy(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app
        .graph(Method::POST, POLICIES, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create policy");
    r.json().await.unwrap()
}

pub(crate) async fn assign(app: &TestApp, token: &str, policy: &str, targets: Value) -> reqwest::Response {
    let assignments: Vec<Value> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({ "target": t }))
        .collect();
    app.graph(Method::POST, &format!("{POLICIES}/{policy}/assign"), token)
        .json(&json!({ "assignments": assignments }))
        .send()
        .await
        .unwrap()
}

/// The policy `body` created and assigned to `target`; answers its id.
pub(crate) async fn assigned_policy(app: &TestApp, token: &str, body: Value, target: Value) -> String {
    let pid = create_policy(app, token, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = assign(app, token, &pid, json!([target])).await;
    assert_eq!(r.status(), 200);
    pid
}

/// An iOS policy requiring 15.0 (block at 0 h) assigned to `target`; answers its id.
pub(crate) async fn assigned_ios_15_policy(app: &TestApp, token: &str, target: Value) -> String {
    let body = json!({
        "@odata.type": "#microsoft.graph.iosCompliancePolicy",
        "displayName": "iOS 15+",
        "osMinimumVersion": "15.0",
        "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
            { "actionType": "block", "gracePeriodHours": 0 }
        ]}]
    });
    assigned_policy(app, token, body, target).await
}

fn group_target(id: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": id })
}

pub(crate) async fn enroll(app: &TestApp, t: &Tenant, body: Value) -> Value {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Runs what the worker would: queued re-evaluations and what the clock made due.
pub(crate) async fn settle(app: &TestApp, t: &Tenant) -> Value {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/settle", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Moves the tenant's clock and settles, as the worker would within a tick.
async fn advance(app: &TestApp, t: &Tenant, by: &str) -> Value {
    app.advance_clock(&t.id, by).await;
    settle(app, t).await
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.graph(Method::GET, path, token).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn device(app: &TestApp, token: &str, id: &str) -> Value {
    get_json(app, token, &format!("/v1.0/deviceManagement/managedDevices/{id}")).await
}

async fn cstate(app: &TestApp, token: &str, id: &str) -> String {
    device(app, token, id).await["complianceState"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn explain(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let r = app
        .req(
            Method::GET,
            &format!("/_emulator/tenants/{}/devices/{id}/explain", t.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn now_of(app: &TestApp, t: &Tenant) -> String {
    let r = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/clock", t.id))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["now"].as_str().unwrap().to_string()
}

/// The partner reports `level` for the device at the tenant's now.
pub(crate) async fn report(app: &TestApp, t: &Tenant, partner: &str, device: &str, level: &str) {
    let at = now_of(app, t).await;
    let r = app
        .req(Method::POST, "/partner/v1/deviceThreatStates")
        .bearer_auth(partner)
        .json(&json!({ "value": [{ "deviceId": device, "threatLevel": level, "reportedDateTime": at }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"][0]["status"], "accepted", "{body}");
}

pub(crate) async fn heartbeat(app: &TestApp, partner: &str) {
    let r = app
        .req(Method::POST, "/partner/v1/connector/heartbeat")
        .bearer_auth(partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

pub(crate) async fn create_connector(app: &TestApp, token: &str, id: &str, settings: Value) {
    let mut body = json!({ "id": id });
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let r = app
        .graph(
            Method::POST,
            "/beta/deviceManagement/mobileThreatDefenseConnectors",
            token,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// The device's state, its state for the policy and the explain verdict, which must agree.
async fn states(app: &TestApp, t: &Tenant, token: &str, device_id: &str, policy: &str) -> (String, String, Value) {
    let d = device(app, token, device_id).await;
    let states = get_json(
        app,
        token,
        &format!("/beta/deviceManagement/managedDevices/{device_id}/deviceCompliancePolicyStates"),
    )
    .await;
    let ps = states["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == policy)
        .cloned()
        .unwrap_or(Value::Null);
    let trace = explain(app, t, device_id).await;
    assert_eq!(trace["verdict"]["complianceState"], d["complianceState"], "{trace}");
    assert_eq!(trace["stored"]["agrees"], true, "{trace}");
    (
        d["complianceState"].as_str().unwrap().to_string(),
        ps["state"].as_str().unwrap_or("none").to_string(),
        json!({ "device": d, "policyState": ps, "trace": trace }),
    )
}

async fn the_seed_story_from_secured_to_high_with_grace(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let alice = create_user(&app, &token, "alice@contoso.example", "Alice Wu").await;
    let users = create_group(&app, &token, "MTD users").await;
    let gid = users["id"].as_str().unwrap();
    assert_eq!(
        add_member(&app, &token, gid, &format!("users/{}", alice["id"].as_str().unwrap()))
            .await
            .status(),
        204
    );
    let iphone = enroll(&app, &t, json!({ "deviceName": "alice-iphone", "operatingSystem": "iOS", "osVersion": "17.4", "userPrincipalName": "alice@contoso.example" })).await;
    let pixel = enroll(&app, &t, json!({ "deviceName": "alice-pixel", "operatingSystem": "Android", "osVersion": "14", "userPrincipalName": "alice@contoso.example" })).await;
    let ios_id = iphone["id"].as_str().unwrap();
    let android_id = pixel["id"].as_str().unwrap();
    assert_eq!(iphone["complianceState"], "compliant", "no policy applies yet");

    // Connector enabled for iOS and Android; the partner is set up.
    create_connector(
        &app,
        &token,
        LOOKOUT,
        json!({ "iosEnabled": true, "androidEnabled": true }),
    )
    .await;
    settle(&app, &t).await;
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    heartbeat(&app, &partner).await;
    settle(&app, &t).await;

    // A policy requiring Medium for each platform, assigned to the user group: iOS with a day
    // of grace, Android Enterprise work profile with none.
    let ios = create_policy(&app, &token, ios_threat_policy("iOS MTD", "medium", 24)).await;
    let pid = ios["id"].as_str().unwrap();
    let android = create_policy(
        &app,
        &token,
        json!({
            "@odata.type": "#microsoft.graph.androidWorkProfileCompliancePolicy",
            "displayName": "Android MTD",
            "deviceThreatProtectionEnabled": true,
            "deviceThreatProtectionRequiredSecurityLevel": "medium",
            "scheduledActionsForRule": block(0),
        }),
    )
    .await;
    let aid = android["id"].as_str().unwrap();
    for p in [pid, aid] {
        assert_eq!(assign(&app, &token, p, json!([group_target(gid)])).await.status(), 200);
        settle(&app, &t).await;
    }

    // Nothing reported yet: one connector, missing data allowed: compliant.
    let (state, pstate, all) = states(&app, &t, &token, ios_id, pid).await;
    assert_eq!((state.as_str(), pstate.as_str()), ("compliant", "compliant"), "{all}");

    for (level, expected) in [("secured", "compliant"), ("low", "compliant"), ("medium", "compliant")] {
        report(&app, &t, &partner, ios_id, level).await;
        report(&app, &t, &partner, android_id, level).await;
        let (state, pstate, all) = states(&app, &t, &token, ios_id, pid).await;
        assert_eq!(
            (state.as_str(), pstate.as_str()),
            (expected, "compliant"),
            "{level}: {all}"
        );
        let setting = &all["policyState"]["settingStates"][0];
        assert_eq!(setting["settingName"], "deviceThreatProtectionRequiredSecurityLevel");
        assert_eq!(setting["currentValue"], level);
        assert_eq!(setting["state"], "compliant");
        assert_eq!(
            all["device"]["partnerReportedThreatState"],
            Value::String(match level {
                "secured" => "secured".into(),
                other => format!("{other}Severity"),
            })
        );
        let (state, _, _) = states(&app, &t, &token, android_id, aid).await;
        assert_eq!(state, "compliant");
    }

    // High: iOS enters its day of grace; Android, with no grace, is noncompliant at once.
    let before = now_of(&app, &t).await;
    report(&app, &t, &partner, ios_id, "high").await;
    report(&app, &t, &partner, android_id, "high").await;
    let (state, pstate, all) = states(&app, &t, &token, ios_id, pid).await;
    assert_eq!(
        (state.as_str(), pstate.as_str()),
        ("inGracePeriod", "nonCompliant"),
        "{all}"
    );
    let deadline = all["device"]["complianceGracePeriodExpirationDateTime"]
        .as_str()
        .unwrap()
        .to_string();
    let start = chrono::DateTime::parse_from_rfc3339(&before).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(&deadline).unwrap();
    let grace = end - start;
    assert!(
        grace >= chrono::Duration::hours(24) && grace < chrono::Duration::hours(24) + chrono::Duration::minutes(1),
        "grace ends a day after the report: {before} -> {deadline}"
    );
    assert_eq!(all["policyState"]["settingStates"][0]["state"], "nonCompliant");
    assert_eq!(all["trace"]["policies"][0]["state"], "inGracePeriod");
    assert_eq!(
        all["trace"]["policies"][0]["gracePeriodExpirationDateTime"],
        deadline.as_str()
    );
    let (state, pstate, _) = states(&app, &t, &token, android_id, aid).await;
    assert_eq!((state.as_str(), pstate.as_str()), ("noncompliant", "nonCompliant"));

    // The policy's views agree with the device.
    // (Alice's Android phone is assigned through her but is not an iOS device: not applicable.)
    let statuses = get_json(&app, &token, &format!("{POLICIES}/{pid}/deviceStatuses")).await;
    let statuses = statuses["value"].as_array().unwrap();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    let of = |name: &str| {
        statuses
            .iter()
            .find(|s| s["deviceDisplayName"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(of("alice-pixel")["status"], "notApplicable");
    let phone = of("alice-iphone");
    assert_eq!(phone["status"], "nonCompliant");
    assert_eq!(phone["id"], format!("{pid}_{ios_id}"));
    assert_eq!(phone["complianceGracePeriodExpirationDateTime"], deadline.as_str());
    assert_eq!(phone["userPrincipalName"], "alice@contoso.example");

    // Within the grace period nothing changes; past it the device is noncompliant.
    advance(&app, &t, "PT23H").await;
    let token = app.admin_token(&t).await;
    let (state, _, _) = states(&app, &t, &token, ios_id, pid).await;
    assert_eq!(state, "inGracePeriod");
    advance(&app, &t, "PT2H").await;
    let token = app.admin_token(&t).await;
    let (state, pstate, all) = states(&app, &t, &token, ios_id, pid).await;
    assert_eq!(
        (state.as_str(), pstate.as_str()),
        ("noncompliant", "nonCompliant"),
        "{all}"
    );
    assert_eq!(
        all["device"]["complianceGracePeriodExpirationDateTime"],
        "9999-12-31T23:59:59Z"
    );

    // Back to medium ends the episode; high again starts a new one with a fresh grace period.
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    report(&app, &t, &partner, ios_id, "medium").await;
    let (state, _, _) = states(&app, &t, &token, ios_id, pid).await;
    assert_eq!(state, "compliant");
    report(&app, &t, &partner, ios_id, "high").await;
    let (state, _, all) = states(&app, &t, &token, ios_id, pid).await;
    assert_eq!(state, "inGracePeriod", "a new episode gets its own grace period: {all}");
    assert_ne!(
        all["device"]["complianceGracePeriodExpirationDateTime"],
        deadline.as_str()
    );

    // The user's view and the overviews count the same result.
    let users = get_json(&app, &token, &format!("{POLICIES}/{pid}/userStatuses")).await;
    assert_eq!(users["value"][0]["status"], "nonCompliant");
    assert_eq!(users["value"][0]["devicesCount"], 2);
    let overview = get_json(&app, &token, &format!("{POLICIES}/{pid}/deviceStatusOverview")).await;
    assert_eq!(overview["failedCount"], 1, "{overview}");
    assert_eq!(overview["notApplicableCount"], 1);
    assert_eq!(overview["successCount"], 0);
    assert_eq!(overview["configurationVersion"], 2, "assign bumped the version");
}

async fn policy_writes_are_refused_as_intune_refuses_them(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    const ONE_BLOCK: &str = "Compliance policy must have one and only one block scheduled action";
    let mut no_actions = ios_threat_policy("p", "low", 0);
    no_actions.as_object_mut().unwrap().remove("scheduledActionsForRule");
    let mut notification_only = ios_threat_policy("p", "low", 0);
    notification_only["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["actionType"] =
        json!("notification");
    let mut two_blocks = ios_threat_policy("p", "low", 0);
    two_blocks["scheduledActionsForRule"][0]["scheduledActionConfigurations"] =
        json!([{ "actionType": "block" }, { "actionType": "block", "gracePeriodHours": 4 }]);
    for body in [no_actions, notification_only, two_blocks] {
        let r = app
            .graph(Method::POST, POLICIES, &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(assert_error(r, 400, "BadRequest").await, ONE_BLOCK);
    }
    let mut too_long = ios_threat_policy("p", "low", 0);
    too_long["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["gracePeriodHours"] = json!(8761);
    let r = app
        .graph(Method::POST, POLICIES, &token)
        .json(&too_long)
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 400, "BadRequest").await.contains("0 to 8760"));

    let cases = [
        (
            json!({ "displayName": "no type", "scheduledActionsForRule": block(0) }),
            "abstract",
        ),
        (
            json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "p", "deviceThreatProtectionRequiredSecurityLevel": "severe", "scheduledActionsForRule": block(0) }),
            "deviceThreatProtectionLevel",
        ),
        (
            json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "p", "passcodeRequired": "yes", "scheduledActionsForRule": block(0) }),
            "passcodeRequired",
        ),
        (
            json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "p", "androidOnly": true, "scheduledActionsForRule": block(0) }),
            "androidOnly",
        ),
        (
            json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "scheduledActionsForRule": block(0) }),
            "displayName",
        ),
    ];
    for (body, expected) in cases {
        let r = app
            .graph(Method::POST, POLICIES, &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains(expected), "{message}");
    }
    // Android Enterprise fully managed policies are a beta type.
    let owner = json!({ "@odata.type": "#microsoft.graph.androidDeviceOwnerCompliancePolicy", "displayName": "COPE", "scheduledActionsForRule": block(0) });
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/deviceCompliancePolicies", &token)
        .json(&owner)
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 400, "BadRequest")
        .await
        .contains("could not be resolved"));
    create_policy(&app, &token, owner).await;

    // The scheduled actions are not served directly (graph-reference 2.1).
    let p = create_policy(&app, &token, ios_threat_policy("direct", "low", 0)).await;
    let r = app
        .graph(
            Method::GET,
            &format!(
                "/v1.0/deviceManagement/deviceCompliancePolicies/{}/scheduledActionsForRule",
                p["id"].as_str().unwrap()
            ),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 400, "No method match route template")
        .await
        .starts_with("No OData route exists that match template"));
}

async fn threat_policies_go_to_user_groups_only(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    const USER_GROUPS_ONLY: &str = "The Require the device to be at or under the Device Threat Level setting supports only user groups. Targeting device groups with this setting is not supported.";
    let devices_group = create_group(&app, &token, "Kiosks").await;
    let dg = devices_group["id"].as_str().unwrap();
    let kiosk = enroll(
        &app,
        &t,
        json!({ "deviceName": "kiosk", "operatingSystem": "iOS", "osVersion": "17.0", "ownerType": "company" }),
    )
    .await;
    let entra = kiosk["azureADDeviceId"].as_str().unwrap();
    assert_eq!(
        add_member(&app, &token, dg, &format!("devices/{entra}")).await.status(),
        204
    );
    let bob = create_user(&app, &token, "bob@contoso.example", "Bob").await;
    let users_group = create_group(&app, &token, "People").await;
    let ug = users_group["id"].as_str().unwrap();
    add_member(&app, &token, ug, &format!("users/{}", bob["id"].as_str().unwrap())).await;

    let p = create_policy(&app, &token, ios_threat_policy("threat", "low", 0)).await;
    let pid = p["id"].as_str().unwrap();
    for targets in [
        json!([group_target(dg)]),
        json!([{ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }]),
        json!([group_target(ug), group_target(dg)]),
    ] {
        let r = assign(&app, &token, pid, targets).await;
        settle(&app, &t).await;
        assert_eq!(assert_error(r, 400, "BadRequest").await, USER_GROUPS_ONLY);
    }
    let r = app
        .graph(Method::POST, &format!("{POLICIES}/{pid}/assignments"), &token)
        .json(&json!({ "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(r, 400, "BadRequest").await, USER_GROUPS_ONLY);
    let r = assign(
        &app,
        &token,
        pid,
        json!([group_target(ug), { "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": dg }]),
    )
    .await;
    assert_eq!(r.status(), 200, "user groups, and excluding a device group, are fine");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"][0]["id"], format!("{pid}_{ug}"));
    assert_eq!(
        body["value"][1]["target"]["@odata.type"],
        "#microsoft.graph.exclusionGroupAssignmentTarget"
    );

    // Turning the threat rule on for a policy already assigned to devices is refused too.
    let os = create_policy(
        &app,
        &token,
        json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "OS", "osMinimumVersion": "16.0", "scheduledActionsForRule": block(0) }),
    )
    .await;
    let oid = os["id"].as_str().unwrap();
    assert_eq!(assign(&app, &token, oid, json!([group_target(dg)])).await.status(), 200);
    settle(&app, &t).await;
    let r = app
        .graph(Method::PATCH, &format!("{POLICIES}/{oid}"), &token)
        .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "deviceThreatProtectionEnabled": true, "deviceThreatProtectionRequiredSecurityLevel": "low" }))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(r, 400, "BadRequest").await, USER_GROUPS_ONLY);
}

async fn policies_are_created_read_patched_expanded_and_deleted(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let mut body = ios_threat_policy("iOS baseline", "low", 12);
    body["scheduledActionsForRule"][0]["scheduledActionConfigurations"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "actionType": "notification", "gracePeriodHours": 2, "notificationMessageCCList": [] }));
    body["osMinimumVersion"] = json!("16.4");
    body["version"] = json!(40);
    let created = create_policy(&app, &token, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["@odata.type"], "#microsoft.graph.iosCompliancePolicy");
    assert_eq!(created["version"], 1, "version is the service's");
    assert_eq!(created["osMinimumVersion"], "16.4");
    assert_eq!(created["passcodeRequired"], false, "unset settings show their defaults");
    assert!(
        created.get("scheduledActionsForRule").is_none(),
        "navigation only with $expand"
    );
    assert!(
        created.get("advancedThreatProtectionRequiredSecurityLevel").is_some(),
        "beta property"
    );

    let v1 = get_json(
        &app,
        &token,
        &format!("/v1.0/deviceManagement/deviceCompliancePolicies/{id}"),
    )
    .await;
    assert!(
        v1.get("advancedThreatProtectionRequiredSecurityLevel").is_none(),
        "beta only"
    );
    assert!(v1.get("roleScopeTagIds").is_none(), "beta only on the base type");
    assert_eq!(v1["deviceThreatProtectionRequiredSecurityLevel"], "low");

    let expanded = get_json(
        &app,
        &token,
        &format!("{POLICIES}/{id}?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations),assignments"),
    )
    .await;
    let rules = expanded["scheduledActionsForRule"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["ruleName"], "PasswordRequired");
    let actions = rules[0]["scheduledActionConfigurations"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0]["actionType"], "block");
    assert_eq!(actions[0]["gracePeriodHours"], 12);
    assert_eq!(actions[1]["actionType"], "notification");
    assert_eq!(expanded["assignments"], json!([]));
    let shallow = get_json(
        &app,
        &token,
        &format!("{POLICIES}/{id}?$expand=scheduledActionsForRule"),
    )
    .await;
    assert!(shallow["scheduledActionsForRule"][0]
        .get("scheduledActionConfigurations")
        .is_none());
    let r = app
        .graph(Method::GET, &format!("{POLICIES}/{id}?$expand=owners"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // PATCH answers 204 and moves version and lastModifiedDateTime.
    advance(&app, &t, "PT1H").await;
    let token = app.admin_token(&t).await;
    let r = app
        .graph(Method::PATCH, &format!("{POLICIES}/{id}"), &token)
        .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "description": "for everyone", "osMaximumVersion": "18.9" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let patched = get_json(&app, &token, &format!("{POLICIES}/{id}")).await;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["description"], "for everyone");
    assert_eq!(patched["osMinimumVersion"], "16.4", "untouched settings stay");
    assert_ne!(patched["lastModifiedDateTime"], created["lastModifiedDateTime"]);
    assert_eq!(patched["createdDateTime"], created["createdDateTime"]);
    let r = app
        .graph(Method::PATCH, &format!("{POLICIES}/{id}"), &token)
        .json(&json!({ "@odata.type": "#microsoft.graph.macOSCompliancePolicy", "description": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // Lists are polymorphic and filterable.
    create_policy(
        &app,
        &token,
        json!({ "@odata.type": "#microsoft.graph.windows10CompliancePolicy", "displayName": "Windows", "scheduledActionsForRule": block(0) }),
    )
    .await;
    let all = get_json(&app, &token, POLICIES).await;
    let types: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "#microsoft.graph.iosCompliancePolicy",
            "#microsoft.graph.windows10CompliancePolicy"
        ]
    );
    let filtered = get_json(
        &app,
        &token,
        &format!("{POLICIES}?$filter=displayName eq 'Windows'&$count=true"),
    )
    .await;
    assert_eq!(filtered["@odata.count"], 1);
    assert_eq!(filtered["value"][0]["displayName"], "Windows");
    let selected = get_json(&app, &token, &format!("{POLICIES}/{id}?$select=displayName,version")).await;
    assert_eq!(selected["displayName"], "iOS baseline");
    assert!(selected.get("osMinimumVersion").is_none());

    let r = app
        .graph(Method::DELETE, &format!("{POLICIES}/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(Method::GET, &format!("{POLICIES}/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
}

async fn assignments_and_actions_have_their_own_paths(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let g1 = create_group(&app, &token, "One").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g2 = create_group(&app, &token, "Two").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = create_policy(&app, &token, ios_threat_policy("p", "high", 0)).await;
    let pid = p["id"].as_str().unwrap();
    let path = format!("{POLICIES}/{pid}/assignments");

    let r = app
        .graph(Method::POST, &path, &token)
        .json(
            &json!({ "@odata.type": "#microsoft.graph.deviceCompliancePolicyAssignment", "target": group_target(&g1) }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["id"], format!("{pid}_{g1}"));
    assert_eq!(a["source"], "direct");
    let r = app
        .graph(Method::POST, &path, &token)
        .json(&json!({ "target": group_target(&g1) }))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "Conflict").await;
    let got = get_json(&app, &token, &format!("{path}/{pid}_{g1}")).await;
    assert_eq!(got["target"]["groupId"], g1.as_str());

    // assign replaces the whole set.
    let r = assign(
        &app,
        &token,
        pid,
        json!([group_target(&g2), { "@odata.type": "microsoft.graph.allLicensedUsersAssignmentTarget" }]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let listed = get_json(&app, &token, &path).await;
    let ids: Vec<&str> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&format!("{pid}_{g2}").as_str()));
    let r = app
        .graph(Method::DELETE, &format!("{path}/{pid}_{g2}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(Method::DELETE, &format!("{path}/{pid}_{g2}"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    for bad in [
        json!({ "assignments": [{ "target": { "groupId": g1 } }] }),
        json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget" } }] }),
        json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "nope" } }] }),
        json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.userTarget", "groupId": g1 } }] }),
        json!({ "targets": [] }),
    ] {
        let r = app
            .graph(Method::POST, &format!("{POLICIES}/{pid}/assign"), &token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }

    // scheduleActionsForRules replaces the actions, with the same rules as create.
    let actions = format!("{POLICIES}/{pid}/scheduleActionsForRules");
    let r = app
        .graph(Method::POST, &actions, &token)
        .json(&json!({ "deviceComplianceScheduledActionForRules": [{
            "@odata.type": "#microsoft.graph.deviceComplianceScheduledActionForRule",
            "ruleName": "PasswordRequired",
            "scheduledActionConfigurations": [
                { "@odata.type": "#microsoft.graph.deviceComplianceActionItem", "actionType": "block", "gracePeriodHours": 72, "notificationTemplateId": "", "notificationMessageCCList": [] },
                { "actionType": "retire", "gracePeriodHours": 720 }
            ]}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let expanded = get_json(
        &app,
        &token,
        &format!("{POLICIES}/{pid}?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)"),
    )
    .await;
    let configured = &expanded["scheduledActionsForRule"][0]["scheduledActionConfigurations"];
    assert_eq!(configured[0]["gracePeriodHours"], 72);
    assert_eq!(configured[1]["actionType"], "retire");
    let r = app
        .graph(Method::POST, &actions, &token)
        .json(&json!({ "deviceComplianceScheduledActionForRules": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [{ "actionType": "retire" }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(r, 400, "BadRequest").await,
        "Compliance policy must have one and only one block scheduled action"
    );
}

async fn targets_exclusions_and_status_views(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let carol = create_user(&app, &token, "carol@contoso.example", "Carol").await;
    let dave = create_user(&app, &token, "dave@contoso.example", "Dave").await;
    let excluded = create_group(&app, &token, "Exempt").await;
    let eg = excluded["id"].as_str().unwrap();
    add_member(&app, &token, eg, &format!("users/{}", dave["id"].as_str().unwrap())).await;
    let c_ios = enroll(&app, &t, json!({ "deviceName": "c-ios", "operatingSystem": "iOS", "osVersion": "15.0", "userPrincipalName": "carol@contoso.example" })).await;
    let c_mac = enroll(&app, &t, json!({ "deviceName": "c-mac", "operatingSystem": "macOS", "osVersion": "14.0", "userPrincipalName": "carol@contoso.example" })).await;
    let d_ios = enroll(&app, &t, json!({ "deviceName": "d-ios", "operatingSystem": "iOS", "osVersion": "15.0", "userPrincipalName": "dave@contoso.example" })).await;
    let shared = enroll(
        &app,
        &t,
        json!({ "deviceName": "shared-ipad", "operatingSystem": "iOS", "osVersion": "15.0", "ownerType": "company" }),
    )
    .await;

    // An OS rule for all licensed users, excluding one group.
    let p = create_policy(
        &app,
        &token,
        json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "displayName": "iOS 16+", "osMinimumVersion": "16.0", "scheduledActionsForRule": block(0) }),
    )
    .await;
    let pid = p["id"].as_str().unwrap();
    let r = assign(
        &app,
        &token,
        pid,
        json!([{ "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" }, { "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": eg }]),
    )
    .await;
    settle(&app, &t).await;
    assert_eq!(r.status(), 200);
    let id = |d: &Value| d["id"].as_str().unwrap().to_string();
    assert_eq!(
        device(&app, &token, &id(&c_ios)).await["complianceState"],
        "noncompliant"
    );
    assert_eq!(
        device(&app, &token, &id(&d_ios)).await["complianceState"],
        "compliant",
        "excluded"
    );
    assert_eq!(
        device(&app, &token, &id(&shared)).await["complianceState"],
        "compliant",
        "no user"
    );
    let mac_states = get_json(
        &app,
        &token,
        &format!(
            "/v1.0/deviceManagement/managedDevices/{}/deviceCompliancePolicyStates",
            id(&c_mac)
        ),
    )
    .await;
    assert_eq!(
        mac_states["value"][0]["state"], "notApplicable",
        "assigned, other platform: {mac_states}"
    );
    let ios_states = get_json(
        &app,
        &token,
        &format!(
            "/v1.0/deviceManagement/managedDevices/{}/deviceCompliancePolicyStates",
            id(&c_ios)
        ),
    )
    .await;
    let ps = &ios_states["value"][0];
    assert_eq!(ps["platformType"], "iOS");
    assert_eq!(ps["settingCount"], 1);
    assert_eq!(
        ps["settingStates"][0]["setting"],
        "IosCompliancePolicy.osMinimumVersion"
    );
    assert_eq!(ps["settingStates"][0]["currentValue"], "15.0");
    assert_eq!(ps["settingStates"][0]["state"], "nonCompliant");
    assert_eq!(ps["settingStates"][0]["userPrincipalName"], "carol@contoso.example");
    let by_user = get_json(
        &app,
        &token,
        &format!(
            "/v1.0/users/{}/managedDevices/{}/deviceCompliancePolicyStates",
            carol["id"].as_str().unwrap(),
            id(&c_ios)
        ),
    )
    .await;
    assert_eq!(by_user["value"], ios_states["value"]);

    // Statuses: Carol's iPhone fails, her Mac is not applicable; Carol fails overall.
    let statuses = get_json(&app, &token, &format!("{POLICIES}/{pid}/deviceStatuses")).await;
    assert_eq!(statuses["value"].as_array().unwrap().len(), 2, "{statuses}");
    let overview = get_json(&app, &token, &format!("{POLICIES}/{pid}/deviceStatusOverview")).await;
    assert_eq!(
        (
            overview["failedCount"].as_i64(),
            overview["notApplicableCount"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let users = get_json(&app, &token, &format!("{POLICIES}/{pid}/userStatuses")).await;
    assert_eq!(users["value"].as_array().unwrap().len(), 1);
    assert_eq!(users["value"][0]["status"], "nonCompliant");
    assert_eq!(users["value"][0]["devicesCount"], 2);
    let uo = get_json(
        &app,
        &token,
        &format!("/v1.0/deviceManagement/deviceCompliancePolicies/{pid}/userStatusOverview"),
    )
    .await;
    assert_eq!(uo["failedCount"], 1);
    assert!(uo.get("conflictCount").is_none(), "beta only");
    let one = get_json(
        &app,
        &token,
        &format!("{POLICIES}/{pid}/deviceStatuses/{pid}_{}", id(&c_ios)),
    )
    .await;
    assert_eq!(one["status"], "nonCompliant");

    // The device checks in with a newer OS: compliant before the answer.
    let r = app
        .req(
            Method::PATCH,
            &format!("/_emulator/tenants/{}/devices/{}", t.id, id(&c_ios)),
        )
        .json(&json!({ "osVersion": "17.1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["complianceState"], "compliant");

    // Leaving the excluded group brings Dave under the policy.
    let r = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/groups/{eg}/members/{}/$ref", dave["id"].as_str().unwrap()),
            &token,
        )
        .send()
        .await
        .unwrap();
    settle(&app, &t).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        device(&app, &token, &id(&d_ios)).await["complianceState"],
        "noncompliant"
    );

    // All devices reaches the user-less iPad; deleting the policy frees everyone.
    let r = assign(
        &app,
        &token,
        pid,
        json!([{ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }]),
    )
    .await;
    settle(&app, &t).await;
    assert_eq!(r.status(), 200, "a policy without the threat rule may target devices");
    assert_eq!(
        device(&app, &token, &id(&shared)).await["complianceState"],
        "noncompliant"
    );
    let r = app
        .graph(Method::DELETE, &format!("{POLICIES}/{pid}"), &token)
        .send()
        .await
        .unwrap();
    settle(&app, &t).await;
    assert_eq!(r.status(), 204);
    for d in [&c_ios, &d_ios, &shared] {
        assert_eq!(device(&app, &token, &id(d)).await["complianceState"], "compliant");
    }
    let states = get_json(
        &app,
        &token,
        &format!(
            "/v1.0/deviceManagement/managedDevices/{}/deviceCompliancePolicyStates",
            id(&shared)
        ),
    )
    .await;
    assert_eq!(states["value"], json!([]));
}

async fn missing_data_unresponsive_partners_and_tenant_settings(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let erin = create_user(&app, &token, "erin@contoso.example", "Erin").await;
    let g = create_group(&app, &token, "Phones").await;
    let gid = g["id"].as_str().unwrap();
    add_member(&app, &token, gid, &format!("users/{}", erin["id"].as_str().unwrap())).await;
    let phone = enroll(&app, &t, json!({ "deviceName": "e-ios", "operatingSystem": "iOS", "osVersion": "17.0", "userPrincipalName": "erin@contoso.example" })).await;
    let did = phone["id"].as_str().unwrap();
    let p = create_policy(&app, &token, ios_threat_policy("threat", "low", 0)).await;
    let pid = p["id"].as_str().unwrap();
    assert_eq!(
        assign(&app, &token, pid, json!([group_target(gid)])).await.status(),
        200
    );
    settle(&app, &t).await;
    assert_eq!(
        cstate(&app, &token, did).await,
        "compliant",
        "no connector: not evaluated"
    );

    // Missing data with the connector's block setting on is noncompliant.
    create_connector(
        &app,
        &token,
        LOOKOUT,
        json!({ "iosEnabled": true, "iosDeviceBlockedOnMissingPartnerData": true, "partnerUnresponsivenessThresholdInDays": 2 }),
    )
    .await;
    settle(&app, &t).await;
    assert_eq!(
        cstate(&app, &token, did).await,
        "compliant",
        "a connector never set up is not evaluated"
    );
    let lookout = partner_token(&app, &t.id, LOOKOUT).await;
    heartbeat(&app, &lookout).await;
    settle(&app, &t).await;
    assert_eq!(
        cstate(&app, &token, did).await,
        "noncompliant",
        "set up, no data, blocked on missing data"
    );
    let trace = explain(&app, &t, did).await;
    assert_eq!(trace["connectors"][0]["usable"], true);
    assert_eq!(trace["connectors"][0]["blockedOnMissingPartnerData"], true);
    let reasons = trace["policies"][0]["settings"][0]["reasons"].to_string();
    assert!(reasons.contains("blocks devices without partner data"), "{reasons}");

    // A second connector for the platform: the device must report from each.
    let r = app
        .graph(
            Method::PATCH,
            &format!("/beta/deviceManagement/mobileThreatDefenseConnectors/{LOOKOUT}"),
            &token,
        )
        .json(&json!({ "iosDeviceBlockedOnMissingPartnerData": false }))
        .send()
        .await
        .unwrap();
    settle(&app, &t).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        cstate(&app, &token, did).await,
        "compliant",
        "toggle change re-evaluates"
    );
    report(&app, &t, &lookout, did, "secured").await;
    create_connector(
        &app,
        &token,
        ZIMPERIUM,
        json!({ "iosEnabled": true, "partnerUnresponsivenessThresholdInDays": 5 }),
    )
    .await;
    settle(&app, &t).await;
    let zimperium = partner_token(&app, &t.id, ZIMPERIUM).await;
    heartbeat(&app, &zimperium).await;
    settle(&app, &t).await;
    assert_eq!(
        cstate(&app, &token, did).await,
        "noncompliant",
        "no report from the second connector"
    );
    report(&app, &t, &zimperium, did, "low").await;
    assert_eq!(cstate(&app, &token, did).await, "compliant");
    report(&app, &t, &zimperium, did, "medium").await;
    assert_eq!(cstate(&app, &token, did).await, "noncompliant");

    // Three days without a Lookout heartbeat: its data no longer counts, Zimperium's does.
    heartbeat(&app, &zimperium).await;
    settle(&app, &t).await;
    advance(&app, &t, "P3D").await;
    let token = app.admin_token(&t).await;
    let zimperium = partner_token(&app, &t.id, ZIMPERIUM).await;
    let trace = explain(&app, &t, did).await;
    let lookout_state = trace["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == LOOKOUT)
        .cloned()
        .unwrap();
    assert_eq!(lookout_state["partnerState"], "unresponsive", "{trace}");
    assert_eq!(lookout_state["usable"], false);
    assert_eq!(
        cstate(&app, &token, did).await,
        "noncompliant",
        "Zimperium still reports medium"
    );
    report(&app, &t, &zimperium, did, "low").await;
    assert_eq!(cstate(&app, &token, did).await, "compliant");
    // Both unresponsive: the setting is not evaluated at all.
    advance(&app, &t, "P6D").await;
    let token = app.admin_token(&t).await;
    let zimperium = partner_token(&app, &t.id, ZIMPERIUM).await;
    report(&app, &t, &zimperium, did, "high").await;
    let trace = explain(&app, &t, did).await;
    assert_eq!(trace["policies"][0]["settings"][0]["state"], "notApplicable", "{trace}");
    assert_eq!(cstate(&app, &token, did).await, "compliant");
    // A heartbeat brings Zimperium's high report back into play.
    heartbeat(&app, &zimperium).await;
    settle(&app, &t).await;
    assert_eq!(cstate(&app, &token, did).await, "noncompliant");

    // Tenant settings: the check-in threshold and secureByDefault.
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "deviceComplianceCheckinThresholdDays": 5 } }))
        .send()
        .await
        .unwrap();
    settle(&app, &t).await;
    assert_eq!(r.status(), 204);
    let laptop = enroll(
        &app,
        &t,
        json!({ "deviceName": "w", "operatingSystem": "Windows", "osVersion": "10.0.22631", "ownerType": "company" }),
    )
    .await;
    let lid = laptop["id"].as_str().unwrap();
    assert_eq!(laptop["complianceState"], "compliant");
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "secureByDefault": true } }))
        .send()
        .await
        .unwrap();
    settle(&app, &t).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        device(&app, &token, lid).await["complianceState"],
        "noncompliant",
        "no policy, secure by default"
    );
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "secureByDefault": false } }))
        .send()
        .await
        .unwrap();
    settle(&app, &t).await;
    assert_eq!(r.status(), 204);
    assert_eq!(device(&app, &token, lid).await["complianceState"], "compliant");
    advance(&app, &t, "P6D").await;
    let token = app.admin_token(&t).await;
    assert_eq!(
        device(&app, &token, lid).await["complianceState"],
        "noncompliant",
        "no check-in for 6 days"
    );
    let trace = explain(&app, &t, lid).await;
    assert!(
        trace["verdict"]["reasons"].to_string().contains("checked in"),
        "{trace}"
    );
    let r = app
        .req(Method::PATCH, &format!("/_emulator/tenants/{}/devices/{lid}", t.id))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["complianceState"], "compliant");
}

async fn notification_templates_and_test_messages(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let base = "/v1.0/deviceManagement/notificationMessageTemplates";
    let r = app
        .graph(Method::POST, base, &token)
        .json(&json!({
            "displayName": "Threat found",
            "brandingOptions": "includeCompanyName, includeCompanyLogo",
            "defaultLocale": "en-us",
            "localizedNotificationMessages": [
                { "locale": "en-us", "subject": "Your device is at risk", "messageTemplate": "Open the MTD app.", "isDefault": true },
                { "locale": "fr-fr", "subject": "Appareil à risque", "messageTemplate": "Ouvrez l'application." }
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["brandingOptions"], "includeCompanyLogo,includeCompanyName");
    assert!(created.get("description").is_none(), "beta only");
    let expanded = get_json(
        &app,
        &token,
        &format!("{base}/{id}?$expand=localizedNotificationMessages"),
    )
    .await;
    let messages = expanded["localizedNotificationMessages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], format!("{id}_en-us"));
    assert_eq!(messages[0]["isDefault"], true);

    let msgs = format!("{base}/{id}/localizedNotificationMessages");
    let r = app
        .graph(Method::POST, &msgs, &token)
        .json(&json!({ "locale": "fr-FR", "subject": "x", "messageTemplate": "y" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "Conflict").await;
    let r = app
        .graph(Method::PATCH, &format!("{msgs}/{id}_fr-fr"), &token)
        .json(&json!({ "isDefault": true, "subject": "Appareil en danger" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let fr = get_json(&app, &token, &format!("{msgs}/{id}_fr-fr")).await;
    assert_eq!(
        (fr["isDefault"].as_bool(), fr["subject"].as_str()),
        (Some(true), Some("Appareil en danger"))
    );
    let en = get_json(&app, &token, &format!("{msgs}/{id}_en-us")).await;
    assert_eq!(en["isDefault"], false, "one default at a time");

    // sendTestMessage writes the default message to the outbox.
    let r = app
        .graph(Method::POST, &format!("{base}/{id}/sendTestMessage"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let outbox: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/notifications", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = &outbox["value"][0];
    assert_eq!(sent["kind"], "email");
    assert_eq!(sent["templateId"], id.as_str());
    assert_eq!(sent["subject"], "Appareil en danger");
    assert_eq!(sent["test"], true);

    for (body, expected) in [
        (
            json!({ "displayName": "x", "brandingOptions": "includeGlitter" }),
            "brandingOptions",
        ),
        (json!({ "brandingOptions": "none" }), "displayName"),
        (
            json!({ "displayName": "x", "localizedNotificationMessages": [{ "locale": "en-us" }] }),
            "subject",
        ),
    ] {
        let r = app.graph(Method::POST, base, &token).json(&body).send().await.unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains(expected), "{message}");
    }
    let r = app
        .graph(Method::DELETE, &format!("{msgs}/{id}_en-us"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(Method::PATCH, &format!("{base}/{id}"), &token)
        .json(&json!({ "displayName": "Renamed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let listed = get_json(&app, &token, base).await;
    assert_eq!(listed["value"][0]["displayName"], "Renamed");
    let r = app
        .graph(Method::DELETE, &format!("{base}/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(Method::GET, &format!("{base}/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
}
