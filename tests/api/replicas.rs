//! Two server processes on one PostgreSQL database: what one replica caches of a tenant (its
//! clock, its role assignments) follows a change made through the other by the next request.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{start_replica, test_database, Backend, Client, Replica};
use crate::rbac::READ_ONLY_OPERATOR;

const CONNECTORS: &str = "/v1.0/deviceManagement/mobileThreatDefenseConnectors";
const SCOPES: &str = "https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All openid";

async fn two_replicas() -> (crate::common::TestDatabase, Replica, Replica) {
    let db = test_database(Backend::Postgres).await;
    // Migrate once before the replicas race to.
    crate::common::open_store(&db).await;
    let a = start_replica(&db.url, &["--no-worker"], None).await;
    let b = start_replica(&db.url, &["--no-worker"], None).await;
    (db, a, b)
}

async fn get(c: &Client, base: &str, path: &str, token: &str) -> StatusCode {
    c.http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn send(c: &Client, method: Method, base: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let mut req = c.http.request(method, format!("{base}{path}")).bearer_auth(&c.token);
    if !body.is_null() {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Moves the client's tenant's clock two days on, through `replica`: past its tokens' expiry.
async fn two_days_later(c: &Client, replica: &Replica) {
    let r = c
        .http
        .post(format!("{}/_emulator/tenants/{}/clock", replica.base, c.tenant))
        .json(&json!({ "advanceBy": "P2D" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the other replica moves the clock");
}

/// The client's token is refused at `path` as expired on the tenant's (moved) clock.
async fn expired(c: &Client, base: &str, path: &str) {
    let r = c
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    let message = crate::common::assert_error(r, 401, "InvalidAuthenticationToken").await;
    assert!(message.contains("expired"), "expired on the tenant's clock: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_move_on_one_replica_expires_tokens_on_the_other() {
    let (_db, a, b) = two_replicas().await;
    let c = Client::new(&a).await;
    assert_eq!(get(&c, &a.base, CONNECTORS, &c.token).await, 200, "A serves the token");

    two_days_later(&c, &b).await;
    expired(&c, &a.base, CONNECTORS).await;
    // A token A issues now is issued on the moved clock, so it is valid there.
    let fresh = c.app_token(&c.bootstrap.0, &c.bootstrap.1).await;
    assert_eq!(get(&c, &a.base, CONNECTORS, &fresh).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_on_one_replica_is_enforced_by_the_other() {
    let (_db, a, b) = two_replicas().await;
    let c = Client::new(&a).await;
    let upn = "reader@contoso.example";
    let (status, user) = send(
        &c,
        Method::POST,
        &a.base,
        "/v1.0/users",
        crate::directory::user_body(upn, "Reader"),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (status, group) = send(
        &c,
        Method::POST,
        &a.base,
        "/v1.0/groups",
        json!({ "displayName": "Readers", "mailEnabled": false, "mailNickname": "readers", "securityEnabled": true }),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap();
    let (status, _) = send(
        &c,
        Method::POST,
        &a.base,
        &format!("/v1.0/groups/{gid}/members/$ref"),
        json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", user["id"].as_str().unwrap()) }),
    )
    .await;
    assert_eq!(status, 204);
    let assign = |base: String| {
        let c = &c;
        async move {
            let (status, body) = send(
                c,
                Method::POST,
                &base,
                "/beta/deviceManagement/roleAssignments",
                json!({
                    "displayName": "Readers",
                    "members": [gid],
                    "scopeMembers": [gid],
                    "resourceScopes": [],
                    "roleDefinition@odata.bind": format!("https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{READ_ONLY_OPERATOR}')"),
                }),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().to_string()
        }
    };
    let aid = assign(a.base.clone()).await;

    // The user signs in through a public client of the tenant (public client flows allowed).
    let r = c
        .http
        .post(format!("{}/_emulator/tenants/{}/apps", a.base, c.tenant))
        .json(&json!({ "displayName": "portal", "permissions": [], "isFallbackPublicClient": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client: Value = r.json().await.unwrap();
    let r = c
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", a.base, c.tenant))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client["clientId"].as_str().unwrap()),
            ("username", upn),
            ("password", "Pa55w.rd!"),
            ("scope", SCOPES),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let user_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        get(&c, &a.base, CONNECTORS, &user_token).await,
        200,
        "Read Only Operator reads through A"
    );
    let (status, _) = send(
        &c,
        Method::DELETE,
        &b.base,
        &format!("/beta/deviceManagement/roleAssignments/{aid}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204, "B deletes the assignment");
    assert_eq!(
        get(&c, &a.base, CONNECTORS, &user_token).await,
        403,
        "A no longer finds a role for the user"
    );

    // And back: an assignment made through B reaches A's next request too.
    assign(b.base.clone()).await;
    assert_eq!(get(&c, &a.base, CONNECTORS, &user_token).await, 200);
}

/// A managed device read by id is one statement on a replica that holds the tenant: the app-only
/// caller is admitted with the cached entry unchecked, and the read checks the entry's version.
/// A clock move and a tenant deletion made through the other replica still bind the next read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_read_checked_in_its_statement_follows_the_other_replica() {
    let (_db, a, b) = two_replicas().await;
    let c = Client::new(&a).await;
    let r = c
        .control(Method::POST, "/devices")
        .json(&json!({ "deviceName": "adele-iphone", "operatingSystem": "ios", "osVersion": "17.4.1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let device: Value = r.json().await.unwrap();
    let path = format!(
        "/v1.0/deviceManagement/managedDevices/{}",
        device["id"].as_str().unwrap()
    );
    for _ in 0..2 {
        assert_eq!(get(&c, &a.base, &path, &c.token).await, 200, "A holds the tenant");
    }

    two_days_later(&c, &b).await;
    expired(&c, &a.base, &path).await;
    let fresh = c.app_token(&c.bootstrap.0, &c.bootstrap.1).await;
    assert_eq!(get(&c, &a.base, &path, &fresh).await, 200);
    assert_eq!(get(&c, &a.base, &path, &fresh).await, 200, "from A's reloaded entry");
    let missing = "/v1.0/deviceManagement/managedDevices/00000000-0000-0000-0000-000000000001";
    assert_eq!(get(&c, &a.base, missing, &fresh).await, 404);
    assert_eq!(
        get(&c, &a.base, "/v1.0/deviceManagement/managedDevices/not-a-guid", &fresh).await,
        404
    );

    let r = c
        .http
        .delete(format!("{}/_emulator/tenants/{}", b.base, c.tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "B deletes the tenant");
    for p in [
        path.as_str(),
        missing,
        "/v1.0/deviceManagement/managedDevices/not-a-guid",
    ] {
        let r = c
            .http
            .get(format!("{}{p}", a.base))
            .bearer_auth(&fresh)
            .send()
            .await
            .unwrap();
        crate::common::assert_error(r, 401, "InvalidAuthenticationToken").await;
    }
}
