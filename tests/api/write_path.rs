//! One write path (issue 11): a change commits with its consequences or not at all, a crash
//! mid-settle loses no due action and fires none twice, evaluations of one device keep the
//! verdict from the newest inputs, and ingest beside a busy worker never deadlocks.

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::both_backends;
use crate::common::{start_replica, test_database, Backend, Client, TestApp};
use crate::compliance::{assigned_ios_15_policy, assigned_policy, create_connector, enroll, heartbeat, settle};
use crate::directory::{add_member, create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT};

both_backends!(
    a_change_whose_queueing_fails_is_not_kept,
    evaluations_of_one_device_keep_the_newest_inputs,
);

const POLICIES: &str = "/beta/deviceManagement/deviceCompliancePolicies";

/// Runs `sql` (one or more statements) on the test's own database, beside the server.
pub(crate) async fn execute(app: &TestApp, sql: &str) {
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    }
}

/// Makes every insert into the re-evaluation queue fail: the second statement of a change that
/// queues devices.
async fn break_queueing(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            execute(
                app,
                "CREATE TRIGGER fail_queue BEFORE INSERT ON reevaluation_queue \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
            .await
        }
        Backend::Postgres => {
            execute(
                app,
                "CREATE FUNCTION fail_queue() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ \
                 LANGUAGE plpgsql; CREATE TRIGGER fail_queue BEFORE INSERT ON reevaluation_queue \
                 FOR EACH ROW EXECUTE FUNCTION fail_queue();",
            )
            .await
        }
    }
}

