//! Every reference in a request resolves inside the caller's tenant: another tenant's groups
//! and templates are unknown ids there, refused as such, and leave nothing changed.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::directory::{add_member, create_group, create_user};

const POLICIES: &str = "/beta/deviceManagement/deviceCompliancePolicies";

async fn create_template(app: &TestApp, token: &str) -> String {
    let r = app
        .graph(
            Method::POST,
            "/beta/deviceManagement/notificationMessageTemplates",
            token,
        )
        .json(&json!({ "displayName": "MTD warning", "defaultLocale": "en-us" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

fn policy_with_action(action: Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.iosCompliancePolicy",
        "displayName": "iOS",
        "deviceThreatProtectionEnabled": true,
        "deviceThreatProtectionRequiredSecurityLevel": "low",
        "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
            { "actionType": "block", "gracePeriodHours": 0 },
            action
        ]}]
    })
}

fn group_target(kind: &str, group: &str) -> Value {
    json!({ "target": { "@odata.type": format!("#microsoft.graph.{kind}"), "groupId": group } })
}

async fn enroll(app: &TestApp, t: &Tenant, body: Value) -> reqwest::Response {
    app.req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn another_tenants_groups_and_templates_are_unknown_ids(app: TestApp) {
    let a = app.create_tenant().await;
    let a_token = app.admin_token(&a).await;
    let a_group = create_group(&app, &a_token, "A staff").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_template = create_template(&app, &a_token).await;

    let b = app.create_tenant().await;
    let token = app.admin_token(&b).await;
    let b_group = create_group(&app, &token, "B staff").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_template = create_template(&app, &token).await;

    // A notification action naming A's template, or CC-ing A's group, is refused at create.
    let notify = |template: &str, cc: &[&str]| json!({ "actionType": "notification", "gracePeriodHours": 0, "notificationTemplateId": template, "notificationMessageCCList": cc });
    for (action, property) in [
        (notify(&a_template, &[]), "notificationTemplateId"),
        (notify(&b_template, &[&a_group]), "notificationMessageCCList"),
        (notify("not-a-guid", &[]), "notificationTemplateId"),
    ] {
        let r = app
            .graph(Method::POST, POLICIES, &token)
            .json(&policy_with_action(action))
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains(property), "{message}");
    }
    let listed: Value = app
        .graph(Method::GET, POLICIES, &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]), "nothing was created");

    // B's own template and group, and Intune's empty GUID for "no template", are accepted.
    let r = app
        .graph(Method::POST, POLICIES, &token)
        .json(&policy_with_action(notify(&b_template.to_uppercase(), &[&b_group])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let policy = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = app
        .graph(Method::POST, POLICIES, &token)
        .json(&policy_with_action(notify("00000000-0000-0000-0000-000000000000", &[])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // scheduleActionsForRules naming A's template: refused, the policy's actions unchanged.
    let r = app
        .graph(Method::POST, &format!("{POLICIES}/{policy}/scheduleActionsForRules"), &token)
        .json(&json!({ "deviceComplianceScheduledActionForRules": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
            { "actionType": "block", "gracePeriodHours": 0 },
            notify(&a_template, &[])
        ]}] }))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains(&a_template), "{message}");
    let actions: Value = app
        .graph(
            Method::GET,
            &format!("{POLICIES}/{policy}?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(actions.to_string().contains(&b_template), "{actions}");
    assert!(!actions.to_string().contains(&a_template), "{actions}");

    // Assigning to A's group (included or excluded), by `assign` or by adding one assignment.
    for kind in ["groupAssignmentTarget", "exclusionGroupAssignmentTarget"] {
        let r = app
            .graph(Method::POST, &format!("{POLICIES}/{policy}/assign"), &token)
            .json(&json!({ "assignments": [group_target("groupAssignmentTarget", &b_group), group_target(kind, &a_group)] }))
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains("groupId") && message.contains(&a_group), "{message}");
        let r = app
            .graph(Method::POST, &format!("{POLICIES}/{policy}/assignments"), &token)
            .json(&group_target(kind, &a_group))
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    let assigned: Value = app
        .graph(Method::GET, &format!("{POLICIES}/{policy}/assignments"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(assigned["value"], json!([]), "nothing was assigned");
    let r = app
        .graph(Method::POST, &format!("{POLICIES}/{policy}/assign"), &token)
        .json(&json!({ "assignments": [group_target("groupAssignmentTarget", &b_group)] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn device_ids_are_unique_per_tenant(app: TestApp) {
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let id = uuid::Uuid::new_v4().to_string();
    let entra = uuid::Uuid::new_v4().to_string();
    let body = |name: &str| json!({ "id": id, "azureADDeviceId": entra, "deviceName": name, "operatingSystem": "iOS", "osVersion": "17.5" });
    assert_eq!(enroll(&app, &a, body("a-phone")).await.status(), 201);
    // B knows nothing of A's device: the same ids are free in B, and refusing them would tell
    // B that they exist elsewhere.
    assert_eq!(enroll(&app, &b, body("b-phone")).await.status(), 201);
    // Inside one tenant they are unique.
    let again = enroll(&app, &b, body("b-phone-2")).await;
    assert_error(again, 409, "Conflict").await;
    let same_entra =
        json!({ "azureADDeviceId": entra, "deviceName": "b-phone-3", "operatingSystem": "iOS", "osVersion": "17.5" });
    assert_error(enroll(&app, &b, same_entra).await, 409, "Conflict").await;

    // Each tenant reads its own device under the shared id.
    for (t, name) in [(&a, "a-phone"), (&b, "b-phone")] {
        let token = app.admin_token(t).await;
        let d: Value = app
            .graph(
                Method::GET,
                &format!("/v1.0/deviceManagement/managedDevices/{id}"),
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["deviceName"], name, "{d}");
    }
}

async fn another_tenants_users_and_groups_are_unknown_ids(app: TestApp) {
    let a = app.create_tenant().await;
    let a_token = app.admin_token(&a).await;
    let a_user = create_user(&app, &a_token, "adele@a.example", "Adele").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_group = create_group(&app, &a_token, "A staff").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let b = app.create_tenant().await;
    let token = app.admin_token(&b).await;
    let b_group = create_group(&app, &token, "B staff").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A device enrolled into B for A's user.
    let r = enroll(
        &app,
        &b,
        json!({ "deviceName": "b-phone", "operatingSystem": "iOS", "osVersion": "17.5", "userId": a_user }),
    )
    .await;
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains(&a_user), "{message}");
    // A's user or group as a member of B's group.
    for reference in [format!("users/{a_user}"), format!("directoryObjects/{a_group}")] {
        let r = add_member(&app, &token, &b_group, &reference).await;
        assert_error(r, 404, "Request_ResourceNotFound").await;
    }
    // A's group as the members of a role assignment.
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/roleAssignments", &token)
        .json(&json!({
            "displayName": "helpdesk",
            "roleDefinition@odata.bind": "https://graph.microsoft.com/beta/deviceManagement/roleDefinitions/9e0cc482-82df-4ab2-a24c-0c23a3f52e1e",
            "members": [a_group],
            "resourceScopes": ["/"]
        }))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains("members"), "{message}");
    // A's custom role definition bound by B's role assignment.
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/roleDefinitions", &a_token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition",
            "displayName": "A's role",
            "rolePermissions": [{ "resourceActions": [{ "allowedResourceActions": ["Microsoft.Intune_ManagedDevices_Read"], "notAllowedResourceActions": [] }] }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let a_role = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/roleAssignments", &token)
        .json(&json!({
            "displayName": "borrowed",
            "roleDefinition@odata.bind": format!("https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{a_role}')"),
            "members": [b_group],
            "resourceScopes": []
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(status == 400 || status == 404, "{status}: {text}");
    assert!(text.contains(&a_role), "{text}");
    let members: Value = app
        .graph(Method::GET, &format!("/v1.0/groups/{b_group}/members"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members["value"], json!([]), "{members}");
}

both_backends!(
    another_tenants_groups_and_templates_are_unknown_ids,
    another_tenants_users_and_groups_are_unknown_ids,
    device_ids_are_unique_per_tenant
);
