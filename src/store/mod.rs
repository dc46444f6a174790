//! Persistence. One interface, two backends chosen once from the database URL's scheme:
//! embedded SQLite (the default) and PostgreSQL. Every method that touches a tenant's data
//! takes the tenant id.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::domain::app_protection::{AppPlatform, AppProtectionPolicy, AppRegistration};
use crate::domain::device::Platform;
use crate::domain::device::{DeviceApp, ManagedDevice};
use crate::domain::directory::{Group, Member, User};
use crate::domain::faults::FaultRule;
use crate::domain::limits::Limits;
use crate::domain::mtd::{Accepted, Connector, StoredReport};
use crate::domain::policy::{NotificationTemplate, StoredPolicy};
use crate::domain::rbac::{RoleAssignment, RoleDefinition};
use crate::domain::reports::ExportJob;
use crate::domain::tenant::{App, Tenant};
use crate::odata::{Expr, ODataError, OrderBy};
use filter_sql::{Dialect, SqlFragment, SqlValue};

mod columns;
mod filter_sql;
mod migrations;
mod postgres;
mod sqlite;

pub use postgres::{ping_if_idle, PostgresStore, PING_AFTER_IDLE};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken: the caller decides what the client is told.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Start-up could not reach the database: the message names the server and the cause.
    #[error("{0}")]
    Unreachable(String),
    /// The list query's `$filter` or `$orderby` does not fit the collection (an unknown or
    /// unfilterable property, a literal of the wrong type): the client's mistake, with OData's
    /// message.
    #[error(transparent)]
    Query(ODataError),
}

impl StoreError {
    /// The database did not answer the request: it is unreachable, shutting down or out of
    /// connections, or no pooled connection came free in time. Nothing about the request was
    /// wrong, and the client may retry it (503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => unavailable(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => unavailable(e),
            StoreError::Unreachable(_) => true,
            _ => false,
        }
    }
}

fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // SQLSTATE class 08 (connection exception), the server shutting down or starting up
            // (57P01-57P03), and too many connections (53300).
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// How a store opens its connection pool.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Upper bound of the pool.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection (PostgreSQL) before it is answered
    /// 503: while the database is down, requests fail within this time instead of hanging.
    /// SQLite's single writer queues in-process for up to 30 s instead: waiting for it is
    /// never an outage.
    pub acquire_timeout: std::time::Duration,
    /// How long start-up keeps trying an unreachable database (PostgreSQL) before it gives up,
    /// for containers started beside their database. Zero tries once.
    pub wait: std::time::Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 16,
            acquire_timeout: std::time::Duration::from_secs(2),
            wait: std::time::Duration::ZERO,
        }
    }
}

/// A page of a collection as the client asked for it: its `$filter` and `$orderby` as parsed,
/// in the collection's property names (the store translates them, and refuses with
/// [`StoreError::Query`] what does not fit the collection), what the caller may see of it, and
/// the page.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<Expr>,
    /// The store appends the primary key as a tie-breaker.
    pub order_by: Vec<OrderBy>,
    pub scope: ListScope,
    pub limit: u64,
    pub offset: u64,
    /// Keyset paging: only rows whose primary key sorts after this one (with no `order_by`).
    pub after: Option<String>,
    pub count: bool,
}

/// Which part of a tenant's collection a caller lists, besides what its filter asks for. Only
/// `list_devices` narrows by it; the other lists take `All`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ListScope {
    #[default]
    All,
    /// A user's managed devices: those whose primary user has this id.
    UserDevices(String),
    /// An MTD partner's view of the managed devices: those on these platforms, filtered by
    /// the partner API's own property names.
    PartnerDevices(Vec<Platform>),
}

#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// Rows matching the filter, when the query asked for a count.
    pub total: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub private_key_pem: String,
    pub created_at: DateTime<Utc>,
}

/// The tenant's `deviceManagement` singleton: its stored properties as Graph names them.
/// A pending device authorization grant (`/devicecode`): the device polls with the code whose
/// hash this keeps; the user enters `user_code` at `/devicelogin`, which sets `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRecord {
    pub device_code_hash: String,
    pub user_code: String,
    pub tenant_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// On the tenant's clock.
    pub expires_at: DateTime<Utc>,
    pub user_id: Option<String>,
}

/// A refresh token (`offline_access`), by the SHA-256 of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// Every scope granted, OpenID Connect ones included.
    pub scopes: Vec<String>,
    /// On the tenant's clock.
    pub expires_at: DateTime<Utc>,
    /// The authorization code (its hash) the token descends from, through every rotation.
    pub family: Option<String>,
    /// Issued to a single-page app: its expiry is fixed at the first issue, and it is redeemed
    /// cross-origin only.
    pub single_page_app: bool,
    /// The Entra id of the device the sign-in came from (none: an unknown device).
    pub device_id: Option<String>,
}

/// An authorization code (`/authorize`), by the SHA-256 of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    pub code_hash: String,
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// PKCE: the challenge and its method (`S256` or `plain`), when the request sent one.
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    /// Every scope granted, OpenID Connect ones included.
    pub scopes: Vec<String>,
    /// On the tenant's clock.
    pub expires_at: DateTime<Utc>,
}

/// The deployment's local certificate authority for HTTPS (`identity::tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsAuthorityRecord {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceManagementRecord {
    pub tenant_id: String,
    pub properties: Map<String, Value>,
    /// Bumped by every update, for compare-and-set.
    pub revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// Everything the application keeps, as one object: each area is a trait of its own.
