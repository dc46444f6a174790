//! App protection (MAM): policies through Graph, protected apps registered with and without
//! enrollment, partner reports for unenrolled devices, and what the app is told at check-in
//! (the seed's "App protection policy evaluation").

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::directory::{add_member, create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT, ZIMPERIUM};

both_backends!(
    the_seed_story_for_an_unenrolled_iphone,
    a_wipe_remediation_wipes_exactly_once,
    app_protection_policies_through_graph,
    an_enrolled_device_reports_once_for_compliance_and_app_protection,
);

const OUTLOOK: &str = "com.microsoft.Office.Outlook";
const POLICIES: &str = "/deviceAppManagement/iosManagedAppProtections";

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    let got = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    json_of(app.graph(Method::GET, path, token).send().await.unwrap(), 200).await
}

/// A user in a group, as the policy's assignment targets them.
async fn user_in_group(app: &TestApp, token: &str, upn: &str) -> (String, String) {
    let user = create_user(app, token, upn, "Alex Wilber").await;
    let group = create_group(app, token, "MAM users").await;
    let (uid, gid) = (user["id"].as_str().unwrap(), group["id"].as_str().unwrap());
    let r = add_member(app, token, gid, &format!("users/{uid}")).await;
    assert_eq!(r.status(), 204);
    (uid.to_string(), gid.to_string())
}

async fn connector(app: &TestApp, t: &Tenant, token: &str, id: &str, settings: Value) -> String {
    let mut body = settings.as_object().unwrap().clone();
    body.insert("id".into(), json!(id));
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
    json_of(r, 201).await;
    let partner = partner_token(app, &t.id, id).await;
    let r = app
        .req(Method::POST, "/partner/v1/connector/heartbeat")
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    partner
}

async fn set_connector(app: &TestApp, token: &str, id: &str, settings: Value) -> reqwest::Response {
    app.graph(
        Method::PATCH,
        &format!("/beta/deviceManagement/mobileThreatDefenseConnectors/{id}"),
        token,
    )
    .json(&settings)
    .send()
    .await
    .unwrap()
}

