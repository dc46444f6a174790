//! `seed`: fills a new tenant from a YAML or JSON file. The file speaks Graph: each user,
//! group, connector and policy is the body its Graph request takes, and devices are the control
//! plane's enrolment bodies. Entries may carry `count` and `{n}` (1, 2, ...) in their strings to
//! stand for many. The requests go through the application's own router in-process, so a seeded
//! tenant is exactly what the same calls over HTTP would make.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::clock::SystemClock;
use crate::config::{SeedArgs, ServerConfig};
use crate::http::AppState;

/// Enrolments per control-plane call (its limit).
const DEVICE_BATCH: usize = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedFile {
    /// The tenant's properties (`displayName`).
    #[serde(default)]
    pub tenant: Map<String, Value>,
    #[serde(default)]
    pub users: Vec<Value>,
    #[serde(default)]
    pub groups: Vec<Value>,
    #[serde(default)]
    pub connectors: Vec<Value>,
    #[serde(default)]
    pub devices: Vec<Value>,
    #[serde(default)]
    pub policies: Vec<Value>,
}

/// Reads a seed file: JSON if it parses as JSON, YAML otherwise.
pub fn parse(text: &str) -> anyhow::Result<SeedFile> {
    if let Ok(file) = serde_json::from_str::<SeedFile>(text) {
        return Ok(file);
    }
    let value: Value = serde_yaml_ng::from_str(text).context("the seed file is neither JSON nor YAML")?;
    serde_json::from_value(value).context("the seed file's shape")
}

/// `entry` repeated `count` times (default 1), `{n}` in its strings replaced by 1, 2, ...
fn expand(entry: &Value) -> anyhow::Result<Vec<Value>> {
    let mut template = entry.clone();
    let count = match template.as_object_mut().and_then(|o| o.remove("count")) {
        None => 1,
        Some(c) => c
            .as_u64()
            .filter(|c| *c <= 1_000_000)
            .ok_or_else(|| anyhow!("'count' must be a whole number up to 1,000,000, got {c}"))?,
    };
    let text = serde_json::to_string(&template)?;
    if count == 1 && !text.contains("{n}") {
        return Ok(vec![template]);
    }
    (1..=count)
        .map(|n| Ok(serde_json::from_str(&text.replace("{n}", &n.to_string()))?))
        .collect()
}

/// The application, called in-process.
struct Client<S> {
    service: S,
    token: String,
}

impl<S> Client<S>
where
    S: tower::Service<Request, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    async fn call(&self, method: Method, path: &str, body: Option<&Value>, auth: bool) -> anyhow::Result<Value> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "localhost");
        if auth {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(body)?))?,
            None => request.body(Body::empty())?,
        };
        let response = self.service.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .or(value["error_description"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            bail!("{method} {path}: {status}: {message}");
        }
        Ok(value)
    }
}

/// A progress bar on a terminal, a line per tenth otherwise.
struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    terminal: bool,
    shown_tenth: usize,
}

impl Progress {
    fn new(what: &'static str, total: usize) -> Self {
        Progress {
            what,
            total,
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            shown_tenth: 0,
        }
    }

    fn add(&mut self, n: usize) {
        self.done += n;
        let total = self.total.max(1);
        if self.terminal {
            let filled = self.done * 30 / total;
            eprint!(
                "\r{:>9} [{}{}] {}/{}",
                self.what,
                "#".repeat(filled),
                "-".repeat(30 - filled),
                self.done,
                self.total
            );
            if self.done >= self.total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        } else {
            let tenth = self.done * 10 / total;
            if tenth > self.shown_tenth {
                self.shown_tenth = tenth;
                eprintln!("{:>9} {}/{}", self.what, self.done, self.total);
            }
        }
    }
}

/// `seed FILE`: opens the database, creates the tenant and fills it; prints the tenant and its
/// bootstrap app's credentials.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let file = parse(&text)?;
    let clock = Arc::new(SystemClock);
    let store = crate::open_database(
        &args.database.database_url,
        &args.database.connect_options(),
        clock.clone(),
    )
    .await?;
    let config = ServerConfig {
        admin_key: None,
        public_url: None,
        body_limit: 64 * 1024 * 1024,
        request_log: false,
    };
    let state = AppState::new(crate::service::App::new(store, clock), config);
    let started = Instant::now();
    let summary = fill(crate::http::app(state), &file).await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Creates the tenant and everything the file names, in dependency order; returns what was made.