async fn mend_queueing(app: &TestApp) {
    execute(
        app,
        match app.backend {
            Backend::Sqlite => "DROP TRIGGER fail_queue",
            Backend::Postgres => "DROP TRIGGER fail_queue ON reevaluation_queue",
        },
    )
    .await;
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.graph(Method::GET, path, token).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// A policy PATCH, an assignment and a membership change whose queueing fails answer 500 and
/// leave nothing behind: the policy, its assignments and the group are as before, and the
/// devices' compliance agrees with them. (Before, the change stayed and nothing re-evaluated
/// the devices: compliance stayed stale.)
async fn a_change_whose_queueing_fails_is_not_kept(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    create_user(&app, &token, "ann@contoso.example", "Ann").await;
    let old = enroll(
        &app,
        &t,
        json!({ "deviceName": "old", "operatingSystem": "iOS", "osVersion": "16.0", "userPrincipalName": "ann@contoso.example" }),
    )
    .await;
    let old_id = old["id"].as_str().unwrap().to_string();
    let pid = assigned_ios_15_policy(
        &app,
        &token,
        json!({ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }),
    )
    .await;
    settle(&app, &t).await;
    let device = format!("/v1.0/deviceManagement/managedDevices/{old_id}");
    assert_eq!(get(&app, &token, &device).await["complianceState"], "compliant");

    break_queueing(&app).await;
    // The PATCH would make the device noncompliant: refused whole.
    let r = app
        .graph(Method::PATCH, &format!("{POLICIES}/{pid}"), &token)
        .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "osMinimumVersion": "17.0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let policy = get(&app, &token, &format!("{POLICIES}/{pid}")).await;
    assert_eq!(
        policy["osMinimumVersion"], "15.0",
        "the failed PATCH was kept: {policy}"
    );
    assert_eq!(policy["version"], 2, "{policy}");
    // Unassigning would leave the device without a policy: refused whole too.
    let r = app
        .graph(Method::POST, &format!("{POLICIES}/{pid}/assign"), &token)
        .json(&json!({ "assignments": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let assigned = get(&app, &token, &format!("{POLICIES}/{pid}/assignments")).await;
    assert_eq!(assigned["value"].as_array().unwrap().len(), 1, "{assigned}");
    // A membership change queues the members' devices.
    let group = create_group(&app, &token, "Phones").await;
    let gid = group["id"].as_str().unwrap();
    let r = add_member(
        &app,
        &token,
        gid,
        &format!("devices/{}", old["azureADDeviceId"].as_str().unwrap()),
    )
    .await;
    assert_eq!(r.status(), 500);
    let members = get(&app, &token, &format!("/v1.0/groups/{gid}/members")).await;
    assert_eq!(members["value"], json!([]), "{members}");

    mend_queueing(&app).await;
    settle(&app, &t).await;
    assert_eq!(get(&app, &token, &device).await["complianceState"], "compliant");
    // And the same PATCH, now that queueing works, commits with its re-evaluation.
    let r = app
        .graph(Method::PATCH, &format!("{POLICIES}/{pid}"), &token)
        .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "osMinimumVersion": "17.0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let summary = settle(&app, &t).await;
    assert_eq!(summary["devicesEvaluated"], 1, "{summary}");
    assert_eq!(get(&app, &token, &device).await["complianceState"], "noncompliant");
}

/// Threat reports for one device sent at once, out of order, while `settle` runs beside them:
/// whatever order the evaluations finish in, the stored verdict is the one of the newest report.
async fn evaluations_of_one_device_keep_the_newest_inputs(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "pat@contoso.example", "Pat").await;
    let group = create_group(&app, &token, "Users").await;
    let gid = group["id"].as_str().unwrap().to_string();
    let r = add_member(&app, &token, &gid, &format!("users/{}", user["id"].as_str().unwrap())).await;
    assert_eq!(r.status(), 204);
    let phone = enroll(
        &app,
        &t,
        json!({ "deviceName": "pat-iphone", "operatingSystem": "iOS", "osVersion": "17.5", "userPrincipalName": "pat@contoso.example" }),
    )
    .await;
    let did = phone["id"].as_str().unwrap().to_string();
    create_connector(&app, &token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let partner = partner_token(&app, &t.id, LOOKOUT).await;
    heartbeat(&app, &partner).await;
    let pid = assigned_policy(
        &app,
        &token,
        json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "Secured only",
            "deviceThreatProtectionEnabled": true,
            "deviceThreatProtectionRequiredSecurityLevel": "secured",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 0 }
            ]}]
        }),
        json!({ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid }),
    )
    .await;
    settle(&app, &t).await;

    let now = app.tenant_now(&t.id).await;
    for (round, last) in [
        ("high", "noncompliant"),
        ("secured", "compliant"),
        ("high", "noncompliant"),
    ]
    .iter()
    .enumerate()
    {
        let (final_level, expected) = *last;
        let other = if final_level == "high" { "secured" } else { "high" };
        const REPORTS: i64 = 24;
        // Newest last in time, but sent from several tasks at once so that they land in any order.
        let mut tasks = Vec::new();
        for lane in 0..4i64 {
            let app_http = app.http.clone();
            let base = app.base.clone();
            let partner = partner.clone();
            let did = did.clone();
            tasks.push(tokio::spawn(async move {
                for i in (lane..REPORTS).step_by(4) {
                    let level = if i == REPORTS - 1 {
                        final_level
                    } else if i % 2 == 0 {
                        other
                    } else {
                        final_level
                    };
                    let at = now - chrono::Duration::seconds(1000 - (round as i64) * 100 - i);
                    let r = app_http
                        .post(format!("{base}/partner/v1/deviceThreatStates"))
                        .bearer_auth(&partner)
                        .json(&json!({ "value": [{ "deviceId": did, "threatLevel": level, "reportedDateTime": at.to_rfc3339() }] }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            }));
        }
        // Policy edits queue the device again and again, so that the settles below evaluate it
        // beside the requests' own evaluations.
        {
            let http = app.http.clone();
            let url = format!("{}{POLICIES}/{pid}", app.base);
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..8 {
                    let r = http
                        .patch(&url)
                        .bearer_auth(&token)
                        .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "description": format!("edit {i}") }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 204);
                }
            }));
        }
        for _ in 0..4 {
            let http = app.http.clone();
            let url = format!("{}/_emulator/tenants/{}/settle", app.base, t.id);
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    let r = http.post(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // No settle after: what the requests and settles stored is what a client reads.
        let d = get(&app, &token, &format!("/v1.0/deviceManagement/managedDevices/{did}")).await;
        assert_eq!(d["complianceState"], expected, "round {round}: {d}");
        let level = if final_level == "high" {
            "highSeverity"
        } else {
            "secured"
        };
        assert_eq!(d["partnerReportedThreatState"], level, "round {round}: {d}");
    }
}

