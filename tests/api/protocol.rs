//! The Graph protocol layer: ids, URL tolerance, router errors, operations endpoints.

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::common::{assert_error, TestApp};

both_backends!(
    request_ids_and_url_tolerance,
    unknown_routes_and_verbs_answer_in_the_envelope,
    operations_endpoints_report_health,
    text_no_backend_can_hold_is_refused_alike
);

async fn request_ids_and_url_tolerance(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let r = app
        .graph(Method::GET, "/v1.0//deviceManagement", &token)
        .header("client-request-id", "7f3e2c1a-aaaa-bbbb-cccc-000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["client-request-id"], "7f3e2c1a-aaaa-bbbb-cccc-000000000001");
    let request_id = r.headers()["request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::try_parse(&request_id).is_ok());
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));

    // Without a client-request-id, it equals the request id.
    let r = app
        .graph(Method::GET, "/beta/deviceManagement/", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["client-request-id"], r.headers()["request-id"]);

    // The client's id also reaches the error envelope.
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement?$top=1", &token)
        .header("client-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["innerError"]["client-request-id"], "abc-123");
}

async fn unknown_routes_and_verbs_answer_in_the_envelope(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement/frobnicators", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(r, 400, "BadRequest").await,
        "Resource not found for the segment 'frobnicators'."
    );
    let r = app
        .graph(Method::GET, "/beta/nothingHere", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(r, 400, "BadRequest").await,
        "Resource not found for the segment 'nothingHere'."
    );
    let r = app
        .graph(Method::DELETE, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "No method match route template").await;
    assert!(message.contains("with http verb DELETE"), "{message}");
    let r = app.req(Method::GET, "/no/such/thing").send().await.unwrap();
    assert_error(r, 404, "NotFound").await;
    let r = app.req(Method::PUT, "/_emulator/tenants").send().await.unwrap();
    assert_error(r, 405, "MethodNotAllowed").await;
}

async fn operations_endpoints_report_health(app: TestApp) {
    let r = app.req(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = app
        .req(Method::GET, "/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["database"],
        if app.backend == crate::common::Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    // One request through a named route, then the metrics show it.
    let t = app.create_tenant().await;
    let _ = app
        .req(Method::GET, &format!("/_emulator/tenants/{}", t.id))
        .send()
        .await
        .unwrap();
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("http_requests_total{route=\"/_emulator/tenants/{tenantId}\",method=\"GET\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("db_pool_connections"), "{metrics}");
}

both_backends!(a_page_of_no_rows_is_empty_and_final);

/// `$top=0` asks for nothing: every collection answers an empty page without a next link.
async fn a_page_of_no_rows_is_empty_and_final(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    app.req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&serde_json::json!([{ "deviceName": "a", "operatingSystem": "iOS", "osVersion": "17.0" }]))
        .send()
        .await
        .unwrap();
    let r = app.req(Method::GET, "/_emulator/tenants?$top=0").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["value"].clone(), body.get("@odata.nextLink")),
        (serde_json::json!([]), None)
    );
    for path in [
        "/v1.0/deviceManagement/managedDevices?$top=0",
        "/v1.0/users?$top=0",
        "/v1.0/groups?$top=0",
    ] {
        let r = app.graph(Method::GET, path, &token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["value"].clone(), body.get("@odata.nextLink")),
            (serde_json::json!([]), None),
            "{path}"
        );
    }
    let partner = crate::mtd::partner_token(&app, &t.id, crate::mtd::LOOKOUT).await;
    app.req(Method::POST, "/partner/v1/connector/heartbeat")
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    let r = app
        .graph(
            Method::POST,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            &token,
        )
        .json(&serde_json::json!({ "id": crate::mtd::LOOKOUT }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "the heartbeat provisioned it");
    app.graph(
        Method::PATCH,
        &format!(
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors/{}",
            crate::mtd::LOOKOUT
        ),
        &token,
    )
    .json(&serde_json::json!({ "iosEnabled": true }))
    .send()
    .await
    .unwrap();
    let r = app
        .req(Method::GET, "/partner/v1/devices?$top=0")
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["value"].clone(), body.get("@odata.nextLink")),
        (serde_json::json!([]), None)
    );
}

/// NUL (which PostgreSQL's text cannot hold and SQLite's string functions stop at) and bytes that
/// are not UTF-8, in a body, a path, a query option, a skip token or a token request: refused
/// with the same 400 or 404 on both backends, never a 500 or a filter that matches everything.
async fn text_no_backend_can_hold_is_refused_alike(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let enrolled = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&serde_json::json!({ "deviceName": "adele-iphone", "operatingSystem": "ios", "osVersion": "17.4.1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 201);

    // In a JSON body: 400 naming the property, however deep.
    let r = app
        .graph(Method::POST, "/v1.0/users", &token)
        .header("content-type", "application/json")
        .body(r#"{"accountEnabled":true,"displayName":"N\u0000ul","mailNickname":"nul","userPrincipalName":"nul@contoso.example","passwordProfile":{"password":"xWwvJ]6NMw+bWH-d"}}"#)
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(
        message.contains("'displayName'") && message.contains("NUL"),
        "{message}"
    );
    let partner = crate::mtd::partner_token(&app, &t.id, crate::mtd::LOOKOUT).await;
    let r = app
        .graph(Method::POST, "/partner/v1/deviceThreatStates", &partner)
        .header("content-type", "application/json")
        .body(r#"{"value":[{"deviceId":"x","threatLevel":"low","reportedDateTime":"2026-01-01T00:00:00Z"},{"deviceId":"x\u0000","threatLevel":"low","reportedDateTime":"2026-01-01T00:00:00Z"}]}"#)
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequest").await;
    assert!(message.contains("'value[1].deviceId'"), "{message}");
    // Not UTF-8, or an unpaired surrogate: invalid JSON.
    for body in [&b"{\"displayName\":\"\xff\"}"[..], br#"{"displayName":"\ud800"}"#] {
        let r = app
            .graph(Method::POST, "/v1.0/users", &token)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }

    // In a path: the id names nothing.
    for id in ["%00", "x%00y", "%FF", "%C3%28"] {
        let r = app
            .graph(
                Method::GET,
                &format!("/v1.0/deviceManagement/roleDefinitions/{id}"),
                &token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id}");
        assert_error(r, 404, "NotFound").await;
    }

    // In a query option, and in a skip token that decodes to one.
    for query in [
        "$filter=contains(deviceName,'%00')",
        "$filter=deviceName%20eq%20'%FF'",
        "$search=%00",
    ] {
        let r = app
            .graph(
                Method::GET,
                &format!("/v1.0/deviceManagement/managedDevices?{query}"),
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
            "/v1.0/deviceManagement/managedDevices?$filter=contains(deviceName,'iphone')",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["value"].as_array().unwrap().len(), 1);
    let skiptoken = "azoAAAAAAAAAAAAA"; // base64url of "k:" and NUL bytes
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices?$skiptoken={skiptoken}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // In a token request: Entra's invalid_request.
    let r = app
        .req(Method::POST, &format!("/{}/oauth2/v2.0/token", t.id))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=%00&client_secret=x&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}