pub async fn fill<S>(service: S, file: &SeedFile) -> anyhow::Result<Value>
where
    S: tower::Service<Request, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let mut c = Client {
        service,
        token: String::new(),
    };
    let created = c
        .call(
            Method::POST,
            "/_emulator/tenants",
            Some(&Value::Object(file.tenant.clone())),
            false,
        )
        .await?;
    let tenant = created["id"].as_str().unwrap_or_default().to_string();
    let client_id = created["bootstrapApp"]["clientId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secret = created["bootstrapApp"]["clientSecret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &client_id)
        .append_pair("client_secret", &secret)
        .append_pair("scope", "https://graph.microsoft.com/.default")
        .finish();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/{tenant}/oauth2/v2.0/token"))
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))?;
    let response = c.service.clone().oneshot(request).await.expect("infallible");
    let token: Value = serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    c.token = token["access_token"]
        .as_str()
        .ok_or_else(|| anyhow!("no token for the bootstrap app: {token}"))?
        .to_string();

    // Users, with what Graph requires filled in when the file leaves it out.
    let mut users: Vec<(String, String)> = Vec::new();
    for entry in &file.users {
        for mut user in expand(entry)? {
            let o = user
                .as_object_mut()
                .ok_or_else(|| anyhow!("a user must be an object"))?;
            let upn = o
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("a user needs 'userPrincipalName'"))?
                .to_string();
            let nickname = upn.split('@').next().unwrap_or(&upn).to_string();
            o.entry("accountEnabled").or_insert(json!(true));
            o.entry("displayName").or_insert(json!(nickname));
            o.entry("mailNickname").or_insert(json!(nickname));
            o.entry("passwordProfile")
                .or_insert(json!({ "password": "Pa55w.rd!", "forceChangePasswordNextSignIn": false }));
            let made = c.call(Method::POST, "/v1.0/users", Some(&user), true).await?;
            users.push((upn, made["id"].as_str().unwrap_or_default().to_string()));
        }
    }
    let user_ids: HashMap<String, String> = users.iter().map(|(u, i)| (u.to_ascii_lowercase(), i.clone())).collect();

    // Groups; `members` is a list of user principal names, or "*" for every seeded user.
    let mut groups: HashMap<String, String> = HashMap::new();
    let mut memberships = 0;
    for entry in &file.groups {
        for mut group in expand(entry)? {
            let o = group
                .as_object_mut()
                .ok_or_else(|| anyhow!("a group must be an object"))?;
            let members = o.remove("members").unwrap_or(Value::Null);
            let name = o
                .get("displayName")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("a group needs 'displayName'"))?
                .to_string();
            let nickname: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
            o.entry("mailEnabled").or_insert(json!(false));
            o.entry("securityEnabled").or_insert(json!(true));
            o.entry("mailNickname").or_insert(json!(nickname));
            let made = c.call(Method::POST, "/v1.0/groups", Some(&group), true).await?;
            let id = made["id"].as_str().unwrap_or_default().to_string();
            let upns: Vec<String> = match &members {
                Value::String(s) if s == "*" => users.iter().map(|(u, _)| u.clone()).collect(),
                Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                Value::Null => Vec::new(),
                other => bail!("group '{name}': 'members' is a list of user principal names or \"*\", got {other}"),
            };
            for upn in upns {
                let user = user_ids
                    .get(&upn.to_ascii_lowercase())
                    .ok_or_else(|| anyhow!("group '{name}': '{upn}' is not a seeded user"))?;
                let reference =
                    json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}") });
                c.call(
                    Method::POST,
                    &format!("/v1.0/groups/{id}/members/$ref"),
                    Some(&reference),
                    true,
                )
                .await?;
                memberships += 1;
            }
            groups.insert(name, id);
        }
    }

    for connector in &file.connectors {
        c.call(
            Method::POST,
            "/beta/deviceManagement/mobileThreatDefenseConnectors",
            Some(connector),
            true,
        )
        .await?;
    }

    // Devices, a thousand a call; `owners: users` gives them the seeded users in turn.
    let mut devices = Vec::new();
    for entry in &file.devices {
        let owned = entry.get("owners").and_then(Value::as_str) == Some("users");
        let mut entry = entry.clone();
        if let Some(o) = entry.as_object_mut() {
            o.remove("owners");
        }
        for (i, mut device) in expand(&entry)?.into_iter().enumerate() {
            if owned && !users.is_empty() {
                device["userPrincipalName"] = json!(users[i % users.len()].0);
            }
            devices.push(device);
        }
    }
    let mut progress = Progress::new("devices", devices.len());
    for batch in devices.chunks(DEVICE_BATCH) {
        c.call(
            Method::POST,
            &format!("/_emulator/tenants/{tenant}/devices"),
            Some(&Value::Array(batch.to_vec())),
            false,
        )
        .await?;
        progress.add(batch.len());
    }

    // Policies; `assignTo` names seeded groups, or "allUsers" / "allDevices".
    let mut policies = 0;
    for entry in &file.policies {
        let mut body = entry.clone();
        let assign_to = body
            .as_object_mut()
            .and_then(|o| o.remove("assignTo"))
            .unwrap_or(json!([]));
        let made = c
            .call(
                Method::POST,
                "/beta/deviceManagement/deviceCompliancePolicies",
                Some(&body),
                true,
            )
            .await?;
        let id = made["id"].as_str().unwrap_or_default().to_string();
        let mut assignments = Vec::new();
        for target in assign_to.as_array().into_iter().flatten().filter_map(Value::as_str) {
            let target = match target {
                "allUsers" => json!({ "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" }),
                "allDevices" => json!({ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }),
                name => json!({
                    "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                    "groupId": groups.get(name).ok_or_else(|| anyhow!("policy assignTo: '{name}' is not a seeded group"))?,
                }),
            };
            assignments.push(json!({ "target": target }));
        }
        if !assignments.is_empty() {
            c.call(
                Method::POST,
                &format!("/beta/deviceManagement/deviceCompliancePolicies/{id}/assign"),
                Some(&json!({ "assignments": assignments })),
                true,
            )
            .await?;
        }
        policies += 1;
    }
    // What the policies and assignments queued is evaluated before the command returns.
    c.call(
        Method::POST,
        &format!("/_emulator/tenants/{tenant}/settle"),
        None,
        false,
    )
    .await?;

    Ok(json!({
        "tenantId": tenant,
        "bootstrapApp": { "clientId": client_id, "clientSecret": secret },
        "users": users.len(),
        "groups": groups.len(),
        "memberships": memberships,
        "connectors": file.connectors.len(),
        "devices": devices.len(),
        "policies": policies,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expand_with_their_number() {
        let many = expand(&json!({ "count": 3, "deviceName": "phone-{n}", "osVersion": "17.5" })).unwrap();
        assert_eq!(
            many,
            vec![
                json!({ "deviceName": "phone-1", "osVersion": "17.5" }),
                json!({ "deviceName": "phone-2", "osVersion": "17.5" }),
                json!({ "deviceName": "phone-3", "osVersion": "17.5" }),
            ]
        );
        assert_eq!(
            expand(&json!({ "displayName": "one" })).unwrap(),
            vec![json!({ "displayName": "one" })]
        );
        assert!(expand(&json!({ "count": -1 })).is_err());
    }

    #[test]
    fn a_seed_file_is_json_or_yaml() {
        let yaml = "tenant:\n  displayName: Contoso\ndevices:\n  - count: 2\n    deviceName: d{n}\n";
        let file = parse(yaml).unwrap();
        assert_eq!(file.tenant["displayName"], "Contoso");
        assert_eq!(file.devices.len(), 1);
        let json = r#"{"users": [{"userPrincipalName": "a@b.example"}]}"#;
        assert_eq!(parse(json).unwrap().users.len(), 1);
        assert!(parse("colour: red\n").is_err(), "unknown sections are refused");
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_example_file_makes_ten_thousand_devices() {
        let text = include_str!("../examples/seed.yaml");
        let file = super::parse(text).unwrap();
        let devices: usize = file.devices.iter().map(|d| super::expand(d).unwrap().len()).sum();
        assert_eq!(devices, 10_000);
        assert_eq!(file.policies.len(), 2);
    }
}
