//! One set of `$filter` semantics: every filter of one table runs through the SQL translation
//! (a Graph list the store filters) and through the in-memory evaluator (`odata::memory`, which
//! filters the collections computed in memory) over the same objects as Graph shows them. The
//! two must select the same ids, or refuse the filter with the same message.

use intune_mtd_emulator::odata::{memory, parse_filter};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::both_backends;
use crate::common::TestApp;
use crate::directory::user_body;

both_backends!(sql_and_memory_filters_agree);

/// The ids a Graph list returns for `filter` (all pages), or the 400's message.
async fn listed(app: &TestApp, token: &str, path: &str, filter: Option<&str>) -> Result<Vec<String>, String> {
    let mut query = vec![("$select", "id".to_string())];
    if let Some(f) = filter {
        query.push(("$filter", f.to_string()));
    }
    let r = app.graph(Method::GET, path, token).query(&query).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    match status {
        200 => {
            assert!(body.get("@odata.nextLink").is_none(), "one page: {body}");
            let mut ids: Vec<String> = body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            Ok(ids)
        }
        400 => Err(body["error"]["message"].as_str().unwrap().to_string()),
        other => panic!("{path} $filter={filter:?}: status {other}: {body}"),
    }
}

/// The documents of a Graph list as the client sees them (with `select` when the properties
/// to filter are not all shown by default).
async fn documents(app: &TestApp, token: &str, path: &str, select: Option<&str>) -> Vec<Map<String, Value>> {
    let mut r = app.graph(Method::GET, path, token);
    if let Some(s) = select {
        r = r.query(&[("$select", s)]);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_object().unwrap().clone())
        .collect()
}

/// The ids the in-memory evaluator keeps of `docs`, or its refusal's message.
fn evaluated(docs: &[Map<String, Value>], filter: &str, type_name: &str) -> Result<Vec<String>, String> {
    let expr = parse_filter(filter).map_err(|e| e.to_string())?;
    let kept = memory::query(docs.to_vec(), Some(&expr), &[], type_name).map_err(|e| e.to_string())?;
    let mut ids: Vec<String> = kept.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    Ok(ids)
}

const DEVICES: &str = "/v1.0/deviceManagement/managedDevices";
const USERS: &str = "/v1.0/users";

