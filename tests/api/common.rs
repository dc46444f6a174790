//! The test harness: the real application on 127.0.0.1:0 over a fresh database, SQLite (a file
//! in a temporary folder) or PostgreSQL (a new database per test on the local server named by
//! `MTD_EMULATOR_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::sync::Arc;

use intune_mtd_emulator::clock::SystemClock;
use intune_mtd_emulator::config::ServerConfig;
use intune_mtd_emulator::http::AppState;
use intune_mtd_emulator::service::App;
use intune_mtd_emulator::store::{self, Store};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use sqlx::Connection as _;
use tokio::sync::OnceCell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::spawn($crate::common::Backend::Sqlite).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::spawn($crate::common::Backend::Postgres).await).await
                }
            }
        )*
    };
}

pub fn postgres_admin_url() -> String {
    std::env::var("MTD_EMULATOR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database of its own for one test. PostgreSQL databases are named with their creation
/// time, so that a later run can drop those a crashed run left behind.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn test_database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary folder");
            let url = format!("sqlite://{}", dir.path().join("emulator.db").display());
            TestDatabase { url, _dir: Some(dir) }
        }
        Backend::Postgres => {
            static SWEPT: OnceCell<()> = OnceCell::const_new();
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for the PostgreSQL tests: {e}"));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            SWEPT
                .get_or_init(|| async {
                    let stale: Vec<String> =
                        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mtd_test_%'")
                            .fetch_all(&mut conn)
                            .await
                            .unwrap_or_default();
                    for name in stale {
                        let born: u64 = name.split('_').nth(2).and_then(|s| s.parse().ok()).unwrap_or(now);
                        if now.saturating_sub(born) > 3600 {
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        }
                    }
                })
                .await;
            let name = format!("mtd_test_{now}_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            TestDatabase {
                url: format!("{base}/{name}"),
                _dir: None,
            }
        }
    }
}

