//! Database outages (product brief 8: "Outages are answered, not suffered"). Each test runs a
//! PostgreSQL server of its own (the machine's server binaries, found with `pg_config
//! --bindir` or `MTD_EMULATOR_TEST_PG_BINDIR`) on a free port, so that it can stop and start
//! it without touching the database the rest of the suite uses.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{assert_error, start_replica, Client};

const PASSWORD: &str = "outage-test-secret";

/// A PostgreSQL server in a temporary folder, stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    /// The server refuses to run as root: run its tools as the `postgres` user then.
    as_postgres: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnPostgres {
    /// A new cluster: local connections trusted, TCP connections with a password.
    async fn init() -> OwnPostgres {
        let bindir = match std::env::var("MTD_EMULATOR_TEST_PG_BINDIR") {
            Ok(dir) => PathBuf::from(dir),
            Err(_) => {
                let out = std::process::Command::new("pg_config")
                    .arg("--bindir")
                    .output()
                    .expect("pg_config (PostgreSQL's server binaries) is needed for the outage tests; or set MTD_EMULATOR_TEST_PG_BINDIR");
                PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
            }
        };
        let uid = std::process::Command::new("id").arg("-u").output().expect("id -u");
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        if as_postgres {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown the cluster folder to postgres");
        }
        let pg = OwnPostgres {
            dir,
            bindir,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let pwfile = pg.dir.path().join("pw");
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "--no-sync",
                "--no-instructions",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        .await;
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}", self.port)
    }

    async fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bindir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            tokio::process::Command::new(&program)
        };
        let out = cmd.args(args).output().await.unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "start"],
        )
        .await;
    }

    /// Stops the server the way a restart or failover does: sessions are terminated.
    async fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
            .await;
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let program = self.bindir.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            std::process::Command::new(&program).args(args).output()
        };
    }
}

/// What one request of the load got.
#[derive(Debug)]
struct Outcome {
    status: u16,
    took: Duration,
    retry_after: Option<String>,
    code: Option<String>,
}

async fn outcome(request: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    let r = request.send().await.expect("the server answers");
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    Outcome {
        status,
        took: started.elapsed(),
        retry_after,
        code: body["error"]["code"].as_str().map(str::to_string),
    }
}

