//! The embedded SQLite backend: the default, so that `cargo run` needs nothing else.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

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

type Db = sqlx::Sqlite;
type StoreImpl = SqliteStore;
const DIALECT_NAME: &str = "sqlite";

const MIGRATIONS: super::migrations::Files = super::migrations::SQLITE;

/// Readers share a pool; writes go through a pool of one connection, so that SQLite's single
/// writer is queued in-process instead of failing with SQLITE_BUSY.
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a write acknowledged to a client survives a crash of the process and of the
            // machine; WAL keeps that affordable.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { read, write, clock })
    }

    /// Wall time for the records' `wall_at` stamps, from the clock the store was opened with.
    fn wall(&self) -> DateTime<Utc> {
        self.clock.wall_now()
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    fn writer(&self) -> &SqlitePool {
        &self.write
    }

    fn writer_only_size(&self) -> u32 {
        self.write.size()
    }

    fn writer_only_idle(&self) -> usize {
        self.write.num_idle()
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
