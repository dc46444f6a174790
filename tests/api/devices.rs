//! Enrolled devices through the control plane and Graph: managed devices, app inventories,
//! detected apps, remote actions.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::directory::{add_member, create_group, create_user};

both_backends!(
    enrollment_validates_and_defaults,
    managed_devices_show_the_property_set_of_each_version,
    managed_device_queries_follow_intune_rules,
    remote_actions_are_pending_until_check_in,
    detected_apps_follow_ownership,
    devices_of_one_tenant_are_invisible_to_another,
    every_ios_device_once_across_pages_of_a_large_tenant,
);

async fn enroll(app: &TestApp, t: &Tenant, body: Value) -> Value {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "enrolling {} bytes of devices", body.to_string().len());
    r.json().await.unwrap()
}

async fn enrollment_validates_and_defaults(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "adele@contoso.example", "Adele Vance").await;
    let d = enroll(&app, &t, json!({ "deviceName": "adele-iphone", "operatingSystem": "ios", "osVersion": "17.4.1", "userPrincipalName": "adele@contoso.example" })).await;
    assert_eq!(d["operatingSystem"], "iOS");
    assert_eq!(d["userId"], user["id"]);
    assert_eq!(d["userDisplayName"], "Adele Vance");
    assert_eq!(d["emailAddress"], "adele@contoso.example");
    assert_eq!(d["manufacturer"], "Apple");
    assert_eq!(d["managedDeviceOwnerType"], "personal");
    assert_eq!(
        d["complianceState"], "compliant",
        "no policy applies, secureByDefault is off"
    );
    assert_eq!(d["partnerReportedThreatState"], "unknown");
    assert_eq!(d["managementState"], "managed");
    assert_eq!(d["deviceEnrollmentType"], "userEnrollment");
    assert!(d["managedDeviceName"].as_str().unwrap().starts_with("adele_iPhone_"));
    assert_eq!(d["enrolledDateTime"], d["lastSyncDateTime"]);

    let many: Vec<Value> = (0..3).map(|i| json!({ "deviceName": format!("kiosk-{i}"), "operatingSystem": "Android", "osVersion": "14", "ownerType": "company" })).collect();
    let created = enroll(&app, &t, Value::Array(many)).await;
    assert_eq!(created["value"].as_array().unwrap().len(), 3);
    assert_eq!(created["value"][0]["managedDeviceOwnerType"], "company");

    let path = format!("/_emulator/tenants/{}/devices", t.id);
    let fixed = "5a4b7c2d-0000-4000-8000-000000000001";
    enroll(
        &app,
        &t,
        json!({ "id": fixed, "deviceName": "fixed", "operatingSystem": "Windows", "osVersion": "10.0.22631" }),
    )
    .await;
    let bad: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "deviceName": "x", "operatingSystem": "BeOS", "osVersion": "1" }),
            400,
            "'operatingSystem'",
        ),
        (
            json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "seventeen!" }),
            400,
            "'osVersion'",
        ),
        (
            json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "17", "platform": "androidWorkProfile" }),
            400,
            "'platform'",
        ),
        (
            json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "17", "userPrincipalName": "nobody@contoso.example" }),
            400,
            "'userPrincipalName': 'nobody@contoso.example' is not a user of the tenant",
        ),
        (
            json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "17", "ownerType": "borrowed" }),
            400,
            "'ownerType'",
        ),
        (
            json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "17", "enrolledDateTime": "2999-01-01T00:00:00Z" }),
            400,
            "'enrolledDateTime'",
        ),
        (
            json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "17", "colour": "red" }),
            400,
            "'colour'",
        ),
        (
            json!({ "operatingSystem": "iOS", "osVersion": "17" }),
            400,
            "'deviceName'",
        ),
        (
            json!([{ "deviceName": "ok", "operatingSystem": "iOS", "osVersion": "17" }, { "deviceName": "bad", "operatingSystem": "iOS" }]),
            400,
            "Device 1",
        ),
        (json!([]), 400, "1 to 1000"),
        (
            Value::Array(vec![
                json!({ "deviceName": "x", "operatingSystem": "iOS", "osVersion": "17" });
                1001
            ]),
            400,
            "1 to 1000",
        ),
        (
            json!({ "id": fixed, "deviceName": "again", "operatingSystem": "iOS", "osVersion": "17" }),
            409,
            "already enrolled",
        ),
    ];
    for (body, status, expected) in bad {
        let r = app.req(Method::POST, &path).json(&body).send().await.unwrap();
        let code = if status == 409 { "Conflict" } else { "BadRequest" };
        let message = assert_error(r, status, code).await;
        assert!(message.contains(expected), "{expected}: {message}");
    }
    // A refused array enrolled nothing.
    let all: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/managedDevices", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["@odata.count"], 5);
}