/// managedDevices accepts only what Intune documents (no `not`, no `startswith`, per-property
/// operators), so the rest of the language runs on `/users`, whose store filter is the same
/// translation.
const CASES: &[(&str, &str)] = &[
    // Strings: equality, letter case, quotes, contains.
    (DEVICES, "deviceName eq 'adele-iphone'"),
    (DEVICES, "deviceName eq 'ADELE-iPhone'"),
    (DEVICES, "deviceName eq 'O''Brien''s iPad'"),
    (DEVICES, "contains(deviceName,'IP')"),
    (DEVICES, "contains(deviceName,'''')"),
    (DEVICES, "contains(deviceName,'%')"),
    (DEVICES, "contains(deviceName,'_')"),
    (DEVICES, "contains(osVersion,'17')"),
    (DEVICES, "contains(phoneNumber,'555')"),
    (DEVICES, "operatingSystem eq 'ios' or operatingSystem eq 'ANDROID'"),
    (DEVICES, "operatingSystem in ('iOS', 'windows')"),
    (DEVICES, "manufacturer eq 'apple'"),
    (DEVICES, "imei eq '356938035643809'"),
    // Nulls: eq/ne null, and ne holding for a null value.
    (DEVICES, "userPrincipalName eq 'adele@contoso.example'"),
    (DEVICES, "userPrincipalName ne 'adele@contoso.example'"),
    (DEVICES, "userPrincipalName eq null"),
    (DEVICES, "userPrincipalName ne null"),
    (DEVICES, "serialNumber eq null"),
    (DEVICES, "serialNumber eq 'SN-1' or serialNumber eq null"),
    (DEVICES, "serialNumber in ('sn-1', null)"),
    // Enums (stored members, any letter case, typed literals).
    (DEVICES, "complianceState eq 'compliant'"),
    (DEVICES, "complianceState eq 'COMPLIANT'"),
    (DEVICES, "complianceState eq microsoft.graph.complianceState'compliant'"),
    (
        DEVICES,
        "complianceState eq 'noncompliant' or complianceState eq 'unknown'",
    ),
    (DEVICES, "managementState eq 'retirePending'"),
    (DEVICES, "managementState eq 'managed'"),
    // JSON-held properties.
    (DEVICES, "jailBroken eq 'false'"),
    (DEVICES, "managementAgent eq 'MDM'"),
    (DEVICES, "deviceCategoryDisplayName eq 'Unknown'"),
    // Dates: instants, whatever the offset or precision; a quoted date; the far-future grace
    // deadline Graph shows for a device not in a grace period.
    (DEVICES, "enrolledDateTime gt 2024-03-01T00:00:00Z"),
    (DEVICES, "enrolledDateTime lt 2024-03-01T00:00:00.500Z"),
    (DEVICES, "enrolledDateTime gt 2024-03-01T01:00:00+01:00"),
    (DEVICES, "enrolledDateTime lt '2024-02-15'"),
    (DEVICES, "lastSyncDateTime gt 2000-01-01T00:00:00Z"),
    (
        DEVICES,
        "complianceGracePeriodExpirationDateTime gt 2030-01-01T00:00:00Z",
    ),
    (
        DEVICES,
        "complianceGracePeriodExpirationDateTime lt 2030-01-01T00:00:00Z",
    ),
    // and/or.
    (DEVICES, "contains(deviceName,'adele') and userPrincipalName ne null"),
    (
        DEVICES,
        "operatingSystem eq 'iOS' and enrolledDateTime gt 2024-03-01T00:00:00Z",
    ),
    // Refused alike: a literal of the wrong type, an unknown property.
    (DEVICES, "deviceName eq 5"),
    (DEVICES, "jailBroken eq true"),
    (DEVICES, "enrolledDateTime gt 'soon'"),
    (DEVICES, "nope eq 'x'"),
    // Bools, not, startswith/endswith, ordering of text.
    (USERS, "accountEnabled eq true"),
    (USERS, "accountEnabled ne true"),
    (USERS, "accountEnabled eq false or mail eq null"),
    (USERS, "not (accountEnabled eq true)"),
    (USERS, "not accountEnabled eq false"),
    (USERS, "startswith(displayName,'ad')"),
    (USERS, "endswith(userPrincipalName,'.EXAMPLE')"),
    (USERS, "startswith(mail,'a')"),
    (USERS, "not startswith(mail,'a')"),
    (USERS, "startswith(mail,'a') eq false"),
    (USERS, "mail eq null"),
    (USERS, "not (mail eq null)"),
    (USERS, "not (mail eq 'adele@contoso.example')"),
    (USERS, "mail ne 'adele@contoso.example' and accountEnabled eq true"),
    (USERS, "displayName eq 'o''brien'"),
    (USERS, "contains(displayName,'''')"),
    (USERS, "displayName gt 'b'"),
    (USERS, "displayName le 'Bianca'"),
    (
        USERS,
        "userPrincipalName in ('ADELE@contoso.example', 'nobody@contoso.example')",
    ),
    (USERS, "createdDateTime gt 2000-01-01T00:00:00Z"),
    (USERS, "createdDateTime lt 2000-01-01"),
    (USERS, "accountEnabled eq 1"),
    (USERS, "contains(accountEnabled,'t')"),
];

