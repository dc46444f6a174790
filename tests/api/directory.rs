//! Users, groups and membership through Graph.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, TestApp};

both_backends!(
    users_are_created_read_listed_patched_and_deleted,
    user_writes_are_validated,
    groups_and_members,
    directory_objects_of_one_tenant_are_invisible_to_another
);

pub fn user_body(upn: &str, name: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": name,
        "mailNickname": upn.split('@').next().unwrap(),
        "userPrincipalName": upn,
        "mail": upn,
        "passwordProfile": { "forceChangePasswordNextSignIn": false, "password": "Pa55w.rd!" }
    })
}

pub async fn create_user(app: &TestApp, token: &str, upn: &str, name: &str) -> Value {
    let r = app
        .graph(Method::POST, "/v1.0/users", token)
        .json(&user_body(upn, name))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create {upn}");
    r.json().await.unwrap()
}

pub async fn create_group(app: &TestApp, token: &str, name: &str) -> Value {
    let r = app
        .graph(Method::POST, "/v1.0/groups", token)
        .json(&json!({ "displayName": name, "mailEnabled": false, "mailNickname": name.replace(' ', ""), "securityEnabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create group {name}");
    r.json().await.unwrap()
}

pub async fn add_member(app: &TestApp, token: &str, group: &str, reference: &str) -> reqwest::Response {
    app.graph(Method::POST, &format!("/v1.0/groups/{group}/members/$ref"), token)
        .json(&json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{reference}") }))
        .send()
        .await
        .unwrap()
}

async fn users_are_created_read_listed_patched_and_deleted(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let adele = create_user(&app, &token, "adele@contoso.example", "Adele Vance").await;
    assert_eq!(
        adele["@odata.context"],
        format!("{}/v1.0/$metadata#users/$entity", app.base)
    );
    assert_eq!(adele["@odata.type"], "#microsoft.graph.user");
    assert_eq!(adele["accountEnabled"], true);
    assert_eq!(adele["passwordProfile"], Value::Null, "passwords are never returned");
    let id = adele["id"].as_str().unwrap();
    create_user(&app, &token, "bianca@contoso.example", "Bianca Pisani").await;
    create_user(&app, &token, "cameron@contoso.example", "Cameron White").await;

    // v1.0 shows the default property set.
    let got: Value = app
        .graph(Method::GET, &format!("/v1.0/users/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<&str> = got.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "@odata.type",
            "businessPhones",
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName"
        ]
    );
    let by_upn: Value = app
        .graph(Method::GET, "/v1.0/users/ADELE@contoso.example", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_upn["id"], id);
    let selected: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/users/{id}?$select=accountEnabled,mailNickname"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(selected["mailNickname"], "adele");
    assert!(selected.get("displayName").is_none());

    // Pages, filters and sorts.
    let page: Value = app
        .graph(Method::GET, "/v1.0/users?$filter=startswith(displayName,'b') or displayName eq 'cameron white'&$orderby=displayName desc&$count=true", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Cameron White", "Bianca Pisani"]);
    assert_eq!(page["@odata.count"], 2);
    let first: Value = app
        .graph(Method::GET, "/v1.0/users?$top=2", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    let second: Value = app
        .http
        .get(first["@odata.nextLink"].as_str().unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["value"].as_array().unwrap().len(), 1);
    assert!(second.get("@odata.nextLink").is_none());

    let r = app
        .graph(Method::PATCH, &format!("/v1.0/users/{id}"), &token)
        .json(&json!({ "jobTitle": "Retail Manager", "displayName": "Adele V." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got: Value = app
        .graph(Method::GET, &format!("/beta/users/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["jobTitle"], "Retail Manager");
    assert_eq!(got["displayName"], "Adele V.");
    assert_eq!(got["userPrincipalName"], "adele@contoso.example");

    assert_eq!(
        app.graph(Method::DELETE, &format!("/v1.0/users/{id}"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = app
        .graph(Method::GET, &format!("/v1.0/users/{id}"), &token)
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 404, "Request_ResourceNotFound").await;
    assert!(message.contains(id), "{message}");
}

async fn user_writes_are_validated(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    create_user(&app, &token, "adele@contoso.example", "Adele Vance").await;
    let mut missing = user_body("x@contoso.example", "X");
    missing.as_object_mut().unwrap().remove("mailNickname");
    let mut weak = user_body("y@contoso.example", "Y");
    weak["passwordProfile"]["password"] = json!("password");
    let mut no_password = user_body("z@contoso.example", "Z");
    no_password.as_object_mut().unwrap().remove("passwordProfile");
    let cases: Vec<(Value, &str)> = vec![
        (
            user_body("ADELE@contoso.example", "Again"),
            "Another object with the same value for property userPrincipalName already exists.",
        ),
        (
            missing,
            "Invalid value specified for property 'mailNickname' of resource 'User'.",
        ),
        (weak, "password complexity"),
        (no_password, "A password must be specified"),
        (user_body("not-an-upn", "N"), "'userPrincipalName'"),
        (json!({ "displayName": 5 }), "'displayName'"),
        (json!({ "favouriteColour": "blue" }), "'favouriteColour' does not exist"),
    ];
    for (body, expected) in cases {
        let r = app
            .graph(Method::POST, "/v1.0/users", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "Request_BadRequest").await;
        assert!(message.contains(expected), "{body}: {message}");
    }
    let b = create_user(&app, &token, "bianca@contoso.example", "Bianca").await;
    let r = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/users/{}", b["id"].as_str().unwrap()),
            &token,
        )
        .json(&json!({ "userPrincipalName": "Adele@Contoso.example" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "Request_BadRequest").await;
    let r = app
        .graph(Method::GET, "/v1.0/users?$filter=jobTitle eq 'x'", &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .graph(Method::GET, "/v1.0/users/nobody@contoso.example", &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "Request_ResourceNotFound").await;
}

async fn groups_and_members(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let adele = create_user(&app, &token, "adele@contoso.example", "Adele Vance").await;
    let adele_id = adele["id"].as_str().unwrap();
    let group = create_group(&app, &token, "MTD pilot").await;
    assert_eq!(group["@odata.type"], "#microsoft.graph.group");
    assert_eq!(group["securityEnabled"], true);
    let gid = group["id"].as_str().unwrap();
    let entra_id = "6b2f5c1e-1111-4222-8333-944445555666";
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&json!({ "deviceName": "lab-ipad", "operatingSystem": "iPadOS", "osVersion": "17.4", "azureADDeviceId": entra_id, "ownerType": "company" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    assert_eq!(
        add_member(&app, &token, gid, &format!("directoryObjects/{adele_id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        add_member(&app, &token, gid, &format!("devices/{entra_id}"))
            .await
            .status(),
        204
    );
    let again = add_member(&app, &token, gid, &format!("users/{adele_id}")).await;
    assert!(assert_error(again, 400, "Request_BadRequest")
        .await
        .contains("already exist"));
    let ghost = add_member(
        &app,
        &token,
        gid,
        "directoryObjects/0d0c3f9a-0000-0000-0000-000000000000",
    )
    .await;
    assert_error(ghost, 404, "Request_ResourceNotFound").await;
    let r = app
        .graph(Method::POST, &format!("/v1.0/groups/{gid}/members/$ref"), &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "Request_BadRequest").await;

    let members: Value = app
        .graph(Method::GET, &format!("/v1.0/groups/{gid}/members?$count=true"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members["@odata.count"], 2);
    let mut types: Vec<&str> = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["#microsoft.graph.device", "#microsoft.graph.user"]);
    let device = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["@odata.type"] == "#microsoft.graph.device")
        .unwrap();
    assert_eq!(device["deviceId"], entra_id);
    assert_eq!(device["operatingSystem"], "iPadOS");

    let r = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/groups/{gid}/members/{adele_id}/$ref"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(
            Method::DELETE,
            &format!("/v1.0/groups/{gid}/members/{adele_id}/$ref"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "Request_ResourceNotFound").await;

    let r = app
        .graph(Method::PATCH, &format!("/v1.0/groups/{gid}"), &token)
        .json(&json!({ "description": "Devices piloting MTD" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let listed: Value = app
        .graph(Method::GET, "/v1.0/groups?$filter=displayName eq 'mtd pilot'", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"][0]["description"], "Devices piloting MTD");
    assert_eq!(
        app.graph(Method::DELETE, &format!("/v1.0/groups/{gid}"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = app
        .graph(Method::GET, &format!("/v1.0/groups/{gid}/members"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "Request_ResourceNotFound").await;
    for (body, expected) in [
        (
            json!({ "displayName": "x", "mailEnabled": false, "securityEnabled": true }),
            "'mailNickname'",
        ),
        (
            json!({ "displayName": "x", "mailEnabled": false, "securityEnabled": true, "mailNickname": "has space" }),
            "'mailNickname'",
        ),
    ] {
        let r = app
            .graph(Method::POST, "/v1.0/groups", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(assert_error(r, 400, "Request_BadRequest").await.contains(expected));
    }
}

async fn directory_objects_of_one_tenant_are_invisible_to_another(app: TestApp) {
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let token_a = app.admin_token(&a).await;
    let token_b = app.admin_token(&b).await;
    let user = create_user(&app, &token_a, "adele@contoso.example", "Adele").await;
    let uid = user["id"].as_str().unwrap();
    let group = create_group(&app, &token_a, "A group").await;
    let gid = group["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/v1.0/users/{uid}")),
        (Method::GET, "/v1.0/users/adele@contoso.example".to_string()),
        (Method::PATCH, format!("/v1.0/users/{uid}")),
        (Method::DELETE, format!("/v1.0/users/{uid}")),
        (Method::GET, format!("/v1.0/groups/{gid}")),
        (Method::GET, format!("/v1.0/groups/{gid}/members")),
        (Method::DELETE, format!("/v1.0/groups/{gid}")),
    ] {
        let r = app
            .graph(method.clone(), &path, &token_b)
            .json(&json!({ "jobTitle": "x" }))
            .send()
            .await
            .unwrap();
        assert_error(r, 404, "Request_ResourceNotFound").await;
    }
    let listed: Value = app
        .graph(Method::GET, "/v1.0/users", &token_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]));
    // B cannot add A's user to its own group either.
    let group_b = create_group(&app, &token_b, "B group").await;
    let r = add_member(&app, &token_b, group_b["id"].as_str().unwrap(), &format!("users/{uid}")).await;
    assert_error(r, 404, "Request_ResourceNotFound").await;
    // And a UPN may repeat across tenants.
    create_user(&app, &token_b, "adele@contoso.example", "Adele in B").await;
}
