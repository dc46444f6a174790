//! `seed FILE`: a tenant filled from a file, in one command, on both backends.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{start_replica, test_database, Backend, Client};

async fn a_seed_file_fills_a_tenant(backend: Backend) {
    let db = test_database(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.json");
    std::fs::write(
        &file,
        json!({
            "tenant": { "displayName": "Seeded" },
            "users": [{ "count": 3, "userPrincipalName": "u{n}@seeded.example" }],
            "groups": [{ "displayName": "Staff", "members": "*" }, { "displayName": "Two", "members": ["u2@seeded.example"] }],
            "connectors": [{ "id": crate::mtd::LOOKOUT, "iosEnabled": true }],
            "devices": [{ "count": 25, "deviceName": "phone-{n}", "operatingSystem": "iOS", "osVersion": "16.0", "owners": "users" }],
            "policies": [{
                "@odata.type": "#microsoft.graph.iosCompliancePolicy",
                "displayName": "iOS 17",
                "osMinimumVersion": "17.0",
                "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [{ "actionType": "block", "gracePeriodHours": 0 }] }],
                "assignTo": ["Staff"]
            }]
        })
        .to_string(),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_intune-mtd-emulator"))
        .args(["seed", file.to_str().unwrap(), "--database-url", &db.url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary on stdout");
    assert_eq!(
        (
            summary["users"].clone(),
            summary["groups"].clone(),
            summary["memberships"].clone(),
            summary["devices"].clone(),
            summary["policies"].clone()
        ),
        (json!(3), json!(2), json!(4), json!(25), json!(1)),
        "{summary}"
    );

    // The tenant as Graph shows it, through its bootstrap app's printed credentials.
    let server = start_replica(&db.url, &["--no-worker"], None).await;
    let mut c = Client::new(&server).await;
    c.tenant = summary["tenantId"].as_str().unwrap().to_string();
    c.token = c
        .app_token(
            summary["bootstrapApp"]["clientId"].as_str().unwrap(),
            summary["bootstrapApp"]["clientSecret"].as_str().unwrap(),
        )
        .await;
    let devices: Value = c
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/managedDevices?$count=true&$top=5&$filter=complianceState eq 'noncompliant'",
        )
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        devices["@odata.count"], 25,
        "the assigned policy was evaluated: {devices}"
    );
    let owner = devices["value"][0]["userPrincipalName"].as_str().unwrap_or_default();
    assert!(owner.ends_with("@seeded.example"), "{devices}");
    let connector: Value = c
        .graph(
            Method::GET,
            &format!(
                "/beta/deviceManagement/mobileThreatDefenseConnectors/{}",
                crate::mtd::LOOKOUT
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(connector["iosEnabled"], true, "{connector}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_file_fills_a_tenant_sqlite() {
    a_seed_file_fills_a_tenant(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_file_fills_a_tenant_postgres() {
    a_seed_file_fills_a_tenant(Backend::Postgres).await;
}
