//! Fuzzing (product brief 8): schemathesis over the served `openapi.yaml`, surface by surface
//! with the credentials each takes: no answer may be a server error, and every answer's status,
//! content type and body must be the ones the document gives. The interpreter is the SDK tests'
//! (`scripts/test` installs schemathesis beside the SDKs); the seed is fixed, so a run repeats.
//! One worker: CPython 3.11 parses ASTs in threads unsafely (gh-106905), and hypothesis parses
//! schemathesis's sources while generating, which failed now and then with two.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::common::{config, spawn_with, Backend, TestApp};
use crate::directory::{create_group, create_user};
use crate::mtd::{partner_token, LOOKOUT};

both_backends!(schemathesis_finds_no_server_error_and_no_undocumented_answer);

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Runs schemathesis over the operations `filter` selects; returns how many cases it sent.
async fn fuzz(app: &TestApp, what: &str, filter: &[&str], token: Option<&str>) -> u64 {
    fuzz_n(app, what, filter, token, 5).await
}

/// `fuzz` with at most `examples` cases an operation and phase.
async fn fuzz_n(app: &TestApp, what: &str, filter: &[&str], token: Option<&str>, examples: u32) -> u64 {
    let python = crate::sdk::python();
    let schemathesis = python.with_file_name("schemathesis");
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let workdir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(&schemathesis);
    cmd.current_dir(workdir.path())
        .args(["--no-color", "run"])
        .arg(&schema)
        .args(["--url", &app.base])
        .args(filter)
        .args(["--checks", CHECKS])
        .args([
            "--max-examples",
            &examples.to_string(),
            "--seed",
            "20261202",
            "--workers",
            "1",
        ]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = cmd.output().await.unwrap_or_else(|e| {
        panic!(
            "{} (schemathesis) could not run: {e}; scripts/test installs it",
            schemathesis.display()
        )
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures on the {what} surface:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = text
        .lines()
        .find_map(|l| l.trim().split_once(" generated, ").and_then(|(n, _)| n.parse().ok()))
        .unwrap_or_else(|| panic!("no count of test cases in:\n{text}"));
    eprintln!(
        "schemathesis, {what} ({:?}): {generated} cases, no failure",
        app.backend
    );
    generated
}

async fn schemathesis_finds_no_server_error_and_no_undocumented_answer(app: TestApp) {
    let t = app.create_tenant().await;
    let token = app.admin_token(&t).await;
    // Something to find, so that not every id is unknown.
    create_user(&app, &token, "adele@contoso.example", "Adele Vance").await;
    create_group(&app, &token, "Staff").await;
    let r = app
        .req(Method::POST, &format!("/_emulator/tenants/{}/devices", t.id))
        .json(&json!({ "deviceName": "fuzz-phone", "operatingSystem": "iOS", "osVersion": "17.5" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let partner = partner_token(&app, &t.id, LOOKOUT).await;

    let mut total = 0;
    // Each Graph route is documented twice, once per version with that version's schemas: v1.0
    // gets every phase, beta (the same handlers) all but the slow coverage phase.
    total += fuzz(&app, "graph v1.0", &["--include-tag", "v1.0"], Some(&token)).await;
    total += fuzz(
        &app,
        "graph beta",
        &["--include-tag", "beta", "--phases", "examples,fuzzing,stateful"],
        Some(&token),
    )
    .await;
    total += fuzz(&app, "partner", &["--include-tag", "partner"], Some(&partner)).await;
    total += fuzz(&app, "control plane", &["--include-tag", "control"], None).await;
    total += fuzz(
        &app,
        "identity and operations",
        &["--include-tag", "identity", "--include-tag", "operations"],
        None,
    )
    .await;
    assert!(total > 1000, "{total} cases");
}

/// With an admin key, the control plane answers only what the document gives, with the key and
/// without it (401 on every route).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_admin_keys_answers_documented() {
    let mut cfg = config();
    cfg.admin_key = Some("fuzz-admin-key".into());
    let app = spawn_with(Backend::Sqlite, cfg).await;
    let with_key = fuzz_n(
        &app,
        "control plane, with the key",
        &["--include-tag", "control"],
        Some("fuzz-admin-key"),
        2,
    )
    .await;
    let without = fuzz_n(
        &app,
        "control plane, without the key",
        &["--include-tag", "control"],
        None,
        1,
    )
    .await;
    assert!(with_key > 100 && without > 10, "{with_key} and {without} cases");
}
