//! The control plane: tenants, apps, clock, admin key, body limit.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, config, spawn_with, Backend, TestApp};

both_backends!(
    tenants_are_created_read_listed_and_deleted,
    tenant_creation_refuses_bad_input,
    tenant_list_pages_filters_sorts_and_counts,
    apps_are_registered_with_known_permissions_only,
    the_clock_only_moves_forward,
    reset_empties_the_tenant_but_keeps_its_id_and_bootstrap_app,
);

async fn tenants_are_created_read_listed_and_deleted(app: TestApp) {
    let id = "2c7790de-8b02-4814-85cf-e0c59380dee8";
    let r = app
        .req(Method::POST, "/_emulator/tenants")
        .json(&json!({ "id": id.to_uppercase(), "displayName": "Contoso" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["id"], id);
    assert_eq!(created["displayName"], "Contoso");
    assert_eq!(created["clock"]["offset"], "PT0S");
    assert_eq!(created["bootstrapApp"]["clientSecret"].as_str().unwrap().len(), 40);
    assert_eq!(created["tokenEndpoint"], format!("{}/{id}/oauth2/v2.0/token", app.base));
    let permissions = created["bootstrapApp"]["permissions"].as_array().unwrap();
    assert!(permissions.contains(&json!("DeviceManagementServiceConfig.ReadWrite.All")));

    let got: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["displayName"], "Contoso");
    assert!(
        got["bootstrapApp"].get("clientSecret").is_none(),
        "the secret is shown once"
    );

    let r = app
        .req(Method::POST, "/_emulator/tenants")
        .json(&json!({ "id": id }))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "Conflict").await;

    let r = app
        .req(Method::DELETE, &format!("/_emulator/tenants/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .req(Method::GET, &format!("/_emulator/tenants/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    let r = app
        .req(Method::DELETE, &format!("/_emulator/tenants/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    let r = app
        .req(Method::GET, "/_emulator/tenants/not-a-guid")
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
}

async fn tenant_creation_refuses_bad_input(app: TestApp) {
    let cases: &[(&str, &str)] = &[
        (r#"{"id": "nope"}"#, "'id'"),
        (r#"{"displayName": 5}"#, "'displayName'"),
        (r#"{"displayName": ""}"#, "'displayName'"),
        (r#"{"colour": "red"}"#, "The property 'colour' does not exist"),
        (r#"{"id": "#, "Invalid JSON"),
        (r#"[1, 2]"#, "must be a JSON object"),
    ];
    for (body, expected) in cases {
        let r = app
            .req(Method::POST, "/_emulator/tenants")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains(expected), "{body}: {message}");
    }
    let r = app
        .req(Method::POST, "/_emulator/tenants")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "UnsupportedMediaType").await;
}

async fn tenant_list_pages_filters_sorts_and_counts(app: TestApp) {
    for i in 0..7 {
        let r = app
            .req(Method::POST, "/_emulator/tenants")
            .json(&json!({ "displayName": format!("Fabrikam {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    app.req(Method::POST, "/_emulator/tenants")
        .json(&json!({ "displayName": "Contoso" }))
        .send()
        .await
        .unwrap();

    // Walk the pages with $top=3 through @odata.nextLink.
    let mut url = format!(
        "{}/_emulator/tenants?$filter=startswith(displayName,'fabrikam')&$orderby=displayName desc&$top=3&$count=true",
        app.base
    );
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let body: Value = app.http.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["@odata.count"], 7, "{body}");
        names.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["displayName"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&app.base), "absolute nextLink: {next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).rev().map(|i| format!("Fabrikam {i}")).collect();
    assert_eq!(names, expected);

    let body: Value = app
        .req(
            Method::GET,
            "/_emulator/tenants?$select=displayName&$filter=displayName eq 'CONTOSO'",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"], json!([{ "displayName": "Contoso" }]));

    for bad in [
        "$filter=displayName eq",
        "$filter=colour eq 'x'",
        "$orderby=clock",
        "$top=-1",
        "$skiptoken=forged",
        "$frobnicate=1",
    ] {
        let r = app
            .req(Method::GET, &format!("/_emulator/tenants?{bad}"))
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
}

async fn apps_are_registered_with_known_permissions_only(app: TestApp) {
    let t = app.create_tenant().await;
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
        .json(&json!({ "displayName": "Reader", "permissions": ["devicemanagementserviceconfig.read.all"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["permissions"], json!(["DeviceManagementServiceConfig.Read.All"]));
    assert_eq!(body["kind"], "graph");
    assert!(body["clientSecret"].is_string());

    let apps: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/apps", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["value"].as_array().unwrap().len(), 2);
    assert!(apps["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a.get("clientSecret").is_none()));

    let bad: &[(Value, &str)] = &[
        (
            json!({ "displayName": "X", "permissions": ["Mail.Send"] }),
            "'Mail.Send'",
        ),
        (json!({ "displayName": "X", "kind": "spaceship" }), "kind"),
        (json!({ "permissions": [] }), "'displayName'"),
        (
            json!({ "displayName": "X", "permissions": "DeviceManagementRBAC.Read.All" }),
            "permissions",
        ),
    ];
    for (body, expected) in bad {
        let r = app
            .req(Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
            .json(body)
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains(expected), "{body}: {message}");
    }
    let r = app
        .req(
            Method::POST,
            "/_emulator/tenants/00000000-0000-0000-0000-000000000001/apps",
        )
        .json(&json!({ "displayName": "X" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
}

fn instant(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .into()
}

async fn the_clock_only_moves_forward(app: TestApp) {
    let t = app.create_tenant().await;
    let path = format!("/_emulator/tenants/{}/clock", t.id);
    let before: Value = app.req(Method::GET, &path).send().await.unwrap().json().await.unwrap();
    assert_eq!(before["offset"], "PT0S");

    let after = app.advance_clock(&t.id, "P4D").await;
    let moved = instant(&after["now"]) - instant(&before["now"]);
    assert!(
        moved >= chrono::Duration::days(4) && moved < chrono::Duration::days(4) + chrono::Duration::minutes(1),
        "{moved}"
    );
    assert_eq!(after["offset"], "P4D", "{after}");
    // An app registered now is stamped on the tenant's clock, as everything else of the tenant.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
        .json(&json!({ "displayName": "later app", "permissions": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let registered: Value = r.json().await.unwrap();
    assert!(
        instant(&registered["createdDateTime"]) >= instant(&after["now"]),
        "{registered}"
    );

    let target = instant(&after["now"]) + chrono::Duration::hours(36);
    let r = app
        .req(Method::POST, &path)
        .json(&json!({ "setTo": target.to_rfc3339() }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set: Value = r.json().await.unwrap();
    assert!(instant(&set["now"]) >= target);

    let earlier = instant(&set["now"]) - chrono::Duration::hours(1);
    let r = app
        .req(Method::POST, &path)
        .json(&json!({ "setTo": earlier.to_rfc3339() }))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains("Time never goes back"), "{message}");

    for body in [
        json!({ "advanceBy": "4 days" }),
        json!({ "advanceBy": "-P1D" }),
        json!({}),
        json!({ "advanceBy": "P1D", "setTo": "2030-01-01T00:00:00Z" }),
        json!({ "setTo": "tomorrow" }),
        json!({ "advanceBy": 4 }),
    ] {
        let r = app.req(Method::POST, &path).json(&body).send().await.unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    // Each tenant has its own clock.
    let other = app.create_tenant().await;
    let theirs: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/clock", other.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["offset"], "PT0S");
}

async fn reset_empties_the_tenant_but_keeps_its_id_and_bootstrap_app(app: TestApp) {
    let t = app.create_tenant().await;
    let (extra_id, extra_secret) = app
        .register_app(&t.id, &["DeviceManagementServiceConfig.Read.All"])
        .await;
    let token = app.admin_token(&t).await;
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "settings": { "secureByDefault": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    app.advance_clock(&t.id, "P1D").await;

    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/reset", t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], t.id.as_str());
    assert_eq!(body["clock"]["offset"], "PT0S");

    let r = app.token_response(&t.id, &extra_id, &extra_secret).await;
    assert_eq!(r.status(), 400, "the registered app is gone");
    let token = app.admin_token(&t).await;
    let dm: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dm["settings"]["secureByDefault"], false);
}

#[tokio::test]
async fn the_admin_key_guards_the_control_plane_only() {
    let mut cfg = config();
    cfg.admin_key = Some("s3cret-key".into());
    let app = spawn_with(Backend::Sqlite, cfg).await;
    let r = app.req(Method::GET, "/_emulator/tenants").send().await.unwrap();
    assert_error(r, 401, "Unauthorized").await;
    let r = app
        .req(Method::GET, "/_emulator/tenants")
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "Unauthorized").await;
    let r = app
        .req(Method::POST, "/_emulator/tenants")
        .bearer_auth("s3cret-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    // Graph and identity do not take the admin key: they take tokens.
    let token = app
        .token(
            created["id"].as_str().unwrap(),
            created["bootstrapApp"]["clientId"].as_str().unwrap(),
            created["bootstrapApp"]["clientSecret"].as_str().unwrap(),
        )
        .await;
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.req(Method::GET, "/healthz").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let mut cfg = config();
    cfg.body_limit = 1024;
    let app = spawn_with(Backend::Sqlite, cfg).await;
    let big = json!({ "displayName": "x".repeat(2048) });
    let r = app
        .req(Method::POST, "/_emulator/tenants")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "RequestEntityTooLarge").await;
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({ "intuneBrand": { "contactITNotes": "x".repeat(4096) } }))
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "RequestEntityTooLarge").await;
}