async fn sql_and_memory_filters_agree(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    let mut users = vec![
        user_body("adele@contoso.example", "Adele Vance"),
        user_body("bianca@contoso.example", "Bianca"),
        user_body("obrien@contoso.example", "O'Brien"),
        user_body("zoe@contoso.example", "zoë"),
    ];
    users[1]["accountEnabled"] = json!(false);
    users[2]["mail"] = Value::Null;
    users[3]["mail"] = json!("Zoe@Contoso.example");
    for body in &users {
        let r = app.graph(Method::POST, USERS, &token).json(body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{body}");
    }
    let devices = json!([
        { "deviceName": "adele-iphone", "operatingSystem": "iOS", "osVersion": "17.4", "userPrincipalName": "adele@contoso.example",
          "serialNumber": "SN-1", "imei": "356938035643809", "phoneNumber": "+1 555 0100", "enrolledDateTime": "2024-03-01T00:00:00.250Z" },
        { "deviceName": "adele-pixel", "operatingSystem": "Android", "osVersion": "14", "userPrincipalName": "adele@contoso.example",
          "serialNumber": "sn-2", "enrolledDateTime": "2024-02-10T12:00:00Z" },
        { "deviceName": "O'Brien's iPad", "operatingSystem": "iPadOS", "osVersion": "17.1", "userPrincipalName": "obrien@contoso.example",
          "enrolledDateTime": "2024-03-01T00:00:00Z" },
        { "deviceName": "lab_surface 100%", "operatingSystem": "Windows", "osVersion": "10.0.22631", "ownerType": "company",
          "model": "Surface Pro", "manufacturer": "Microsoft", "enrolledDateTime": "2024-04-01T08:30:00+02:00" },
        { "deviceName": "kiosk", "operatingSystem": "Android", "osVersion": "13", "ownerType": "company", "phoneNumber": "555-0199",
          "enrolledDateTime": "2023-12-31T23:59:59.999Z" },
    ]);
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&devices)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let kiosk = created["value"][4]["id"].as_str().unwrap().to_string();
    let r = app
        .graph(Method::POST, &format!("{DEVICES}/{kiosk}/retire"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "retire the kiosk");

    let device_docs = documents(&app, &token, DEVICES, None).await;
    let user_docs = documents(
        &app,
        &token,
        USERS,
        Some("id,displayName,userPrincipalName,mail,accountEnabled,createdDateTime"),
    )
    .await;
    assert_eq!((device_docs.len(), user_docs.len()), (5, 4));

    // GUID literals, bare or quoted, in either letter case, name objects by id.
    let adele = user_docs.iter().find(|u| u["displayName"] == "Adele Vance").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = [
        format!("id eq {adele}"),
        format!("id eq {}", adele.to_ascii_uppercase()),
        format!("id eq '{adele}'"),
        format!("id ne {adele} and accountEnabled eq true"),
        format!("id in ({adele}, 00000000-0000-0000-0000-000000000000)"),
    ];
    let cases = CASES
        .iter()
        .map(|(path, filter)| (*path, filter.to_string()))
        .chain(by_id.into_iter().map(|f| (USERS, f)))
        .collect::<Vec<_>>();

    let mut disagreements = Vec::new();
    for (path, filter) in &cases {
        let (docs, type_name) = match *path {
            DEVICES => (&device_docs, "microsoft.graph.managedDevice"),
            _ => (&user_docs, "microsoft.graph.user"),
        };
        let sql = listed(&app, &token, path, Some(filter)).await;
        let memory = evaluated(docs, filter, type_name);
        if sql != memory {
            disagreements.push(format!(
                "{path} $filter={filter}\n  SQL:    {sql:?}\n  memory: {memory:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} filters disagree ({:?}):\n{}",
        disagreements.len(),
        cases.len(),
        app.backend,
        disagreements.join("\n")
    );
    // The table is not vacuous: filters select some objects and not others.
    let all = listed(&app, &token, DEVICES, None).await.unwrap();
    let some = listed(&app, &token, DEVICES, Some("contains(deviceName,'adele')"))
        .await
        .unwrap();
    assert_eq!((all.len(), some.len()), (5, 2));
}
