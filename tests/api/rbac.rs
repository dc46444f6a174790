//! Intune RBAC: role definitions (built-in and custom), role assignments, resource operations,
//! effective permissions, delegated sign-in and the enforcement of roles on admin routes.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::directory::{add_member, create_group, create_user};

both_backends!(
    built_in_roles_are_there_with_their_ids_and_cannot_change,
    custom_roles_and_assignments_round_trip,
    password_grant_signs_users_in_with_entra_errors,
    delegated_callers_need_an_intune_role_for_the_action,
    directory_routes_need_directory_roles_not_intune_roles,
    resource_operations_and_effective_permissions,
    a_disabled_or_deleted_users_tokens_stop_working,
);

pub const ESM: &str = "c56d53a2-73d0-4502-b6bd-4a9d3dba28d5";
pub const READ_ONLY_OPERATOR: &str = "fa1d7878-e8cb-41a1-8254-0142355c9f84";
const CONNECTORS: &str = "/v1.0/deviceManagement/mobileThreatDefenseConnectors";
const LOOKOUT: &str = "2c7790de-8b02-4814-85cf-e0c59380dee8";
const PASSWORD: &str = "Pa55w.rd!";

/// Scopes an admin portal asks for.
const ADMIN_SCOPES: &str = "https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All \
     https://graph.microsoft.com/DeviceManagementConfiguration.ReadWrite.All \
     https://graph.microsoft.com/DeviceManagementRBAC.ReadWrite.All \
     https://graph.microsoft.com/User.Read.All https://graph.microsoft.com/User.ReadWrite.All openid offline_access";

pub async fn password_token_response(
    app: &TestApp,
    tenant: &str,
    client_id: &str,
    upn: &str,
    password: &str,
    scope: &str,
) -> Response {
    app.req(Method::POST, &format!("/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", upn),
            ("password", password),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn user_token(app: &TestApp, tenant: &str, client_id: &str, upn: &str, scope: &str) -> String {
    let r = password_token_response(app, tenant, client_id, upn, PASSWORD, scope).await;
    assert_eq!(r.status(), 200, "sign in {upn}");
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Asserts Entra's refusal (status, `error`, the AADSTS code leading the description); returns
/// its body.
pub(crate) async fn entra_error(r: Response, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}: ")),
        "{body}"
    );
    body
}

pub async fn assign_role(app: &TestApp, token: &str, role: &str, groups: &[&str]) -> Value {
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/roleAssignments", token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleAssignment",
            "displayName": "Assignment",
            "description": "test",
            "members": groups,
            "scopeMembers": groups,
            "scopeType": "allDevicesAndLicensedUsers",
            "resourceScopes": [],
            "roleDefinition@odata.bind": format!("https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role}')"),
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "assign {role}: {body}");
    body
}

async fn create_role(app: &TestApp, token: &str, name: &str, actions: &[&str]) -> Response {
    app.graph(Method::POST, "/v1.0/deviceManagement/roleDefinitions", token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.roleDefinition",
            "displayName": name,
            "description": "custom",
            "rolePermissions": [{ "resourceActions": [{ "allowedResourceActions": actions, "notAllowedResourceActions": [] }] }],
        }))
        .send()
        .await
        .unwrap()
}

/// A user with the password, in a new group; returns (user id, group id).
async fn user_in_group(app: &TestApp, admin: &str, upn: &str) -> (String, String) {
    let user = create_user(app, admin, upn, upn).await;
    let uid = user["id"].as_str().unwrap().to_string();
    let group = create_group(app, admin, &format!("{} admins", upn.split('@').next().unwrap())).await;
    let gid = group["id"].as_str().unwrap().to_string();
    assert_eq!(
        add_member(app, admin, &gid, &format!("users/{uid}")).await.status(),
        204
    );
    (uid, gid)
}

async fn setup(app: &TestApp) -> (Tenant, String, String) {
    let t = app.create_tenant().await;
    let admin = app.admin_token(&t).await;
    // A public client the users sign in through (its app permissions play no part).
    let (client, _) = app.register_app(&t.id, &[]).await;
    (t, admin, client)
}

