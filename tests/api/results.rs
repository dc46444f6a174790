//! Compliance results (issue 12): an evaluation writes only the result rows that change. A
//! re-evaluation of every device that changes nothing writes no verdict and no policy state;
//! one device's change writes that device's rows alone.

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::both_backends;
use crate::common::{Backend, Tenant, TestApp};
use crate::compliance::{assigned_ios_15_policy, enroll, settle};
use crate::write_path::execute;

both_backends!(a_reevaluation_that_changes_nothing_writes_no_result_rows);

/// Every row inserted, updated or deleted in the result tables from now on, as (table,
/// operation), counted by triggers.
async fn count_result_writes(app: &TestApp) {
    let sql = match app.backend {
        Backend::Sqlite => {
            let mut sql = String::from("CREATE TABLE result_writes (tbl TEXT, op TEXT);");
            for table in ["device_compliance", "device_policy_states"] {
                for op in ["INSERT", "UPDATE", "DELETE"] {
                    sql.push_str(&format!(
                        "CREATE TRIGGER count_{table}_{op} AFTER {op} ON {table} \
                         BEGIN INSERT INTO result_writes VALUES ('{table}', '{op}'); END;"
                    ));
                }
            }
            sql
        }
        Backend::Postgres => "CREATE TABLE result_writes (tbl TEXT, op TEXT); \
             CREATE FUNCTION count_result_write() RETURNS trigger AS $$ BEGIN \
             INSERT INTO result_writes VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER count_writes AFTER INSERT OR UPDATE OR DELETE ON device_compliance \
             FOR EACH ROW EXECUTE FUNCTION count_result_write(); \
             CREATE TRIGGER count_writes AFTER INSERT OR UPDATE OR DELETE ON device_policy_states \
             FOR EACH ROW EXECUTE FUNCTION count_result_write();"
            .to_string(),
    };
    execute(app, &sql).await;
}

/// The writes counted since the last call, sorted, and the count reset.
async fn take_result_writes(app: &TestApp) -> Vec<(String, String)> {
    let query = "SELECT tbl, op FROM result_writes ORDER BY tbl, op";
    let rows: Vec<(String, String)> = match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_as(query).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_as(query).fetch_all(&mut c).await.unwrap()
        }
    };
    execute(app, "DELETE FROM result_writes").await;
    rows.into_iter().map(|(t, op)| (t, op.to_ascii_uppercase())).collect()
}

