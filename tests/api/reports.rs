//! Report export jobs: created through Graph, run by the worker on the tenant's clock, and
//! their zip served at the job's url (the seed's last step: the Device Compliance report with
//! the Device threat level column).

use std::io::Read;

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{assert_error, Tenant, TestApp};
use crate::compliance::{assign, create_connector, create_policy, enroll, heartbeat, report, settle};
use crate::directory::{add_member, create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT};
use crate::retention::count;

both_backends!(
    the_device_compliance_report_shows_the_partners_threat_levels,
    export_jobs_refuse_what_intune_refuses,
    a_job_left_in_progress_by_a_stopped_worker_runs_again,
    the_policy_reports_agree_with_the_policies_device_statuses,
);

const JOBS: &str = "/beta/deviceManagement/reports/exportJobs";

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    let got = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

/// The job as Graph shows it now (by the key syntax, as Microsoft's sample polls it).
async fn job_now(app: &TestApp, token: &str, id: &Value) -> Value {
    let path = format!("{JOBS}('{}')", id.as_str().unwrap());
    json_of(app.graph(Method::GET, &path, token).send().await.unwrap(), 200).await
}

async fn export(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.graph(Method::POST, JOBS, token).json(&body).send().await.unwrap();
    json_of(r, 201).await
}

/// The job's zip, after checking it holds one file named after the job.
async fn download(app: &TestApp, job: &Value, extension: &str) -> String {
    let url = job["url"].as_str().expect("a completed job has a url");
    assert!(url.starts_with(&app.base), "{url}");
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    assert_eq!(zip.len(), 1);
    let mut file = zip.by_index(0).unwrap();
    assert_eq!(file.name(), format!("{}.{extension}", job["id"].as_str().unwrap()));
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

/// A CSV line's fields (the report's values hold no commas or quotes here).
fn fields(line: &str) -> Vec<&str> {
    line.trim_end_matches('\r').split(',').collect()
}

/// Megan, in a group, with these iOS phones; an MTD partner reporting on them; and an iOS policy
/// requiring threat level low (block at once) assigned to the group. Returns the policy's id, the
/// phones' ids and the partner's token.
pub(crate) async fn phones_under_a_threat_policy(
    app: &TestApp,
    t: &Tenant,
    token: &str,
    phones: &[&str],
) -> (String, Vec<String>, String) {
    let user = create_user(app, token, "megan@contoso.example", "Megan Bowen").await;
    let group = create_group(app, token, "Phones").await;
    let gid = group["id"].as_str().unwrap();
    add_member(app, token, gid, &format!("users/{}", user["id"].as_str().unwrap())).await;
    let mut ids = Vec::new();
    for name in phones {
        let d = enroll(
            app,
            t,
            json!({ "deviceName": name, "operatingSystem": "iOS", "osVersion": "17.4", "userPrincipalName": "megan@contoso.example" }),
        )
        .await;
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    create_connector(app, token, LOOKOUT, json!({ "iosEnabled": true })).await;
    let partner = partner_token(app, &t.id, LOOKOUT).await;
    heartbeat(app, &partner).await;
    let policy = create_policy(
        app,
        token,
        json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "Threat level low",
            "deviceThreatProtectionEnabled": true,
            "deviceThreatProtectionRequiredSecurityLevel": "low",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 0 }] }],
        }),
    )
    .await;
    let pid = policy["id"].as_str().unwrap().to_string();
    let r = assign(
        app,
        token,
        &pid,
        json!([{ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid }]),
    )
    .await;
    assert!(r.status().is_success());
    (pid, ids, partner)
}