pub trait Store:
    TenantStore
    + DirectoryStore
    + DeviceStore
    + ConnectorStore
    + ComplianceStore
    + WorkerStore
    + RbacStore
    + AppProtectionStore
    + ReportStore
    + AccessStore
{
}

impl<
        T: TenantStore
            + DirectoryStore
            + DeviceStore
            + ConnectorStore
            + ComplianceStore
            + WorkerStore
            + RbacStore
            + AppProtectionStore
            + ReportStore
            + AccessStore,
    > Store for T
{
}

/// Tenants, apps, signing keys, the clock and `deviceManagement`.
#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    /// The database answers and every migration this build knows is applied.
    async fn ready(&self) -> Result<bool, StoreError>;
    fn pool_stats(&self) -> PoolStats;

    /// Creates the tenant with its bootstrap app and `deviceManagement` in one transaction.
    /// `Conflict` when the id is taken.
    async fn insert_tenant(
        &self,
        tenant: &Tenant,
        bootstrap: &App,
        dm: &DeviceManagementRecord,
    ) -> Result<(), StoreError>;
    async fn get_tenant(&self, tenant_id: &str) -> Result<Option<Tenant>, StoreError>;
    /// The tenant with its cache version, read in one statement (so the two agree).
    async fn get_tenant_versioned(&self, tenant_id: &str) -> Result<Option<(Tenant, i64)>, StoreError>;
    /// The tenant's cache version: it moves, in the same transaction, with every write to the
    /// tenant row's clock offset, a reset, and every role definition or assignment write. None
    /// when the tenant does not exist. One primary-key read.
    async fn tenant_cache_version(&self, tenant_id: &str) -> Result<Option<i64>, StoreError>;
    async fn list_tenants(&self, query: &ListQuery) -> Result<ListPage<Tenant>, StoreError>;
    /// Deletes the tenant and everything it owns. False when it did not exist.
    async fn delete_tenant(&self, tenant_id: &str) -> Result<bool, StoreError>;
    /// Empties the tenant back to its just-created state: its data, apps other than the
    /// bootstrap app and its clock offset go; `dm` replaces `deviceManagement`.
    async fn reset_tenant(&self, tenant_id: &str, dm: &DeviceManagementRecord) -> Result<bool, StoreError>;
    /// Sets the clock offset if it is still `expected` (compare-and-set, so concurrent moves
    /// never lose one another). False when the offset had moved or the tenant is gone.
    async fn set_clock_offset(&self, tenant_id: &str, expected: i64, new_offset_us: i64) -> Result<bool, StoreError>;
    /// Sets or clears (`None`) the tenant's throttling, starting every counter afresh; moves
    /// `cache_version`. False when the tenant is gone.
    async fn set_limits(&self, tenant_id: &str, limits: Option<&Limits>) -> Result<bool, StoreError>;
    /// Counts one request toward each `(counter, window start)`: a counter whose stored window
    /// is another starts again at 1. Returns the counts, in the order given.
    async fn count_requests(&self, tenant_id: &str, counters: &[(String, i64)]) -> Result<Vec<i64>, StoreError>;
    /// Replaces the tenant's fault rules if its cache version is still `version`
    /// (compare-and-set), moving it; the counters of the rules in `afresh` start afresh. False
    /// when the version had moved or the tenant is gone.
    async fn replace_faults(
        &self,
        tenant_id: &str,
        version: i64,
        rules: &[FaultRule],
        afresh: &[String],
    ) -> Result<bool, StoreError>;
    /// Counts a request the rule matched; returns how many it has matched, this one included.
    async fn fault_matched(&self, tenant_id: &str, rule_id: &str) -> Result<i64, StoreError>;
    /// Counts the rule firing unless it has fired `limit` times already; false then.
    async fn fault_fired(&self, tenant_id: &str, rule_id: &str, limit: Option<i64>) -> Result<bool, StoreError>;
    /// Each rule's counters: `(rule id, matched, fired)`.
    async fn fault_counts(&self, tenant_id: &str) -> Result<Vec<(String, i64, i64)>, StoreError>;
    /// Appends to the tenant's event log outside any change (what a request met, not what it
    /// changed: throttling and faults).
    async fn append_events(&self, tenant_id: &str, events: &[Event]) -> Result<(), StoreError>;

    /// `Conflict` when the client id is taken in the tenant.
    async fn insert_app(&self, app: &App) -> Result<(), StoreError>;
    /// Deletes the app with its pending codes and refresh tokens, moving the tenant's cache
    /// version (replicas forget the client id). False when the tenant has no such app.
    async fn delete_app(&self, tenant_id: &str, client_id: &str) -> Result<bool, StoreError>;
    async fn get_app(&self, tenant_id: &str, client_id: &str) -> Result<Option<App>, StoreError>;
    async fn list_apps(&self, tenant_id: &str) -> Result<Vec<App>, StoreError>;

    /// Token signing keys are the deployment's, not a tenant's.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Stores the key unless one exists already (replicas racing at first start keep one).
    async fn insert_signing_key_if_none(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// The HTTPS certificate authority, like the signing key the deployment's.
    async fn tls_authority(&self) -> Result<Option<TlsAuthorityRecord>, StoreError>;
    /// Stores the authority unless one exists already (replicas racing at first start keep one).
    async fn insert_tls_authority_if_none(&self, ca: &TlsAuthorityRecord) -> Result<(), StoreError>;

    /// Stores a new device code, first dropping the tenant's codes expired by `now` (its clock).
    async fn insert_device_code(&self, code: &DeviceCodeRecord, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn device_code_by_user_code(&self, user_code: &str) -> Result<Option<DeviceCodeRecord>, StoreError>;
    /// Records the user who signed in for a code not signed in for yet. False otherwise.
    async fn approve_device_code(&self, user_code: &str, user_id: &str) -> Result<bool, StoreError>;
    async fn device_code(
        &self,
        tenant_id: &str,
        device_code_hash: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;
    /// Deletes a signed-in code as its tokens are issued; false when another request took it.
    async fn take_device_code(&self, tenant_id: &str, device_code_hash: &str) -> Result<bool, StoreError>;

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), StoreError>;
    /// Deletes every refresh token descending from the authorization code `family`.
    async fn revoke_refresh_token_family(&self, tenant_id: &str, family: &str) -> Result<u64, StoreError>;

    /// Stores a new authorization code, first dropping the tenant's codes expired by `now`.
    async fn insert_authorization_code(
        &self,
        code: &AuthorizationCodeRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The code, and whether it was redeemed already.
    async fn authorization_code(
        &self,
        tenant_id: &str,
        code_hash: &str,
    ) -> Result<Option<(AuthorizationCodeRecord, bool)>, StoreError>;
    /// Marks the code redeemed; false when it was already (concurrent redemptions: one wins).
    async fn mark_code_redeemed(&self, tenant_id: &str, code_hash: &str) -> Result<bool, StoreError>;

    /// Records that `user_id` signed in on the browser session `session_hash`.
    async fn add_session_user(
        &self,
        session_hash: &str,
        tenant_id: &str,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The `(tenant id, user id)` pairs signed in on the session, the latest sign-in first.
    async fn session_users(&self, session_hash: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Signs everyone out of the session.
    async fn end_session(&self, session_hash: &str) -> Result<(), StoreError>;
    /// The app with this client id, whichever tenant registered it (for the `organizations`
    /// and `common` authorities); None when no tenant or several did.
    async fn find_app_anywhere(&self, client_id: &str) -> Result<Option<App>, StoreError>;
    /// Deletes every refresh token of the user (`revokeSignInSessions`); returns how many.
    async fn revoke_refresh_tokens(&self, tenant_id: &str, user_id: &str) -> Result<u64, StoreError>;
    /// Deletes the refresh token as it is redeemed and returns it, when it is a single-page
    /// app's or not as `single_page_app` says; None when it is unknown, of the other kind, or
    /// was redeemed already (by a concurrent request too).
    async fn take_refresh_token(
        &self,
        tenant_id: &str,
        token_hash: &str,
        single_page_app: bool,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    /// Whether the refresh token is a single-page app's; None when it is unknown.
    async fn refresh_token_kind(&self, tenant_id: &str, token_hash: &str) -> Result<Option<bool>, StoreError>;

    async fn get_device_management(&self, tenant_id: &str) -> Result<Option<DeviceManagementRecord>, StoreError>;
    /// Stores `record.properties` if the stored revision is still `record.revision` (bumping
    /// it). False when another update came first or the tenant is gone.
    async fn update_device_management(&self, record: &DeviceManagementRecord, fx: &Effects)
        -> Result<bool, StoreError>;
}

/// Users, groups and group members.
#[async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    /// `Conflict` when the id or the user principal name (case-insensitively) is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, tenant_id: &str, id: &str) -> Result<Option<User>, StoreError>;
    async fn find_user_by_upn(&self, tenant_id: &str, upn: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self, tenant_id: &str, query: &ListQuery) -> Result<ListPage<User>, StoreError>;
    /// Also refreshes the user's name and mail on the devices whose primary user it is.
    /// `Conflict` when the new user principal name is taken.
    async fn update_user(&self, user: &User, fx: &Effects) -> Result<bool, StoreError>;
    /// Also removes the user from groups and from the devices it was primary user of, and
    /// queues those devices for re-evaluation.
    async fn delete_user(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError>;

    async fn insert_group(&self, group: &Group) -> Result<(), StoreError>;
    async fn get_group(&self, tenant_id: &str, id: &str) -> Result<Option<Group>, StoreError>;
    async fn list_groups(&self, tenant_id: &str, query: &ListQuery) -> Result<ListPage<Group>, StoreError>;
    async fn update_group(&self, group: &Group) -> Result<bool, StoreError>;
    async fn delete_group(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError>;

    /// False when the member was in the group already.
    async fn add_member(&self, tenant_id: &str, member: &Member, fx: &Effects) -> Result<bool, StoreError>;
    async fn remove_member(
        &self,
        tenant_id: &str,
        group_id: &str,
        member_id: &str,
        fx: &Effects,
    ) -> Result<bool, StoreError>;
    /// Members in a stable order; `query.filter` is not used.
    async fn list_members(
        &self,
        tenant_id: &str,
        group_id: &str,
        query: &ListQuery,
    ) -> Result<ListPage<Member>, StoreError>;
    /// Ids of the groups the user or device is a direct member of.
    async fn groups_of(&self, tenant_id: &str, member_id: &str) -> Result<Vec<String>, StoreError>;
}

/// A `detectedApp`: the devices' app inventories grouped by name, version and platform.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedApp {
    pub id: String,
    pub display_name: String,
    pub version: String,
    pub size_in_bytes: i64,
    pub device_count: i64,
    pub publisher: Option<String>,
    pub platform: String,
}

/// Managed devices and their app inventories.
#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// All or nothing, in one transaction. `Conflict` when an id or an Entra device id is taken.
    async fn insert_devices(&self, tenant_id: &str, devices: &[ManagedDevice], fx: &Effects) -> Result<(), StoreError>;
    async fn get_device(&self, tenant_id: &str, id: &str) -> Result<Option<ManagedDevice>, StoreError>;
    /// The device, with the tenant's `cache_version` read in the same statement (`None` when
    /// the tenant does not exist): for a request that checks its cache entry with its answer.
    async fn get_device_versioned(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(Option<i64>, Option<ManagedDevice>), StoreError>;
    async fn find_device_by_entra_id(
        &self,
        tenant_id: &str,
        entra_id: &str,
    ) -> Result<Option<ManagedDevice>, StoreError>;
    /// Narrowed by `query.scope`. Keyset paging by id when `after` is set.
    async fn list_devices(&self, tenant_id: &str, query: &ListQuery) -> Result<ListPage<ManagedDevice>, StoreError>;
    async fn update_device(&self, device: &ManagedDevice, fx: &Effects) -> Result<bool, StoreError>;
    /// Also removes its apps and its group memberships.
    async fn delete_device(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError>;

    /// Replaces the device's inventory. False when the device does not exist.
    async fn set_device_apps(&self, tenant_id: &str, device_id: &str, apps: &[DeviceApp]) -> Result<bool, StoreError>;
    async fn device_apps(&self, tenant_id: &str, device_id: &str) -> Result<Vec<DeviceApp>, StoreError>;
    /// Only apps Intune shows: managed ones, and unmanaged ones of corporate devices.
    async fn list_detected_apps(&self, tenant_id: &str, query: &ListQuery)
        -> Result<ListPage<DetectedApp>, StoreError>;
    async fn get_detected_app(&self, tenant_id: &str, id: &str) -> Result<Option<DetectedApp>, StoreError>;
    /// The devices on which Intune shows this app.
    async fn devices_with_app(
        &self,
        tenant_id: &str,
        detected_app_id: &str,
        query: &ListQuery,
    ) -> Result<ListPage<ManagedDevice>, StoreError>;
    /// The apps Intune shows for this device.
    async fn detected_apps_of_device(&self, tenant_id: &str, device_id: &str) -> Result<Vec<DetectedApp>, StoreError>;
}

/// A device a threat report names, found by its managed device id or its Entra device id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTargetRow {
    pub device_id: String,
    pub azure_ad_device_id: String,
    pub platform: Platform,
}

/// MTD connectors and partner threat reports.
#[async_trait]
pub trait ConnectorStore: Send + Sync + 'static {
    /// `Conflict` when the tenant has this connector already.
    async fn insert_connector(&self, connector: &Connector, fx: &Effects) -> Result<(), StoreError>;
    async fn get_connector(&self, tenant_id: &str, id: &str) -> Result<Option<Connector>, StoreError>;
    async fn list_connectors(&self, tenant_id: &str) -> Result<Vec<Connector>, StoreError>;
    /// Stores the connector if its revision is still `connector.revision` (bumping it).
    async fn update_connector(&self, connector: &Connector, fx: &Effects) -> Result<bool, StoreError>;
    /// Also deletes the reports the partner sent through it.
    async fn delete_connector(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError>;
    /// A heartbeat: provisions the connector (`fresh`) when absent, else marks it set up and
    /// not deprovisioned, at `at`. Returns the connector as stored.
    /// `fx` is applied only when `fx_if` holds for the connector as it was before (None when
    /// provisioned by this heartbeat).
    async fn record_heartbeat(
        &self,
        fresh: &Connector,
        at: DateTime<Utc>,
        fx_if: &(dyn for<'c> Fn(Option<&'c Connector>) -> Effects + Send + Sync),
    ) -> Result<Connector, StoreError>;
    /// A batch of threat reports in one pass, in one transaction:
    /// - reads and locks the devices `keys` name (a key names the device with that id, else the
    ///   one with that Entra device id) in one statement, and takes the reports `batch` accepts;
    /// - stores them (a newer stored one wins, whatever the order of arrival) and tells `batch`
    ///   which it kept out;
    /// - reads the reported devices' evaluation inputs and the tenant's policies, connectors and
    ///   settings, and writes the results `batch` computes from them, each device's
    ///   `partnerReportedThreatState` among them.
    ///
    /// Locks, in the write path's order: the tenant's change lock, shared (batches for other
    /// devices run side by side; changes to the tenant wait), the devices by id, their queue
    /// entries by id (the batch's evaluation satisfies them: they are taken off), then results.
    /// None when the tenant does not exist.
    async fn ingest_reports(
        &self,
        tenant_id: &str,
        connector_id: &str,
        keys: &[String],
        received_at: DateTime<Utc>,
        batch: &mut dyn ReportBatch,
    ) -> Result<Option<StoredOutcome>, StoreError>;
}

/// The service's part of `ingest_reports`, called inside its transaction (again, should the
/// database break a deadlock and the transaction run again).
#[async_trait]
pub trait ReportBatch: Send {
    /// The reports to store, decided from the devices the keys name.
    fn accept(&mut self, targets: Vec<ReportTargetRow>) -> Vec<Accepted>;
    /// The accepted reports the store did not keep, because a report as new or newer is stored
    /// for the device and connector: each device (by id) with that report's `reportedDateTime`.
    fn kept_out(&mut self, stored: std::collections::HashMap<String, DateTime<Utc>>);
    /// The evaluation of the reported devices, from what the transaction read after storing
    /// the reports.
    async fn evaluate(&mut self, tenant: TenantRows, inputs: Vec<EvaluationInput>) -> Result<Evaluated, StoreError>;
}

/// The tenant-wide inputs of evaluation, read at change number `version`.
#[derive(Debug, Clone)]
pub struct TenantRows {
    pub version: i64,
    pub policies: Vec<StoredPolicy>,
    pub connectors: Vec<Connector>,
    pub device_management: Option<DeviceManagementRecord>,
}

/// What an evaluation of a batch of devices writes.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub changes: Vec<ComplianceChange>,
    pub events: Vec<Event>,
    pub actions: Vec<FiredAction>,
}

/// A device's last evaluation of one policy that targets it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyStateRow {
    pub device_id: String,
    pub policy_id: String,
    /// `compliant`, `inGracePeriod`, `noncompliant` or `notApplicable`.
    pub state: String,
    /// The setting verdicts, as evaluation wrote them (a JSON array).
    pub settings: Value,
    pub episode_start: Option<DateTime<Utc>>,
    pub grace_deadline: Option<DateTime<Utc>>,
    pub policy_version: i64,
    pub evaluated_at: DateTime<Utc>,
}

/// The outcome of evaluating one device, to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceRecord {
    pub device_id: String,
    /// `complianceState` member.
    pub state: String,
    pub grace_expires_at: Option<DateTime<Utc>>,
    /// When time alone may next change the outcome.
    pub due_at: Option<DateTime<Utc>>,
    /// `partnerReportedThreatState` member, derived from the device's reports.
    pub partner_threat_state: String,
    /// The tenant's now the verdict is for.
    pub evaluated_at: DateTime<Utc>,
    pub policies: Vec<PolicyStateRow>,
}

/// A device's stored verdict (`device_compliance`).
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictRow {
    /// `complianceState` member.
    pub state: String,
    pub grace_expires_at: Option<DateTime<Utc>>,
    /// When time alone may next change it.
    pub due_at: Option<DateTime<Utc>>,
    /// `partnerReportedThreatState` member.
    pub partner_threat_state: String,
}

/// What an evaluation changes of a device's stored results: only what differs from what it
/// read (see `service::compliance::changes`).
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceChange {
    pub device_id: String,
    /// The new verdict, when any of it changed.
    pub verdict: Option<VerdictRow>,
    /// Policy states that are new or changed.
    pub upsert: Vec<PolicyStateRow>,
    /// Policies whose state goes: they no longer exist.
    pub delete: Vec<String>,
}

impl ComplianceChange {
    pub fn is_empty(&self) -> bool {
        self.verdict.is_none() && self.upsert.is_empty() && self.delete.is_empty()
    }
}

/// What `store_compliance` stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredOutcome {
    /// Devices whose evaluation was stored: those still queued by a change it saw (for the
    /// others a newer evaluation has stored, or will; or the device is gone).
    pub written: u64,
    /// Events logged for stored verdicts (changes of `complianceState`).
    pub changed: u64,
    pub actions_fired: u64,
    /// Result rows written: verdicts, and policy states inserted, updated or deleted.
    pub rows: u64,
}