/// Enrolls a device through the control plane; answers its Graph path.
async fn device_path(c: &Client, body: Value) -> String {
    let r = c.control(Method::POST, "/devices").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let device: Value = r.json().await.unwrap();
    format!(
        "/v1.0/deviceManagement/managedDevices/{}",
        device["id"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_answered_with_503_and_the_server_recovers_by_itself() {
    let pg = OwnPostgres::init().await;
    pg.start().await;
    let log = pg.dir.path().join("server.log");
    // A fast worker tick: many ticks fail during the outage, and must be logged once.
    let server = start_replica(&pg.url("postgres"), &["--worker-tick-ms", "50"], Some(&log)).await;
    let c = Client::new(&server).await;
    let path = device_path(
        &c,
        json!({ "deviceName": "outage-phone", "operatingSystem": "ios", "osVersion": "17.4.1" }),
    )
    .await;

    // Load: three clients reading the device without pause, through the outage and after.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (stop, http, url, token) = (
                stop.clone(),
                c.http.clone(),
                format!("{}{path}", c.base),
                c.token.clone(),
            );
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(outcome(http.get(&url).bearer_auth(&token)).await);
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    pg.stop().await;
    let down = Instant::now();

    // Readiness says so within a second; liveness stays 200 and says the database is down.
    let started = Instant::now();
    let r = c.http.get(format!("{}/readyz", c.base)).send().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "/readyz took {:?}",
        started.elapsed()
    );
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 503, "serviceNotAvailable").await;
    let started = Instant::now();
    let r = c.http.get(format!("{}/healthz", c.base)).send().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "/healthz took {:?}",
        started.elapsed()
    );
    assert_eq!(r.status(), 200);
    let health: Value = r.json().await.unwrap();
    assert_eq!(health["database"], "down", "{health}");

    // A read, a token request and a write each fail fast with 503, Retry-After and the envelope.
    let token_form = [
        ("grant_type", "client_credentials"),
        ("client_id", c.bootstrap.0.as_str()),
        ("client_secret", c.bootstrap.1.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let requests = [
        ("a Graph read", c.graph(Method::GET, &path)),
        (
            "a token request",
            c.http
                .post(format!("{}/{}/oauth2/v2.0/token", c.base, c.tenant))
                .form(&token_form),
        ),
        (
            "a control-plane write",
            c.control(Method::POST, "/devices")
                .json(&json!({ "deviceName": "during-outage", "operatingSystem": "android", "osVersion": "14" })),
        ),
    ];
    for (what, request) in requests {
        let started = Instant::now();
        let r = request.send().await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{what} took {took:?}");
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()),
            Some("5".to_string()),
            "{what}"
        );
        if what == "a token request" {
            // Entra's words: OAuth's temporarily_unavailable.
            assert_eq!(r.status(), 503);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
            assert_eq!(body["error_codes"], json!([90033]), "{body}");
        } else {
            assert_error(r, 503, "serviceNotAvailable").await;
        }
    }

    // Long enough for the worker's ticks to fail a few times over.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(down.elapsed())).await;
    pg.start().await;
    let up = Instant::now();
    loop {
        let r = c.graph(Method::GET, &path).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "no recovery after 10 s: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = up.elapsed();
    assert!(recovered < Duration::from_secs(2), "recovery took {recovered:?}");
    let r = c.http.get(format!("{}/readyz", c.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for task in load {
        seen.extend(task.await.unwrap());
    }
    let refused = seen.iter().filter(|o| o.status == 503).count();
    let served = seen.iter().filter(|o| o.status == 200).count();
    let slowest = seen.iter().map(|o| o.took).max().unwrap_or_default();
    eprintln!(
        "outage: {} requests under load, {served} served, {refused} refused with 503, slowest {slowest:?}; recovered {recovered:?} after the database started",
        seen.len()
    );
    assert!(
        refused > 0 && served > 0,
        "the load met the outage: {refused} refused, {served} served"
    );
    for o in &seen {
        assert!(o.status == 200 || o.status == 503, "{o:?}");
        if o.status == 503 {
            assert_eq!(o.retry_after.as_deref(), Some("5"), "{o:?}");
            assert_eq!(o.code.as_deref(), Some("serviceNotAvailable"), "{o:?}");
        }
        assert!(o.took < Duration::from_secs(3), "a request hung: {o:?}");
    }

    // The worker failed tick after tick during the outage, and said so once.
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    let failures = log.lines().filter(|l| l.contains("worker tick failed")).count();
    assert_eq!(failures, 1, "the worker's failures logged once per outage:\n{log}");
}

/// A database restart while the server is idle ends every pooled session. The pool tests a
/// connection that sat idle (`store::PING_AFTER_IDLE`) before handing it out, so the first
/// requests after are served, not answered with 503 by a dead session. (The pool's idle time
/// is real time: this test waits for it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_after_an_idle_restart_are_served() {
    let pg = OwnPostgres::init().await;
    pg.start().await;
    let server = start_replica(&pg.url("postgres"), &[], None).await;
    let c = Client::new(&server).await;
    let path = device_path(
        &c,
        json!({ "deviceName": "restart-phone", "operatingSystem": "android", "osVersion": "14" }),
    )
    .await;
    // Several requests at once: the pool opens several sessions.
    let reads: Vec<_> = (0..8)
        .map(|_| tokio::spawn(c.graph(Method::GET, &path).send()))
        .collect();
    for r in reads {
        assert_eq!(r.await.unwrap().unwrap().status(), 200);
    }

    pg.stop().await;
    pg.start().await;
    tokio::time::sleep(intune_mtd_emulator::store::PING_AFTER_IDLE + Duration::from_millis(200)).await;
    for i in 0..8 {
        let r = c.graph(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i} after the restart");
    }
}

/// Runs `serve` against `url` until it exits; returns how long it took and what it printed.
async fn serve_until_exit(url: &str, extra: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_intune-mtd-emulator"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--https-listen",
            "127.0.0.1:0",
            "--database-url",
            url,
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("serve exits against a database it cannot use")
        .unwrap();
    assert!(!out.status.success());
    (started.elapsed(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_names_the_server_and_the_cause_and_can_wait_for_it() {
    let pg = OwnPostgres::init().await;

    // Nothing listens: refused, named with host and port, within 5 s.
    let url = pg.url("postgres");
    let (took, said) = serve_until_exit(&url, &[]).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let place = format!("127.0.0.1:{}", pg.port);
    assert!(said.contains(&place) && said.contains("connection refused"), "{said}");
    assert!(!said.contains(PASSWORD), "the password is not printed: {said}");

    pg.start().await;
    // A wrong password.
    let wrong = format!("postgres://postgres:wrong@127.0.0.1:{}/postgres", pg.port);
    let (took, said) = serve_until_exit(&wrong, &[]).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        said.contains(&place) && said.contains("authentication failed for user 'postgres'"),
        "{said}"
    );
    // A database that does not exist, said once.
    let (took, said) = serve_until_exit(&pg.url("no_such_db"), &[]).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(said.matches("does not exist").count(), 1, "{said}");
    assert!(said.contains("'no_such_db'") && said.contains(&place), "{said}");

    // `--wait-for-database`: start-up waits for a database that comes up later.
    pg.stop().await;
    let pg = Arc::new(pg);
    let later = pg.clone();
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        later.start().await;
    });
    let started = Instant::now();
    let server = start_replica(&pg.url("postgres"), &["--wait-for-database", "30"], None).await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    starter.await.unwrap();
    let r = reqwest::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(r.status(), 200);
}
