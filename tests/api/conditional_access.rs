//! Conditional Access on compliance: the seeds' story end to end. A policy requires a compliant
//! device for Office 365; the user's iPhone signs in while compliant, is refused (AADSTS53000)
//! once the partner reports a high threat, on a new sign-in and on a refresh, and gets access
//! back once the partner reports it secured. The sign-in log shows each sign-in with the policy;
//! a report-only copy never refuses. `evaluate` (what-if) covers exclusions, `All`, platforms
//! and the AND and OR operators.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::compliance::{report, settle};
use crate::reports::phones_under_a_threat_policy;

both_backends!(
    a_noncompliant_phone_loses_office_365_until_its_threat_is_remediated,
    what_if_explains_exclusions_all_platforms_and_operators,
    policies_need_their_permissions_and_valid_documents,
);

const PASSWORD: &str = "Pa55w.rd!";
const MAIL: &str = "https://outlook.office365.com/Mail.Read offline_access";
const POLICIES: &str = "/v1.0/identity/conditionalAccess/policies";

pub(crate) async fn create_ca_policy(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app
        .graph(Method::POST, POLICIES, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{body}");
    r.json().await.unwrap()
}

/// The device's credential, from the control plane.
pub(crate) async fn credential(app: &TestApp, t: &Tenant, device: &str) -> String {
    let r = app
        .req(
            Method::POST,
            &format!("/_emulator/tenants/{}/devices/{device}/credential", t.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["header"], "x-ms-RefreshTokenCredential");
    body["credential"].as_str().unwrap().to_string()
}

async fn sign_in(app: &TestApp, t: &Tenant, client: &str, device: Option<&str>, scope: &str) -> Response {
    let mut r = app.req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id)).form(&[
        ("grant_type", "password"),
        ("client_id", client),
        ("username", "megan@contoso.example"),
        ("password", PASSWORD),
        ("scope", scope),
    ]);
    if let Some(c) = device {
        r = r.header("x-ms-RefreshTokenCredential", c);
    }
    r.send().await.unwrap()
}

async fn refresh(app: &TestApp, t: &Tenant, client: &str, token: &str) -> Response {
    app.req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", token),
            ("scope", MAIL),
        ])
        .send()
        .await
        .unwrap()
}

/// Asserts Entra's 400 refusal with `error` and the AADSTS code.
async fn refused(r: Response, error: &str, code: u64) -> Value {
    crate::rbac::entra_error(r, 400, error, code).await
}

