//! The raw SQL baselines of `bench/run ingest` and `bench/run reevaluate`, written with sqlx (the
//! emulator's client library) against the same PostgreSQL server. Each prints one JSON line per
//! measurement on stdout.
//!
//! ```sh
//! # Threat reports: ROUNDS rounds over the device ids in IDS_FILE (one a line), batches of 500
//! # sent by CLIENTS connections, each batch one INSERT ... SELECT FROM UNNEST ... ON CONFLICT
//! # DO UPDATE into raw_threat_reports (a copy of threat_reports). Round r reports device i of its
//! # batch at level (i + r) % 4, at BASE_MICROS + r seconds: the reports of `bench/run ingest`.
//! cargo run --release --example raw_write -- ingest URL TENANT CONNECTOR IDS_FILE ROUNDS CLIENTS BASE_MICROS
//! # Results: reads the tenant's devices' os_version, computes each device's verdict (at least
//! # MIN_MAJOR: compliant) and its state for POLICY (the setting verdict as JSON), and upserts
//! # both rows of every device, into raw_compliance and raw_policy_states (copies of
//! # device_compliance and device_policy_states), in transactions of 10,000 devices (two
//! # INSERT ... SELECT FROM UNNEST ... ON CONFLICT DO UPDATE ... WHERE it differs), rewriting
//! # only the rows that differ: the rows an evaluation writes, written raw.
//! cargo run --release --example raw_write -- upsert URL TENANT POLICY MIN_MAJOR
//! ```

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, Row};
use std::time::Instant;

const LEVELS: [&str; 4] = ["secured", "lowSeverity", "mediumSeverity", "highSeverity"];
const BATCH: usize = 500;
const CHUNK: usize = 10_000;

fn usage() -> anyhow::Error {
    anyhow::anyhow!(
        "usage: raw_write ingest URL TENANT CONNECTOR IDS_FILE ROUNDS CLIENTS BASE_MICROS\n       \
         raw_write upsert URL TENANT POLICY MIN_MAJOR"
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ingest") if args.len() == 8 => ingest(&args[1..]).await,
        Some("upsert") if args.len() == 5 => upsert(&args[1..]).await,
        _ => Err(usage()),
    }
}

async fn ingest(args: &[String]) -> anyhow::Result<()> {
    let (url, tenant, connector) = (&args[0], args[1].clone(), args[2].clone());
    let ids: Vec<String> = std::fs::read_to_string(&args[3])?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let rounds: usize = args[4].parse()?;
    let clients: usize = args[5].parse()?;
    let base = DateTime::<Utc>::from_timestamp_micros(args[6].parse()?).ok_or_else(usage)?;
    let batches: Vec<Vec<String>> = ids.chunks(BATCH).map(<[String]>::to_vec).collect();
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(PgConnection::connect(url).await?);
    }
    for r in 0..rounds {
        let at = base + Duration::seconds(r as i64);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (k, mut conn) in conns.drain(..).enumerate() {
            let mine: Vec<Vec<String>> = batches.iter().skip(k).step_by(clients).cloned().collect();
            let (tenant, connector) = (tenant.clone(), connector.clone());
            tasks.push(tokio::spawn(async move {
                let mut written = 0u64;
                for batch in mine {
                    let states: Vec<&str> = (0..batch.len()).map(|i| LEVELS[(i + r) % 4]).collect();
                    written += sqlx::query(
                        "INSERT INTO raw_threat_reports (tenant_id, device_id, connector_id, state, reported_at, received_at) \
                         SELECT $1, u.d, $2, u.s, $3, now() FROM UNNEST($4::text[], $5::text[]) AS u(d, s) \
                         ON CONFLICT (tenant_id, device_id, connector_id) DO UPDATE SET state = excluded.state, \
                         reported_at = excluded.reported_at, received_at = excluded.received_at \
                         WHERE raw_threat_reports.reported_at < excluded.reported_at",
                    )
                    .bind(&tenant)
                    .bind(&connector)
                    .bind(at)
                    .bind(&batch)
                    .bind(&states)
                    .execute(&mut conn)
                    .await?
                    .rows_affected();
                }
                Ok::<_, sqlx::Error>((conn, written))
            }));
        }
        let mut written = 0;
        for t in tasks {
            let (conn, n) = t.await??;
            conns.push(conn);
            written += n;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            r#"{{"round": {}, "reports": {}, "written": {written}, "seconds": {seconds}}}"#,
            r + 1,
            ids.len()
        );
    }
    Ok(())
}

/// The major version number of an OS version string ("17.4.1" -> 17).
fn major(v: &str) -> i64 {
    v.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
}

async fn upsert(args: &[String]) -> anyhow::Result<()> {
    let (url, tenant, policy) = (&args[0], &args[1], &args[2]);
    let min_major: i64 = args[3].parse()?;
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let started = Instant::now();
    let rows = sqlx::query("SELECT id, os_version FROM managed_devices WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant)
        .fetch_all(&pool)
        .await?;
    let read_seconds = started.elapsed().as_secs_f64();
    let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
    let versions: Vec<String> = rows.iter().map(|r| r.try_get("os_version")).collect::<Result<_, _>>()?;
    drop(rows);
    let verdicts: Vec<&str> = versions
        .iter()
        .map(|v| {
            if major(v) >= min_major {
                "compliant"
            } else {
                "noncompliant"
            }
        })
        .collect();
    // The setting verdicts as the emulator writes them (the same JSON, so the same width).
    let settings: Vec<String> = versions
        .iter()
        .zip(&verdicts)
        .map(|(v, state)| {
            serde_json::json!([{
                "setting": "osMinimumVersion", "state": state, "currentValue": v,
                "reasons": if *state == "compliant" { vec![] } else {
                    vec![format!("OS version {v} is below the minimum {min_major}.0")]
                },
            }])
            .to_string()
        })
        .collect();
    let verdict_sql = "INSERT INTO raw_compliance AS t (tenant_id, device_id, compliance_state) \
         SELECT $1, u.id, u.c FROM UNNEST($2::text[], $3::text[]) AS u(id, c) \
         ON CONFLICT (tenant_id, device_id) DO UPDATE SET compliance_state = excluded.compliance_state \
         WHERE t.compliance_state IS DISTINCT FROM excluded.compliance_state";
    let state_sql = "INSERT INTO raw_policy_states AS t (tenant_id, device_id, policy_id, state, settings, \
         policy_version, evaluated_at) \
         SELECT $1, u.id, $2, u.c, u.s::jsonb, 1, now() FROM UNNEST($3::text[], $4::text[], $5::text[]) AS u(id, c, s) \
         ON CONFLICT (tenant_id, device_id, policy_id) DO UPDATE SET state = excluded.state, \
         settings = excluded.settings, evaluated_at = excluded.evaluated_at \
         WHERE (t.state, t.settings) IS DISTINCT FROM (excluded.state, excluded.settings)";
    let started = Instant::now();
    let mut written = 0u64;
    for start in (0..ids.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(ids.len());
        let mut tx = pool.begin().await?;
        written += sqlx::query(verdict_sql)
            .bind(tenant)
            .bind(&ids[start..end])
            .bind(&verdicts[start..end])
            .execute(&mut *tx)
            .await?
            .rows_affected();
        written += sqlx::query(state_sql)
            .bind(tenant)
            .bind(policy)
            .bind(&ids[start..end])
            .bind(&verdicts[start..end])
            .bind(&settings[start..end])
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        r#"{{"rows": {}, "written": {written}, "seconds": {seconds}, "read_seconds": {read_seconds}}}"#,
        2 * ids.len()
    );
    Ok(())
}
