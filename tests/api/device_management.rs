//! `GET`/`PATCH /deviceManagement`: property sets per version, validation, merge semantics.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, TestApp};

both_backends!(
    each_version_shows_its_property_set,
    patch_merges_settings_and_returns_204,
    patch_refuses_bad_bodies_naming_the_property,
    select_narrows_the_singleton
);

async fn each_version_shows_its_property_set(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let v1: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v1["@odata.context"],
        format!("{}/v1.0/$metadata#deviceManagement", app.base)
    );
    assert_eq!(v1["@odata.type"], "#microsoft.graph.deviceManagement");
    assert_eq!(v1["subscriptionState"], "active");
    assert_eq!(
        v1["settings"],
        json!({"deviceComplianceCheckinThresholdDays": 30, "isScheduledActionEnabled": true, "secureByDefault": false})
    );
    let keys: Vec<&str> = v1.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "@odata.type",
            "id",
            "intuneAccountId",
            "subscriptionState",
            "settings",
            "intuneBrand",
            "userExperienceAnalyticsSettings",
            "deviceProtectionOverview",
            "windowsMalwareOverview"
        ]
    );
    let beta: Value = app
        .graph(Method::GET, "/beta/deviceManagement", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        beta["@odata.context"],
        format!("{}/beta/$metadata#deviceManagement", app.base)
    );
    assert_eq!(beta["settings"]["derivedCredentialProvider"], "notConfigured");
    assert_eq!(beta["maximumDepTokens"], 2000);
    assert_eq!(beta["id"], v1["id"]);
}

async fn patch_merges_settings_and_returns_204(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    // What msgraph-sdk sends for DeviceManagement(settings=DeviceManagementSettings(secure_by_default=True)).
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .json(&json!({"settings": {"secureByDefault": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = app
        .graph(Method::PATCH, "/beta/deviceManagement", &token)
        .json(&json!({"@odata.type": "#microsoft.graph.deviceManagement", "settings": {"enhancedJailBreak": true, "deviceComplianceCheckinThresholdDays": 14}, "subscriptionState": "blocked", "id": "mine", "intuneBrand": {"displayName": "Contoso IT", "themeColor": {"r": 1, "g": 2, "b": 3}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let beta: Value = app
        .graph(Method::GET, "/beta/deviceManagement", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(beta["settings"]["secureByDefault"], true);
    assert_eq!(beta["settings"]["enhancedJailBreak"], true);
    assert_eq!(beta["settings"]["deviceComplianceCheckinThresholdDays"], 14);
    assert_eq!(beta["settings"]["isScheduledActionEnabled"], true);
    assert_eq!(beta["intuneBrand"]["displayName"], "Contoso IT");
    assert_eq!(beta["intuneBrand"]["themeColor"], json!({"r": 1, "g": 2, "b": 3}));
    // Server-owned properties are ignored.
    assert_eq!(beta["subscriptionState"], "active");
    assert_ne!(beta["id"], "mine");
    // v1.0 does not show the beta-only setting, but keeps it.
    let v1: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v1["settings"].get("enhancedJailBreak").is_none());
    assert_eq!(v1["settings"]["deviceComplianceCheckinThresholdDays"], 14);
}

async fn patch_refuses_bad_bodies_naming_the_property(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "/v1.0/deviceManagement",
            r#"{"sttings": {}}"#,
            "The property 'sttings' does not exist on type 'microsoft.graph.deviceManagement'",
        ),
        (
            "/v1.0/deviceManagement",
            r#"{"settings": {"enhancedJailBreak": true}}"#,
            "The property 'enhancedJailBreak' does not exist on type 'microsoft.graph.deviceManagementSettings'",
        ),
        (
            "/v1.0/deviceManagement",
            r#"{"settings": {"secureByDefault": "yes"}}"#,
            "property 'secureByDefault'",
        ),
        (
            "/v1.0/deviceManagement",
            r#"{"settings": {"deviceComplianceCheckinThresholdDays": 1.5}}"#,
            "property 'deviceComplianceCheckinThresholdDays'",
        ),
        (
            "/v1.0/deviceManagement",
            r#"{"settings": {"deviceComplianceCheckinThresholdDays": 0}}"#,
            "'deviceComplianceCheckinThresholdDays': 0 is outside",
        ),
        (
            "/v1.0/deviceManagement",
            r#"{"settings": {"isScheduledActionEnabled": null}}"#,
            "The property 'isScheduledActionEnabled' cannot be null",
        ),
        (
            "/v1.0/deviceManagement",
            r#"{"settings": true}"#,
            "property named 'settings'",
        ),
        (
            "/beta/deviceManagement",
            r#"{"settings": {"derivedCredentialProvider": "acme"}}"#,
            "The value 'acme' is not a valid member",
        ),
        (
            "/v1.0/deviceManagement",
            r##"{"@odata.type": "#microsoft.graph.user"}"##,
            "could not be resolved",
        ),
        ("/v1.0/deviceManagement", r#"{"settings": {"#, "Invalid JSON"),
        (
            "/v1.0/deviceManagement",
            "",
            "A request body of type 'microsoft.graph.deviceManagement' is required",
        ),
        ("/v1.0/deviceManagement", "[]", "must be a JSON object"),
    ];
    for (path, body, expected) in cases {
        let r = app
            .graph(Method::PATCH, path, &token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let message = assert_error(r, 400, "BadRequest").await;
        assert!(message.contains(expected), "{body}: {message}");
    }
    let r = app
        .graph(Method::PATCH, "/v1.0/deviceManagement", &token)
        .header("content-type", "text/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "UnsupportedMediaType").await;
    // Nothing was changed by the refused writes.
    let v1: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v1["settings"],
        json!({"deviceComplianceCheckinThresholdDays": 30, "isScheduledActionEnabled": true, "secureByDefault": false})
    );
}

async fn select_narrows_the_singleton(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let body: Value = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement?$select=settings,subscriptionState",
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#deviceManagement(settings,subscriptionState)",
            app.base
        )
    );
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["@odata.context", "@odata.type", "subscriptionState", "settings"]);
    for bad in [
        "$select=maximumDepTokens",
        "$select=nope",
        "$top=5",
        "$filter=id eq 'x'",
        "$expand=managedDevices",
        "$select=settings&$select=id",
    ] {
        let r = app
            .graph(Method::GET, &format!("/v1.0/deviceManagement?{bad}"), &token)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    let body: Value = app
        .graph(Method::GET, "/beta/deviceManagement?$select=maximumDepTokens", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["maximumDepTokens"], 2000);
}
