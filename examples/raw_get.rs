//! The baseline of `bench/run get` and `bench/run startup`: a minimal axum + sqlx server that
//! answers `GET /devices/{id}` with the JSON document stored in one row, and `GET /readyz`.
//!
//! ```sh
//! cargo run --release --example raw_get -- DATABASE_URL [LISTEN] [POOL_SIZE]
//! ```
//!
//! `DATABASE_URL` is `postgres://...` or `sqlite://PATH` (created if missing); LISTEN defaults to
//! `127.0.0.1:8081`, POOL_SIZE to 16 (the emulator's default pool, and its settings on
//! PostgreSQL). It creates the table
//! `raw_get_devices (id TEXT PRIMARY KEY, document TEXT NOT NULL)` if missing; `bench/run get`
//! fills it with the documents the emulator serves for the same devices. No authentication, no
//! rendering: one `SELECT` by primary key, the text sent as `application/json`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS raw_get_devices (id TEXT PRIMARY KEY, document TEXT NOT NULL)";

#[derive(Clone)]
enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

async fn device(State(db): State<Db>, Path(id): Path<String>) -> Response {
    let sql = match db {
        Db::Postgres(_) => "SELECT document FROM raw_get_devices WHERE id = $1",
        Db::Sqlite(_) => "SELECT document FROM raw_get_devices WHERE id = ?1",
    };
    let row: Result<Option<String>, sqlx::Error> = match &db {
        Db::Postgres(p) => sqlx::query_scalar(sql).bind(&id).fetch_optional(p).await,
        Db::Sqlite(p) => sqlx::query_scalar(sql).bind(&id).fetch_optional(p).await,
    };
    match row {
        Ok(Some(doc)) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn ready(State(db): State<Db>) -> StatusCode {
    let ok = match &db {
        Db::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
        Db::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
    };
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: raw_get DATABASE_URL [LISTEN] [POOL_SIZE]"))?;
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let pool_size: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(16);
    let db = if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(&url)?.create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(pool_size)
            .connect_with(options)
            .await?;
        sqlx::query(TABLE).execute(&pool).await?;
        Db::Sqlite(pool)
    } else {
        // The emulator's pool settings: a connection idle for under a second is handed out
        // untested (sqlx tests every one by default).
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| Box::pin(intune_mtd_emulator::store::ping_if_idle(conn, meta)))
            .connect(&url)
            .await?;
        sqlx::query(TABLE).execute(&pool).await?;
        Db::Postgres(pool)
    };
    let app = Router::new()
        .route("/devices/{id}", get(device))
        .route("/readyz", get(ready))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