impl Client {
    /// Enrolls `n` iOS devices, those with an even number on iOS 16.0, the others on 17.5.
    async fn enroll(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for start in (0..n).step_by(1000) {
            let devices: Vec<Value> = (start..n.min(start + 1000))
                .map(|i| {
                    let os = if i % 2 == 0 { "16.0" } else { "17.5" };
                    json!({ "deviceName": format!("d{i:05}"), "operatingSystem": "iOS", "osVersion": os })
                })
                .collect();
            let r = self
                .control(Method::POST, "/devices")
                .json(&devices)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let body: Value = r.json().await.unwrap();
            ids.extend(
                body["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().to_string()),
            );
        }
        ids
    }

    /// An iOS policy with a minimum OS version and `actions`, assigned to all devices.
    async fn os_policy(&self, minimum: &str, actions: Value) -> String {
        let r = self
            .graph(Method::POST, POLICIES)
            .json(&json!({
                "@odata.type": "#microsoft.graph.iosCompliancePolicy",
                "displayName": "Minimum OS",
                "osMinimumVersion": minimum,
                "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": actions }]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let pid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let r = self
            .graph(Method::POST, &format!("{POLICIES}/{pid}/assign"))
            .json(&json!({ "assignments": [{ "target": { "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" } }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        pid
    }

    /// Every entry of a control-plane log (`/notifications`, `/events`), following its links.
    async fn read_log(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = format!("{}/_emulator/tenants/{}{path}?$top=1000", self.base, self.tenant);
        loop {
            let body: Value = self.http.get(&url).send().await.unwrap().json().await.unwrap();
            out.extend(body["value"].as_array().unwrap().iter().cloned());
            match body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return out,
            }
        }
    }
}

/// `kill -9` of the server during a large `settle`, then a restart: every noncompliant device
/// gets its email and its push exactly once, and is noncompliant. (Before, hundreds of devices
/// stored their verdict and left the queue without their actions, and were never looked at
/// again.)
async fn crash_mid_settle(backend: Backend) {
    // Four batches (`compliance::BATCH`): the kill, at the first message seen, lands while
    // three are still to be stored even when the machine is busy.
    const DEVICES: usize = 8000;
    let db = test_database(backend).await;
    crate::common::open_store(&db).await;
    let mut server = start_replica(&db.url, &["--no-worker"], None).await;
    let c = Client::new(&server).await;
    let r = c
        .graph(Method::POST, "/beta/deviceManagement/notificationMessageTemplates")
        .json(&json!({ "displayName": "Update", "defaultLocale": "en-us", "localizedNotificationMessages": [
            { "locale": "en-us", "isDefault": true, "subject": "Update {{DeviceName}}", "messageTemplate": "Please update {{DeviceName}}." }
        ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let template = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let ids = c.enroll(DEVICES).await;
    c.os_policy(
        "17.0",
        json!([
            { "actionType": "block", "gracePeriodHours": 0 },
            { "actionType": "notification", "gracePeriodHours": 0, "notificationTemplateId": template },
            { "actionType": "pushNotification", "gracePeriodHours": 0 }
        ]),
    )
    .await;

    // Settle in the background; kill the process once the first messages are out.
    let settle = tokio::spawn(c.control(Method::POST, "/settle").send());
    let mut seen = 0;
    for _ in 0..3000 {
        let body: Value = c
            .control(Method::GET, "/notifications?$top=1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen = body["value"].as_array().unwrap().len();
        if seen > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(seen > 0, "settle sent nothing");
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    assert!(settle.await.unwrap().is_err(), "settle finished before the kill");
    let before = c.read_log_from(&db.url).await;

    let server = start_replica(&db.url, &["--no-worker"], None).await;
    let c = Client {
        base: server.base.clone(),
        ..c
    };
    assert!(
        before < DEVICES,
        "the kill came after every message was sent ({before}): nothing to recover"
    );
    let r = c.control(Method::POST, "/settle").send().await.unwrap();
    assert_eq!(r.status(), 200);

    let outbox = c.read_log("/notifications").await;
    let mut per_device: std::collections::HashMap<(String, String), usize> = Default::default();
    for m in &outbox {
        *per_device
            .entry((
                m["deviceId"].as_str().unwrap().to_string(),
                m["kind"].as_str().unwrap().to_string(),
            ))
            .or_default() += 1;
    }
    let failing: Vec<&String> = ids.iter().step_by(2).collect();
    assert_eq!(
        outbox.len(),
        2 * failing.len(),
        "one email and one push per noncompliant device"
    );
    for id in &failing {
        for kind in ["email", "push"] {
            assert_eq!(
                per_device.get(&(id.to_string(), kind.to_string())),
                Some(&1),
                "device {id}: {kind}"
            );
        }
    }
    let devices: Value = c
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/managedDevices?$filter=complianceState eq 'noncompliant'&$count=true&$top=1",
        )
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(devices["@odata.count"], failing.len(), "{devices}");
    drop(server);
}

impl Client {
    /// How many messages the outbox holds, read from the database while the server is down.
    async fn read_log_from(&self, url: &str) -> usize {
        let sql = "SELECT COUNT(*) FROM notifications";
        let n: i64 = if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        };
        n as usize
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_settle_fires_every_due_action_once_sqlite() {
    crash_mid_settle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_settle_fires_every_due_action_once_postgres() {
    crash_mid_settle(Backend::Postgres).await;
}

/// Four partner clients ingest reports for 2,000 devices, three rounds in batches of 500, while
/// the worker ticks every millisecond over devices re-queued by policy changes: no deadlock is
/// logged, no tick fails and every batch is answered 200. (Before, the worker's batches and the
/// ingest batches locked the same device rows in different orders.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_beside_a_busy_worker_never_deadlocks() {
    const DEVICES: usize = 2000;
    let db = test_database(Backend::Postgres).await;
    crate::common::open_store(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = start_replica(&db.url, &["--worker-tick-ms", "1"], Some(&log)).await;
    let c = Client::new(&server).await;
    let ids = c.enroll(DEVICES).await;
    let r = c
        .graph(Method::POST, "/beta/deviceManagement/mobileThreatDefenseConnectors")
        .json(&json!({ "id": LOOKOUT, "iosEnabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let app_reg: Value = c
        .control(Method::POST, "/apps")
        .json(&json!({ "displayName": "Lookout", "kind": "partner", "connectorId": LOOKOUT }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let partner = c
        .app_token(
            app_reg["clientId"].as_str().unwrap(),
            app_reg["clientSecret"].as_str().unwrap(),
        )
        .await;
    let r = c
        .http
        .post(format!("{}/partner/v1/connector/heartbeat", c.base))
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let pid = c
        .os_policy("17.0", json!([{ "actionType": "block", "gracePeriodHours": 0 }]))
        .await;

    let now: Value = c
        .control(Method::GET, "/clock")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(now["now"].as_str().unwrap()).unwrap();
    let mut tasks = Vec::new();
    for client in 0..4usize {
        let http = c.http.clone();
        let base = c.base.clone();
        let partner = partner.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..3i64 {
                // Each client sends every device, in its own order, so that batches overlap.
                let mut order: Vec<&String> = ids.iter().collect();
                order.rotate_left(client * DEVICES / 4);
                if client % 2 == 1 {
                    order.reverse();
                }
                for batch in order.chunks(500) {
                    let at = now - chrono::Duration::seconds(100 - round * 10 - client as i64);
                    let level = ["secured", "low", "high"][(round as usize + client) % 3];
                    let value: Vec<Value> = batch
                        .iter()
                        .map(|id| json!({ "deviceId": id, "threatLevel": level, "reportedDateTime": at.to_rfc3339() }))
                        .collect();
                    let r = http
                        .post(format!("{base}/partner/v1/deviceThreatStates"))
                        .bearer_auth(&partner)
                        .json(&json!({ "value": value }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                }
            }
        }));
    }
    // Meanwhile the policy changes, queueing every device for the worker again and again.
    for version in ["16.5", "17.0"].iter().cycle().take(16) {
        let r = c
            .graph(Method::PATCH, &format!("{POLICIES}/{pid}"))
            .json(&json!({ "@odata.type": "#microsoft.graph.iosCompliancePolicy", "osMinimumVersion": version }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let r = c.control(Method::POST, "/settle").send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("deadlock"), "a deadlock was logged:\n{text}");
    assert!(!text.contains("worker tick failed"), "a worker tick failed:\n{text}");
}

/// `kill -9` of the server while partners post threat reports: every report in a batch the
/// server acknowledged (200) is there after the restart, with its device's threat state; a
/// batch cut off by the kill is for the partner to send again.
async fn crash_mid_ingest(backend: Backend) {
    const DEVICES: usize = 2000;
    const BATCH: usize = 50;
    let db = test_database(backend).await;
    crate::common::open_store(&db).await;
    let mut server = start_replica(&db.url, &["--no-worker"], None).await;
    let c = Client::new(&server).await;
    let ids = c.enroll(DEVICES).await;
    let r = c
        .graph(Method::POST, "/beta/deviceManagement/mobileThreatDefenseConnectors")
        .json(&json!({ "id": LOOKOUT, "iosEnabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let app: Value = c
        .control(Method::POST, "/apps")
        .json(&json!({ "displayName": "Partner service", "kind": "partner", "connectorId": LOOKOUT }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let partner = c
        .app_token(app["clientId"].as_str().unwrap(), app["clientSecret"].as_str().unwrap())
        .await;
    let r = c
        .http
        .post(format!("{}/partner/v1/connector/heartbeat", c.base))
        .bearer_auth(&partner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Four partner clients, each posting its quarter of the devices in batches; the server is
    // killed once a few batches are acknowledged.
    let reported = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = ids
        .chunks(DEVICES / 4)
        .map(|mine| {
            let (http, url, token, reported, acknowledged) = (
                c.http.clone(),
                format!("{}/partner/v1/deviceThreatStates", c.base),
                partner.clone(),
                reported.clone(),
                acknowledged.clone(),
            );
            let mine = mine.to_vec();
            tokio::spawn(async move {
                for batch in mine.chunks(BATCH) {
                    let items: Vec<Value> = batch
                        .iter()
                        .map(|id| json!({ "deviceId": id, "threatLevel": "high", "reportedDateTime": reported }))
                        .collect();
                    let Ok(r) = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({ "value": items }))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if r.status() != 200 {
                        return;
                    }
                    let Ok(body) = r.json::<Value>().await else { return };
                    assert_eq!(body["accepted"], batch.len(), "{body}");
                    acknowledged.lock().unwrap().extend(batch.iter().cloned());
                }
            })
        })
        .collect();
    for _ in 0..6000 {
        if acknowledged.lock().unwrap().len() >= 4 * BATCH {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty(), "nothing was acknowledged before the kill");
    assert!(
        acknowledged.len() < DEVICES,
        "every batch was acknowledged before the kill: nothing was cut off"
    );

    let server = start_replica(&db.url, &["--no-worker"], None).await;
    let c = Client {
        base: server.base.clone(),
        ..c
    };
    let mut states = std::collections::HashMap::new();
    let mut url = format!(
        "{}/beta/deviceManagement/managedDevices?$select=id,partnerReportedThreatState&$top=1000",
        c.base
    );
    loop {
        let page: Value = c
            .http
            .get(&url)
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in page["value"].as_array().unwrap() {
            states.insert(
                d["id"].as_str().unwrap().to_string(),
                d["partnerReportedThreatState"].as_str().unwrap_or_default().to_string(),
            );
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(states.len(), DEVICES);
    for id in &acknowledged {
        assert_eq!(states[id], "highSeverity", "an acknowledged report of {id} was lost");
    }
    eprintln!(
        "crash mid-ingest ({backend:?}): {} of {DEVICES} reports acknowledged before kill -9, all kept",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_ingest_loses_no_acknowledged_report_sqlite() {
    crash_mid_ingest(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_ingest_loses_no_acknowledged_report_postgres() {
    crash_mid_ingest(Backend::Postgres).await;
}