/// The seed's story: a partner reports medium and high for two devices; a DeviceCompliance
/// export with DeviceHealthThreatLevel completes when the tenant settles, and its rows show
/// each device's threat level (raw and localized) and compliance state as Graph does; a JSON
/// export and a filtered DeviceNonCompliance export agree with it.
async fn the_device_compliance_report_shows_the_partners_threat_levels(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let (_, ids, partner) =
        phones_under_a_threat_policy(&app, &t, &token, &["megan-iphone", "megan-ipad", "megan-spare"]).await;
    report(&app, &t, &partner, &ids[0], "medium").await;
    report(&app, &t, &partner, &ids[1], "high").await;
    report(&app, &t, &partner, &ids[2], "secured").await;
    settle(&app, &t).await;

    let select = json!([
        "DeviceId",
        "DeviceName",
        "DeviceHealthThreatLevel",
        "ComplianceState",
        "OS"
    ]);
    let job = export(
        &app,
        &token,
        json!({ "reportName": "DeviceCompliance", "select": select, "format": "csv", "localizationType": "LocalizedValuesAsAdditionalColumn" }),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("DeviceCompliance_"), "{id}");
    assert_eq!(job["status"], "notStarted");
    assert_eq!(job["url"], Value::Null);
    assert_eq!(job["expirationDateTime"], "0001-01-01T00:00:00Z");
    assert_eq!(job["localizationType"], "localizedValuesAsAdditionalColumn");

    // The worker runs it on the tenant's clock: settle completes it.
    let summary = settle(&app, &t).await;
    assert_eq!(summary["exportJobsCompleted"], 1);
    let done = job_now(&app, &token, &json!(id)).await;
    assert_eq!(done["status"], "completed");
    assert_ne!(done["expirationDateTime"], "0001-01-01T00:00:00Z");
    let csv = download(&app, &done, "csv").await;
    let mut lines = csv.lines();
    let header = lines.next().unwrap().trim_start_matches('\u{feff}');
    assert_eq!(
        fields(header),
        [
            "DeviceId",
            "DeviceName",
            "DeviceHealthThreatLevel",
            "DeviceHealthThreatLevel_loc",
            "ComplianceState",
            "ComplianceState_loc",
            "OS",
            "OS_loc"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(fields).collect();
    assert_eq!(rows.len(), 3);
    for (id, threat, threat_loc, state, state_loc) in [
        (&ids[0], "5", "Medium", "2", "Not compliant"),
        (&ids[1], "6", "High", "2", "Not compliant"),
        (&ids[2], "3", "Secured", "1", "Compliant"),
    ] {
        let row = rows.iter().find(|r| r[0] == id.as_str()).expect("the device's row");
        assert_eq!(&row[2..6], [threat, threat_loc, state, state_loc], "{row:?}");
        // As Graph shows the device.
        let d = json_of(
            app.graph(
                Method::GET,
                &format!("/v1.0/deviceManagement/managedDevices/{id}"),
                &token,
            )
            .send()
            .await
            .unwrap(),
            200,
        )
        .await;
        let graph_state = d["complianceState"].as_str().unwrap();
        assert_eq!(state == "2", graph_state == "noncompliant", "{graph_state}");
        let graph_threat = d["partnerReportedThreatState"].as_str().unwrap();
        assert!(
            graph_threat.to_lowercase().starts_with(&threat_loc.to_lowercase()),
            "{graph_threat}"
        );
    }

    // A JSON export agrees; so does a filtered DeviceNonCompliance export, localized in place.
    let json_job = export(
        &app,
        &token,
        json!({ "reportName": "devicecompliance", "select": select, "format": "json" }),
    )
    .await;
    let nc_job = export(
        &app,
        &token,
        json!({ "reportName": "DeviceNonCompliance", "select": ["DeviceId", "DeviceHealthThreatLevel"],
                "filter": "(OS eq 'IOS') and ((OwnerType eq '1') or (OwnerType eq '2'))",
                "localizationType": "replaceLocalizableValues" }),
    )
    .await;
    assert_eq!(settle(&app, &t).await["exportJobsCompleted"], 2);
    let json_job = job_now(&app, &token, &json_job["id"]).await;
    let values: Value = serde_json::from_str(&download(&app, &json_job, "json").await).unwrap();
    let values = values["values"].as_array().unwrap();
    assert_eq!(values.len(), 3);
    let medium = values.iter().find(|v| v["DeviceId"] == ids[0].as_str()).unwrap();
    assert_eq!(medium["DeviceHealthThreatLevel"], 5);
    assert_eq!(medium["DeviceHealthThreatLevel_loc"], "Medium");
    assert_eq!(medium["ComplianceState_loc"], "Not compliant");
    let nc_job = job_now(&app, &token, &nc_job["id"]).await;
    let nc = download(&app, &nc_job, "csv").await;
    let mut nc_rows: Vec<Vec<&str>> = nc.lines().skip(1).map(fields).collect();
    nc_rows.sort();
    let mut expected = vec![vec![ids[0].as_str(), "Medium"], vec![ids[1].as_str(), "High"]];
    expected.sort();
    assert_eq!(nc_rows, expected, "the noncompliant devices only");

    // The synchronous action answers the same rows as the Intune reporting stream.
    let r = app
        .graph(
            Method::POST,
            "/v1.0/deviceManagement/reports/getDeviceNonComplianceReport",
            &token,
        )
        .json(
            &json!({ "select": ["DeviceId", "DeviceHealthThreatLevel", "ComplianceState", "OwnerType"],
                       "orderBy": ["DeviceHealthThreatLevel desc"], "top": 1, "skip": 0,
                       "filter": "(OS eq 'IOS')", "search": "", "sessionId": "" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let stream: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(stream["TotalRowCount"], 2);
    let schema: Vec<(&str, &str)> = stream["Schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["Column"].as_str().unwrap(), c["PropertyType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        schema,
        [
            ("DeviceId", "String"),
            ("DeviceHealthThreatLevel", "Int32"),
            ("DeviceHealthThreatLevel_loc", "String"),
            ("ComplianceState", "String"),
            ("ComplianceState_loc", "String"),
            ("OwnerType", "Int32"),
            ("OwnerType_loc", "String"),
        ]
    );
    assert_eq!(
        stream["Values"],
        json!([[ids[1], 6, "High", "2", "Not compliant", 2, "Personal"]]),
        "the high one first, one row"
    );
    for bad in [
        json!({ "groupBy": ["OS"] }),
        json!({ "orderBy": ["Nope asc"] }),
        json!({ "filter": "(DeviceName eq 'x')" }),
        json!({ "top": -1 }),
        json!({ "name": "Devices" }),
    ] {
        let r = app
            .graph(
                Method::POST,
                "/beta/deviceManagement/reports/getDeviceNonComplianceReport",
                &token,
            )
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }

    // A snapshot: later reports do not change a completed export.
    app.advance_clock(&t.id, "PT1M").await;
    report(&app, &t, &partner, &ids[0], "secured").await;
    settle(&app, &t).await;
    assert_eq!(download(&app, &done, "csv").await, csv);

    // The url needs its signature, and expires on the tenant's clock.
    let url = done["url"].as_str().unwrap();
    let forged = format!("{}x", url);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);
    let list = json_of(app.graph(Method::GET, JOBS, &token).send().await.unwrap(), 200).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 3);
    app.advance_clock(&t.id, "PT7H").await;
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 403);
    // The worker's sweep drops the expired files; the jobs stay listed.
    let stored = "(SELECT * FROM report_export_jobs WHERE content IS NOT NULL) AS j";
    assert_eq!(count(&app, stored, &t.id).await, 3);
    settle(&app, &t).await;
    assert_eq!(count(&app, stored, &t.id).await, 0);
    let token = app.admin_token(&t).await;
    let list = json_of(app.graph(Method::GET, JOBS, &token).send().await.unwrap(), 200).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 3);
}

async fn export_jobs_refuse_what_intune_refuses(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    for (version, body) in [
        ("beta", json!({ "select": ["DeviceId"] })),
        ("beta", json!({ "reportName": "NoSuchReport" })),
        (
            "beta",
            json!({ "reportName": "DeviceCompliance", "select": ["DeviceHealthThreatLevel_loc"] }),
        ),
        ("beta", json!({ "reportName": "DeviceCompliance", "select": ["Nope"] })),
        (
            "beta",
            json!({ "reportName": "DeviceCompliance", "filter": "(UserId eq 'x')" }),
        ),
        (
            "beta",
            json!({ "reportName": "DeviceCompliance", "filter": "OS eq IOS" }),
        ),
        ("beta", json!({ "reportName": "DeviceCompliance", "format": "pdf" })),
        (
            "beta",
            json!({ "reportName": "DeviceCompliance", "localizationType": "klingon" }),
        ),
        (
            "beta",
            json!({ "reportName": "DeviceCompliance", "snapshotId": "DeviceCompliance_00000000-0000-0000-0000-000000000000" }),
        ),
        ("beta", json!({ "reportName": "DeviceCompliance", "colour": "blue" })),
        ("v1.0", json!({ "reportName": "DeviceCompliance", "search": "megan" })),
    ] {
        let r = app
            .graph(
                Method::POST,
                &format!("/{version}/deviceManagement/reports/exportJobs"),
                &token,
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequest").await;
    }
    // v1.0 takes a job too, without search; an unknown job is 404.
    let r = app
        .graph(Method::POST, "/v1.0/deviceManagement/reports/exportJobs", &token)
        .json(&json!({ "reportName": "DeviceNonCompliance" }))
        .send()
        .await
        .unwrap();
    let job = json_of(r, 201).await;
    assert!(job.get("search").is_none());
    assert_eq!(job["format"], "csv");
    let r = app
        .graph(
            Method::GET,
            "/v1.0/deviceManagement/reports/exportJobs/DeviceCompliance_7b0c4a43-5d1e-4d1e-9a4a-0a0a0a0a0a0a",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Creating needs a ReadWrite permission; reading, a Read one.
    let (cid, secret) = app
        .register_app(&t.id, &["DeviceManagementManagedDevices.Read.All"])
        .await;
    let reader = app.token(&t.id, &cid, &secret).await;
    let r = app
        .graph(Method::POST, JOBS, &reader)
        .json(&json!({ "reportName": "DeviceCompliance" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "Forbidden").await;
    let r = app.graph(Method::GET, JOBS, &reader).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A worker that stops while running a job leaves it in progress: the next pass on the tenant
/// (which holds the tenant's lease, so no other worker is running it) runs it again.
async fn a_job_left_in_progress_by_a_stopped_worker_runs_again(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let created = export(&app, &token, json!({ "reportName": "DeviceCompliance" })).await;
    let id = created["id"].as_str().unwrap();
    let store = crate::common::open_store(&app.db).await;
    assert!(store
        .set_export_job_status(&t.id, id, "notStarted", "inProgress")
        .await
        .unwrap());
    assert_eq!(job_now(&app, &token, &created["id"]).await["status"], "inProgress");
    assert_eq!(settle(&app, &t).await["exportJobsCompleted"], 1);
    let done = job_now(&app, &token, &created["id"]).await;
    assert_eq!(done["status"], "completed");
    let csv = download(&app, &done, "csv").await;
    assert!(
        csv.starts_with("\u{feff}DeviceId,IntuneDeviceId,AadDeviceId,PartnerDeviceId"),
        "{csv}"
    );
}

/// A synchronous report action's stream, parsed.
async fn action(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let r = app.graph(Method::POST, path, token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// A completed export's CSV rows (header first, byte order mark removed).
async fn exported(app: &TestApp, t: &Tenant, token: &str, body: Value) -> Vec<Vec<String>> {
    let job = export(app, token, body).await;
    assert_eq!(settle(app, t).await["exportJobsCompleted"], 1);
    let job = job_now(app, token, &job["id"]).await;
    assert_eq!(job["status"], "completed");
    download(app, &job, "csv")
        .await
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| fields(l).into_iter().map(str::to_string).collect())
        .collect()
}

/// The per-policy reports, the summary and the devices without a policy, as exports and as the
/// synchronous actions, against what Graph says of the policies: an iOS policy requiring iOS 17
/// is assigned to Megan; her new iPhone complies, her old one does not, and her Mac has no
/// policy (the iOS policy does not apply to it).
async fn the_policy_reports_agree_with_the_policies_device_statuses(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let user = create_user(&app, &token, "megan@contoso.example", "Megan Bowen").await;
    let group = create_group(&app, &token, "Staff").await;
    let gid = group["id"].as_str().unwrap();
    add_member(&app, &token, gid, &format!("users/{}", user["id"].as_str().unwrap())).await;
    let mut ids = Vec::new();
    for (name, os, version) in [
        ("megan-new", "iOS", "17.4"),
        ("megan-old", "iOS", "16.2"),
        ("megan-mac", "macOS", "14.5"),
    ] {
        let d = enroll(
            &app,
            &t,
            json!({ "deviceName": name, "operatingSystem": os, "osVersion": version,
                    "userPrincipalName": "megan@contoso.example", "ownerType": "company" }),
        )
        .await;
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    let policy = create_policy(
        &app,
        &token,
        json!({
            "@odata.type": "#microsoft.graph.iosCompliancePolicy",
            "displayName": "iOS 17",
            "osMinimumVersion": "17.0",
            "scheduledActionsForRule": [{ "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                { "actionType": "block", "gracePeriodHours": 0 }] }],
        }),
    )
    .await;
    let pid = policy["id"].as_str().unwrap().to_string();
    let r = assign(
        &app,
        &token,
        &pid,
        json!([{ "@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": gid }]),
    )
    .await;
    assert!(r.status().is_success());
    settle(&app, &t).await;
    let graph = |path: String| {
        let app = &app;
        let token = &token;
        async move { json_of(app.graph(Method::GET, &path, token).send().await.unwrap(), 200).await }
    };
    let policies = "/beta/deviceManagement/deviceCompliancePolicies";
    let statuses = graph(format!("{policies}/{pid}/deviceStatuses")).await;
    let status_of = |device: &str| {
        statuses["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["deviceDisplayName"] == device)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of("megan-new").as_deref(), Some("compliant"));
    assert_eq!(status_of("megan-old").as_deref(), Some("nonCompliant"));

    // Per policy and device: the export, filtered as the admin center filters it.
    let rows = exported(
        &app,
        &t,
        &token,
        json!({ "reportName": "DeviceStatusByCompliacePolicyReport",
                "select": ["DeviceName", "PolicyId", "PolicyStatus", "OS"],
                "filter": format!("(PolicyId eq '{pid}')") }),
    )
    .await;
    assert_eq!(
        rows[0],
        [
            "DeviceName",
            "PolicyId",
            "PolicyStatus",
            "PolicyStatus_loc",
            "OS",
            "OS_loc"
        ]
    );
    let mut body: Vec<Vec<String>> = rows[1..].to_vec();
    body.sort();
    let mac_status = status_of("megan-mac");
    let mut expected = vec![
        vec![
            "megan-new".to_string(),
            pid.clone(),
            "2".into(),
            "Compliant".into(),
            "IOS".into(),
            "iOS".into(),
        ],
        vec![
            "megan-old".to_string(),
            pid.clone(),
            "4".into(),
            "Not compliant".into(),
            "IOS".into(),
            "iOS".into(),
        ],
    ];
    if mac_status.is_some() {
        // Assigned through Megan but not an iOS device: the policy does not apply.
        assert_eq!(mac_status.as_deref(), Some("notApplicable"));
        expected.push(vec![
            "megan-mac".to_string(),
            pid.clone(),
            "1".into(),
            "Not applicable".into(),
            "MacOS".into(),
            "macOS".into(),
        ]);
    }
    expected.sort();
    assert_eq!(body, expected);

    // The same through the beta action, the noncompliant ones only.
    let by_policy = action(
        &app,
        &token,
        "/beta/deviceManagement/reports/getDeviceStatusByCompliacePolicyReport",
        json!({ "filter": format!("(PolicyId eq '{pid}') and (PolicyStatus eq '4')"),
                "select": ["DeviceId", "PolicyStatus"], "orderBy": [], "skip": 0, "top": 50 }),
    )
    .await;
    assert_eq!(by_policy["TotalRowCount"], 1);
    assert_eq!(by_policy["Values"], json!([[ids[1], 4, "Not compliant"]]));
    // Beta only, as in Microsoft's metadata.
    let r = app
        .graph(
            Method::POST,
            "/v1.0/deviceManagement/reports/getDeviceStatusByCompliacePolicyReport",
            &token,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // The summary counts what the policy's overview counts.
    let overview = graph(format!("{policies}/{pid}/deviceStatusOverview")).await;
    let summary = action(
        &app,
        &token,
        "/beta/deviceManagement/reports/getDeviceStatusSummaryByCompliacePolicyReport",
        json!({ "filter": format!("(PolicyId eq '{pid}')") }),
    )
    .await;
    let schema: Vec<&str> = summary["Schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Column"].as_str().unwrap())
        .collect();
    assert_eq!(
        schema,
        [
            "NumberOfCompliantDevices",
            "NumberOfNonCompliantDevices",
            "NumberOfOtherDevices",
            "OS",
            "OS_loc",
            "PolicyId"
        ]
    );
    assert_eq!(
        summary["Values"],
        json!([[
            overview["successCount"],
            overview["failedCount"],
            overview["notApplicableCount"],
            "IOS",
            "iOS",
            pid
        ]])
    );
    assert_eq!(summary["Values"][0][0], 1);
    assert_eq!(summary["Values"][0][1], 1);

    // By policy platform: the iOS policy's rows carry its platform type.
    let by_platform = action(
        &app,
        &token,
        "/beta/deviceManagement/reports/getDevicesStatusByPolicyPlatformComplianceReport",
        json!({ "filter": "(PolicyPlatformType eq '2') and (PolicyStatus eq '2')",
                "select": ["DeviceName", "PolicyPlatformType", "ComplianceState"] }),
    )
    .await;
    assert_eq!(
        by_platform["Values"],
        json!([["megan-new", 2, "iOS", "1", "Compliant"]])
    );

    // Devices without a compliance policy: the Mac, with the observed header.
    let rows = exported(
        &app,
        &t,
        &token,
        json!({ "reportName": "DevicesWithoutCompliancePolicy" }),
    )
    .await;
    assert_eq!(
        rows[0].join(","),
        "DeviceId,DeviceName,DeviceModel,DeviceType,OSDescription,OSVersion,OwnerType,OwnerType_loc,ManagementAgents,ManagementAgents_loc,UserId,LastContactedUserId,PrimaryUser,UPN,UserEmail,UserName,LastContact,AadDeviceId,ComplianceState,ComplianceState_loc,OS,OS_loc"
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mac = &rows[1];
    assert_eq!(mac[0], ids[2]);
    assert_eq!(&mac[6..10], ["1", "Company", "2", "MDM"]);
    let graph_mac = graph(format!("/v1.0/deviceManagement/managedDevices/{}", ids[2])).await;
    let loc = if graph_mac["complianceState"] == "compliant" {
        "Compliant"
    } else {
        "Not compliant"
    };
    assert_eq!(mac[19], loc);
    let without = action(
        &app,
        &token,
        "/v1.0/deviceManagement/reports/getDevicesWithoutCompliancePolicyReport",
        json!({ "select": ["DeviceName"] }),
    )
    .await;
    assert_eq!(without["Values"], json!([["megan-mac"]]));
    let r = app
        .graph(
            Method::POST,
            "/v1.0/deviceManagement/reports/getDevicesWithoutCompliancePolicyReport",
            &token,
        )
        .json(&json!({ "filter": "(OS eq 'MacOS')" }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequest").await;

    // Devices: the text of its values whatever localization is asked, and its filters.
    let rows = exported(
        &app,
        &t,
        &token,
        json!({ "reportName": "Devices", "localizationType": "localizedValuesAsAdditionalColumn",
                "select": ["DeviceName", "CompliantState", "OwnerType", "ManagementAgents", "Model"],
                "filter": "(CompliantState eq '2') and (OwnerType eq '1')" }),
    )
    .await;
    assert_eq!(
        rows,
        [
            vec!["DeviceName", "CompliantState", "OwnerType", "ManagementAgents", "Model"],
            vec!["megan-old", "Not compliant", "Company", "MDM", "iPhone 15"],
        ]
    );
}