/// Queues every device for re-evaluation without changing anything: the check-in threshold set
/// to the value it has.
async fn requeue_all(app: &TestApp, token: &str) {
    let r = app
        .graph(Method::PATCH, "/beta/deviceManagement", token)
        .json(&json!({ "settings": { "deviceComplianceCheckinThresholdDays": 30 } }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PATCH deviceManagement: {}", r.status());
}

async fn compliance_of(app: &TestApp, token: &str, id: &str) -> String {
    let r = app
        .graph(
            Method::GET,
            &format!("/v1.0/deviceManagement/managedDevices/{id}"),
            token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["complianceState"].as_str().unwrap().to_string()
}

fn writes(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter().map(|(t, o)| (t.to_string(), o.to_string())).collect()
}

async fn a_reevaluation_that_changes_nothing_writes_no_result_rows(app: TestApp) {
    let t: Tenant = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let mut ids = Vec::new();
    for (i, os) in ["16.0", "14.0", "16.0", "14.0", "16.0", "14.0"].iter().enumerate() {
        let d = enroll(
            &app,
            &t,
            json!({ "deviceName": format!("d{i}"), "operatingSystem": "iOS", "osVersion": os, "ownerType": "company" }),
        )
        .await;
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    // A device no policy applies to: its results are "notApplicable" states.
    enroll(
        &app,
        &t,
        json!({ "deviceName": "pixel", "operatingSystem": "Android", "osVersion": "14", "ownerType": "company" }),
    )
    .await;
    let pid = assigned_ios_15_policy(
        &app,
        &token,
        json!({ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }),
    )
    .await;
    settle(&app, &t).await;
    assert_eq!(compliance_of(&app, &token, &ids[0]).await, "compliant");
    assert_eq!(compliance_of(&app, &token, &ids[1]).await, "noncompliant");

    // Every device evaluated again, nothing different: no result row written.
    count_result_writes(&app).await;
    requeue_all(&app, &token).await;
    let summary = settle(&app, &t).await;
    assert_eq!(summary["devicesEvaluated"], 7, "{summary}");
    assert_eq!(summary["complianceStateChanges"], 0, "{summary}");
    assert_eq!(take_result_writes(&app).await, Vec::<(String, String)>::new());

    // One device checks in with a newer OS (evaluated at once): its verdict and its state, and
    // nothing else.
    let r = app
        .req(
            Method::PATCH,
            &format!("/_emulator/tenants/{}/devices/{}", t.id, ids[1]),
        )
        .json(&json!({ "osVersion": "17.1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    settle(&app, &t).await;
    assert_eq!(compliance_of(&app, &token, &ids[1]).await, "compliant");
    assert_eq!(
        take_result_writes(&app).await,
        writes(&[("device_compliance", "UPDATE"), ("device_policy_states", "UPDATE")])
    );

    // And a full re-evaluation after it writes nothing again.
    requeue_all(&app, &token).await;
    let summary = settle(&app, &t).await;
    assert_eq!(summary["devicesEvaluated"], 7, "{summary}");
    assert_eq!(take_result_writes(&app).await, Vec::<(String, String)>::new());

    // Deleting the policy takes its states away (the delete, then the evaluation finding them
    // gone writes nothing more) and makes every iOS device's verdict change.
    let r = app
        .graph(
            Method::DELETE,
            &format!("/beta/deviceManagement/deviceCompliancePolicies/{pid}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    settle(&app, &t).await;
    let written = take_result_writes(&app).await;
    assert_eq!(
        written
            .iter()
            .filter(|(t, op)| t == "device_policy_states" && op == "DELETE")
            .count(),
        7,
        "{written:?}"
    );
    assert!(
        written.iter().all(|(t, op)| op == "DELETE" || t == "device_compliance"),
        "{written:?}"
    );
}

both_backends!(a_batch_of_some_devices_evaluates_and_writes_those_alone);

/// A worker batch of some of the tenant's devices (those of a group a policy is assigned to)
/// evaluates and writes those devices alone, their ids spread among the others' (on PostgreSQL
/// a batch that is most of a range of ids is read as that range, and the others' rows in it are
/// left out).
async fn a_batch_of_some_devices_evaluates_and_writes_those_alone(app: TestApp) {
    use crate::directory::{add_member, create_group};
    let t: Tenant = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let mut devices = Vec::new();
    for i in 0..16 {
        let d = enroll(
            &app,
            &t,
            json!({ "deviceName": format!("d{i}"), "operatingSystem": "iOS", "osVersion": "14.0", "ownerType": "company" }),
        )
        .await;
        devices.push((
            d["id"].as_str().unwrap().to_string(),
            d["azureADDeviceId"].as_str().unwrap().to_string(),
        ));
    }
    devices.sort();
    // A policy for a group with no member yet.
    let group = create_group(&app, &token, "Every other").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assigned_ios_15_policy(
        &app,
        &token,
        json!({ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group }),
    )
    .await;
    settle(&app, &t).await;
    let mut before = Vec::new();
    for (id, _) in &devices {
        before.push(compliance_of(&app, &token, id).await);
    }

    // Every other device in id order joins the group: one batch of devices lying among the
    // others'.
    count_result_writes(&app).await;
    for (_, entra) in devices.iter().step_by(2) {
        let r = add_member(&app, &token, &group, &format!("devices/{entra}")).await;
        assert_eq!(r.status(), 204);
    }
    let summary = settle(&app, &t).await;
    assert_eq!(summary["devicesEvaluated"], 8, "{summary}");
    assert_eq!(summary["complianceStateChanges"], 8, "{summary}");
    for (i, (id, _)) in devices.iter().enumerate() {
        let state = compliance_of(&app, &token, id).await;
        if i % 2 == 0 {
            assert_eq!(state, "noncompliant", "device {i}, in the group");
        } else {
            assert_eq!(state, before[i], "device {i}, not in the group");
        }
    }
    let written = take_result_writes(&app).await;
    let verdicts = written
        .iter()
        .filter(|(t, op)| t == "device_compliance" && op == "UPDATE")
        .count();
    assert_eq!(verdicts, 8, "{written:?}");
    assert!(
        written.len() <= 16,
        "a verdict and a state per device at most: {written:?}"
    );
}
