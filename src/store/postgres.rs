//! The PostgreSQL backend: for production and for several replicas sharing one database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};

use super::*;
use crate::domain::app_protection::{
    AppOperation, AppPlatform, AppPolicyAssignment, AppProtectionPolicy, AppRegistration, TargetedApp,
};
use crate::domain::compliance::PolicyFamily;
use crate::domain::device::{detected_app_id, detected_app_platform, OwnerType, Platform};
use crate::domain::directory::MemberKind;
use crate::domain::mtd::{Accepted, Connector, StoredReport};
use crate::domain::policy::{NotificationTemplate, StoredPolicy};
use crate::domain::tenant::AppKind;

type Db = sqlx::Postgres;
type StoreImpl = PostgresStore;
const DIALECT_NAME: &str = "postgres";

const MIGRATIONS: super::migrations::Files = super::migrations::POSTGRES;

pub struct PostgresStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

/// How long a pooled connection may sit idle and still be handed out untested.
pub const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Tests a pooled connection before it is handed out only when it sat idle for a while (a
/// server restarted or a session ended meanwhile is found then, and the connection replaced).
/// sqlx's default tests every one, a round trip more per request: under load a connection is
/// idle for microseconds, and sqlx tests each one again as it is given back (measured with
/// `bench/run get`: three round trips per GET instead of two).
pub async fn ping_if_idle(
    conn: &mut sqlx::PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    if meta.idle_for >= PING_AFTER_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

impl PostgresStore {
    /// Opens the pool once the server answers (see [`reach`]).
    pub async fn connect(url: &str, options: &ConnectOptions, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        // No JIT compilation: the emulator's statements are short, keyed ones, but without
        // statistics (a table that just grew, or autovacuum off) the planner's cost estimates
        // pass `jit_above_cost` and every execution compiles code first (measured: a queue claim
        // of 2,000 devices of a queue just refilled took 42 to 66 ms with JIT, 21 ms without).
        let server: PgConnectOptions = url.parse::<PgConnectOptions>()?.options([("jit", "off")]);
        reach(&server, options.wait).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| Box::pin(async move { ping_if_idle(conn, meta).await }))
            .connect_with(server)
            .await?;
        Ok(PostgresStore { pool, clock })
    }

    /// Wall time for the records' `wall_at` stamps, from the clock the store was opened with.
    fn wall(&self) -> DateTime<Utc> {
        self.clock.wall_now()
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    // Readers and writers share one pool here: nothing extra to count.
    fn writer_only_size(&self) -> u32 {
        0
    }

    fn writer_only_idle(&self) -> usize {
        0
    }
}

/// How long one start-up attempt waits for the server to answer.
const CONNECT_ATTEMPT: Duration = Duration::from_secs(4);

/// Connects once to the server, retrying for up to `wait`, so that start-up says what is wrong
/// instead of a pool's "timed out": the server (host and port, database, user) and the cause
/// (refused, no answer, authentication, missing database). A changed cause is logged while
/// waiting.
async fn reach(server: &PgConnectOptions, wait: Duration) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut logged: Option<String> = None;
    loop {
        let cause = match tokio::time::timeout(CONNECT_ATTEMPT, PgConnection::connect_with(server)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                if logged.is_some() {
                    tracing::info!(database = %describe(server), "the database answers");
                }
                return Ok(());
            }
            Ok(Err(e)) => cause_of(&e, server),
            Err(_) => format!("no answer within {} s", CONNECT_ATTEMPT.as_secs()),
        };
        let message = format!("cannot reach PostgreSQL at {}: {cause}", describe(server));
        if tokio::time::Instant::now() + Duration::from_millis(500) > deadline {
            return Err(StoreError::Unreachable(message));
        }
        if logged.as_deref() != Some(&cause) {
            tracing::warn!(wait_s = wait.as_secs(), "{message}; waiting for it");
            logged = Some(cause);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `host:port (database 'db', user 'user')`, or the socket folder for a Unix socket.
pub(super) fn describe(server: &PgConnectOptions) -> String {
    let place = match server.get_socket() {
        Some(dir) => format!("socket {}/.s.PGSQL.{}", dir.display(), server.get_port()),
        None => format!("{}:{}", server.get_host(), server.get_port()),
    };
    format!(
        "{place} (database '{}', user '{}')",
        server.get_database().unwrap_or(server.get_username()),
        server.get_username()
    )
}

fn cause_of(e: &sqlx::Error, server: &PgConnectOptions) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: is PostgreSQL running and listening on that address?".into()
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "no such socket: is PostgreSQL running?".into()
        }
        sqlx::Error::Io(io) => format!("cannot connect: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => format!(
                "authentication failed for user '{}': {}",
                server.get_username(),
                db.message()
            ),
            Some("3D000") => format!(
                "the database '{}' does not exist: create it, or name another in the URL",
                server.get_database().unwrap_or(server.get_username())
            ),
            Some("57P03") => "the server is starting up".into(),
            Some("53300") => "the server has no connection slot left".into(),
            _ => db.message().to_string(),
        },
        other => other.to_string(),
    }
}

include!("sql_change.rs");
include!("sql_impl.rs");
include!("sql_directory.rs");
include!("sql_devices.rs");
include!("sql_connectors.rs");
include!("sql_compliance.rs");
include!("sql_worker.rs");
include!("sql_rbac.rs");
include!("sql_app_protection.rs");
include!("sql_reports.rs");
include!("sql_access.rs");
