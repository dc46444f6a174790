//! The background worker (product brief 6): on each tick, for each tenant on its own clock, it
//! logs partner state changes, re-evaluates the devices queued by changes that reach many
//! devices, and those whose compliance time made due (grace deadlines, check-in thresholds,
//! partners turning unresponsive, actions for noncompliance). `settle` runs the same pass on
//! demand and returns when nothing is left.
//!
//! Several replicas may share one PostgreSQL database. A replica works a tenant only while it
//! holds the tenant's lease (a row update that succeeds for one owner at a time, renewed
//! between batches, expiring after `LEASE` if the replica dies), so one worker at a time
//! evaluates a tenant's queue. Each batch is stored in one transaction together with taking its
//! devices off the queue, so a replica killed mid-batch leaves the batch queued for the next
//! holder. Actions for noncompliance fire through a unique key per episode and action, inserted
//! in the transaction that writes their effects, so no action fires twice even when a request
//! and the worker evaluate the same device at once.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::clock::{tenant_now, Clock};
use crate::domain::mtd::partner_state;
use crate::domain::time::rfc3339;
use crate::service::compliance::{self, load_context, reevaluate_devices, Summary, BATCH};
use crate::service::Cause;
use crate::store::{Effects, Event, Store, StoreError, Trimmed};

/// How long a replica's hold on a tenant lasts without renewal.
const LEASE: StdDuration = StdDuration::from_secs(30);

/// What a pass over a tenant did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub compliance: Summary,
    pub partner_state_changes: u64,
    /// Report export jobs run to completion.
    pub exports_completed: u64,
}

impl PassSummary {
    pub fn add(&mut self, other: PassSummary) {
        self.compliance.add(other.compliance);
        self.partner_state_changes += other.partner_state_changes;
        self.exports_completed += other.exports_completed;
    }