async fn status(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> u16 {
    let mut req = app.graph(method, path, token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn built_in_roles_are_there_with_their_ids_and_cannot_change(app: TestApp) {
    let (t, admin, _) = setup(&app).await;
    let list: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/roleDefinitions", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "0bd113fe-6be5-400c-a28f-ae5553f9c0be",
        "2f9f4f7e-2d13-427b-adf2-361a1eef7ae8",
        "9e0cc482-82df-4ab2-a24c-0c23a3f52e1e",
        "c1d9fcbb-cba5-40b0-bf6b-527006585f4b",
        ESM,
        READ_ONLY_OPERATOR,
        "fb2603eb-3c87-4be3-8b5b-d58a5b4a0bc0",
        "9553af24-bd83-4ac3-a339-0e58f9e5478e",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let esm = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == ESM)
        .unwrap();
    assert_eq!(
        esm["@odata.type"],
        "#microsoft.graph.deviceAndAppManagementRoleDefinition"
    );
    assert_eq!(esm["displayName"], "Endpoint Security Manager");
    assert_eq!(esm["isBuiltIn"], true);
    assert!(
        esm.get("permissions").is_none() && esm.get("isBuiltInRoleDefinition").is_none(),
        "v1.0 property set"
    );
    let allowed: Vec<&str> = esm["rolePermissions"][0]["resourceActions"][0]["allowedResourceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for a in [
        "Microsoft.Intune_MobileThreatDefense_Read",
        "Microsoft.Intune_MobileThreatDefense_Modify",
        "Microsoft.Intune_DeviceCompliancePolices_Read",
        "Microsoft.Intune_DeviceCompliancePolices_Create",
        "Microsoft.Intune_DeviceCompliancePolices_Update",
        "Microsoft.Intune_DeviceCompliancePolices_Delete",
        "Microsoft.Intune_DeviceCompliancePolices_Assign",
        "Microsoft.Intune_DeviceCompliancePolices_ViewReports",
        "Microsoft.Intune_ManagedDevices_SetPrimaryUser",
        "Microsoft.Intune_RemoteTasks_RemoteLock",
        "Microsoft.Intune_RemoteTasks_ConfigurationManagerAction",
        "Microsoft.Intune_EpmPolicy_ModifyElevationRequests",
        "Microsoft.Intune_CloudAttach_CMPivot",
    ] {
        assert!(allowed.contains(&a), "ESM lacks {a}");
    }
    assert!(!allowed.contains(&"Microsoft.Intune_RemoteTasks_Wipe"));
    assert_eq!(allowed.len(), 92);

    // Beta shows both names of the flags and of the permissions, and the scope tags.
    let beta: Value = app
        .graph(
            Method::GET,
            &format!("/beta/deviceManagement/roleDefinitions('{ESM}')"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(beta["isBuiltInRoleDefinition"], true);
    assert_eq!(beta["permissions"], beta["rolePermissions"]);
    assert_eq!(beta["roleScopeTagIds"], json!(["0"]));
    assert!(beta["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/beta/$metadata#deviceManagement/roleDefinitions/$entity"));

    let r = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/deviceManagement/roleDefinitions/{ESM}"),
            &admin,
        )
        .json(&json!({ "displayName": "Mine now" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/deviceManagement/roleDefinitions/{READ_ONLY_OPERATOR}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // A reset keeps the built-ins and drops the custom roles.
    let custom: Value = create_role(&app, &admin, "Custom", &["Microsoft.Intune_Audit_Read"])
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/reset", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let admin = app.admin_token(&t).await;
    let after: Value = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/roleDefinitions?$count=true",
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["@odata.count"], 8);
    assert!(after["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != custom["id"]));
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/roleDefinitions/{ESM}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn custom_roles_and_assignments_round_trip(app: TestApp) {
    let (_t, admin, _) = setup(&app).await;
    let r = create_role(&app, &admin, "Bad", &["Microsoft.Intune_MobileThreatDefense_Launch"]).await;
    assert!(assert_error(r, 400, "BadRequest").await.contains("rolePermissions"));
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/roleDefinitions", &admin)
        .json(&json!({ "displayName": "Built", "isBuiltIn": true }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    let r = create_role(
        &app,
        &admin,
        "MTD reader",
        &["microsoft.intune_mobilethreatdefense_read"],
    )
    .await;
    assert_eq!(r.status(), 201);
    let role: Value = r.json().await.unwrap();
    let rid = role["id"].as_str().unwrap().to_string();
    assert_eq!(role["isBuiltIn"], false);
    assert_eq!(
        role["rolePermissions"][0]["resourceActions"][0]["allowedResourceActions"],
        json!(["Microsoft.Intune_MobileThreatDefense_Read"]),
        "stored in Intune's spelling"
    );
    let r = app
        .graph(Method::PATCH, &format!("/beta/deviceManagement/roleDefinitions/{rid}"), &admin)
        .json(&json!({ "description": "reads MTD", "permissions": [{ "actions": [], "resourceActions": [{ "allowedResourceActions": ["Microsoft.Intune_MobileThreatDefense_Read", "Microsoft.Intune_Audit_Read"] }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got: Value = app
        .graph(
            Method::GET,
            &format!("/beta/deviceManagement/roleDefinitions/{rid}"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["description"], "reads MTD");
    assert_eq!(got["displayName"], "MTD reader");
    assert_eq!(
        got["rolePermissions"][0]["resourceActions"][0]["allowedResourceActions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let filtered: Value = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/roleDefinitions?$filter=isBuiltIn eq false&$select=id,displayName",
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        filtered["value"],
        json!([{ "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition", "id": rid, "displayName": "MTD reader" }])
    );

    // Assignments bind the role and name groups of the directory.
    let group = create_group(&app, &admin, "Readers").await;
    let gid = group["id"].as_str().unwrap();
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/roleAssignments", &admin)
        .json(&json!({ "displayName": "x", "members": [gid] }))
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 400, "BadRequest")
        .await
        .contains("roleDefinition@odata.bind"));
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/roleAssignments", &admin)
        .json(&json!({ "displayName": "x", "members": ["6b1b3a3c-0000-4000-8000-000000000000"], "roleDefinition@odata.bind": format!("https://graph.microsoft.com/v1.0/deviceManagement/roleDefinitions('{rid}')") }))
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 400, "BadRequest").await.contains("members"));
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/roleAssignments", &admin)
        .json(&json!({ "displayName": "x", "members": [gid], "roleDefinition@odata.bind": "https://graph.microsoft.com/v1.0/deviceManagement/roleDefinitions('9d1a0000-0000-4000-8000-000000000000')" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/roleAssignments", &admin)
        .json(&json!({ "displayName": "Readers", "members": [gid], "resourceScopes": [gid], "roleDefinition@odata.bind": format!("https://graph.microsoft.com/v1.0/deviceManagement/roleDefinitions/{rid}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    let aid = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["members"], json!([gid]));
    assert!(a.get("scopeType").is_none(), "v1.0 has no scopeType");
    let beta: Value = app
        .graph(
            Method::GET,
            &format!("/beta/deviceManagement/roleAssignments('{aid}')"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        beta["@odata.type"],
        "#microsoft.graph.deviceAndAppManagementRoleAssignment"
    );
    assert_eq!(beta["scopeType"], "resourceScope");
    assert_eq!(beta["scopeMembers"], json!([]));
    assert_eq!(beta["resourceScopes"], json!([gid]));
    let r = app
        .graph(
            Method::PATCH,
            &format!("/beta/deviceManagement/roleAssignments/{aid}"),
            &admin,
        )
        .json(&json!({ "description": "all of them", "scopeType": "allLicensedUsers" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let of_role: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/roleDefinitions/{rid}/roleAssignments"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(of_role["value"].as_array().unwrap().len(), 1);
    assert_eq!(of_role["value"][0]["id"], aid);
    assert_eq!(of_role["value"][0]["description"], "all of them");
    assert_eq!(
        of_role["value"][0]["members"],
        json!([]),
        "the service shows no members there"
    );
    let of_esm: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/roleDefinitions/{ESM}/roleAssignments"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(of_esm["value"], json!([]));
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/roleDefinitions/{ESM}/roleAssignments/{aid}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;

    // A role still assigned stays; without assignments it goes.
    let r = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/deviceManagement/roleDefinitions/{rid}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v1.0/deviceManagement/roleAssignments/{aid}"),
            &admin,
            None
        )
        .await,
        204
    );
    assert_eq!(
        status(
            &app,
            Method::GET,
            &format!("/v1.0/deviceManagement/roleAssignments/{aid}"),
            &admin,
            None
        )
        .await,
        404
    );
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v1.0/deviceManagement/roleDefinitions/{rid}"),
            &admin,
            None
        )
        .await,
        204
    );
    assert_eq!(
        status(
            &app,
            Method::GET,
            &format!("/v1.0/deviceManagement/roleDefinitions/{rid}"),
            &admin,
            None
        )
        .await,
        404
    );

    // RBAC permissions gate app-only callers.
    let (reader, secret) = app.register_app(&_t.id, &["DeviceManagementRBAC.Read.All"]).await;
    let token = app.token(&_t.id, &reader, &secret).await;
    assert_eq!(
        status(
            &app,
            Method::GET,
            "/v1.0/deviceManagement/roleDefinitions",
            &token,
            None
        )
        .await,
        200
    );
    let r = create_role(&app, &token, "No", &["Microsoft.Intune_Audit_Read"]).await;
    assert_error(r, 403, "Forbidden").await;
}

async fn password_grant_signs_users_in_with_entra_errors(app: TestApp) {
    let (t, admin, client) = setup(&app).await;
    let user = create_user(&app, &admin, "megan@contoso.example", "Megan").await;
    let uid = user["id"].as_str().unwrap();
    let r = app
        .req(
            Method::PUT,
            &format!("/_emulator/tenants/{}/users/{uid}/directoryRoles", t.id),
        )
        .json(&json!({ "roles": ["Intune Administrator"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let roles: Value = r.json().await.unwrap();
    assert_eq!(
        roles["value"],
        json!([{ "id": "3a2c62db-5318-420d-8d74-23affee5d9d5", "displayName": "Intune Administrator" }])
    );
    let r = app
        .req(
            Method::PUT,
            &format!("/_emulator/tenants/{}/users/{uid}/directoryRoles", t.id),
        )
        .json(&json!({ "roles": ["Teams Administrator"] }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    let r = password_token_response(
        &app,
        &t.id,
        &client,
        "MEGAN@contoso.example",
        PASSWORD,
        "DeviceManagementRBAC.Read.All https://graph.microsoft.com/User.Read.All openid profile",
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["scope"],
        "https://graph.microsoft.com/DeviceManagementRBAC.Read.All https://graph.microsoft.com/User.Read.All"
    );
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["idtyp"], "user");
    assert_eq!(c["oid"], uid);
    assert_eq!(c["tid"], t.id);
    assert_eq!(c["appid"], client);
    assert_eq!(c["upn"], "megan@contoso.example");
    assert_eq!(c["scp"], "DeviceManagementRBAC.Read.All User.Read.All");
    assert!(c.get("roles").is_none());
    let wids: Vec<&str> = c["wids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(wids.contains(&"3a2c62db-5318-420d-8d74-23affee5d9d5"), "{wids:?}");

    let r = password_token_response(&app, &t.id, &client, "megan@contoso.example", "wrong", "User.Read.All").await;
    entra_error(r, 400, "invalid_grant", 50126).await;
    let r = password_token_response(
        &app,
        &t.id,
        &client,
        "nobody@contoso.example",
        PASSWORD,
        "User.Read.All",
    )
    .await;
    entra_error(r, 400, "invalid_grant", 50034).await;
    let r = password_token_response(&app, &t.id, &client, "megan@contoso.example", PASSWORD, "Mail.Send").await;
    entra_error(r, 400, "invalid_scope", 70011).await;
    let r = password_token_response(
        &app,
        &t.id,
        "0f5c0000-0000-4000-8000-000000000000",
        "megan@contoso.example",
        PASSWORD,
        "User.Read.All",
    )
    .await;
    entra_error(r, 400, "unauthorized_client", 700016).await;
    let r = app
        .req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client.as_str()),
            ("username", "megan@contoso.example"),
            ("scope", "User.Read.All"),
        ])
        .send()
        .await
        .unwrap();
    entra_error(r, 400, "invalid_request", 900144).await;
    let r = app
        .graph(Method::PATCH, &format!("/v1.0/users/{uid}"), &admin)
        .json(&json!({ "accountEnabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = password_token_response(&app, &t.id, &client, "megan@contoso.example", PASSWORD, "User.Read.All").await;
    entra_error(r, 400, "invalid_grant", 50057).await;
}

async fn delegated_callers_need_an_intune_role_for_the_action(app: TestApp) {
    let (t, admin, client) = setup(&app).await;
    let (_, esm_group) = user_in_group(&app, &admin, "esm@contoso.example").await;
    let (_, ro_group) = user_in_group(&app, &admin, "reader@contoso.example").await;
    let (custom_user, custom_group) = user_in_group(&app, &admin, "custom@contoso.example").await;
    user_in_group(&app, &admin, "nobody@contoso.example").await;
    assign_role(&app, &admin, ESM, &[&esm_group]).await;
    assign_role(&app, &admin, READ_ONLY_OPERATOR, &[&ro_group]).await;
    let patch = || Some(json!({ "androidEnabled": true }));
    let item = format!("{CONNECTORS}/{LOOKOUT}");

    // Endpoint Security Manager: MTD connectors and compliance policies.
    let esm = user_token(&app, &t.id, &client, "esm@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(
        status(&app, Method::POST, CONNECTORS, &esm, Some(json!({ "id": LOOKOUT }))).await,
        201
    );
    assert_eq!(status(&app, Method::GET, CONNECTORS, &esm, None).await, 200);
    assert_eq!(status(&app, Method::PATCH, &item, &esm, patch()).await, 204);
    let policy = json!({
        "@odata.type": "#microsoft.graph.iosCompliancePolicy",
        "displayName": "MTD",
        "deviceThreatProtectionEnabled": true,
        "deviceThreatProtectionRequiredSecurityLevel": "low",
        "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [{ "actionType": "block", "gracePeriodHours": 0 }] }],
    });
    assert_eq!(
        status(
            &app,
            Method::POST,
            "/v1.0/deviceManagement/deviceCompliancePolicies",
            &esm,
            Some(policy.clone())
        )
        .await,
        201
    );
    // ... but not retire or wipe devices, which the role does not carry.
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement/roleDefinitions", &esm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Roles_Read is part of the role");

    // Read Only Operator reads, and is refused the patch in Graph's envelope.
    let ro = user_token(&app, &t.id, &client, "reader@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(status(&app, Method::GET, &item, &ro, None).await, 200);
    let r = app
        .graph(Method::PATCH, &item, &ro)
        .json(&json!({ "androidEnabled": false }))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 403, "Forbidden").await;
    assert!(
        !message.contains(ESM) && !message.contains("Microsoft.Intune"),
        "names nothing: {message}"
    );
    assert_eq!(
        status(
            &app,
            Method::POST,
            "/v1.0/deviceManagement/deviceCompliancePolicies",
            &ro,
            Some(policy)
        )
        .await,
        403
    );

    // No role at all: nothing.
    let nobody = user_token(&app, &t.id, &client, "nobody@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(status(&app, Method::GET, CONNECTORS, &nobody, None).await, 403);

    // A custom role with MTD Read only; adding Modify allows the patch at once.
    let role: Value = create_role(&app, &admin, "MTD", &["Microsoft.Intune_MobileThreatDefense_Read"])
        .await
        .json()
        .await
        .unwrap();
    let rid = role["id"].as_str().unwrap();
    assign_role(&app, &admin, rid, &[&custom_group]).await;
    let custom = user_token(&app, &t.id, &client, "custom@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(status(&app, Method::GET, CONNECTORS, &custom, None).await, 200);
    assert_eq!(status(&app, Method::PATCH, &item, &custom, patch()).await, 403);
    let r = app
        .graph(Method::PATCH, &format!("/v1.0/deviceManagement/roleDefinitions/{rid}"), &admin)
        .json(&json!({ "rolePermissions": [{ "resourceActions": [{ "allowedResourceActions": ["Microsoft.Intune_MobileThreatDefense_Read", "Microsoft.Intune_MobileThreatDefense_Modify"] }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status(&app, Method::PATCH, &item, &custom, patch()).await, 204);
    // Out of the group, out of the role, with the same token.
    let r = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/groups/{custom_group}/members/{custom_user}/$ref"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status(&app, Method::GET, CONNECTORS, &custom, None).await, 403);
    assert_eq!(status(&app, Method::PATCH, &item, &custom, patch()).await, 403);

    // The delegated permission is needed too, whatever the role.
    let narrow = user_token(
        &app,
        &t.id,
        &client,
        "esm@contoso.example",
        "DeviceManagementServiceConfig.Read.All",
    )
    .await;
    assert_eq!(status(&app, Method::GET, CONNECTORS, &narrow, None).await, 200);
    let r = app
        .graph(Method::PATCH, &item, &narrow)
        .json(&json!({ "androidEnabled": true }))
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 403, "Forbidden")
        .await
        .contains("DeviceManagementServiceConfig.ReadWrite.All"));

    // Intune Administrators need no Intune role.
    let (admin_user, _) = user_in_group(&app, &admin, "intune.admin@contoso.example").await;
    let r = app
        .req(
            Method::PUT,
            &format!("/_emulator/tenants/{}/users/{admin_user}/directoryRoles", t.id),
        )
        .json(&json!({ "roles": ["3a2c62db-5318-420d-8d74-23affee5d9d5"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ia = user_token(&app, &t.id, &client, "intune.admin@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(status(&app, Method::DELETE, &item, &ia, None).await, 204);
}

async fn directory_routes_need_directory_roles_not_intune_roles(app: TestApp) {
    let (t, admin, client) = setup(&app).await;
    let (uid, _) = user_in_group(&app, &admin, "member@contoso.example").await;
    let member = user_token(&app, &t.id, &client, "member@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(status(&app, Method::GET, "/v1.0/users", &member, None).await, 200);
    let body = crate::directory::user_body("new@contoso.example", "New");
    assert_eq!(
        status(&app, Method::POST, "/v1.0/users", &member, Some(body.clone())).await,
        403
    );
    let r = app
        .req(
            Method::PUT,
            &format!(
                "/_emulator/tenants/{}/users/member@contoso.example/directoryRoles",
                t.id
            ),
        )
        .json(&json!({ "roles": ["Global Administrator"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let roles: Value = app
        .req(
            Method::GET,
            &format!("/_emulator/tenants/{}/users/{uid}/directoryRoles", t.id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(roles["value"][0]["displayName"], "Global Administrator");
    // Roles reach tokens issued afterwards.
    assert_eq!(
        status(&app, Method::POST, "/v1.0/users", &member, Some(body.clone())).await,
        403
    );
    let global = user_token(&app, &t.id, &client, "member@contoso.example", ADMIN_SCOPES).await;
    assert_eq!(
        status(&app, Method::POST, "/v1.0/users", &global, Some(body)).await,
        201
    );
    // Global Administrators pass Intune checks as well.
    assert_eq!(status(&app, Method::GET, CONNECTORS, &global, None).await, 200);
}

async fn resource_operations_and_effective_permissions(app: TestApp) {
    let (t, admin, client) = setup(&app).await;
    let ops: Value = app
        .graph(Method::GET, "/beta/deviceManagement/resourceOperations?$filter=resourceName eq 'Mobile Threat Defense'&$orderby=actionName", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = ops["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "Microsoft.Intune_MobileThreatDefense_Modify",
            "Microsoft.Intune_MobileThreatDefense_Read"
        ]
    );
    assert_eq!(ops["value"][0]["@odata.type"], "#microsoft.graph.resourceOperation");
    assert_eq!(ops["value"][0]["actionName"], "Modify");
    assert!(ops["value"][0].get("enabledForScopeValidation").is_some());
    let one: Value = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/resourceOperations/Microsoft.Intune_DeviceCompliancePolices_Assign",
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["resourceName"], "Device compliance policies");
    assert!(one.get("resource").is_none(), "v1.0 property set");
    assert_eq!(
        status(
            &app,
            Method::GET,
            "/v1.0/deviceManagement/resourceOperations/Microsoft.Intune_Nothing_Read",
            &admin,
            None
        )
        .await,
        404
    );

    // Every permission of every built-in role is a resource operation.
    let all: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/resourceOperations", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let known: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    let roles: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/roleDefinitions", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for role in roles["value"].as_array().unwrap() {
        for a in role["rolePermissions"][0]["resourceActions"][0]["allowedResourceActions"]
            .as_array()
            .unwrap()
        {
            assert!(known.contains(&a.as_str().unwrap()), "{a}");
        }
    }

    let everything: Value = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/getEffectivePermissions(scope='AllLicensedUsers')",
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        everything["value"][0]["resourceActions"][0]["allowedResourceActions"],
        json!(["*"])
    );
    let (_, group) = user_in_group(&app, &admin, "ro@contoso.example").await;
    assign_role(&app, &admin, READ_ONLY_OPERATOR, &[&group]).await;
    let ro = user_token(
        &app,
        &t.id,
        &client,
        "ro@contoso.example",
        "DeviceManagementRBAC.ReadWrite.All",
    )
    .await;
    let mine: Value = app
        .graph(
            Method::GET,
            "/beta/deviceManagement/getEffectivePermissions(scope='AllLicensedUsers')",
            &ro,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(mine["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#Collection(microsoft.graph.rolePermission)"));
    let allowed = mine["value"][0]["resourceActions"][0]["allowedResourceActions"]
        .as_array()
        .unwrap();
    assert!(allowed.contains(&json!("Microsoft.Intune_MobileThreatDefense_Read")));
    assert!(!allowed.contains(&json!("Microsoft.Intune_MobileThreatDefense_Modify")));
    // The user may read the roles too (Read Only Operator has Roles_Read)...
    assert_eq!(
        status(&app, Method::GET, "/v1.0/deviceManagement/roleDefinitions", &ro, None).await,
        200
    );
    // ... but not assign them.
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/roleAssignments", &ro)
        .json(&json!({ "displayName": "me", "members": [group], "roleDefinition@odata.bind": format!("https://graph.microsoft.com/v1.0/deviceManagement/roleDefinitions('{ESM}')") }))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;
}

/// Disabling a user, or deleting it, ends what its delegated tokens can do at once (401), not an
/// hour later; signing in again is refused with Entra's error.
async fn a_disabled_or_deleted_users_tokens_stop_working(app: TestApp) {
    let (t, admin, client) = setup(&app).await;
    let mut tokens = Vec::new();
    for upn in ["megan@contoso.example", "lee@contoso.example"] {
        let user = create_user(&app, &admin, upn, upn).await;
        let uid = user["id"].as_str().unwrap().to_string();
        let token = user_token(&app, &t.id, &client, upn, "User.Read.All").await;
        assert_eq!(status(&app, Method::GET, "/v1.0/users", &token, None).await, 200);
        tokens.push((uid, upn, token));
    }
    let (megan, megan_upn, megan_token) = &tokens[0];
    let (lee, _, lee_token) = &tokens[1];
    assert_eq!(
        status(
            &app,
            Method::PATCH,
            &format!("/v1.0/users/{megan}"),
            &admin,
            Some(json!({ "accountEnabled": false }))
        )
        .await,
        204
    );
    assert_eq!(
        status(&app, Method::DELETE, &format!("/v1.0/users/{lee}"), &admin, None).await,
        204
    );
    for token in [megan_token, lee_token] {
        let r = app.graph(Method::GET, "/v1.0/users", token).send().await.unwrap();
        let message = assert_error(r, 401, "InvalidAuthenticationToken").await;
        assert!(
            message.contains("does not exist in the tenant or is disabled"),
            "{message}"
        );
    }
    let r = password_token_response(&app, &t.id, &client, megan_upn, PASSWORD, "User.Read.All").await;
    assert_eq!(r.status(), 400);
}