/// What evaluating a device reads besides the tenant-wide policies, connectors and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationInput {
    pub device: ManagedDevice,
    /// Groups the primary user is a direct member of.
    pub user_groups: Vec<String>,
    /// Groups the device is a direct member of.
    pub device_groups: Vec<String>,
    /// Each connector's latest report.
    pub reports: Vec<StoredReport>,
    /// The stored verdict's due time (the verdict itself is on the device).
    pub due_at: Option<DateTime<Utc>>,
    /// The stored policy states (their open noncompliance episodes among them), by policy id.
    pub states: Vec<PolicyStateRow>,
    /// Actions for noncompliance fired in those episodes: (policy id, episode start, action id).
    pub fired: Vec<(String, DateTime<Utc>, String)>,
}

/// An entry of the tenant's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub device_id: Option<String>,
    pub connector_id: Option<String>,
    /// The whole entry as the event log shows it.
    pub document: Value,
    /// On the tenant's clock.
    pub virtual_at: DateTime<Utc>,
}

/// An action for noncompliance to fire once, with what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredAction {
    pub device_id: String,
    pub policy_id: String,
    pub episode_start: DateTime<Utc>,
    pub action_id: String,
    pub fired_at: DateTime<Utc>,
    /// A message for the outbox: (kind, document).
    pub message: Option<(String, Value)>,
    /// A pending device action to record on the device as it is when the action fires (its
    /// `deviceActionResults` entry), with the `managementState` it sets, if any.
    pub device_action: Option<(String, Option<String>)>,
    pub event: Event,
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub device_id: Option<String>,
    pub connector_id: Option<String>,
    pub kind: Option<String>,
}

