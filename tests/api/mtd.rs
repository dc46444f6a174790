//! MTD connectors through Graph, and the partner API: heartbeats, state, threat reports,
//! devices and app sync.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};

both_backends!(
    connectors_through_both_versions,
    partner_state_follows_heartbeats_toggles_and_errors,
    threat_reports_keep_the_newest_per_device_and_connector,
    a_key_that_is_both_kinds_of_id_names_the_managed_device,
    the_threat_state_is_the_newest_report_of_a_connector_that_counts,
    partner_devices_and_app_sync,
    partners_see_only_their_tenant,
);

pub const LOOKOUT: &str = "2c7790de-8b02-4814-85cf-e0c59380dee8";
pub const ZIMPERIUM: &str = "08a8455c-48dd-45ff-ad82-7211355354f3";

/// A partner app of the tenant for `connector`, and a token of it.
pub async fn partner_token(app: &TestApp, tenant: &str, connector: &str) -> String {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{tenant}/apps"))
        .json(&json!({ "displayName": "Partner service", "kind": "partner", "connectorId": connector }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["connectorId"], connector);
    app.token(
        tenant,
        body["clientId"].as_str().unwrap(),
        body["clientSecret"].as_str().unwrap(),
    )
    .await
}

async fn connector(app: &TestApp, token: &str, version: &str, id: &str) -> Value {
    app.graph(
        Method::GET,
        &format!("/{version}/deviceManagement/mobileThreatDefenseConnectors/{id}"),
        token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

pub(crate) async fn partner(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.req(method, path).bearer_auth(token)
}

async fn connectors_through_both_versions(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let base = "/beta/deviceManagement/mobileThreatDefenseConnectors";
    let r = app
        .graph(Method::POST, base, &token)
        .json(&json!({ "@odata.type": "#microsoft.graph.mobileThreatDefenseConnector", "id": LOOKOUT, "iosEnabled": true, "partnerState": "enabled", "lastHeartbeatDateTime": "2026-01-01T00:00:00Z", "partnerUnresponsivenessThresholdInDays": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["id"], LOOKOUT);
    assert_eq!(created["partnerState"], "notSetUp", "server-owned values are ignored");
    assert_eq!(created["lastHeartbeatDateTime"], "0001-01-01T00:00:00Z");
    assert_eq!(created["partnerDisplayName"], "Lookout for Work");
    assert_eq!(created["partnerUnresponsivenessThresholdInDays"], 3);
    assert_eq!(
        created.as_object().unwrap().len(),
        32 + 2,
        "beta property set, @odata.context and @odata.type"
    );

    let v1 = connector(&app, &token, "v1.0", LOOKOUT).await;
    assert_eq!(v1.as_object().unwrap().len(), 16 + 2, "v1.0 property set: {v1}");
    assert_eq!(
        v1["partnerState"], "unknownFutureValue",
        "notSetUp is not a v1.0 member"
    );
    assert!(v1.get("macEnabled").is_none() && v1.get("partnerDisplayName").is_none());
    let preferred: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/mobileThreatDefenseConnectors('{LOOKOUT}')"),
            &token,
        )
        .header("Prefer", "include-unknown-enum-members")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preferred["partnerState"], "notSetUp");

    let r = app
        .graph(
            Method::POST,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            &token,
        )
        .json(&json!({ "id": ZIMPERIUM }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let list: Value = app
        .graph(
            Method::GET,
            &format!("{base}?$filter=iosEnabled eq true&$select=id,partnerState&$count=true"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["@odata.count"], 1);
    assert_eq!(list["value"][0].as_object().unwrap().len(), 3);
    let sorted: Value = app
        .graph(
            Method::GET,
            &format!("{base}?$orderby=partnerDisplayName desc&$top=1"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sorted["value"].as_array().unwrap().len(), 1);
    assert_eq!(sorted["value"][0]["partnerDisplayName"], "Zimperium");

    let r = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/deviceManagement/mobileThreatDefenseConnectors/{ZIMPERIUM}"),
            &token,
        )
        .json(&json!({ "androidEnabled": true, "partnerState": "enabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let z = connector(&app, &token, "beta", ZIMPERIUM).await;
    assert_eq!(
        (z["androidEnabled"].clone(), z["partnerState"].clone()),
        (json!(true), json!("notSetUp"))
    );

    let cases: Vec<(Method, &str, Value, u16, &str)> = vec![
        (Method::POST, base, json!({ "id": LOOKOUT }), 409, "Conflict"),
        (
            Method::POST,
            base,
            json!({ "id": "00000000-0000-0000-0000-000000000001" }),
            400,
            "BadRequest",
        ),
        (Method::POST, base, json!({ "iosEnabled": true }), 400, "BadRequest"),
        (
            Method::POST,
            base,
            json!({ "id": "4873197-ffec-4dfc-9816-db65f34c7cb9" }),
            400,
            "BadRequest",
        ),
        (
            Method::PATCH,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors/08a8455c-48dd-45ff-ad82-7211355354f3",
            json!({ "macEnabled": true }),
            400,
            "BadRequest",
        ),
        (
            Method::PATCH,
            "/beta/deviceManagement/mobileThreatDefenseConnectors/08a8455c-48dd-45ff-ad82-7211355354f3",
            json!({ "partnerUnresponsivenessThresholdInDays": 0 }),
            400,
            "BadRequest",
        ),
        (
            Method::PATCH,
            "/beta/deviceManagement/mobileThreatDefenseConnectors/08a8455c-48dd-45ff-ad82-7211355354f3",
            json!({ "iosEnabled": "yes" }),
            400,
            "BadRequest",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let r = app.graph(method, path, &token).json(&body).send().await.unwrap();
        assert_error(r, status, code).await;
    }
    assert_eq!(
        app.graph(Method::DELETE, &format!("{base}/{ZIMPERIUM}"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = app
        .graph(Method::GET, &format!("{base}/{ZIMPERIUM}"), &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    // A reader can read but not write.
    let (id, secret) = app
        .register_app(&t.id, &["DeviceManagementServiceConfig.Read.All"])
        .await;
    let reader = app.token(&t.id, &id, &secret).await;
    assert_eq!(
        app.graph(Method::GET, base, &reader).send().await.unwrap().status(),
        200
    );
    let r = app
        .graph(Method::PATCH, &format!("{base}/{LOOKOUT}"), &reader)
        .json(&json!({ "iosEnabled": false }))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;
}

async fn partner_state_follows_heartbeats_toggles_and_errors(app: TestApp) {
    let t = app.create_tenant().await;
    let partner_tok = partner_token(&app, &t.id, LOOKOUT).await;
    let graph_tok = app.admin_token(&t).await;
    // Each token only on its own surface.
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/mobileThreatDefenseConnectors",
            &partner_tok,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;
    let r = partner(&app, Method::POST, "/partner/v1/connector/heartbeat", &graph_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;
    let r = app
        .req(Method::POST, "/partner/v1/connector/heartbeat")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "InvalidAuthenticationToken").await;

    // Nothing but a heartbeat before the first heartbeat.
    let r = partner(&app, Method::PATCH, "/partner/v1/connector", &partner_tok)
        .await
        .json(&json!({ "errorCode": 1 }))
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 409, "Conflict").await.contains("not set up"));
    let r = partner(&app, Method::POST, "/partner/v1/connector/heartbeat", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let c = connector(&app, &graph_tok, "beta", LOOKOUT).await;
    assert_eq!(
        c["partnerState"], "available",
        "the first heartbeat provisions the connector"
    );
    assert_ne!(c["lastHeartbeatDateTime"], "0001-01-01T00:00:00Z");
    let r = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/deviceManagement/mobileThreatDefenseConnectors/{LOOKOUT}"),
            &graph_tok,
        )
        .json(&json!({ "iosEnabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        connector(&app, &graph_tok, "v1.0", LOOKOUT).await["partnerState"],
        "enabled"
    );

    let r = partner(&app, Method::PATCH, "/partner/v1/connector", &partner_tok)
        .await
        .json(&json!({ "errorCode": 5, "partnerDisplayName": "Lookout Mobile Endpoint Security", "partnerMinimumSupportedIosVersion": "16.0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let c = connector(&app, &graph_tok, "beta", LOOKOUT).await;
    assert_eq!(c["partnerState"], "error");
    assert_eq!(c["partnerDisplayName"], "Lookout Mobile Endpoint Security");
    assert_eq!(c["partnerMinimumSupportedIosVersion"], "16.0");
    assert_eq!(
        connector(&app, &graph_tok, "v1.0", LOOKOUT).await["partnerState"],
        "unknownFutureValue"
    );
    for bad in [
        json!({ "errorCode": "x" }),
        json!({ "partnerMinimumSupportedIosVersion": "sixteen" }),
        json!({ "partnerState": "enabled" }),
    ] {
        let r = partner(&app, Method::PATCH, "/partner/v1/connector", &partner_tok)
            .await
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    partner(&app, Method::PATCH, "/partner/v1/connector", &partner_tok)
        .await
        .json(&json!({ "errorCode": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        connector(&app, &graph_tok, "beta", LOOKOUT).await["partnerState"],
        "enabled"
    );

    // Silence past the threshold (7 days by default) makes it unresponsive; a heartbeat brings it back.
    app.advance_clock(&t.id, "P7DT1H").await;
    let graph_tok = app.admin_token(&t).await;
    let partner_tok = partner_token(&app, &t.id, LOOKOUT).await;
    assert_eq!(
        connector(&app, &graph_tok, "v1.0", LOOKOUT).await["partnerState"],
        "unresponsive"
    );
    partner(&app, Method::POST, "/partner/v1/connector/heartbeat", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(
        connector(&app, &graph_tok, "v1.0", LOOKOUT).await["partnerState"],
        "enabled"
    );

    // Deprovisioned: unavailable, and refused until the next heartbeat.
    let r = partner(&app, Method::DELETE, "/partner/v1/connector", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        connector(&app, &graph_tok, "v1.0", LOOKOUT).await["partnerState"],
        "unavailable"
    );
    let r = partner(&app, Method::POST, "/partner/v1/deviceThreatStates", &partner_tok)
        .await
        .json(&json!({ "value": [{ "deviceId": "x", "threatLevel": "low", "reportedDateTime": "2026-01-01T00:00:00Z" }] }))
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 409, "Conflict").await.contains("deprovisioned"));
    let r = partner(&app, Method::GET, "/partner/v1/devices", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "Conflict").await;
    partner(&app, Method::POST, "/partner/v1/connector/heartbeat", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(
        connector(&app, &graph_tok, "v1.0", LOOKOUT).await["partnerState"],
        "enabled"
    );

    // A partner app for a partner outside the catalog cannot be registered.
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
        .json(&json!({ "displayName": "x", "kind": "partner", "connectorId": "00000000-0000-0000-0000-000000000009" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/apps", t.id))
        .json(&json!({ "displayName": "x", "kind": "partner" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let catalog: Value = app
        .req(Method::GET, "/_emulator/partners")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lookout = catalog["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == LOOKOUT)
        .unwrap();
    assert_eq!(lookout["platforms"]["ios"], true);
    assert!(catalog["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"] != "4873197-ffec-4dfc-9816-db65f34c7cb9"));
}

pub(crate) async fn enroll(app: &TestApp, t: &Tenant, devices: Value) -> Vec<Value> {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&devices)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["value"].as_array().unwrap().clone()
}

pub(crate) async fn setup_connector(app: &TestApp, t: &Tenant, settings: Value) -> (String, String) {
    let graph_tok = app.admin_token(t).await;
    let partner_tok = partner_token(app, &t.id, LOOKOUT).await;
    let mut body = settings.as_object().unwrap().clone();
    body.insert("id".into(), json!(LOOKOUT));
    let r = app
        .graph(
            Method::POST,
            "/beta/deviceManagement/mobileThreatDefenseConnectors",
            &graph_tok,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        partner(app, Method::POST, "/partner/v1/connector/heartbeat", &partner_tok)
            .await
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    (graph_tok, partner_tok)
}

pub(crate) async fn report(app: &TestApp, token: &str, items: Value) -> Value {
    let r = partner(app, Method::POST, "/partner/v1/deviceThreatStates", token)
        .await
        .json(&json!({ "value": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn threat_state(app: &TestApp, token: &str, id: &str) -> Value {
    let d: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{id}"),
            token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    d["partnerReportedThreatState"].clone()
}

/// Two partners report one device. Its `partnerReportedThreatState` is the newest report of a
/// connector that is not deprovisioned, whether the report batch, the connector's change or a
/// later re-evaluation (`settle`, which derives it again from the reports) wrote it last.
async fn the_threat_state_is_the_newest_report_of_a_connector_that_counts(app: TestApp) {
    let t = app.create_tenant().await;
    let devices = enroll(
        &app,
        &t,
        json!([{ "deviceName": "iphone", "operatingSystem": "iOS", "osVersion": "17.1" }]),
    )
    .await;
    let id = devices[0]["id"].as_str().unwrap().to_string();
    let (graph_tok, lookout) = setup_connector(&app, &t, json!({ "iosEnabled": true })).await;
    let zimperium = partner_token(&app, &t.id, ZIMPERIUM).await;
    let r = app
        .graph(
            Method::POST,
            "/beta/deviceManagement/mobileThreatDefenseConnectors",
            &graph_tok,
        )
        .json(&json!({ "id": ZIMPERIUM, "iosEnabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let heartbeat = |token: String| {
        let app = &app;
        async move {
            let r = partner(app, Method::POST, "/partner/v1/connector/heartbeat", &token)
                .await
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    heartbeat(zimperium.clone()).await;
    let accepted = |body: Value| body["accepted"] == json!(1);
    let item = |level: &str, at: &str| json!([{ "deviceId": id, "threatLevel": level, "reportedDateTime": at }]);

    // Each state is checked as the last writer left it, then after a re-evaluation.
    let check = |expected: &'static str, step: &'static str| {
        let (app, t, graph_tok, id) = (&app, &t, &graph_tok, &id);
        async move {
            assert_eq!(threat_state(app, graph_tok, id).await, expected, "{step}");
            crate::compliance::settle(app, t).await;
            assert_eq!(threat_state(app, graph_tok, id).await, expected, "{step}, re-evaluated");
        }
    };
    assert!(accepted(
        report(&app, &lookout, item("high", "2026-01-01T10:00:00Z")).await
    ));
    check("highSeverity", "one report").await;
    assert!(accepted(
        report(&app, &zimperium, item("low", "2026-01-01T11:00:00Z")).await
    ));
    check("lowSeverity", "the newer report of another partner").await;
    // Newer than the partner's own stored report, older than the other's: stored, not shown.
    assert!(accepted(
        report(&app, &lookout, item("medium", "2026-01-01T10:30:00Z")).await
    ));
    check("lowSeverity", "an older report of the first partner").await;

    // Deprovisioned, the newest partner's reports stop counting; the other's is shown.
    let r = partner(&app, Method::DELETE, "/partner/v1/connector", &zimperium)
        .await
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    check("mediumSeverity", "the newest partner deprovisioned").await;
    heartbeat(zimperium.clone()).await;
    check("lowSeverity", "provisioned again").await;
}

async fn threat_reports_keep_the_newest_per_device_and_connector(app: TestApp) {
    let t = app.create_tenant().await;
    let devices = enroll(&app, &t, json!([
        { "deviceName": "iphone", "operatingSystem": "iOS", "osVersion": "17.1" },
        { "deviceName": "pixel", "operatingSystem": "Android", "osVersion": "14", "platform": "androidDeviceAdministrator" },
        { "deviceName": "surface", "operatingSystem": "Windows", "osVersion": "10.0.22631" },
    ]))
    .await;
    let (iphone, pixel, surface) = (&devices[0], &devices[1], &devices[2]);
    let (graph_tok, partner_tok) =
        setup_connector(&app, &t, json!({ "iosEnabled": true, "androidEnabled": true })).await;
    let id = |d: &Value| d["id"].as_str().unwrap().to_string();
    let entra = |d: &Value| d["azureADDeviceId"].as_str().unwrap().to_string();

    let body = report(&app, &partner_tok, json!([
        { "deviceId": id(iphone), "threatLevel": "medium", "reportedDateTime": "2026-01-01T10:00:00Z" },
        { "deviceId": entra(pixel), "healthState": "compromised", "reportedDateTime": "2026-01-01T10:00:00Z" },
        { "deviceId": id(surface), "threatLevel": "low", "reportedDateTime": "2026-01-01T10:00:00Z" },
        { "deviceId": "7c4a0000-0000-4000-8000-000000000000", "threatLevel": "low", "reportedDateTime": "2026-01-01T10:00:00Z" },
        { "deviceId": id(iphone), "threatLevel": "critical", "reportedDateTime": "2026-01-01T10:00:00Z" },
        { "deviceId": id(iphone), "threatLevel": "low", "healthState": "activated", "reportedDateTime": "2026-01-01T10:00:00Z" },
        { "deviceId": id(iphone), "threatLevel": "low" },
        { "deviceId": id(iphone), "threatLevel": "low", "reportedDateTime": "2999-01-01T00:00:00Z" },
    ]))
    .await;
    let statuses: Vec<(&str, Option<&str>)> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["status"].as_str().unwrap(), v["code"].as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("accepted", None),
            ("accepted", None),
            ("rejected", Some("platformNotEnabled")),
            ("rejected", Some("unknownDevice")),
            ("rejected", Some("badValue")),
            ("rejected", Some("badValue")),
            ("rejected", Some("badValue")),
            ("rejected", Some("badValue")),
        ]
    );
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(6))
    );
    assert_eq!(threat_state(&app, &graph_tok, &id(iphone)).await, "mediumSeverity");
    assert_eq!(threat_state(&app, &graph_tok, &id(pixel)).await, "compromised");
    assert_eq!(threat_state(&app, &graph_tok, &id(surface)).await, "unknown");

    // Out of order and replayed: the newest wins, older and equal ones are stale.
    let body = report(
        &app,
        &partner_tok,
        json!([
            { "deviceId": id(iphone), "threatLevel": "high", "reportedDateTime": "2026-01-01T09:00:00Z" },
            { "deviceId": id(iphone), "threatLevel": "medium", "reportedDateTime": "2026-01-01T10:00:00Z" },
            { "deviceId": entra(iphone), "threatLevel": "secured", "reportedDateTime": "2026-01-01T12:00:00Z" },
            { "deviceId": id(iphone), "threatLevel": "low", "reportedDateTime": "2026-01-01T11:00:00Z" },
        ]),
    )
    .await;
    let statuses: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["stale", "stale", "accepted", "stale"]);
    assert_eq!(threat_state(&app, &graph_tok, &id(iphone)).await, "secured");
    let body = report(
        &app,
        &partner_tok,
        json!([{ "deviceId": id(iphone), "threatLevel": "secured", "reportedDateTime": "2026-01-01T12:00:00Z" }]),
    )
    .await;
    assert_eq!(body["value"][0]["status"], "stale", "a replay changes nothing");
    assert_eq!(
        body["value"][0]["message"],
        "Not newer than the report stored for this device (reportedDateTime 2026-01-01T12:00:00.000Z): ignored.",
        "a stale report says why"
    );

    // Deprovisioned, the partner's data stops counting; provisioned again, it counts again.
    partner(&app, Method::DELETE, "/partner/v1/connector", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(threat_state(&app, &graph_tok, &id(iphone)).await, "unknown");
    partner(&app, Method::POST, "/partner/v1/connector/heartbeat", &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(threat_state(&app, &graph_tok, &id(iphone)).await, "secured");

    for bad in [
        json!({}),
        json!({ "value": [] }),
        json!({ "value": "x" }),
        json!([{ "deviceId": "x" }]),
        json!({ "value": vec![json!({}); 1001] }),
    ] {
        let r = partner(&app, Method::POST, "/partner/v1/deviceThreatStates", &partner_tok)
            .await
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    // Deleting the connector in Graph takes its data away.
    assert_eq!(
        app.graph(
            Method::DELETE,
            &format!("/v1.0/deviceManagement/mobileThreatDefenseConnectors/{LOOKOUT}"),
            &graph_tok
        )
        .send()
        .await
        .unwrap()
        .status(),
        204
    );
    assert_eq!(threat_state(&app, &graph_tok, &id(iphone)).await, "unknown");
}

/// A report's deviceId is a managed device id or an Entra device id. One that is both (one
/// device's id, another's Entra device id) names the device with that id, and that one alone.
async fn a_key_that_is_both_kinds_of_id_names_the_managed_device(app: TestApp) {
    let t = app.create_tenant().await;
    let shared = "5d1c0000-0000-4000-8000-0000000000aa";
    enroll(
        &app,
        &t,
        json!([{ "id": shared, "deviceName": "first", "operatingSystem": "iOS", "osVersion": "17.1" }]),
    )
    .await;
    let devices = enroll(
        &app,
        &t,
        json!([
            { "deviceName": "second", "operatingSystem": "iOS", "osVersion": "17.1", "azureADDeviceId": shared },
        ]),
    )
    .await;
    let second = devices[0]["id"].as_str().unwrap().to_string();
    assert_eq!(devices[0]["azureADDeviceId"], shared);
    let (graph_tok, partner_tok) = setup_connector(&app, &t, json!({ "iosEnabled": true })).await;
    let body = report(
        &app,
        &partner_tok,
        json!([{ "deviceId": shared, "threatLevel": "high", "reportedDateTime": "2026-01-01T10:00:00Z" }]),
    )
    .await;
    assert_eq!(body["value"][0]["status"], "accepted");
    assert_eq!(threat_state(&app, &graph_tok, shared).await, "highSeverity");
    assert_eq!(threat_state(&app, &graph_tok, &second).await, "unknown");
    // The second device is reached by its own id.
    let body = report(
        &app,
        &partner_tok,
        json!([{ "deviceId": second, "threatLevel": "low", "reportedDateTime": "2026-01-01T10:00:00Z" }]),
    )
    .await;
    assert_eq!(body["value"][0]["status"], "accepted");
    assert_eq!(threat_state(&app, &graph_tok, &second).await, "lowSeverity");
    assert_eq!(threat_state(&app, &graph_tok, shared).await, "highSeverity");
}

async fn partner_devices_and_app_sync(app: TestApp) {
    let t = app.create_tenant().await;
    let devices = enroll(
        &app,
        &t,
        json!([
            { "deviceName": "personal-iphone", "operatingSystem": "iOS", "osVersion": "17.1", "ownerType": "personal" },
            { "deviceName": "corporate-iphone", "operatingSystem": "iOS", "osVersion": "17.1", "ownerType": "company" },
            { "deviceName": "pixel", "operatingSystem": "Android", "osVersion": "14" },
            { "deviceName": "mac", "operatingSystem": "macOS", "osVersion": "14.1" },
        ]),
    )
    .await;
    let apps = json!([
        { "bundleId": "com.microsoft.Office.Outlook", "displayName": "Outlook", "version": "4.2", "managed": true },
        { "bundleId": "com.example.game", "displayName": "Game", "version": "1.0", "managed": false },
    ]);
    for d in &devices[..2] {
        app.req(
            Method::PUT,
            &format!("/_emulator/tenants/{}/devices/{}/apps", t.id, d["id"].as_str().unwrap()),
        )
        .json(&apps)
        .send()
        .await
        .unwrap();
    }
    let (graph_tok, partner_tok) =
        setup_connector(&app, &t, json!({ "iosEnabled": true, "androidEnabled": true })).await;
    let listed: Value = partner(&app, Method::GET, "/partner/v1/devices?$count=true", &partner_tok)
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["@odata.count"], 3, "the Mac is not on an enabled platform");
    let first: Value = partner(&app, Method::GET, "/partner/v1/devices?$top=2", &partner_tok)
        .await
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
        .bearer_auth(&partner_tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["value"].as_array().unwrap().len(), 1);
    let ios: Value = partner(
        &app,
        Method::GET,
        "/partner/v1/devices?$filter=platform eq 'iOS' and lastSyncDateTime gt 2020-01-01T00:00:00Z",
        &partner_tok,
    )
    .await
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ios["value"].as_array().unwrap().len(), 2);
    let r = partner(
        &app,
        Method::GET,
        "/partner/v1/devices?$filter=deviceName eq 'x'",
        &partner_tok,
    )
    .await
    .send()
    .await
    .unwrap();
    assert_error(r, 400, "BadRequest").await;

    let apps_of = |d: &Value| format!("/partner/v1/devices/{}/apps", d["azureADDeviceId"].as_str().unwrap());
    let r = partner(&app, Method::GET, &apps_of(&devices[0]), &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(r, 403, "Forbidden").await.contains("App Sync"),
        "App Sync is off"
    );
    let patch = |body: Value| {
        let r = app
            .graph(
                Method::PATCH,
                &format!("/v1.0/deviceManagement/mobileThreatDefenseConnectors/{LOOKOUT}"),
                &graph_tok,
            )
            .json(&body);
        async move { assert_eq!(r.send().await.unwrap().status(), 204) }
    };
    patch(json!({ "allowPartnerToCollectIOSApplicationMetadata": true })).await;
    let names = |body: Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["displayName"].as_str().unwrap().to_string())
            .collect()
    };
    let personal: Value = partner(&app, Method::GET, &apps_of(&devices[0]), &partner_tok)
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(personal), ["Outlook"], "personal devices: managed apps only");
    let corporate: Value = partner(&app, Method::GET, &apps_of(&devices[1]), &partner_tok)
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(corporate), ["Game", "Outlook"]);
    patch(json!({ "allowPartnerToCollectIOSPersonalApplicationMetadata": true })).await;
    let personal: Value = partner(&app, Method::GET, &apps_of(&devices[0]), &partner_tok)
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(personal), ["Game", "Outlook"]);
    let r = partner(&app, Method::GET, &apps_of(&devices[2]), &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = partner(&app, Method::GET, &apps_of(&devices[3]), &partner_tok)
        .await
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
}

async fn partners_see_only_their_tenant(app: TestApp) {
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let a_devices = enroll(
        &app,
        &a,
        json!([{ "deviceName": "a-iphone", "operatingSystem": "iOS", "osVersion": "17.1", "ownerType": "company" }]),
    )
    .await;
    enroll(
        &app,
        &b,
        json!([{ "deviceName": "b-iphone", "operatingSystem": "iOS", "osVersion": "17.1" }]),
    )
    .await;
    app.req(
        Method::PUT,
        &format!(
            "/_emulator/tenants/{}/devices/{}/apps",
            a.id,
            a_devices[0]["id"].as_str().unwrap()
        ),
    )
    .json(&json!([{ "bundleId": "x", "displayName": "X", "version": "1", "managed": true }]))
    .send()
    .await
    .unwrap();
    let (a_graph, _) = setup_connector(
        &app,
        &a,
        json!({ "iosEnabled": true, "allowPartnerToCollectIOSApplicationMetadata": true }),
    )
    .await;
    let (_, b_partner) = setup_connector(
        &app,
        &b,
        json!({ "iosEnabled": true, "allowPartnerToCollectIOSApplicationMetadata": true }),
    )
    .await;
    let a_id = a_devices[0]["id"].as_str().unwrap();
    let a_entra = a_devices[0]["azureADDeviceId"].as_str().unwrap();
    let body = report(
        &app,
        &b_partner,
        json!([
            { "deviceId": a_id, "threatLevel": "high", "reportedDateTime": "2026-01-01T00:00:00Z" },
            { "deviceId": a_entra, "threatLevel": "high", "reportedDateTime": "2026-01-01T00:00:00Z" },
        ]),
    )
    .await;
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["code"] == "unknownDevice"),
        "{body}"
    );
    assert_eq!(threat_state(&app, &a_graph, a_id).await, "unknown");
    let listed: Value = partner(&app, Method::GET, "/partner/v1/devices", &b_partner)
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deviceName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b-iphone"]);
    for key in [a_id, a_entra] {
        let r = partner(
            &app,
            Method::GET,
            &format!("/partner/v1/devices/{key}/apps"),
            &b_partner,
        )
        .await
        .send()
        .await
        .unwrap();
        assert_error(r, 404, "ResourceNotFound").await;
    }
}
