//! The isolation sweep (product brief 8), generated from `openapi.yaml`: every Graph and
//! partner route that takes an id is called, with every method it documents, by tenant B with
//! B's tokens and tenant A's ids. None may answer with success, none may show what A holds, and
//! A's data must read the same afterwards. (The control plane is the operator's, guarded by the
//! admin key rather than by tenant, and the identity routes name their tenant in the path.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{Tenant, TestApp};
use crate::compliance::create_connector;
use crate::directory::{add_member, create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT, ZIMPERIUM};
use crate::rbac::assign_role;

both_backends!(another_tenants_ids_read_and_change_nothing);

/// A's objects, and what A reads of them.
struct TenantA {
    ids: Vec<(&'static str, String)>,
    /// Names only A's objects carry: B must never see them.
    secrets: Vec<String>,
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.graph(Method::GET, path, token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn populate(app: &TestApp, a: &Tenant, token: &str) -> TenantA {
    let user = create_user(app, token, "secret-adele@a.example", "Secret Adele").await;
    let group = create_group(app, token, "Secret staff").await;
    assert_eq!(
        add_member(app, token, &id(&group), &format!("users/{}", id(&user)))
            .await
            .status(),
        204
    );
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", a.id))
        .json(&json!({ "deviceName": "secret-phone", "operatingSystem": "iOS", "osVersion": "17.5", "userId": id(&user) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let device = id(&r.json::<Value>().await.unwrap());
    let r = app
        .req(Method::PUT, &format!("/_emulator/tenants/{}/devices/{device}/apps", a.id))
        .json(&json!({ "value": [{ "bundleId": "com.example.secret", "displayName": "Secret App", "version": "1.0", "managed": true }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    create_connector(app, token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let r = app
        .graph(
            Method::POST,
            "/beta/deviceManagement/notificationMessageTemplates",
            token,
        )
        .json(
            &json!({ "displayName": "Secret template", "defaultLocale": "en-us", "localizedNotificationMessages": [
            { "locale": "en-us", "isDefault": true, "subject": "Secret subject", "messageTemplate": "Secret body" }
        ] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let template = id(&r.json::<Value>().await.unwrap());
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/deviceCompliancePolicies", token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "Secret policy",
            "osMinimumVersion": "18.0",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 0 }
            ]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let policy = id(&r.json::<Value>().await.unwrap());
    let r = app
        .graph(Method::POST, &format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}/assign"), token)
        .json(&json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": id(&group) } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/roleDefinitions", token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition",
            "displayName": "Secret role",
            "rolePermissions": [{ "resourceActions": [{ "allowedResourceActions": ["Microsoft.Intune_ManagedDevices_Read"], "notAllowedResourceActions": [] }] }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let role = id(&r.json::<Value>().await.unwrap());
    let role_assignment = id(&assign_role(app, token, &role, &[&id(&group)]).await);
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/settle", a.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Ids only A's own reads reveal.
    let policies = "/beta/deviceManagement/deviceCompliancePolicies";
    let device_status = id(&get(app, token, &format!("{policies}/{policy}/deviceStatuses")).await["value"][0]);
    let user_status = id(&get(app, token, &format!("{policies}/{policy}/userStatuses")).await["value"][0]);
    let detected_app = id(&get(app, token, "/beta/deviceManagement/detectedApps").await["value"][0]);
    let assignment = id(&get(app, token, &format!("{policies}/{policy}/assignments")).await["value"][0]);
    TenantA {
        ids: vec![
            ("userId", id(&user)),
            ("groupId", id(&group)),
            ("memberId", id(&user)),
            ("deviceId", device),
            ("detectedAppId", detected_app),
            ("connectorId", ZIMPERIUM.to_string()),
            ("templateId", template.clone()),
            ("messageId", format!("{template}_en-us")),
            ("policyId", policy.clone()),
            ("assignmentId", assignment),
            ("statusId", device_status),
            ("stateId", policy),
            ("roleDefinitionId", role),
            ("roleAssignmentId", role_assignment),
        ],
        secrets: [
            "Secret Adele",
            "Secret staff",
            "secret-phone",
            "Secret App",
            "Secret template",
            "Secret subject",
            "Secret policy",
            "Secret role",
        ]
        .map(str::to_string)
        .into_iter()
        .chain([user_status])
        .collect(),
    }
}

/// What A reads of everything it holds.
async fn snapshot(app: &TestApp, token: &str, a: &TenantA) -> Vec<Value> {
    let of = |name: &str| a.ids.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let (user, group, device, policy, template) = (
        of("userId"),
        of("groupId"),
        of("deviceId"),
        of("policyId"),
        of("templateId"),
    );
    let mut out = Vec::new();
    for path in [
        "/beta/users".to_string(),
        "/beta/groups".to_string(),
        format!("/beta/groups/{group}/members"),
        "/beta/deviceManagement/managedDevices".to_string(),
        format!("/beta/deviceManagement/managedDevices/{device}/detectedApps"),
        format!("/beta/deviceManagement/managedDevices/{device}/deviceCompliancePolicyStates"),
        format!("/beta/users/{user}/managedDevices"),
        "/beta/deviceManagement/detectedApps".to_string(),
        "/beta/deviceManagement/mobileThreatDefenseConnectors".to_string(),
        "/beta/deviceManagement/deviceCompliancePolicies?$expand=assignments,scheduledActionsForRule($expand=scheduledActionConfigurations)".to_string(),
        format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}/deviceStatuses"),
        format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}/userStatuses"),
        format!("/beta/deviceManagement/notificationMessageTemplates/{template}/localizedNotificationMessages"),
        "/beta/deviceManagement/notificationMessageTemplates".to_string(),
        "/beta/deviceManagement/roleDefinitions".to_string(),
        "/beta/deviceManagement/roleAssignments".to_string(),
        "/beta/deviceManagement".to_string(),
    ] {
        out.push(get(app, token, &path).await);
    }
    out
}

/// A body for the method and route that would change A's object if B could reach it.
fn body_for(method: &Method, template: &str, b_user: &str) -> Option<Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    Some(if template.ends_with("/members/$ref") {
        json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{b_user}") })
    } else if template.ends_with("/assign") {
        json!({ "assignments": [] })
    } else if template.ends_with("/scheduleActionsForRules") {
        json!({ "deviceComplianceScheduledActionForRules": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [{ "actionType": "block", "gracePeriodHours": 0 }] }] })
    } else if template.ends_with("/assignments") {
        json!({ "target": { "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" } })
    } else if template.starts_with("/partner/") {
        json!({ "value": [] })
    } else {
        json!({ "displayName": "changed by B", "description": "changed by B" })
    })
}

/// Calls `path` with every method `item` documents, as B; returns how many calls it made.
#[allow(clippy::too_many_arguments)]
async fn probe(
    app: &TestApp,
    path: &str,
    template: &str,
    item: &Value,
    partner: bool,
    b_token: &str,
    b_partner: &str,
    b_user: &str,
    a_data: &TenantA,
) -> u32 {
    let mut probes = 0;
    for (method, _) in item.as_object().unwrap() {
        let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
            continue;
        };
        if !matches!(
            method,
            Method::GET | Method::POST | Method::PATCH | Method::PUT | Method::DELETE
        ) {
            continue;
        }
        let token = if partner { b_partner } else { b_token };
        let mut request = app.graph(method.clone(), path, token);
        if let Some(body) = body_for(&method, template, b_user) {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        probes += 1;
        assert!(
            status.is_client_error(),
            "B's {method} {path} answered {status}: {text}"
        );
        for secret in &a_data.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "B's {method} {path} shows A's '{secret}': {text}"
            );
        }
    }
    probes
}

async fn another_tenants_ids_read_and_change_nothing(app: TestApp) {
    let a = app.create_tenant().await;
    let a_token = app.admin_token(&a).await;
    let a_data = populate(&app, &a, &a_token).await;
    let before = snapshot(&app, &a_token, &a_data).await;

    let b = app.create_tenant().await;
    let b_token = app.admin_token(&b).await;
    let b_user = id(&create_user(&app, &b_token, "bob@b.example", "Bob").await);
    // B has a Lookout connector too, so its partner token is good; A's device is not B's.
    create_connector(&app, &b_token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let b_partner = partner_token(&app, &b.id, LOOKOUT).await;

    let document: Value =
        serde_yaml_ng::from_str(intune_mtd_emulator::http::ops::OPENAPI_YAML).expect("openapi.yaml parses");
    let mut probes = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let graph = template.starts_with("/v1.0/") || template.starts_with("/beta/");
        let partner = template.starts_with("/partner/");
        let ids_a: Vec<&(&str, String)> = a_data
            .ids
            .iter()
            .filter(|(name, _)| template.contains(&format!("{{{name}}}")))
            .collect();
        if !(graph || partner) || ids_a.is_empty() {
            continue;
        }
        {
            let mut path = template.clone();
            for (name, value) in &ids_a {
                path = path.replace(&format!("{{{name}}}"), value);
            }
            assert!(
                !path.contains('{'),
                "a parameter the sweep has no id of A for: {template}"
            );
            probes += probe(
                &app, &path, template, item, partner, &b_token, &b_partner, &b_user, &a_data,
            )
            .await;
        }
    }
    assert!(probes >= 40, "only {probes} probes");
    eprintln!(
        "isolation sweep ({:?}): {probes} probes of B with A's ids, none answered",
        app.backend
    );

    let a_token = app.admin_token(&a).await;
    assert_eq!(snapshot(&app, &a_token, &a_data).await, before, "A's data changed");
}