/// The background worker's bookkeeping.
#[async_trait]
pub trait WorkerStore: Send + Sync + 'static {
    /// The number of the tenant's last committed change (every change bumps it, in the order
    /// the changes take the tenant's lock). Read before an evaluation reads its inputs, it is
    /// the version of those inputs: every change up to it is visible to them.
    async fn queue_version(&self, tenant_id: &str) -> Result<i64, StoreError>;
    /// Records that a pass drained the queue as it was at `version`.
    async fn mark_queue_seen(&self, tenant_id: &str, version: i64) -> Result<(), StoreError>;
    /// Whether the tenant has queued devices or devices due at `now`: the idle check.
    async fn has_work(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Ids of the devices queued by changes up to `version`, after `after`, in id order; with
    /// `claimable` (wall time), only those the worker may take by then (see
    /// `Effects::caller_evaluates`).
    async fn queued(
        &self,
        tenant_id: &str,
        version: i64,
        claimable: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>, StoreError>;
    /// Every tenant id with its clock offset (microseconds).
    async fn tenant_clocks(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Takes or renews the tenant's worker lease until `until` (wall time) unless another
    /// owner holds an unexpired one.
    async fn acquire_lease(
        &self,
        tenant_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn release_lease(&self, tenant_id: &str, owner: &str) -> Result<(), StoreError>;
    /// Oldest first: (sequence number, document).
    async fn list_events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<(i64, Value)>, StoreError>;
    /// Records the `partnerState` last logged for the connector, with the change's effects (its
    /// event, the devices it re-evaluates).
    async fn set_observed_state(
        &self,
        tenant_id: &str,
        connector_id: &str,
        state: &str,
        fx: &Effects,
    ) -> Result<(), StoreError>;
    /// Ids of the users among the group's direct members (an action's CC list).
    async fn user_members_of(&self, tenant_id: &str, group_id: &str) -> Result<Vec<String>, StoreError>;
    /// The `partnerState` last logged per connector.
    async fn observed_states(&self, tenant_id: &str) -> Result<Vec<(String, Option<String>)>, StoreError>;
    /// Retention: drops the tenant's events and sent messages from before `before` (tenant
    /// time) or beyond the newest `keep`, and the records of fired actions from before `before`
    /// or beyond the newest `keep` whose episode is closed. An open episode's records keep its
    /// actions from firing twice, so they stay whatever their age.
    async fn trim_logs(&self, tenant_id: &str, before: DateTime<Utc>, keep: u64) -> Result<Trimmed, StoreError>;
}

/// What a retention sweep dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub events: u64,
    pub notifications: u64,
    pub fired_actions: u64,
    /// Files of expired report exports.
    pub export_files: u64,
}

impl Trimmed {
    pub fn total(&self) -> u64 {
        self.events + self.notifications + self.fired_actions + self.export_files
    }
}

/// What a change implies, committed in the change's own transaction: the devices it queues for
/// re-evaluation and the events it logs. A crash leaves either the change with all of these, or
/// none of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub enqueue: Vec<DeviceScope>,
    pub events: Vec<Event>,
    /// The caller evaluates the queued devices as soon as the change commits (a threat report,
    /// a check-in, an enrolment): the worker's ticks leave them to it for `CALLER_EVALUATES`,
    /// and take them only if it failed. `settle` takes them at once.
    pub caller_evaluates: bool,
}

/// How long the worker's ticks leave devices to the request that queued them to evaluate.
pub const CALLER_EVALUATES: std::time::Duration = std::time::Duration::from_millis(500);

impl Effects {
    pub fn none() -> Self {
        Effects::default()
    }

    pub fn enqueue(scope: DeviceScope) -> Self {
        Effects {
            enqueue: vec![scope],
            ..Effects::default()
        }
    }

    /// Queues the devices for the caller to evaluate at once (see `caller_evaluates`).
    pub fn evaluate_now(scope: DeviceScope) -> Self {
        Effects {
            enqueue: vec![scope],
            events: Vec::new(),
            caller_evaluates: true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.enqueue.is_empty() && self.events.is_empty()
    }
}

/// Which devices a change concerns.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceScope {
    All,
    /// Devices with these managed device ids.
    Devices(Vec<String>),
    /// Devices of these `platform` values.
    Platforms(Vec<String>),
    /// Devices with these Entra device ids (as groups name them), and devices whose primary
    /// user has one of these ids.
    Members(Vec<String>),
    /// Devices whose compliance falls due at or before this tenant time.
    Due(DateTime<Utc>),
}

/// Compliance policies, notification templates, the outbox and evaluation results.
#[async_trait]
pub trait ComplianceStore: Send + Sync + 'static {
    /// `Conflict` when the id is taken.
    async fn insert_policy(&self, policy: &StoredPolicy) -> Result<(), StoreError>;
    async fn get_policy(&self, tenant_id: &str, id: &str) -> Result<Option<StoredPolicy>, StoreError>;
    /// Oldest first.
    async fn list_policies(&self, tenant_id: &str) -> Result<Vec<StoredPolicy>, StoreError>;
    /// Stores the policy if its revision is still `policy.revision` (bumping it).
    async fn update_policy(&self, policy: &StoredPolicy, fx: &Effects) -> Result<bool, StoreError>;
    /// Also deletes the devices' states for it.
    async fn delete_policy(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError>;

    async fn insert_template(&self, template: &NotificationTemplate) -> Result<(), StoreError>;
    async fn get_template(&self, tenant_id: &str, id: &str) -> Result<Option<NotificationTemplate>, StoreError>;
    async fn list_templates(&self, tenant_id: &str) -> Result<Vec<NotificationTemplate>, StoreError>;
    /// Compare-and-set on the revision, like `update_policy`.
    async fn update_template(&self, template: &NotificationTemplate) -> Result<bool, StoreError>;
    async fn delete_template(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Appends a message to the tenant's outbox.
    async fn insert_notification(
        &self,
        tenant_id: &str,
        kind: &str,
        document: &Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The outbox, oldest first: (sequence number, document).
    async fn list_notifications(
        &self,
        tenant_id: &str,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<(i64, Value)>, StoreError>;

    /// Queues, as a change, the devices whose compliance falls due at or before `now` (time
    /// alone may change it). Changes nothing when none is due; answers whether any was.
    async fn queue_due(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// The inputs of the devices that exist among `ids`, with the actions already fired in
    /// their open episodes. The devices come without their `properties` (an empty map):
    /// evaluation reads none of them. Their groups, and their users', are read `with_groups`
    /// (empty otherwise).
    async fn evaluation_inputs(
        &self,
        tenant_id: &str,
        ids: &[String],
        with_groups: bool,
    ) -> Result<Vec<EvaluationInput>, StoreError>;
    /// Stores an evaluation of the devices `evaluated`, whose inputs were read at `version`
    /// (see `queue_version`), in one transaction. The evaluation is a device's to store while
    /// the device has a queue entry from a change at or below `version` (its lock held): then its
    /// `changes` are written, its events logged and its actions for noncompliance recorded (each
    /// once per episode, with its message and device change), and the entry taken off. Otherwise
    /// nothing of it is: a newer evaluation has stored, or will, or the device is gone.
    async fn store_compliance(
        &self,
        tenant_id: &str,
        version: i64,
        evaluated: &[String],
        changes: &[ComplianceChange],
        events: &[Event],
        actions: &[FiredAction],
    ) -> Result<StoredOutcome, StoreError>;
    /// The states of these devices (a page of them at most), by device then policy id.
    async fn policy_states_of_devices(
        &self,
        tenant_id: &str,
        device_ids: &[String],
    ) -> Result<Vec<PolicyStateRow>, StoreError>;
    /// How many devices are in each state of each policy: (policy id, state, count).
    async fn policy_state_counts(&self, tenant_id: &str) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Those of `group_ids` that have a device among their members.
    async fn groups_with_devices(&self, tenant_id: &str, group_ids: &[String]) -> Result<Vec<String>, StoreError>;
    /// The policy's states with their devices, in device id order.
    async fn policy_states_of_policy(
        &self,
        tenant_id: &str,
        policy_id: &str,
    ) -> Result<Vec<(PolicyStateRow, ManagedDevice)>, StoreError>;
}

/// Intune RBAC: the tenant's custom role definitions (built-in ones are static data, see
/// `domain::rbac`), role assignments, and the directory roles of users.
#[async_trait]
pub trait RbacStore: Send + Sync + 'static {
    /// `Conflict` when the id is taken.
    async fn insert_role_definition(&self, role: &RoleDefinition) -> Result<(), StoreError>;
    async fn get_role_definition(&self, tenant_id: &str, id: &str) -> Result<Option<RoleDefinition>, StoreError>;
    /// Oldest first.
    async fn list_role_definitions(&self, tenant_id: &str) -> Result<Vec<RoleDefinition>, StoreError>;
    /// Stores the role if its revision is still `role.revision` (bumping it).
    async fn update_role_definition(&self, role: &RoleDefinition) -> Result<bool, StoreError>;
    /// Deletes the role unless an assignment still names it: `Ok(None)` when it did not exist,
    /// `Ok(Some(false))` when assignments name it (nothing deleted), `Ok(Some(true))` when deleted.
    async fn delete_role_definition(&self, tenant_id: &str, id: &str) -> Result<Option<bool>, StoreError>;

    /// `Conflict` when the id is taken.
    async fn insert_role_assignment(&self, assignment: &RoleAssignment) -> Result<(), StoreError>;
    async fn get_role_assignment(&self, tenant_id: &str, id: &str) -> Result<Option<RoleAssignment>, StoreError>;
    /// Oldest first; only those of one role definition when `role_definition_id` is given.
    async fn list_role_assignments(
        &self,
        tenant_id: &str,
        role_definition_id: Option<&str>,
    ) -> Result<Vec<RoleAssignment>, StoreError>;
    /// Compare-and-set on the revision, like `update_role_definition`.
    async fn update_role_assignment(&self, assignment: &RoleAssignment) -> Result<bool, StoreError>;
    async fn delete_role_assignment(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Replaces the user's directory roles (template ids). False when the user does not exist.
    async fn set_directory_roles(
        &self,
        tenant_id: &str,
        user_id: &str,
        role_ids: &[String],
    ) -> Result<bool, StoreError>;
    /// The user's directory roles (template ids), sorted.
    async fn directory_roles(&self, tenant_id: &str, user_id: &str) -> Result<Vec<String>, StoreError>;
}

/// Opens the backend named by the URL's scheme (creating a SQLite file and its folder if needed),
/// stamping records with the system clock's wall time.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    let options = ConnectOptions {
        max_connections,
        ..ConnectOptions::default()
    };
    connect_with_clock(url, &options, Arc::new(crate::clock::SystemClock)).await
}

/// `connect` with these pool options, and the clock whose wall time stamps records (`wall_at`,
/// queue times).
pub async fn connect_with_clock(
    url: &str,
    options: &ConnectOptions,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(url, options.max_connections, clock).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url, options, clock).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// The database a URL names, for people: SQLite's file, or PostgreSQL's server, database and
/// user (never the password).
pub fn describe_url(url: &str) -> String {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let path = path.split('?').next().unwrap_or(path);
        return format!("SQLite file {path}");
    }
    match url.parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(options) => format!("PostgreSQL at {}", postgres::describe(&options)),
        Err(_) => "an unsupported database URL".to_string(),
    }
}

pub(crate) fn map_unique(err: sqlx::Error) -> StoreError {
    match err.as_database_error() {
        Some(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.constraint().unwrap_or("unique key").to_string())
        }
        _ => StoreError::Database(err),
    }
}