/// Creates a beta iOS policy for Outlook with the threat rule, assigned to `group`.
async fn outlook_policy(app: &TestApp, token: &str, group: &str, max: &str, remediation: &str) -> String {
    let r = app
        .graph(Method::POST, &format!("/beta{POLICIES}"), token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.iosManagedAppProtection",
            "displayName": format!("Outlook, {max} at most"),
            "maximumAllowedDeviceThreatLevel": max,
            "mobileThreatDefenseRemediationAction": remediation,
            "apps": [{ "mobileAppIdentifier": { "@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": OUTLOOK } }],
        }))
        .send()
        .await
        .unwrap();
    let policy = json_of(r, 201).await;
    let id = policy["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("T_"), "{id}");
    let r = app
        .graph(Method::POST, &format!("/beta{POLICIES}/{id}/assign"), token)
        .json(&json!({ "assignments": [{
            "@odata.type": "#microsoft.graph.targetedManagedAppPolicyAssignment",
            "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group },
        }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    id
}

async fn register(app: &TestApp, t: &Tenant, user: &str, device: &str) -> Value {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/appRegistrations", t.id))
        .json(&json!({
            "userId": user,
            "azureADDeviceId": device,
            "platform": "iOS",
            "appIdentifier": OUTLOOK,
            "applicationVersion": "4.2405.0",
            "managementSdkVersion": "19.3.1",
            "platformVersion": "17.4.1",
            "deviceName": "Alex's iPhone",
            "deviceModel": "iPhone 15",
        }))
        .send()
        .await
        .unwrap();
    json_of(r, 201).await
}

async fn check_in(app: &TestApp, t: &Tenant, registration: &str) -> Value {
    let r = app
        .req(
            Method::POST,
            &format!("/_emulator/tenants/{}/appRegistrations/{registration}/checkIn", t.id),
        )
        .send()
        .await
        .unwrap();
    json_of(r, 200).await
}

async fn now_of(app: &TestApp, t: &Tenant) -> String {
    let c: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/clock", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    c["now"].as_str().unwrap().to_string()
}

/// One report from the partner; its outcome.
async fn report(app: &TestApp, t: &Tenant, partner: &str, device: &str, level: &str) -> Value {
    let at = now_of(app, t).await;
    let r = app
        .req(Method::POST, "/partner/v1/deviceThreatStates")
        .bearer_auth(partner)
        .json(&json!({ "value": [{ "deviceId": device, "threatLevel": level, "reportedDateTime": at }] }))
        .send()
        .await
        .unwrap();
    json_of(r, 200).await["value"][0].clone()
}

/// The seed's story: a user with an unenrolled iPhone has a protected Outlook; an iOS app
/// protection policy (beta) allows at most a low threat level and blocks; the connector's iOS
/// app protection toggle decides whether the partner's data is used.
async fn the_seed_story_for_an_unenrolled_iphone(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (user, group) = user_in_group(&app, &token, "alex@contoso.example").await;
    let partner = connector(&app, &t, &token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let device = "7f3c2a4e-9b1d-4c8e-a2f0-5d6e7f8a9b0c";

    // 1. The user's unenrolled iPhone has a protected Outlook.
    let reg = register(&app, &t, &user, device).await;
    let rid = reg["id"].as_str().unwrap().to_string();
    assert_eq!(reg["managedDeviceId"], Value::Null, "not enrolled");
    assert_eq!(reg["access"], Value::Null, "not checked in yet");
    // 2. The policy, assigned to the user's group.
    let policy = outlook_policy(&app, &token, &group, "low", "block").await;

    // 5. With the toggle off the partner's data is not used: the report is refused, and the
    // rule is not evaluated (no connector is enabled for app protection on iOS).
    let out = report(&app, &t, &partner, device, "medium").await;
    assert_eq!(out["status"], "rejected");
    assert_eq!(out["code"], "appProtectionNotEnabled", "{out}");
    let c = check_in(&app, &t, &rid).await;
    assert_eq!(c["access"], "allowed");
    assert_eq!(c["policies"][0]["policyId"], policy.as_str());
    assert_eq!(c["policies"][0]["state"], "notEvaluated");
    assert!(
        c["policies"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("iosMobileApplicationManagementEnabled"),
        "{c}"
    );

    // 3. The connector's iOS app protection toggle on. With no data, missing data is allowed
    // unless the connector blocks on it.
    assert_eq!(
        set_connector(
            &app,
            &token,
            LOOKOUT,
            json!({ "iosMobileApplicationManagementEnabled": true })
        )
        .await
        .status(),
        204
    );
    let c = check_in(&app, &t, &rid).await;
    assert_eq!(
        (c["access"].as_str(), c["policies"][0]["state"].as_str()),
        (Some("allowed"), Some("passed"))
    );
    assert!(
        c["policies"][0]["reasons"][0].as_str().unwrap().contains("no report"),
        "{c}"
    );
    set_connector(
        &app,
        &token,
        LOOKOUT,
        json!({ "iosDeviceBlockedOnMissingPartnerData": true }),
    )
    .await;
    let c = check_in(&app, &t, &rid).await;
    assert_eq!(c["access"], "blocked", "no data, and the connector blocks without it");
    assert!(c["policies"][0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("iosDeviceBlockedOnMissingPartnerData"));
    set_connector(
        &app,
        &token,
        LOOKOUT,
        json!({ "iosDeviceBlockedOnMissingPartnerData": false }),
    )
    .await;

    // The partner sees the device for app protection.
    let r = app
        .req(Method::GET, "/partner/v1/appProtectionDevices")
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    let listed = json_of(r, 200).await;
    assert_eq!(listed["value"][0]["azureADDeviceId"], device);
    assert_eq!(listed["value"][0]["userIds"], json!([user]));

    // 4. The partner reports medium: the app is blocked, with the reason the user sees.
    let out = report(&app, &t, &partner, device, "medium").await;
    assert_eq!(out["status"], "accepted", "{out}");
    let c = check_in(&app, &t, &rid).await;
    assert_eq!(c["access"], "blocked");
    assert!(c["message"].as_str().unwrap().contains("threat level"), "{c}");
    assert_eq!(c["policies"][0]["state"], "failed");
    assert_eq!(c["policies"][0]["remediation"], "block");
    assert_eq!(c["reports"][0]["partnerReportedThreatState"], "mediumSeverity");
    // The replayed report is stale; a report for a device without a protected app stays unknown.
    let at = c["reports"][0]["reportedDateTime"].as_str().unwrap().to_string();
    let r = app
        .req(Method::POST, "/partner/v1/deviceThreatStates")
        .bearer_auth(&partner)
        .json(&json!({ "value": [
            { "deviceId": device, "threatLevel": "medium", "reportedDateTime": at },
            { "deviceId": "11111111-2222-3333-4444-555555555555", "threatLevel": "low", "reportedDateTime": at },
        ] }))
        .send()
        .await
        .unwrap();
    let outs = json_of(r, 200).await;
    assert_eq!(outs["value"][0]["status"], "stale");
    assert_eq!(outs["value"][1]["code"], "unknownDevice");

    // ... then secured: the app is allowed again.
    app.advance_clock(&t.id, "PT1M").await;
    assert_eq!(
        report(&app, &t, &partner, device, "secured").await["status"],
        "accepted"
    );
    let c = check_in(&app, &t, &rid).await;
    assert_eq!(c["access"], "allowed");
    assert_eq!(c["policies"][0]["state"], "passed");
    let changes = app.events(&t, "appProtectionStateChanged").await;
    let seen: Vec<&str> = changes.iter().map(|e| e["to"].as_str().unwrap()).collect();
    // Told: not evaluated, passed with no data, blocked without data (the connector blocks on
    // it, then medium), allowed at secured.
    assert_eq!(seen, ["allowed", "blocked", "allowed"], "{changes:?}");

    // The partner's data stops counting when it turns unresponsive (7 days without a
    // heartbeat, on the tenant's clock): the rule is no longer evaluated.
    app.advance_clock(&t.id, "PT1M").await;
    report(&app, &t, &partner, device, "high").await;
    assert_eq!(check_in(&app, &t, &rid).await["access"], "blocked");
    app.advance_clock(&t.id, "P7DT1H").await;
    let c = check_in(&app, &t, &rid).await;
    assert_eq!(c["access"], "allowed", "{c}");
    assert_eq!(c["policies"][0]["state"], "notEvaluated");
    assert_eq!(c["connectors"][0]["usable"], false);

    // Graph shows the registration (beta has the device's Entra id; v1.0 does not).
    let token = app.admin_token(&t).await;
    let regs = get(&app, &token, "/beta/deviceAppManagement/managedAppRegistrations").await;
    let r0 = &regs["value"][0];
    assert_eq!(r0["@odata.type"], "#microsoft.graph.iosManagedAppRegistration");
    assert_eq!(r0["appIdentifier"]["bundleId"], OUTLOOK);
    assert_eq!(r0["azureADDeviceId"], device);
    assert_eq!(r0["userId"], user.as_str());
    assert_eq!(r0["managementSdkVersion"], "19.3.1");
    assert!(r0["lastSyncDateTime"].as_str().is_some());
    let v1 = get(&app, &token, "/v1.0/deviceAppManagement/managedAppRegistrations").await;
    assert!(v1["value"][0].get("azureADDeviceId").is_none());
    // As Microsoft's user data export script asks for them.
    let mine = get(
        &app,
        &token,
        "/v1.0/users/alex@contoso.example/managedAppRegistrations?$expand=appliedPolicies,intendedPolicies,operations",
    )
    .await;
    assert_eq!(mine["value"].as_array().unwrap().len(), 1);
    assert_eq!(mine["value"][0]["appliedPolicies"][0]["id"], policy.as_str());
    assert_eq!(mine["value"][0]["intendedPolicies"][0]["id"], policy.as_str());
    assert_eq!(mine["value"][0]["operations"], json!([]));

    // The app registration summary (managedAppStatuses), as Microsoft's sample scripts page it:
    // a row per registration and applied policy; Teams has no policy and never checked in.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/appRegistrations", t.id))
        .json(&json!({ "userId": user, "azureADDeviceId": device, "platform": "iOS", "appIdentifier": "com.microsoft.skype.teams", "platformVersion": "17.4.1", "deviceName": "Alex's iPhone" }))
        .send()
        .await
        .unwrap();
    json_of(r, 201).await;
    let summary_path = "/beta/deviceAppManagement/managedAppStatuses('appregistrationsummary')?fetch=1&policyMode=0&columns=UserId,UserEmail,ApplicationName,ApplicationInstanceId,ManagementLevel,PolicyName,ComplianceState";
    let first = get(&app, &token, summary_path).await;
    assert_eq!(first["@odata.type"], "#microsoft.graph.managedAppStatusRaw");
    let header: Vec<&str> = first["content"]["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["columnName"].as_str().unwrap())
        .collect();
    assert_eq!(header[0], "UserId");
    assert_eq!(header.len(), 7);
    assert_eq!(
        first["content"]["body"][0]["values"],
        json!([
            user,
            "alex@contoso.example",
            OUTLOOK,
            rid,
            "Unmanaged",
            "Outlook, low at most",
            "allowed"
        ])
    );
    let token_next = first["content"]["skipToken"].as_str().unwrap();
    assert_ne!(token_next, "");
    let second = get(&app, &token, &format!("{summary_path}&seek={token_next}")).await;
    let values = &second["content"]["body"][0]["values"];
    assert_eq!(
        (values[2].as_str(), values[5].as_str(), values[6].as_str()),
        (Some("com.microsoft.skype.teams"), Some(""), Some("notCheckedIn"))
    );
    assert_eq!(second["content"]["skipToken"], "");
    for bad in ["columns=Nope", "policyMode=1", "fetch=0", "top=3"] {
        let r = app
            .graph(
                Method::GET,
                &format!("/beta/deviceAppManagement/managedAppStatuses/appregistrationsummary?{bad}"),
                &token,
            )
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceAppManagement/managedAppStatuses('userstatus')",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let listed = get(&app, &token, "/v1.0/deviceAppManagement/managedAppStatuses").await;
    assert_eq!(listed["value"][0]["id"], "appregistrationsummary");
    assert_eq!(listed["value"][0]["content"]["body"].as_array().unwrap().len(), 2);
    let applied = get(
        &app,
        &token,
        &format!("/beta/deviceAppManagement/managedAppRegistrations/{rid}/appliedPolicies"),
    )
    .await;
    assert_eq!(applied["value"][0]["id"], policy.as_str());
    assert_eq!(applied["value"][0]["maximumAllowedDeviceThreatLevel"], "low");
    let intended = get(
        &app,
        &token,
        &format!("/v1.0/deviceAppManagement/managedAppRegistrations/{rid}/intendedPolicies"),
    )
    .await;
    assert_eq!(intended["value"][0]["id"], policy.as_str());
    assert!(
        intended["value"][0].get("maximumAllowedDeviceThreatLevel").is_none(),
        "beta only"
    );
    let summary = get(&app, &token, &format!("/beta{POLICIES}/{policy}/deploymentSummary")).await;
    assert_eq!(summary["configurationDeployedUserCount"], 1);
    assert_eq!(
        summary["configurationDeploymentSummaryPerApp"][0]["mobileAppIdentifier"]["bundleId"],
        OUTLOOK
    );

    // explain names every policy and input, and stores nothing.
    let r = app
        .req(
            Method::GET,
            &format!("/_emulator/tenants/{}/appRegistrations/{rid}/explain", t.id),
        )
        .send()
        .await
        .unwrap();
    let e = json_of(r, 200).await;
    assert_eq!(e["policySettings"][0]["maximumAllowedDeviceThreatLevel"], "low");
    assert_eq!(e["userGroups"], json!([group]));
    assert_eq!(e["reports"][0]["partnerReportedThreatState"], "highSeverity");

    // Only one partner per platform may be enabled for app protection.
    connector(&app, &t, &token, ZIMPERIUM, json!({ "iosEnabled": true })).await;
    let r = set_connector(
        &app,
        &token,
        ZIMPERIUM,
        json!({ "iosMobileApplicationManagementEnabled": true }),
    )
    .await;
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains("only one partner per platform"), "{message}");
    assert_eq!(
        set_connector(
            &app,
            &token,
            ZIMPERIUM,
            json!({ "androidMobileApplicationManagementEnabled": true })
        )
        .await
        .status(),
        204
    );
}

/// A wipe remediation records one pending wipe at the check-in that fails the rule; the app is
/// told to wipe until it reports the wipe done, and is never wiped again.
async fn a_wipe_remediation_wipes_exactly_once(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (user, group) = user_in_group(&app, &token, "megan@contoso.example").await;
    let partner = connector(
        &app,
        &t,
        &token,
        LOOKOUT,
        json!({ "iosMobileApplicationManagementEnabled": true }),
    )
    .await;
    let device = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let rid = register(&app, &t, &user, device).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    outlook_policy(&app, &token, &group, "secured", "wipe").await;

    assert_eq!(report(&app, &t, &partner, device, "low").await["status"], "accepted");
    let first = check_in(&app, &t, &rid).await;
    assert_eq!(first["access"], "wipe");
    let ops = first["registration"]["operations"].as_array().unwrap().clone();
    assert_eq!(ops.len(), 1);
    assert_eq!(
        (ops[0]["displayName"].as_str(), ops[0]["state"].as_str()),
        (Some("Wipe"), Some("pending"))
    );
    // Told again until it is done, with the same operation.
    let again = check_in(&app, &t, &rid).await;
    assert_eq!(again["access"], "wipe");
    assert_eq!(again["registration"]["operations"], json!(ops));

    let done = app
        .req(
            Method::POST,
            &format!("/_emulator/tenants/{}/appRegistrations/{rid}/wipeCompleted", t.id),
        )
        .send()
        .await
        .unwrap();
    let done = json_of(done, 200).await;
    assert_eq!(done["operations"][0]["state"], "completed");
    assert_eq!(done["access"], "wiped");
    let twice = app
        .req(
            Method::POST,
            &format!("/_emulator/tenants/{}/appRegistrations/{rid}/wipeCompleted", t.id),
        )
        .send()
        .await
        .unwrap();
    assert_error(twice, 409, "Conflict").await;

    // Still failing the rule, the wiped app is not wiped again.
    let after = check_in(&app, &t, &rid).await;
    assert_eq!(after["access"], "wiped");
    assert_eq!(after["registration"]["operations"].as_array().unwrap().len(), 1);
    // explain shows what the policies decide and what the app is told.
    let r = app
        .req(
            Method::GET,
            &format!("/_emulator/tenants/{}/appRegistrations/{rid}/explain", t.id),
        )
        .send()
        .await
        .unwrap();
    let e = json_of(r, 200).await;
    assert_eq!(
        (e["verdict"].as_str(), e["access"].as_str()),
        (Some("wipe"), Some("wiped"))
    );
    assert_eq!(app.events(&t, "appWipeRequested").await.len(), 1);
    assert_eq!(app.events(&t, "appWipeCompleted").await.len(), 1);
    let ops = get(
        &app,
        &token,
        &format!("/v1.0/deviceAppManagement/managedAppRegistrations/{rid}/operations"),
    )
    .await;
    assert_eq!(ops["value"].as_array().unwrap().len(), 1);
    assert_eq!(ops["value"][0]["state"], "completed");
}

/// The policies' Graph surface: both versions' property sets, create through either path,
/// PATCH 204, `targetApps`, `assign`, the navigation paths, delete, and the write rules.
async fn app_protection_policies_through_graph(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (_, group) = user_in_group(&app, &token, "lynne@contoso.example").await;
    let id = outlook_policy(&app, &token, &group, "medium", "block").await;

    let beta = get(&app, &token, &format!("/beta{POLICIES}/{id}")).await;
    assert_eq!(beta["@odata.type"], "#microsoft.graph.iosManagedAppProtection");
    assert_eq!(beta["maximumAllowedDeviceThreatLevel"], "medium");
    assert_eq!(beta["mobileThreatDefenseRemediationAction"], "block");
    assert_eq!(beta["mobileThreatDefensePartnerPriority"], Value::Null);
    assert_eq!(beta["isAssigned"], true);
    assert_eq!(beta["deployedAppCount"], 1);
    let v1 = get(&app, &token, &format!("/v1.0{POLICIES}('{id}')")).await;
    for beta_only in [
        "maximumAllowedDeviceThreatLevel",
        "mobileThreatDefenseRemediationAction",
        "mobileThreatDefensePartnerPriority",
    ] {
        assert!(v1.get(beta_only).is_none(), "{beta_only} is beta only");
    }
    assert_eq!(v1["displayName"], beta["displayName"]);

    // PATCH answers 204; `warn` is refused for the threat remediation; v1.0 knows no threat
    // properties.
    let r = app
        .graph(Method::PATCH, &format!("/beta{POLICIES}/{id}"), &token)
        .json(&json!({ "maximumAllowedDeviceThreatLevel": "high", "pinRequired": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let after = get(&app, &token, &format!("/beta{POLICIES}/{id}")).await;
    assert_eq!(after["maximumAllowedDeviceThreatLevel"], "high");
    assert_eq!(after["pinRequired"], true);
    assert_ne!(after["version"], beta["version"]);
    let r = app
        .graph(Method::PATCH, &format!("/beta{POLICIES}/{id}"), &token)
        .json(&json!({ "mobileThreatDefenseRemediationAction": "warn" }))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains("warn"), "{message}");
    let r = app
        .graph(Method::PATCH, &format!("/v1.0{POLICIES}/{id}"), &token)
        .json(&json!({ "maximumAllowedDeviceThreatLevel": "low" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .graph(Method::POST, &format!("/beta{POLICIES}"), &token)
        .json(&json!({ "displayName": "inline", "assignments": [] }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // targetApps replaces the apps (an Android identifier does not fit an iOS policy).
    let r = app
        .graph(Method::POST, &format!("/beta{POLICIES}/{id}/targetApps"), &token)
        .json(&json!({ "apps": [
            { "mobileAppIdentifier": { "@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": "com.microsoft.skype.teams" } },
            { "mobileAppIdentifier": { "@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": OUTLOOK } },
        ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let apps = get(&app, &token, &format!("/v1.0{POLICIES}/{id}/apps")).await;
    let ids: Vec<&str> = apps["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["com.microsoft.skype.teams.ios", "com.microsoft.office.outlook.ios"]
    );
    assert_eq!(
        apps["value"][0]["mobileAppIdentifier"]["@odata.type"],
        "#microsoft.graph.iosMobileAppIdentifier"
    );
    let r = app
        .graph(Method::POST, &format!("/beta{POLICIES}/{id}/targetApps"), &token)
        .json(&json!({ "apps": [{ "mobileAppIdentifier": { "@odata.type": "#microsoft.graph.androidMobileAppIdentifier", "packageId": "com.microsoft.office.outlook" } }] }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    let assignments = get(&app, &token, &format!("/beta{POLICIES}/{id}/assignments")).await;
    assert_eq!(assignments["value"][0]["target"]["groupId"], group.as_str());
    let expanded = get(&app, &token, &format!("/beta{POLICIES}/{id}?$expand=apps,assignments")).await;
    assert_eq!(expanded["apps"].as_array().unwrap().len(), 2);
    assert_eq!(expanded["assignments"].as_array().unwrap().len(), 1);
    // App protection targets users: not all devices.
    let r = app
        .graph(Method::POST, &format!("/beta{POLICIES}/{id}/assign"), &token)
        .json(
            &json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }),
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // An Android policy through the polymorphic set; both in managedAppPolicies.
    let r = app
        .graph(Method::POST, "/beta/deviceAppManagement/managedAppPolicies", &token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.androidManagedAppProtection",
            "displayName": "Android apps",
            "apps": [{ "mobileAppIdentifier": { "@odata.type": "#microsoft.graph.androidMobileAppIdentifier", "packageId": "com.microsoft.office.outlook" } }],
        }))
        .send()
        .await
        .unwrap();
    let android = json_of(r, 201).await;
    let aid = android["id"].as_str().unwrap();
    assert_eq!(android["@odata.type"], "#microsoft.graph.androidManagedAppProtection");
    assert_eq!(android["maximumAllowedDeviceThreatLevel"], "notConfigured");
    let all = get(&app, &token, "/v1.0/deviceAppManagement/managedAppPolicies").await;
    assert_eq!(all["value"].as_array().unwrap().len(), 2);
    let ios_only = get(&app, &token, &format!("/v1.0{POLICIES}")).await;
    assert_eq!(ios_only["value"].as_array().unwrap().len(), 1);
    // Each platform's path finds only its own policies.
    let r = app
        .graph(Method::GET, &format!("/v1.0{POLICIES}/{aid}"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;

    // Permissions: DeviceManagementApps.Read.All reads and does not write.
    let (cid, secret) = app.register_app(&t.id, &["DeviceManagementApps.Read.All"]).await;
    let reader = app.token(&t.id, &cid, &secret).await;
    get(&app, &reader, &format!("/beta{POLICIES}/{id}")).await;
    let r = app
        .graph(Method::DELETE, &format!("/beta{POLICIES}/{id}"), &reader)
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;
    let (cid, secret) = app
        .register_app(&t.id, &["DeviceManagementConfiguration.Read.All"])
        .await;
    let other = app.token(&t.id, &cid, &secret).await;
    let r = app
        .graph(Method::GET, &format!("/beta{POLICIES}"), &other)
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;

    for path in [
        format!("/beta{POLICIES}/{id}"),
        format!("/beta/deviceAppManagement/managedAppPolicies/{aid}"),
    ] {
        let r = app.graph(Method::DELETE, &path, &token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r = app.graph(Method::GET, &path, &token).send().await.unwrap();
        assert_error(r, 404, "ResourceNotFound").await;
    }
}

/// A protected app on an enrolled device: the partner reports the managed device once, and app
/// protection uses the report when the connector's app protection toggle is on.
async fn an_enrolled_device_reports_once_for_compliance_and_app_protection(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (user, group) = user_in_group(&app, &token, "diego@contoso.example").await;
    let partner = connector(
        &app,
        &t,
        &token,
        LOOKOUT,
        json!({ "iosEnabled": true, "iosMobileApplicationManagementEnabled": true }),
    )
    .await;
    let entra = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&json!({ "deviceName": "Diego's iPhone", "operatingSystem": "iOS", "osVersion": "17.4", "userId": user, "azureADDeviceId": entra }))
        .send()
        .await
        .unwrap();
    let enrolled = json_of(r, 201).await;
    let managed = enrolled["id"].as_str().unwrap().to_string();
    let reg = register(&app, &t, &user, entra).await;
    assert_eq!(reg["managedDeviceId"], managed.as_str());
    outlook_policy(&app, &token, &group, "low", "block").await;

    // Reported by its managed device id: compliance and app protection both see it.
    assert_eq!(report(&app, &t, &partner, &managed, "high").await["status"], "accepted");
    let c = check_in(&app, &t, reg["id"].as_str().unwrap()).await;
    assert_eq!(c["access"], "blocked");
    assert_eq!(c["reports"][0]["partnerReportedThreatState"], "highSeverity");
    let d = get(
        &app,
        &token,
        &format!("/v1.0/deviceManagement/managedDevices/{managed}"),
    )
    .await;
    assert_eq!(d["partnerReportedThreatState"], "highSeverity");
    // An Android app cannot be registered on an enrolled iPhone.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/appRegistrations", t.id))
        .json(&json!({ "userId": user, "azureADDeviceId": entra, "platform": "android", "appIdentifier": "com.microsoft.office.outlook", "platformVersion": "14", "deviceName": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    // The same app twice for the user on the device conflicts.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/appRegistrations", t.id))
        .json(&json!({ "userId": user, "azureADDeviceId": entra, "platform": "iOS", "appIdentifier": OUTLOOK.to_lowercase(), "platformVersion": "17.4", "deviceName": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "Conflict").await;

    // Removing the app removes its registration; a tenant's reset removes the rest.
    let rid = reg["id"].as_str().unwrap();
    let r = app
        .req(
            Method::DELETE,
            &format!("/_emulator/tenants/{}/appRegistrations/{rid}", t.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(
            Method::GET,
            &format!("/beta/deviceAppManagement/managedAppRegistrations/{rid}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    assert_eq!(app.events(&t, "appUnregistered").await.len(), 1);
    register(&app, &t, &user, "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d").await;
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/reset", t.id))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/appRegistrations", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["value"], json!([]));
}