pub async fn open_store(db: &TestDatabase) -> Arc<dyn Store> {
    let store = store::connect(&db.url, 4).await.expect("open store");
    store.migrate().await.expect("migrate");
    store
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub backend: Backend,
    pub db: TestDatabase,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn config() -> ServerConfig {
    ServerConfig {
        admin_key: None,
        public_url: None,
        body_limit: 4 * 1024 * 1024,
        request_log: true,
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, config()).await
}

pub async fn spawn_with(backend: Backend, config: ServerConfig) -> TestApp {
    spawn_app(backend, config, |app| app).await
}

/// `spawn_with`, the service app shaped by `customize` (e.g. `App::with_retention`).
pub async fn spawn_app(backend: Backend, config: ServerConfig, customize: impl FnOnce(App) -> App) -> TestApp {
    let db = test_database(backend).await;
    let store = open_store(&db).await;
    let state = AppState::new(customize(App::new(store, Arc::new(SystemClock))), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = state.clone();
    tokio::spawn(async move {
        intune_mtd_emulator::run(listener, served, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base,
        http: reqwest::Client::new(),
        state,
        backend,
        db,
        _shutdown: tx,
    }
}

/// A tenant as the control plane created it, with its bootstrap app's credentials.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl TestApp {
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    pub async fn create_tenant(&self) -> Tenant {
        let r = self
            .req(Method::POST, "/_emulator/tenants")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        Tenant {
            id: body["id"].as_str().unwrap().to_string(),
            client_id: body["bootstrapApp"]["clientId"].as_str().unwrap().to_string(),
            client_secret: body["bootstrapApp"]["clientSecret"].as_str().unwrap().to_string(),
        }
    }

    /// Registers a Graph app with these application permissions; returns (client id, secret).
    pub async fn register_app(&self, tenant: &str, permissions: &[&str]) -> (String, String) {
        let r = self
            .req(Method::POST, &format!("/_emulator/tenants/{tenant}/apps"))
            .json(&json!({ "displayName": "test app", "permissions": permissions, "isFallbackPublicClient": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        (
            body["clientId"].as_str().unwrap().to_string(),
            body["clientSecret"].as_str().unwrap().to_string(),
        )
    }

    pub async fn token_response(&self, tenant: &str, client_id: &str, secret: &str) -> Response {
        self.req(Method::POST, &format!("/{tenant}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, tenant: &str, client_id: &str, secret: &str) -> String {
        let r = self.token_response(tenant, client_id, secret).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self, t: &Tenant) -> String {
        self.token(&t.id, &t.client_id, &t.client_secret).await
    }

    pub fn graph(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.req(method, path).bearer_auth(token)
    }

    /// The tenant's event log entries of one kind, oldest first.
    pub async fn events(&self, t: &Tenant, kind: &str) -> Vec<Value> {
        let r = self
            .req(Method::GET, &format!("/_emulator/tenants/{}/events?kind={kind}", t.id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["value"].as_array().unwrap().clone()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self.req(Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// The tenant's now, on its clock.
    pub async fn tenant_now(&self, tenant: &str) -> chrono::DateTime<chrono::FixedOffset> {
        let clock: Value = self
            .req(Method::GET, &format!("/_emulator/tenants/{tenant}/clock"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        chrono::DateTime::parse_from_rfc3339(clock["now"].as_str().unwrap()).unwrap()
    }

    pub async fn advance_clock(&self, tenant: &str, by: &str) -> Value {
        let r = self
            .req(Method::POST, &format!("/_emulator/tenants/{tenant}/clock"))
            .json(&json!({ "advanceBy": by }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "advance clock by {by}");
        r.json().await.unwrap()
    }
}

/// Asserts a Graph error envelope with this status and code, and returns its message.
pub async fn assert_error(r: Response, status: u16, code: &str) -> String {
    assert_eq!(r.status().as_u16(), status, "status");
    let request_id = r
        .headers()
        .get("request-id")
        .expect("request-id header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(r.headers().contains_key("client-request-id"));
    let body: Value = r.json().await.expect("a JSON error body");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["innerError"]["request-id"], request_id.as_str(), "{body}");
    assert!(error["innerError"]["date"].is_string(), "{body}");
    error["message"].as_str().expect("message").to_string()
}

/// A server process of the built binary.
pub struct Replica {
    pub base: String,
    pub child: tokio::process::Child,
}

/// Starts the built binary on a free port over `url` with `args` (e.g. `--no-worker`,
/// `--worker-tick-ms 20`), its log at `warn` to `log` (a file) or to the test's output, and
/// waits until it is ready.
pub async fn start_replica(url: &str, args: &[&str], log: Option<&std::path::Path>) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stderr = match log {
        Some(path) => std::process::Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file"),
        ),
        None => std::process::Stdio::inherit(),
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_intune-mtd-emulator"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--https-listen",
            "127.0.0.1:0",
            "--database-url",
            url,
            "--log-filter",
            "warn",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start the server binary");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..1500 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return Replica { base, child };
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the replica did not become ready");
}

/// A client of a server process (see `start_replica`): a tenant it created, with a Graph token
/// of the tenant's bootstrap app.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub tenant: String,
    pub token: String,
    /// The bootstrap app's client id and secret.
    pub bootstrap: (String, String),
}

impl Client {
    pub async fn new(server: &Replica) -> Client {
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{}/_emulator/tenants", server.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut c = Client {
            http,
            base: server.base.clone(),
            tenant: created["id"].as_str().unwrap().to_string(),
            token: String::new(),
            bootstrap: (
                created["bootstrapApp"]["clientId"].as_str().unwrap().to_string(),
                created["bootstrapApp"]["clientSecret"].as_str().unwrap().to_string(),
            ),
        };
        c.token = c.app_token(&c.bootstrap.0, &c.bootstrap.1).await;
        c
    }

    /// A client-credentials token of an app of the tenant.
    pub async fn app_token(&self, client_id: &str, secret: &str) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let tok: Value = self
            .http
            .post(format!("{}/{}/oauth2/v2.0/token", self.base, self.tenant))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tok["access_token"].as_str().expect("a token").to_string()
    }

    pub fn graph(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// The tenant's control plane: `path` after `/_emulator/tenants/{tid}`.
    pub fn control(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/_emulator/tenants/{}{path}", self.base, self.tenant))
    }
}
