//! README.md's first session, run as written: its shell blocks, in order, in one bash against the
//! real server's HTTPS listener (the CA trusted as the README says, tokens from Azure Identity),
//! with the key answers checked, so that the walkthrough cannot drift from the product.

use crate::both_backends;
use crate::common::TestApp;

both_backends!(the_readme_walkthrough_runs_as_written);

/// The `sh` blocks of the README's section that starts with `heading`, in order.
fn shell_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme.find(heading).expect("the section");
    let section = &readme[start..];
    let end = section[heading.len()..]
        .find("\n## ")
        .map_or(section.len(), |i| i + heading.len());
    let mut blocks = Vec::new();
    let mut rest = &section[..end];
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("\n```").expect("a closed block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 4..];
    }
    blocks
}

async fn the_readme_walkthrough_runs_as_written(app: TestApp) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = shell_blocks(&readme, "## A first session with curl");
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    // The walkthrough talks to the HTTPS listener, with the CA from `ca` and tokens from Azure
    // Identity: here the test's listener, the binary under test and the SDKs' Python.
    let https = crate::https::start_https(&app).await;
    let host = https.trim_start_matches("https://").to_string();
    let python = crate::sdk::python();
    let ca = format!(
        "{} ca --database-url '{}' --log-filter warn",
        env!("CARGO_BIN_EXE_intune-mtd-emulator"),
        app.db.url
    );
    let mut script = String::from("set -euo pipefail\n");
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '=== block {}'\n", i + 1));
        let block = block
            .replace("cargo run --release -q -- ca", &ca)
            .replace("https://127.0.0.1:8443", &https)
            .replace("127.0.0.1:8443", &host)
            .replace("python3 -c", &format!("{} -c", python.display()));
        script.push_str(&block);
        script.push('\n');
    }
    // Whatever the blocks write lands in a folder of their own; temporary files in another.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("TMPDIR", tmp.path())
            .output(),
    )
    .await
    .expect("the walkthrough finishes")
    .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the walkthrough failed:\n{stdout}\n{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "it writes no files");

    let outputs: Vec<&str> = stdout.split("=== block ").skip(1).collect();
    assert_eq!(outputs.len(), blocks.len(), "{stdout}");
    let expect = |block: usize, wanted: &[&str]| {
        let text = outputs[block - 1];
        for w in wanted {
            assert!(text.contains(w), "block {block} should print '{w}':\n{text}");
        }
    };
    expect(1, &["\"secureByDefault\": false"]);
    expect(
        2,
        &["\"deviceName\": \"adele-iphone\"", "\"complianceState\": \"compliant\""],
    );
    expect(
        3,
        &[
            "\"partnerDisplayName\": \"Lookout for Work\"",
            "\"partnerState\": \"notSetUp\"",
            "heartbeat: 204",
        ],
    );
    expect(4, &["\n1\n"]);
    expect(
        5,
        &[
            "\"accepted\": 1",
            "\"complianceState\": \"inGracePeriod\"",
            "\"partnerReportedThreatState\": \"highSeverity\"",
        ],
    );
    expect(
        6,
        &[
            "\"complianceState\": \"noncompliant\"",
            "\"kind\":\"complianceStateChanged\"",
        ],
    );
    expect(
        7,
        &[
            "\"accepted\": 1",
            "\"complianceState\": \"compliant\"",
            "\"partnerReportedThreatState\": \"secured\"",
        ],
    );
    expect(8, &["DeviceManagementServiceConfig.Read.All"]);
    expect(9, &["\"enabled\""]);
    expect(
        10,
        &[
            "assign: 204",
            "toggle: 204",
            "\"accepted\": 1",
            "\"access\": \"blocked\"",
        ],
    );
    expect(
        11,
        &[
            "\n1\n",
            "DeviceName,DeviceHealthThreatLevel,DeviceHealthThreatLevel_loc,ComplianceState,ComplianceState_loc",
            "adele-iphone,3,Secured,1,Compliant",
        ],
    );
}
