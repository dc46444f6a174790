//! Retention: each tenant's event log, sent messages and fired-action records are bounded by
//! age on the tenant's clock and by count, and the records that keep an open episode's actions
//! from firing twice are never dropped.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::common::{config, spawn_app, Backend, TestApp};
use intune_mtd_emulator::service::worker::Retention;

const KEEP: u64 = 5;

async fn spawn_retaining(backend: Backend) -> TestApp {
    spawn_app(backend, config(), |app| {
        app.with_retention(Retention {
            max_age: Duration::days(2),
            max_records: KEEP,
        })
    })
    .await
}

/// Rows of `table` of the tenant.
pub(crate) async fn count(app: &TestApp, table: &str, tenant: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(&sql).bind(tenant).fetch_one(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(&sql).bind(tenant).fetch_one(&mut c).await.unwrap()
        }
    }
}

async fn settle(app: &TestApp, tenant: &str) -> Value {
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{tenant}/settle"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn logs_are_bounded_but_an_open_episodes_records_stay(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    for i in 0..8 {
        let r = app
            .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
            .json(&json!({ "deviceName": format!("phone-{i}"), "operatingSystem": "iOS", "osVersion": "17.5" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Every device fails the policy; a push goes out at once, once per device and episode.
    let r = app
        .graph(Method::POST, "/beta/deviceManagement/deviceCompliancePolicies", &token)
        .json(&json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "iOS 18",
            "osMinimumVersion": "18.0",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 0 },
                { "actionType": "pushNotification", "gracePeriodHours": 0 }
            ]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let policy = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = app
        .graph(
            Method::POST,
            &format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}/assign"),
            &token,
        )
        .json(
            &json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = settle(&app, &t.id).await;
    assert_eq!(s["actionsFired"], 8, "{s}");

    // By count: the event log and the outbox keep the newest five; the fired-action records of
    // the eight open episodes all stay.
    assert_eq!(count(&app, "events", &t.id).await, KEEP as i64);
    assert_eq!(count(&app, "notifications", &t.id).await, KEEP as i64);
    assert_eq!(count(&app, "fired_actions", &t.id).await, 8);

    // By age: three days later everything logged before is gone, but not the open episodes'
    // records, so no push goes out twice.
    app.advance_clock(&t.id, "P3D").await;
    let s = settle(&app, &t.id).await;
    assert_eq!(s["actionsFired"], 0, "{s}");
    assert_eq!(count(&app, "notifications", &t.id).await, 0);
    assert_eq!(count(&app, "fired_actions", &t.id).await, 8);
    let events: Value = app
        .req(Method::GET, &format!("/_emulator/tenants/{}/events", t.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(events["value"].as_array().unwrap().len() <= KEEP as usize, "{events}");

    // The episodes close: their records, older than two days, go with them.
    let token = app.admin_token(&t).await;
    let r = app
        .graph(
            Method::PATCH,
            &format!("/beta/deviceManagement/deviceCompliancePolicies/{policy}"),
            &token,
        )
        .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "osMinimumVersion": "17.0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let s = settle(&app, &t.id).await;
    assert_eq!(s["complianceStateChanges"], 8, "{s}");
    assert_eq!(count(&app, "fired_actions", &t.id).await, 0);
    // What the closing logged is young, and stays until it is three days old.
    let logged = count(&app, "events", &t.id).await;
    assert!(logged > 0);
    app.advance_clock(&t.id, "P1D").await;
    settle(&app, &t.id).await;
    assert_eq!(count(&app, "events", &t.id).await, logged);
    app.advance_clock(&t.id, "P2D").await;
    settle(&app, &t.id).await;
    assert_eq!(count(&app, "events", &t.id).await, 0);
}

mod logs_are_bounded_but_an_open_episodes_records_stay {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::logs_are_bounded_but_an_open_episodes_records_stay(spawn_retaining(Backend::Sqlite).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::logs_are_bounded_but_an_open_episodes_records_stay(spawn_retaining(Backend::Postgres).await).await
    }
}