    pub fn to_json(self, now: DateTime<Utc>) -> Value {
        json!({
            "now": rfc3339(now),
            "devicesEvaluated": self.compliance.evaluated,
            "complianceStateChanges": self.compliance.changed,
            "actionsFired": self.compliance.actions_fired,
            "partnerStateChanges": self.partner_state_changes,
            "exportJobsCompleted": self.exports_completed,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("another replica has been working the tenant for too long")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How much of each tenant's logs (events, sent messages, fired-action records) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this on the tenant's clock go.
    pub max_age: Duration,
    /// Each log keeps at most this many records per tenant.
    pub max_records: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::days(30),
            max_records: 100_000,
        }
    }
}

/// How often a replica's worker sweeps the tenants' logs (wall time); `settle` sweeps its
/// tenant every time.
const RETENTION_EVERY: StdDuration = StdDuration::from_secs(300);

#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// This replica's name in leases.
    owner: String,
    retention: Retention,
    /// When this replica's ticks last swept the logs.
    swept: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Worker {
            store,
            clock,
            owner: uuid::Uuid::new_v4().to_string(),
            retention: Retention::default(),
            swept: Arc::default(),
        }
    }

    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Drops what retention no longer keeps of the tenant's logs (see `WorkerStore::trim_logs`).
    async fn trim(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<Trimmed, StoreError> {
        let mut trimmed = self
            .store
            .trim_logs(tenant_id, now - self.retention.max_age, self.retention.max_records)
            .await?;
        // An expired export's url answers 403: its file is of no more use.
        trimmed.export_files = self.store.drop_expired_export_files(tenant_id, now).await?;
        if trimmed.total() > 0 {
            tracing::debug!(
                tenant = tenant_id,
                events = trimmed.events,
                notifications = trimmed.notifications,
                fired_actions = trimmed.fired_actions,
                export_files = trimmed.export_files,
                "retention dropped old records"
            );
        }
        Ok(trimmed)
    }

    /// Whether this tick sweeps the logs: once every `RETENTION_EVERY`.
    fn sweep_due(&self) -> bool {
        let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
        let due = swept.is_none_or(|at| at.elapsed() >= RETENTION_EVERY);
        if due {
            *swept = Some(std::time::Instant::now());
        }
        due
    }

    async fn lease(&self, tenant_id: &str) -> Result<bool, StoreError> {
        let wall = self.clock.wall_now();
        let until = wall + Duration::from_std(LEASE).unwrap_or(Duration::seconds(30));
        self.store.acquire_lease(tenant_id, &self.owner, wall, until).await
    }

    /// One tick: every tenant with something to do, that no other replica is working.
    pub async fn tick(&self) -> Result<PassSummary, StoreError> {
        let mut total = PassSummary::default();
        let sweep = self.sweep_due();
        for (tenant_id, offset) in self.store.tenant_clocks().await? {
            let now = tenant_now(self.clock.wall_now(), offset);
            if sweep {
                self.trim(&tenant_id, now).await?;
            }
            if !self.needs_pass(&tenant_id, now).await? || !self.lease(&tenant_id).await? {
                continue;
            }
            let cause = Cause::Worker(self.owner[..8].to_string());
            // A tick leaves devices to the requests evaluating them (Effects::caller_evaluates).
            let claimable = Some(self.clock.wall_now());
            let result = self.pass(&tenant_id, offset, &cause, claimable).await;
            self.store.release_lease(&tenant_id, &self.owner).await?;
            total.add(result?);
        }
        Ok(total)
    }

    /// Cheap checks first, so that an idle tick costs a few index probes per tenant.
    async fn needs_pass(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if self.store.has_work(tenant_id, now).await? {
            return Ok(true);
        }
        let observed = self.store.observed_states(tenant_id).await?;
        if observed.is_empty() {
            return Ok(false);
        }
        let connectors = self.store.list_connectors(tenant_id).await?;
        Ok(connectors.iter().any(|c| {
            let state = partner_state(&c.status(), now);
            !observed
                .iter()
                .any(|(id, seen)| *id == c.id && seen.as_deref() == Some(state))
        }))
    }

    /// Works the tenant (lease held) until its queue is empty and nothing is due.
    /// `claimable`: take only queue entries the worker may take by then (a tick); None takes
    /// every entry (`settle`).
    async fn pass(
        &self,
        tenant_id: &str,
        offset: i64,
        cause: &Cause,
        claimable: Option<DateTime<Utc>>,
    ) -> Result<PassSummary, StoreError> {
        let store = self.store.as_ref();
        let now = tenant_now(self.clock.wall_now(), offset);
        let mut summary = PassSummary::default();

        // Partner states: log each change once; a change of what counts re-evaluates.
        let observed = store.observed_states(tenant_id).await?;
        let cause_text = cause.describe();
        for c in store.list_connectors(tenant_id).await? {
            let state = partner_state(&c.status(), now);
            let seen = observed.iter().find(|(id, _)| *id == c.id).and_then(|(_, s)| s.clone());
            if seen.as_deref() == Some(state) {
                continue;
            }
            // The event, the state it logs and the devices whose evaluation it changes: one change.
            let event = Event {
                kind: "partnerStateChanged".into(),
                device_id: None,
                connector_id: Some(c.id.clone()),
                document: json!({
                    "kind": "partnerStateChanged",
                    "connectorId": c.id,
                    "from": seen,
                    "to": state,
                    "lastHeartbeatDateTime": c.last_heartbeat_at.map(rfc3339),
                    "virtualDateTime": rfc3339(now),
                    "cause": cause_text,
                }),
                virtual_at: now,
            };
            let fx = Effects {
                enqueue: compliance::connectors_scope(&[&c]).into_iter().collect(),
                events: vec![event],
                ..Effects::default()
            };
            store.set_observed_state(tenant_id, &c.id, state, &fx).await?;
            summary.partner_state_changes += 1;
        }

        // What time alone made due is queued as a change (evaluation moves each device's due
        // time past now). Changes up to ctx.version are in what is evaluated; later ones stay
        // queued for the next pass.
        store.queue_due(tenant_id, now).await?;
        let ctx = load_context(store, tenant_id, now).await?;
        let version = ctx.version;
        // The queue: every batch leaves it in the transaction that stores the batch's results.
        let mut rounds = 0u64;
        // Keyset through the queue, so that no scan walks the entries already taken off (until
        // vacuumed they cost as much as live ones); devices queued again meanwhile behind the
        // cursor are found by a next sweep.
        let mut cursor: Option<String> = None;
        loop {
            let ids = store
                .queued(tenant_id, version, claimable, cursor.as_deref(), 2 * BATCH)
                .await?;
            if ids.is_empty() {
                if cursor.is_none() {
                    // Drained: enqueues after `version` was read bumped it and show again. Entries
                    // left to their requests keep the queue marked until they are gone.
                    let held =
                        claimable.is_some() && !store.queued(tenant_id, version, None, None, 1).await?.is_empty();
                    if !held {
                        store.mark_queue_seen(tenant_id, version).await?;
                    }
                    break;
                }
                cursor = None;
                continue;
            }
            cursor = ids.last().cloned();
            summary
                .compliance
                .add(two_batches(store, &ctx, tenant_id, &ids, cause).await?);
            rounds += 1;
            // Devices queued again while being evaluated come back; renew the hold meanwhile.
            if rounds % 20 == 0 && !self.lease(tenant_id).await? {
                return Ok(summary);
            }
        }
        // Report exports, once compliance is up to date: each takes the data as it is now.
        summary.exports_completed = super::reports::run_pending(store, tenant_id, now).await?;
        Ok(summary)
    }

    /// Runs everything due or pending for the tenant now and returns when nothing is left.
    /// Waits (up to a minute) while another replica holds the tenant.
    pub async fn settle(
        &self,
        tenant_id: &str,
        offset: i64,
        cause: &Cause,
    ) -> Result<(PassSummary, DateTime<Utc>), SettleError> {
        let mut total = PassSummary::default();
        let mut waited = StdDuration::ZERO;
        loop {
            if !self.lease(tenant_id).await? {
                if waited > StdDuration::from_secs(60) {
                    return Err(SettleError::Busy);
                }
                tokio::time::sleep(StdDuration::from_millis(20)).await;
                waited += StdDuration::from_millis(20);
                continue;
            }
            let result = self.pass(tenant_id, offset, cause, None).await;
            self.store.release_lease(tenant_id, &self.owner).await?;
            let pass = result?;
            total.add(pass);
            let now = tenant_now(self.clock.wall_now(), offset);
            if (pass.compliance.evaluated == 0 && pass.partner_state_changes == 0)
                || !self.store.has_work(tenant_id, now).await?
            {
                self.trim(tenant_id, now).await?;
                return Ok((total, now));
            }
        }
    }
}