async fn sign_ins(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app
        .graph(Method::GET, &format!("/v1.0/auditLogs/signIns{query}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["value"].as_array().unwrap().clone()
}

async fn a_noncompliant_phone_loses_office_365_until_its_threat_is_remediated(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (_, ids, partner) = phones_under_a_threat_policy(&app, &t, &token, &["megan-iphone"]).await;
    let phone = &ids[0];
    report(&app, &t, &partner, phone, "secured").await;
    settle(&app, &t).await;
    let groups: Value = app
        .graph(Method::GET, "/v1.0/groups?$filter=displayName eq 'Phones'", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = groups["value"][0]["id"].as_str().unwrap().to_string();
    let (client, _) = app.register_app(&t.id, &[]).await;

    // 1. An enabled policy requires a compliant device for Office 365, for the user's group.
    let policy = create_ca_policy(
        &app,
        &token,
        json!({
            "displayName": "Office 365 from compliant devices",
            "state": "enabled",
            "conditions": {
                "users": { "includeGroups": [gid] },
                "applications": { "includeApplications": ["Office365"] },
                "clientAppTypes": ["all"]
            },
            "grantControls": { "operator": "OR", "builtInControls": ["compliantDevice"] }
        }),
    )
    .await;
    let pid = policy["id"].as_str().unwrap().to_string();
    assert_eq!(
        policy["conditions"]["users"]["excludeUsers"],
        json!([]),
        "Graph's defaults are filled in"
    );

    // 2. The compliant iPhone signs in to Exchange Online.
    let phone_credential = credential(&app, &t, phone).await;
    let r = sign_in(&app, &t, &client, Some(&phone_credential), MAIL).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["scope"], "https://outlook.office365.com/Mail.Read");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    // Without the device's identity, the device is unknown: not managed.
    refused(sign_in(&app, &t, &client, None, MAIL).await, "invalid_grant", 530003).await;
    // Microsoft Graph is not part of Office 365: the policy does not apply.
    let graph = sign_in(&app, &t, &client, None, "https://graph.microsoft.com/User.Read.All").await;
    assert_eq!(graph.status(), 200);

    // 3. The partner reports high: the device is noncompliant, the next sign-in and the next
    // refresh are refused.
    report(&app, &t, &partner, phone, "high").await;
    settle(&app, &t).await;
    let body = refused(
        sign_in(&app, &t, &client, Some(&phone_credential), MAIL).await,
        "invalid_grant",
        53000,
    )
    .await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("Device is not in required device state: compliant."));
    refused(refresh(&app, &t, &client, &refresh_token).await, "invalid_grant", 53000).await;

    // 4. The sign-in log shows the refusal, with the policy and the device.
    let failed = sign_ins(&app, &token, "?$filter=conditionalAccessStatus eq 'failure'&$top=1").await;
    let last = &failed[0];
    assert_eq!(last["status"]["errorCode"], 53000);
    assert_eq!(last["userPrincipalName"], "megan@contoso.example");
    assert_eq!(last["resourceId"], "00000002-0000-0ff1-ce00-000000000000");
    assert_eq!(last["deviceDetail"]["isCompliant"], false);
    assert_eq!(last["deviceDetail"]["isManaged"], true);
    assert_eq!(last["isInteractive"], false, "the refresh came last");
    let applied = &last["appliedConditionalAccessPolicies"][0];
    assert_eq!(
        (applied["id"].as_str(), applied["result"].as_str()),
        (Some(pid.as_str()), Some("failure"))
    );
    assert_eq!(applied["enforcedGrantControls"], json!(["Require compliant device"]));
    let by_code = sign_ins(&app, &token, "?$filter=status/errorCode eq 53000").await;
    assert_eq!(by_code.len(), 2, "the sign-in and the refresh");
    let all = sign_ins(&app, &token, "").await;
    assert_eq!(all.len(), 5, "every sign-in is logged, newest first");
    assert!(all
        .windows(2)
        .all(|w| w[0]["createdDateTime"].as_str() >= w[1]["createdDateTime"].as_str()));

    // 5. The partner reports secured: the next sign-in, and the refresh token refused before,
    // work again.
    report(&app, &t, &partner, phone, "secured").await;
    settle(&app, &t).await;
    assert_eq!(
        sign_in(&app, &t, &client, Some(&phone_credential), MAIL).await.status(),
        200
    );
    let r = refresh(&app, &t, &client, &refresh_token).await;
    assert_eq!(
        r.status(),
        200,
        "a refused refresh token is kept for after the remediation"
    );

    // 6. A report-only copy never refuses, but is logged; the original, disabled, is not enabled.
    let mut copy = policy.clone();
    for key in [
        "id",
        "@odata.context",
        "@odata.type",
        "createdDateTime",
        "modifiedDateTime",
    ] {
        copy.as_object_mut().unwrap().remove(key);
    }
    copy["displayName"] = json!("Office 365 from compliant devices (report-only)");
    copy["state"] = json!("enabledForReportingButNotEnforced");
    let copy = create_ca_policy(&app, &token, copy).await;
    let r = app
        .graph(Method::PATCH, &format!("{POLICIES}/{pid}"), &token)
        .json(&json!({ "state": "disabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    report(&app, &t, &partner, phone, "high").await;
    settle(&app, &t).await;
    assert_eq!(
        sign_in(&app, &t, &client, Some(&phone_credential), MAIL).await.status(),
        200
    );
    let last = &sign_ins(&app, &token, "?$top=1").await[0];
    assert_eq!(last["conditionalAccessStatus"], "notApplied");
    let results: Vec<(Value, Value)> = last["appliedConditionalAccessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].clone(), a["result"].clone()))
        .collect();
    assert_eq!(
        results,
        [
            (json!(pid), json!("notEnabled")),
            (copy["id"].clone(), json!("reportOnlyFailure"))
        ]
    );
}

async fn evaluate(
    app: &TestApp,
    token: &str,
    user: &str,
    apps: &[&str],
    conditions: Value,
) -> Vec<(String, bool, Value)> {
    let r = app
        .graph(Method::POST, "/v1.0/identity/conditionalAccess/evaluate", token)
        .json(&json!({
            "signInIdentity": { "@odata.type": "#microsoft.graph.userSignIn", "userId": user },
            "signInContext": { "@odata.type": "#microsoft.graph.applicationContext", "includeApplications": apps },
            "signInConditions": conditions,
            "appliedPoliciesOnly": false
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["displayName"].as_str().unwrap().to_string(),
                p["policyApplies"].as_bool().unwrap(),
                p["@emulator.evaluation"].clone(),
            )
        })
        .collect()
}

async fn what_if_explains_exclusions_all_platforms_and_operators(app: TestApp) {
    use crate::directory::{add_member, create_group, create_user};
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "lee@contoso.example", "Lee Gu").await;
    let uid = user["id"].as_str().unwrap();
    let group = create_group(&app, &token, "Break glass").await;
    let gid = group["id"].as_str().unwrap();
    let exo = "00000002-0000-0ff1-ce00-000000000000";
    let policy = |name: &str, users: Value, platforms: Value, operator: &str, controls: Value| {
        json!({
            "displayName": name,
            "state": "enabled",
            "conditions": { "users": users, "applications": { "includeApplications": ["All"] }, "platforms": platforms },
            "grantControls": { "operator": operator, "builtInControls": controls }
        })
    };
    create_ca_policy(
        &app,
        &token,
        policy(
            "all but break glass",
            json!({ "includeUsers": ["All"], "excludeGroups": [gid] }),
            Value::Null,
            "OR",
            json!(["compliantDevice"]),
        ),
    )
    .await;
    create_ca_policy(
        &app,
        &token,
        policy(
            "android only",
            json!({ "includeUsers": ["All"] }),
            json!({ "includePlatforms": ["android"] }),
            "OR",
            json!(["block"]),
        ),
    )
    .await;
    create_ca_policy(
        &app,
        &token,
        policy(
            "device and app",
            json!({ "includeUsers": [uid] }),
            json!({ "includePlatforms": ["all"], "excludePlatforms": ["android"] }),
            "AND",
            json!(["compliantDevice", "compliantApplication"]),
        ),
    )
    .await;

    // An iPhone that is compliant: "All" applies, Android's block does not, AND fails on the app.
    let results = evaluate(
        &app,
        &token,
        uid,
        &[exo],
        json!({ "devicePlatform": "iOS", "deviceInfo": { "isCompliant": true } }),
    )
    .await;
    let by_name = |name: &str| results.iter().find(|r| r.0 == name).unwrap().clone();
    assert!(by_name("all but break glass").1);
    assert_eq!(by_name("all but break glass").2["grantControlsSatisfied"], true);
    assert!(!by_name("android only").1, "{:?}", by_name("android only").2);
    assert!(by_name("device and app").1);
    assert_eq!(
        by_name("device and app").2["refusalCode"],
        53002,
        "AND needs the app too"
    );

    // On Android: the block applies (53003), the AND policy excludes the platform.
    let results = evaluate(
        &app,
        &token,
        uid,
        &[exo],
        json!({ "devicePlatform": "android", "deviceInfo": { "isCompliant": true } }),
    )
    .await;
    let by_name = |name: &str| results.iter().find(|r| r.0 == name).unwrap().clone();
    assert_eq!(by_name("android only").2["refusalCode"], 53003);
    assert!(!by_name("device and app").1);

    // In the excluded group, "All" no longer reaches the user.
    add_member(&app, &token, gid, &format!("users/{uid}")).await;
    let results = evaluate(
        &app,
        &token,
        uid,
        &[exo],
        json!({ "devicePlatform": "iOS", "deviceInfo": { "isCompliant": false } }),
    )
    .await;
    let all_but = results.iter().find(|r| r.0 == "all but break glass").unwrap();
    assert!(!all_but.1);
    assert!(all_but.2["reasons"][0]
        .as_str()
        .unwrap()
        .contains("excludes the user's group"));

    // The control plane answers the same, and explains a known device's compliance.
    let (_, ids, _) = crate::reports::phones_under_a_threat_policy(&app, &t, &token, &["megan-iphone"]).await;
    let device: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{}", ids[0]),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = app
        .req(
            Method::POST,
            &format!("/_emulator/tenants/{}/conditionalAccess/evaluate", t.id),
        )
        .json(&json!({
            "signInIdentity": { "@odata.type": "#microsoft.graph.userSignIn", "userId": uid },
            "signInContext": { "@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [exo] },
            "signInConditions": { "deviceInfo": { "deviceId": device["azureADDeviceId"] } },
            "appliedPoliciesOnly": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let applied: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        applied,
        ["device and app"],
        "the user is excluded from the first, the phone is no Android"
    );
    let compliance = &body["value"][0]["@emulator.evaluation"]["deviceCompliance"];
    assert!(
        compliance.is_object() && !compliance.as_object().unwrap().is_empty(),
        "{body}"
    );

    // OR: a compliant device is enough where the app is not.
    create_ca_policy(
        &app,
        &token,
        policy(
            "device or app",
            json!({ "includeUsers": [uid] }),
            Value::Null,
            "OR",
            json!(["compliantDevice", "compliantApplication"]),
        ),
    )
    .await;
    let results = evaluate(
        &app,
        &token,
        uid,
        &[exo],
        json!({ "devicePlatform": "iOS", "deviceInfo": { "isCompliant": true } }),
    )
    .await;
    let or = results.iter().find(|r| r.0 == "device or app").unwrap();
    assert_eq!(or.2["grantControlsSatisfied"], true);
}

async fn policies_need_their_permissions_and_valid_documents(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (client, secret) = app.register_app(&t.id, &["User.Read.All"]).await;
    let weak = app.token(&t.id, &client, &secret).await;
    let r = app.graph(Method::GET, POLICIES, &weak).send().await.unwrap();
    assert_error(r, 403, "Forbidden").await;
    for bad in [
        json!({ "state": "enabled", "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] } } }),
        json!({ "displayName": "x", "state": "on", "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] } } }),
        json!({ "displayName": "x", "state": "enabled", "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] } }, "grantControls": { "operator": "OR", "builtInControls": ["teleport"] } }),
        json!({ "displayName": "x", "state": "enabled", "conditions": { "applications": { "includeApplications": ["All"] } } }),
    ] {
        let r = app
            .graph(Method::POST, POLICIES, &token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    let created = create_ca_policy(
        &app,
        &token,
        json!({ "displayName": "block legacy", "state": "disabled", "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] }, "clientAppTypes": ["exchangeActiveSync", "other"] }, "grantControls": { "operator": "OR", "builtInControls": ["block"] } }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let r = app
        .graph(Method::GET, &format!("{POLICIES}/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["displayName"], "block legacy");
    assert_eq!(got["@odata.type"], "#microsoft.graph.conditionalAccessPolicy");
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

    // Bad input to what-if, the sign-in log, the device credential and the token endpoint.
    let r = app
        .graph(Method::POST, "/v1.0/identity/conditionalAccess/evaluate", &token)
        .json(&json!({ "signInContext": { "includeApplications": ["All"] } }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .graph(Method::GET, "/v1.0/auditLogs/signIns?$filter=userId eq", &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .req(
            Method::POST,
            &format!(
                "/_emulator/tenants/{}/devices/0b7e0000-0000-4000-8000-000000000000/credential",
                t.id
            ),
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    let both = "https://outlook.office365.com/Mail.Read https://graph.microsoft.com/User.Read.All";
    refused(sign_in(&app, &t, &client, None, both).await, "invalid_scope", 28000).await;
}