async fn managed_devices_show_the_property_set_of_each_version(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let d = enroll(
        &app,
        &t,
        json!({ "deviceName": "mac", "operatingSystem": "macOS", "osVersion": "14.4", "ownerType": "company" }),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let v1: Value = app
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
    assert_eq!(
        v1["@odata.context"],
        format!("{}/v1.0/$metadata#deviceManagement/managedDevices/$entity", app.base)
    );
    assert_eq!(v1["@odata.type"], "#microsoft.graph.managedDevice");
    for non_nullable in [
        "complianceState",
        "managementState",
        "partnerReportedThreatState",
        "managedDeviceOwnerType",
        "deviceEnrollmentType",
        "deviceRegistrationState",
        "enrolledDateTime",
        "lastSyncDateTime",
        "complianceGracePeriodExpirationDateTime",
        "isEncrypted",
        "isSupervised",
        "easActivated",
        "managementAgent",
    ] {
        assert!(
            v1.get(non_nullable).is_some_and(|v| !v.is_null()),
            "{non_nullable} in {v1}"
        );
    }
    assert_eq!(v1["complianceGracePeriodExpirationDateTime"], "9999-12-31T23:59:59Z");
    assert!(v1.get("ownerType").is_none(), "beta-only");
    assert_eq!(v1["notes"], Value::Null, "non-default properties need $select");
    let beta: Value = app
        .graph(
            Method::GET,
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(beta["ownerType"], "company");
    assert_eq!(beta["azureActiveDirectoryDeviceId"], v1["azureADDeviceId"]);
    assert!(beta.as_object().unwrap().len() > v1.as_object().unwrap().len());

    // Writable properties change; server-owned ones are ignored.
    let r = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/deviceManagement/managedDevices/{id}"),
            &token,
        )
        .json(&json!({ "notes": "In the lab", "managedDeviceName": "lab-mac", "complianceState": "compliant" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{id}?$select=notes,managedDeviceName,complianceState"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["notes"], "In the lab");
    assert_eq!(got["managedDeviceName"], "lab-mac");
    assert_eq!(got["complianceState"], "compliant");
    let listed: Value = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/managedDevices?$select=id,notes",
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["value"][0]["notes"],
        Value::Null,
        "lists leave non-default properties out"
    );
    let r = app
        .graph(
            Method::PATCH,
            &format!("/v1.0/deviceManagement/managedDevices/{id}"),
            &token,
        )
        .json(&json!({ "notes": 5 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    assert_eq!(
        app.graph(
            Method::DELETE,
            &format!("/v1.0/deviceManagement/managedDevices/{id}"),
            &token
        )
        .send()
        .await
        .unwrap()
        .status(),
        204
    );
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices({id:?})").replace('"', "'"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
}

async fn managed_device_queries_follow_intune_rules(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let adele = create_user(&app, &token, "adele@contoso.example", "Adele").await;
    create_user(&app, &token, "bianca@contoso.example", "Bianca").await;
    let devices = json!([
        { "deviceName": "adele-iphone", "operatingSystem": "iOS", "osVersion": "17.4", "userPrincipalName": "adele@contoso.example" },
        { "deviceName": "adele-pixel", "operatingSystem": "Android", "osVersion": "14", "userPrincipalName": "adele@contoso.example" },
        { "deviceName": "bianca-ipad", "operatingSystem": "iPadOS", "osVersion": "16.7", "userPrincipalName": "bianca@contoso.example" },
        { "deviceName": "lab-surface", "operatingSystem": "Windows", "osVersion": "10.0.22631", "ownerType": "company" },
    ]);
    enroll(&app, &t, devices).await;
    let names = |body: &Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["deviceName"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |q: &str| {
        let r = app.graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices?{q}"),
            &token,
        );
        async move { r.send().await.unwrap() }
    };
    let body: Value = get("$filter=operatingSystem eq 'ios' or operatingSystem eq 'iPadOS'&$orderby=deviceName desc")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&body), ["bianca-ipad", "adele-iphone"]);
    assert_eq!(body["@odata.count"], 2, "count comes without asking");
    let body: Value = get("$filter=contains(deviceName,'ADELE') and operatingSystem eq 'Android'")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&body), ["adele-pixel"]);
    let body: Value = get("$filter=userPrincipalName ne 'adele@contoso.example'&$orderby=deviceName")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&body), ["bianca-ipad", "lab-surface"]);
    let body: Value =
        get("$filter=complianceState eq 'compliant' and managementAgent eq 'mdm'&$select=deviceName,complianceState")
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(body["@odata.count"], 4);
    assert_eq!(
        body["value"][0].as_object().unwrap().len(),
        3,
        "@odata.type, deviceName, complianceState"
    );
    let body: Value = get("$filter=lastSyncDateTime gt 2020-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["@odata.count"], 4);
    for refused in [
        "$filter=deviceName ne 'x'",
        "$filter=operatingSystem eq 'iOS' or deviceName eq 'x'",
        "$filter=startswith(deviceName,'a')",
        "$filter=complianceState eq 'purple'",
        "$filter=notes eq 'x'",
        "$search=\"adele\"",
        "$expand=users",
    ] {
        assert_error(get(refused).await, 400, "BadRequest").await;
    }
    // A user's devices.
    let uid = adele["id"].as_str().unwrap();
    let mine: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/users/{uid}/managedDevices?$orderby=deviceName"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(&mine), ["adele-iphone", "adele-pixel"]);
    let filtered: Value = app
        .graph(
            Method::GET,
            "/v1.0/users/adele@contoso.example/managedDevices?$filter=operatingSystem eq 'iOS'",
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(&filtered), ["adele-iphone"]);
    let one = &mine["value"][0]["id"];
    let r = app
        .graph(
            Method::GET,
            &format!(
                "/v1.0/users/bianca@contoso.example/managedDevices/{}",
                one.as_str().unwrap()
            ),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    // Renaming the user shows on the device.
    app.graph(Method::PATCH, &format!("/v1.0/users/{uid}"), &token)
        .json(&json!({ "displayName": "Adele Vance" }))
        .send()
        .await
        .unwrap();
    let d: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{}", one.as_str().unwrap()),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["userDisplayName"], "Adele Vance");
}

async fn remote_actions_are_pending_until_check_in(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let created = enroll(
        &app,
        &t,
        json!([
            { "deviceName": "a", "operatingSystem": "iOS", "osVersion": "17.1" },
            { "deviceName": "b", "operatingSystem": "Android", "osVersion": "13" },
        ]),
    )
    .await;
    let a = created["value"][0]["id"].as_str().unwrap().to_string();
    let b = created["value"][1]["id"].as_str().unwrap().to_string();
    let device = |id: &str| {
        let r = app.graph(
            Method::GET,
            &format!("/beta/deviceManagement/managedDevices/{id}"),
            &token,
        );
        async move { r.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // The SDKs post actions with no body and no content type.
    let r = app
        .graph(
            Method::POST,
            &format!("/v1.0/deviceManagement/managedDevices/{a}/remoteLock"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .graph(
            Method::POST,
            &format!("/v1.0/deviceManagement/managedDevices/{a}/retire"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let d = device(&a).await;
    assert_eq!(d["managementState"], "retirePending");
    let results = d["deviceActionResults"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r["actionState"] == "pending"), "{results:?}");

    let r = app
        .graph(
            Method::POST,
            &format!("/beta/deviceManagement/managedDevices/{b}/wipe"),
            &token,
        )
        .json(&json!({ "keepEnrollmentData": true, "keepUserData": false, "obliterationBehavior": "doNotObliterate" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(device(&b).await["managementState"], "wipePending");
    let r = app
        .graph(
            Method::POST,
            &format!("/v1.0/deviceManagement/managedDevices/{b}/wipe"),
            &token,
        )
        .json(&json!({ "obliterationBehavior": "always" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;
    let r = app
        .graph(
            Method::POST,
            &format!("/v1.0/deviceManagement/managedDevices/{b}/retire"),
            &token,
        )
        .json(&json!({ "now": true }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // The check-in carries the actions out: a retired device leaves management.
    let r = app
        .req(Method::PATCH, &format!("/_emulator/tenants/{}/devices/{a}", t.id))
        .json(&json!({ "osVersion": "17.2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let checked: Value = r.json().await.unwrap();
    assert_eq!(checked["removedFromManagement"], true);
    assert!(checked["deviceActionResults"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["actionState"] == "done"));
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{a}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;

    // Remote actions need the privileged permission.
    let (cid, secret) = app
        .register_app(&t.id, &["DeviceManagementManagedDevices.ReadWrite.All"])
        .await;
    let rw = app.token(&t.id, &cid, &secret).await;
    let r = app
        .graph(
            Method::POST,
            &format!("/v1.0/deviceManagement/managedDevices/{b}/remoteLock"),
            &rw,
        )
        .send()
        .await
        .unwrap();
    assert!(assert_error(r, 403, "Forbidden").await.contains("PrivilegedOperations"));
    // A check-in without actions syncs at the tenant's now.
    let c = enroll(
        &app,
        &t,
        json!({ "deviceName": "c", "operatingSystem": "macOS", "osVersion": "14.0" }),
    )
    .await;
    let c_id = c["id"].as_str().unwrap();
    let clock = app.advance_clock(&t.id, "PT1H").await;
    let r: Value = app
        .req(Method::PATCH, &format!("/_emulator/tenants/{}/devices/{c_id}", t.id))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["removedFromManagement"], false);
    let synced = chrono::DateTime::parse_from_rfc3339(r["lastSyncDateTime"].as_str().unwrap()).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(clock["now"].as_str().unwrap()).unwrap();
    assert!(
        synced >= now && synced - now < chrono::Duration::minutes(1),
        "{synced} vs {now}"
    );
}

async fn detected_apps_follow_ownership(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let created = enroll(
        &app,
        &t,
        json!([
            { "deviceName": "personal", "operatingSystem": "iOS", "osVersion": "17.1", "ownerType": "personal" },
            { "deviceName": "corporate", "operatingSystem": "iOS", "osVersion": "17.1", "ownerType": "company" },
        ]),
    )
    .await;
    let personal = created["value"][0]["id"].as_str().unwrap().to_string();
    let corporate = created["value"][1]["id"].as_str().unwrap().to_string();
    let outlook = json!({ "bundleId": "com.microsoft.Office.Outlook", "displayName": "Microsoft Outlook", "version": "4.2419.0", "managed": true, "sizeInByte": 250000000, "publisher": "Microsoft" });
    let game = json!({ "bundleId": "com.example.game", "displayName": "A Game", "version": "1.0", "managed": false });
    for id in [&personal, &corporate] {
        let r = app
            .req(Method::PUT, &format!("/_emulator/tenants/{}/devices/{id}/apps", t.id))
            .json(&json!({ "value": [outlook, game] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let inventory: Value = app
        .req(
            Method::GET,
            &format!("/_emulator/tenants/{}/devices/{personal}/apps", t.id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        inventory["value"].as_array().unwrap().len(),
        2,
        "the device's own inventory keeps everything"
    );

    let apps: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/detectedApps?$count=true", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["@odata.count"], 2);
    let by_name = |name: &str| {
        apps["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["displayName"] == name)
            .cloned()
            .unwrap()
    };
    let outlook_app = by_name("Microsoft Outlook");
    assert_eq!(outlook_app["deviceCount"], 2);
    assert_eq!(outlook_app["platform"], "ios");
    assert_eq!(outlook_app["sizeInByte"], 250000000);
    assert_eq!(outlook_app["@odata.type"], "#microsoft.graph.detectedApp");
    let game_app = by_name("A Game");
    assert_eq!(
        game_app["deviceCount"], 1,
        "an unmanaged app shows only for the corporate device"
    );
    let game_devices: Value = app
        .graph(
            Method::GET,
            &format!(
                "/v1.0/deviceManagement/detectedApps/{}/managedDevices",
                game_app["id"].as_str().unwrap()
            ),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = game_devices["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [corporate.as_str()]);
    let one: Value = app
        .graph(
            Method::GET,
            &format!(
                "/v1.0/deviceManagement/detectedApps/{}",
                outlook_app["id"].as_str().unwrap()
            ),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["displayName"], "Microsoft Outlook");
    let r = app
        .graph(Method::GET, "/v1.0/deviceManagement/detectedApps/nope", &token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;

    let beta: Value = app
        .graph(
            Method::GET,
            &format!("/beta/deviceManagement/managedDevices/{personal}/detectedApps"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = beta["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Microsoft Outlook"]);
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{personal}/detectedApps"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(r, 400, "BadRequest").await.contains("detectedApps"),
        "beta only"
    );

    let apps_path = format!("/_emulator/tenants/{}/devices/{personal}/apps", t.id);
    for bad in [
        json!([outlook, outlook]),
        json!({ "value": [{ "bundleId": "x" }] }),
        json!({ "apps": [] }),
        json!([{ "bundleId": "x", "displayName": "X", "version": "1", "managed": "yes" }]),
    ] {
        let r = app.req(Method::PUT, &apps_path).json(&bad).send().await.unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    // Replacing the inventory replaces it.
    let r = app.req(Method::PUT, &apps_path).json(&json!([])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let apps: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/detectedApps", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        apps["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["displayName"] == "Microsoft Outlook")
            .unwrap()["deviceCount"],
        1
    );
}

async fn devices_of_one_tenant_are_invisible_to_another(app: TestApp) {
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let token_a = app.admin_token(&a).await;
    let token_b = app.admin_token(&b).await;
    let user = create_user(&app, &token_a, "adele@contoso.example", "Adele").await;
    let entra = "7c1e2d3f-0000-4000-8000-0000000000aa";
    let d = enroll(&app, &a, json!({ "deviceName": "a-phone", "operatingSystem": "iOS", "osVersion": "17.1", "userId": user["id"], "azureADDeviceId": entra })).await;
    let id = d["id"].as_str().unwrap();
    app.req(Method::PUT, &format!("/_emulator/tenants/{}/devices/{id}/apps", a.id))
        .json(&json!([{ "bundleId": "com.x", "displayName": "X", "version": "1", "managed": true }]))
        .send()
        .await
        .unwrap();
    let apps: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/detectedApps", &token_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = apps["value"][0]["id"].as_str().unwrap().to_string();

    for (method, path) in [
        (Method::GET, format!("/v1.0/deviceManagement/managedDevices/{id}")),
        (Method::PATCH, format!("/v1.0/deviceManagement/managedDevices/{id}")),
        (Method::DELETE, format!("/v1.0/deviceManagement/managedDevices/{id}")),
        (
            Method::POST,
            format!("/v1.0/deviceManagement/managedDevices/{id}/retire"),
        ),
        (Method::POST, format!("/v1.0/deviceManagement/managedDevices/{id}/wipe")),
        (
            Method::POST,
            format!("/v1.0/deviceManagement/managedDevices/{id}/remoteLock"),
        ),
        (
            Method::GET,
            format!("/beta/deviceManagement/managedDevices/{id}/detectedApps"),
        ),
        (Method::GET, format!("/v1.0/deviceManagement/detectedApps/{app_id}")),
        (
            Method::GET,
            format!("/v1.0/deviceManagement/detectedApps/{app_id}/managedDevices"),
        ),
    ] {
        let mut req = app.graph(method.clone(), &path, &token_b);
        if method == Method::PATCH {
            req = req.json(&json!({ "notes": "x" }));
        }
        assert_error(req.send().await.unwrap(), 404, "ResourceNotFound").await;
    }
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/users/{}/managedDevices", user["id"].as_str().unwrap()),
            &token_b,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "Request_ResourceNotFound").await;
    let listed: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/managedDevices", &token_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["@odata.count"], 0);
    // Nor through B's control plane, nor as a member of B's group.
    let r = app
        .req(Method::PATCH, &format!("/_emulator/tenants/{}/devices/{id}", b.id))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    let r = app
        .req(Method::PUT, &format!("/_emulator/tenants/{}/devices/{id}/apps", b.id))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "ResourceNotFound").await;
    let group = create_group(&app, &token_b, "B").await;
    let r = add_member(
        &app,
        &token_b,
        group["id"].as_str().unwrap(),
        &format!("devices/{entra}"),
    )
    .await;
    assert_error(r, 404, "Request_ResourceNotFound").await;
    // A's device is untouched.
    let still: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{id}?$select=notes,managementState"),
            &token_a,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["managementState"], "managed");
    assert_eq!(still["notes"], Value::Null);
}

async fn every_ios_device_once_across_pages_of_a_large_tenant(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let mut users = Vec::new();
    for i in 0..300 {
        let u = create_user(
            &app,
            &token,
            &format!("user{i:03}@contoso.example"),
            &format!("User {i:03}"),
        )
        .await;
        users.push(u["id"].as_str().unwrap().to_string());
    }
    let mut groups = Vec::new();
    for g in 0..20 {
        groups.push(
            create_group(&app, &token, &format!("Group {g:02}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for (i, uid) in users.iter().enumerate() {
        assert_eq!(
            add_member(&app, &token, &groups[i % 20], &format!("users/{uid}"))
                .await
                .status(),
            204
        );
    }
    let systems = ["iOS", "Android", "Windows", "iPadOS", "macOS"];
    let mut expected_ios = HashSet::new();
    let mut batch = Vec::new();
    for i in 0..2500 {
        let os = systems[i % 5];
        let id = uuid::Uuid::new_v4().to_string();
        if os == "iOS" {
            expected_ios.insert(id.clone());
        }
        batch.push(json!({ "id": id, "deviceName": format!("device-{i:04}"), "operatingSystem": os, "osVersion": "1.0", "userId": users[i % 300] }));
        if batch.len() == 1000 || i == 2499 {
            enroll(&app, &t, Value::Array(std::mem::take(&mut batch))).await;
        }
    }
    assert_eq!(expected_ios.len(), 500);
    let mut seen = HashSet::new();
    let mut url = format!(
        "{}/v1.0/deviceManagement/managedDevices?$filter=operatingSystem eq 'iOS'&$top=1000&$select=id,operatingSystem",
        app.base
    );
    let mut pages = 0;
    loop {
        let body: Value = app
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["@odata.count"], 500);
        for d in body["value"].as_array().unwrap() {
            assert_eq!(d["operatingSystem"], "iOS");
            assert!(
                seen.insert(d["id"].as_str().unwrap().to_string()),
                "a device appeared twice"
            );
        }
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, expected_ios);
    assert_eq!(pages, 1);
    // Smaller pages walk the same set through keyset skiptokens.
    let mut seen_small = HashSet::new();
    let mut url = format!(
        "{}/v1.0/deviceManagement/managedDevices?$filter=operatingSystem eq 'iOS'&$top=150",
        app.base
    );
    loop {
        let body: Value = app
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in body["value"].as_array().unwrap() {
            assert!(seen_small.insert(d["id"].as_str().unwrap().to_string()));
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen_small, expected_ios);
    let everything: Value = app
        .graph(Method::GET, "/v1.0/deviceManagement/managedDevices?$top=1", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(everything["@odata.count"], 2500);
    let members: Value = app
        .graph(
            Method::GET,
            &format!("/v1.0/groups/{}/members?$count=true", groups[3]),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(members["@odata.count"], 15);
}