/// A device with a protected app that a threat report names by its Entra device id, when no
/// managed device has that id: one row per registration on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppReportTarget {
    pub azure_ad_device_id: String,
    pub platform: AppPlatform,
    pub user_id: String,
    pub app_id: String,
    /// `reportedDateTime` of the connector's stored report for the device.
    pub stored_at: Option<DateTime<Utc>>,
}

/// App protection: policies, registrations and the partners' reports for unenrolled devices.
#[async_trait]
pub trait AppProtectionStore: Send + Sync + 'static {
    async fn insert_app_policy(&self, policy: &AppProtectionPolicy) -> Result<(), StoreError>;
    async fn get_app_policy(&self, tenant_id: &str, id: &str) -> Result<Option<AppProtectionPolicy>, StoreError>;
    /// Oldest first.
    async fn list_app_policies(&self, tenant_id: &str) -> Result<Vec<AppProtectionPolicy>, StoreError>;
    /// Compare-and-set on `revision`; false when it moved (or the policy is gone).
    async fn update_app_policy(&self, policy: &AppProtectionPolicy) -> Result<bool, StoreError>;
    async fn delete_app_policy(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
    /// With its effects, in one transaction; false when the tenant does not exist. A second
    /// registration of the same user, device and app is a `Conflict`.
    async fn insert_app_registration(&self, registration: &AppRegistration, fx: &Effects) -> Result<bool, StoreError>;
    async fn get_app_registration(&self, tenant_id: &str, id: &str) -> Result<Option<AppRegistration>, StoreError>;
    /// The tenant's registrations (a user's, when given), oldest first.
    async fn list_app_registrations(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<AppRegistration>, StoreError>;
    /// Compare-and-set on `revision`, with its effects in the same transaction.
    async fn update_app_registration(&self, registration: &AppRegistration, fx: &Effects) -> Result<bool, StoreError>;
    async fn delete_app_registration(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError>;
    /// The registrations on the devices `keys` names by Entra device id that no managed device
    /// has, with the connector's stored report time for each device.
    async fn app_report_targets(
        &self,
        tenant_id: &str,
        connector_id: &str,
        keys: &[String],
    ) -> Result<Vec<AppReportTarget>, StoreError>;
    /// Stores accepted reports for unenrolled devices (`device_id` is the Entra device id): a
    /// newer stored one wins. None when the tenant does not exist.
    async fn store_app_reports(
        &self,
        tenant_id: &str,
        connector_id: &str,
        reports: &[Accepted],
    ) -> Result<Option<()>, StoreError>;
    /// Every connector's stored report for the device with this Entra device id: the managed
    /// device's when it is enrolled, else those for the unenrolled device.
    async fn app_device_reports(
        &self,
        tenant_id: &str,
        azure_ad_device_id: &str,
    ) -> Result<Vec<StoredReport>, StoreError>;
}

/// Report export jobs and their files.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    async fn insert_export_job(&self, job: &ExportJob) -> Result<(), StoreError>;
    async fn get_export_job(&self, tenant_id: &str, id: &str) -> Result<Option<ExportJob>, StoreError>;
    /// Oldest first.
    async fn list_export_jobs(&self, tenant_id: &str) -> Result<Vec<ExportJob>, StoreError>;
    /// The oldest job not started yet.
    async fn next_export_job(&self, tenant_id: &str) -> Result<Option<ExportJob>, StoreError>;
    /// Puts the jobs left in progress back to not started (their worker stopped: the tenant's
    /// lease is held by the caller); returns how many.
    async fn requeue_export_jobs(&self, tenant_id: &str) -> Result<u64, StoreError>;
    /// Moves the job from one status to another; false when it was not in `from`.
    async fn set_export_job_status(&self, tenant_id: &str, id: &str, from: &str, to: &str) -> Result<bool, StoreError>;
    /// Completes an in-progress job with its file; false when it was not in progress.
    async fn complete_export_job(&self, job: &ExportJob, content: &[u8]) -> Result<bool, StoreError>;
    /// A completed job's file.
    async fn export_job_file(&self, tenant_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Drops the files of the tenant's exports whose url expired before `now` (the jobs stay,
    /// as Graph lists them). Returns how many.
    async fn drop_expired_export_files(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Conditional Access policies (their Graph documents) and the sign-in log.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Oldest first.
    async fn list_ca_policies(&self, tenant_id: &str) -> Result<Vec<Value>, StoreError>;
    async fn insert_ca_policy(
        &self,
        tenant_id: &str,
        id: &str,
        document: &Value,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// False when the tenant has no such policy.
    async fn update_ca_policy(&self, tenant_id: &str, id: &str, document: &Value) -> Result<bool, StoreError>;
    async fn delete_ca_policy(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Appends a sign-in to the log, keeping the newest `keep` of the tenant's.
    async fn insert_sign_in(
        &self,
        tenant_id: &str,
        id: &str,
        created_at: DateTime<Utc>,
        document: &Value,
        keep: i64,
    ) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_sign_ins(&self, tenant_id: &str) -> Result<Vec<Value>, StoreError>;
}

/// Tables whose rows belong to a tenant, deleted on reset and delete, children before parents.
/// A new tenant-owned table is added here.
pub(crate) const TENANT_DATA_TABLES: &[&str] = &[
    "sign_ins",
    "ca_policies",
    "throttle_counts",
    "fault_counts",
    "report_export_jobs",
    "app_threat_reports",
    "app_registrations",
    "app_protection_policies",
    "events",
    "fired_actions",
    "reevaluation_queue",
    "role_assignments",
    "role_definitions",
    "user_directory_roles",
    "device_policy_states",
    "device_compliance",
    "notifications",
    "notification_templates",
    "compliance_policies",
    "threat_reports",
    "mtd_connectors",
    "device_apps",
    "group_members",
    "managed_devices",
    "groups",
    "users",
    "device_codes",
    "refresh_tokens",
    "authorization_codes",
    "sign_in_sessions",
];