/// Evaluates up to two batches at once: they hold different devices, and while one waits on the
/// database the other computes (measured: 1.6 times the devices per second of one at a time on
/// 2 cores with PostgreSQL).
async fn two_batches(
    store: &dyn Store,
    ctx: &compliance::TenantContext,
    tenant_id: &str,
    ids: &[String],
    cause: &Cause,
) -> Result<Summary, StoreError> {
    let (a, b) = ids.split_at(ids.len().min(BATCH as usize));
    let (x, y) = tokio::try_join!(
        reevaluate_devices(store, ctx, tenant_id, a, cause),
        reevaluate_devices(store, ctx, tenant_id, b, cause)
    )?;
    let mut s = x.0;
    s.add(y.0);
    Ok(s)
}

/// Runs the worker every `tick` until `shutdown` turns true; the batch under way finishes first.
pub async fn run(worker: Worker, tick: StdDuration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pace = Pace::new(tick);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let started = std::time::Instant::now();
        let result = worker.tick().await;
        metrics::histogram!("worker_tick_duration_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(s) => {
                if let Some(failed) = pace.succeeded() {
                    tracing::info!(
                        failed_ticks = failed.ticks,
                        seconds = failed.since.elapsed().as_secs(),
                        "worker tick succeeded again"
                    );
                }
                if s.compliance.evaluated > 0 || s.partner_state_changes > 0 {
                    tracing::info!(
                        evaluated = s.compliance.evaluated,
                        changed = s.compliance.changed,
                        actions = s.compliance.actions_fired,
                        partner_states = s.partner_state_changes,
                        "worker tick"
                    );
                }
            }
            Err(e) => {
                let (delay, first) = pace.failed(if e.is_unavailable() { None } else { Some(e.to_string()) });
                if first {
                    tracing::error!(error = %e, retry_ms = delay.as_millis() as u64, "worker tick failed; retrying with backoff, logged once until it succeeds");
                } else {
                    tracing::debug!(error = %e, retry_ms = delay.as_millis() as u64, "worker tick failed again");
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay.saturating_sub(tick)) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
    }
    tracing::info!("worker stopped");
}

