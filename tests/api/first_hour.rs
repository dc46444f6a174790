//! What a newcomer meets first: the start-up banner, `GET /`, logs a file can hold, and the
//! `--listen` forms people type.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::both_backends;
use crate::common::TestApp;

both_backends!(the_root_links_every_surface);

async fn the_root_links_every_surface(app: TestApp) {
    let r = app.req(Method::GET, "/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "Intune MTD emulator");
    let urls: Vec<&str> = body["surfaces"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    for path in [
        "/v1.0",
        "/beta",
        "/partner/v1",
        "/_emulator/tenants",
        "/openapi.yaml",
        "/readyz",
    ] {
        assert!(urls.contains(&format!("{}{path}", app.base).as_str()), "{path}: {body}");
    }
    let r = app
        .req(Method::GET, "/")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(
        page.contains(&format!("<a href=\"{}/openapi.yaml\">", app.base)),
        "{page}"
    );
}

/// The banner names the version, the database and the address, and says what to do next; the
/// log, written to a pipe, has no colour codes and a line per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_says_where_it_is_and_logs_each_request_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("first.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_intune-mtd-emulator"))
        .args([
            "serve",
            "--listen",
            &format!(":{port}"),
            "--https-listen",
            ":0",
            "--database-url",
        ])
        .arg(format!("sqlite://{}", db.display()))
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("a banner")
    {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("curl") {
            break;
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        banner.starts_with(&format!("Intune MTD emulator {}", env!("CARGO_PKG_VERSION"))),
        "{banner}"
    );
    for expected in [
        format!("SQLite file {}", db.display()),
        format!("listening  {base}"),
        format!("{base}/openapi.yaml"),
        format!("curl -s -X POST {base}/_emulator/tenants"),
        "https      https://127.0.0.1:".to_string(),
    ] {
        assert!(banner.contains(&expected), "'{expected}' in:\n{banner}");
    }

    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["request-id"].to_str().unwrap().to_string();
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains(&request_id))
        .unwrap_or_else(|| panic!("a line for request {request_id}:\n{log}"));
    for field in ["INFO", "method=GET", "route=/readyz", "status=200", "elapsed_ms="] {
        assert!(line.contains(field), "'{field}' in: {line}");
    }
}
