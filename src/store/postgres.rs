//! The PostgreSQL backend: for production and for several replicas sharing one database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::*;
use crate::domain::compliance::PolicyFamily;
use crate::domain::device::{detected_app_id, detected_app_platform, OwnerType, Platform};
use crate::domain::directory::MemberKind;
use crate::domain::mtd::{Accepted, Connector};
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

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
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

include!("sql_change.rs");
include!("sql_impl.rs");
include!("sql_directory.rs");
include!("sql_devices.rs");
include!("sql_connectors.rs");
include!("sql_compliance.rs");
include!("sql_worker.rs");
include!("sql_rbac.rs");