/// The longest the worker waits between failed ticks: it resumes within this of the database
/// coming back.
const MAX_BACKOFF: StdDuration = StdDuration::from_secs(5);

/// The worker's pace through failures: the wait between ticks doubles from the tick up to
/// [`MAX_BACKOFF`] while ticks fail, and a run of failures is logged once (again only if its
/// cause changes), and its end once.
#[derive(Debug)]
pub struct Pace {
    tick: StdDuration,
    failing: Option<Failing>,
}

/// A run of failed ticks.
#[derive(Debug, Clone)]
pub struct Failing {
    pub ticks: u32,
    pub since: std::time::Instant,
    /// `None` while the database does not answer (however it fails); else the error's text.
    cause: Option<String>,
}

impl Pace {
    pub fn new(tick: StdDuration) -> Self {
        Pace { tick, failing: None }
    }

    /// A tick failed with `cause` (`None`: the database did not answer). Returns the wait
    /// until the next tick, and whether to log this failure (the first of a run, or a new cause).
    pub fn failed(&mut self, cause: Option<String>) -> (StdDuration, bool) {
        let failing = self.failing.get_or_insert_with(|| Failing {
            ticks: 0,
            since: std::time::Instant::now(),
            cause: cause.clone(),
        });
        let log = failing.ticks == 0 || failing.cause != cause;
        failing.ticks += 1;
        failing.cause = cause;
        let factor = 1u32 << (failing.ticks - 1).min(16);
        (self.tick.saturating_mul(factor).min(MAX_BACKOFF.max(self.tick)), log)
    }

    /// A tick succeeded: the run of failures it ends, if any, to log once.
    pub fn succeeded(&mut self) -> Option<Failing> {
        self.failing.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: StdDuration = StdDuration::from_millis(1000);

    #[test]
    fn an_outage_is_logged_once_and_backs_off_to_the_cap() {
        let mut pace = Pace::new(TICK);
        let waits: Vec<(u128, bool)> = (0..6)
            .map(|_| pace.failed(None))
            .map(|(d, log)| (d.as_millis(), log))
            .collect();
        assert_eq!(
            waits,
            [
                (1000, true),
                (2000, false),
                (4000, false),
                (5000, false),
                (5000, false),
                (5000, false)
            ]
        );
        let run = pace.succeeded().expect("the outage ends");
        assert_eq!(run.ticks, 6);
        assert!(pace.succeeded().is_none(), "a recovery is reported once");
        assert_eq!(pace.failed(None), (TICK, true), "the next outage starts over");
    }

    #[test]
    fn a_new_cause_is_logged_again() {
        let mut pace = Pace::new(TICK);
        assert!(pace.failed(None).1);
        assert!(!pace.failed(None).1);
        assert!(pace.failed(Some("corrupt row".into())).1);
        assert!(!pace.failed(Some("corrupt row".into())).1);
        assert!(pace.failed(None).1);
    }

    #[test]
    fn a_tick_longer_than_the_cap_is_kept() {
        let mut pace = Pace::new(StdDuration::from_secs(60));
        assert_eq!(pace.failed(None).0, StdDuration::from_secs(60));
        assert_eq!(pace.failed(None).0, StdDuration::from_secs(60));
    }
}
