// The write path shared by both backends (see sql_impl.rs): every change runs in one
// transaction with its consequences, taking rows in one order, retried when the database breaks
// a deadlock.

/// A connection of the backend, a transaction's among them (`&mut *tx`).
type Conn = <Db as sqlx::Database>::Connection;

/// Joins the rows of `table` (as `alias`) that `cond` selects for each row on its left: a key
/// list (`k`) drives, and each key probes an index. PostgreSQL is told so with a lateral
/// subquery it cannot flatten (`OFFSET 0`): left to its statistics, which lag a table that just
/// grew, it hashed the tenant's whole table instead (measured: 360 ms for 500 keys in a tenant
/// of 8,000 devices, against a few ms). SQLite's `CROSS JOIN` keeps the left side outer.
fn per_key(table: &str, alias: &str, cond: &str) -> String {
    if DIALECT_NAME == "postgres" {
        format!("CROSS JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {cond} OFFSET 0) AS {alias}")
    } else {
        format!("CROSS JOIN {table} {alias} ON {cond}")
    }
}

/// How many times a transaction the database gave up to break a deadlock runs again.
const RETRIES: u32 = 5;

/// Whether the database gave up the transaction to break a deadlock (or a serialization
/// conflict): the whole transaction may run again.
fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

/// The tenant's change lock on PostgreSQL: a transaction-scoped advisory lock on the tenant id
/// (hashed; a collision only serialises two tenants). A change (`lock_tenant`) takes it
/// exclusively; partner ingest (`share_tenant`) shares it, so that batches of reports for
/// different devices run side by side while no change to the tenant's policies, connectors or
/// settings commits under them. Waiting exclusive requests queue ahead of later shared ones, so a
/// stream of ingest cannot starve a change. It is taken before any row.
async fn advisory_tenant_lock(
    tx: &mut sqlx::Transaction<'static, Db>,
    tenant_id: &str,
    shared: bool,
) -> Result<(), sqlx::Error> {
    let function = if shared {
        "pg_advisory_xact_lock_shared"
    } else {
        "pg_advisory_xact_lock"
    };
    sqlx::query(&format!("SELECT {function}({TENANT_LOCK_CLASS}, hashtext($1))"))
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The first key of the tenants' advisory locks (the second is the tenant id's hash).
const TENANT_LOCK_CLASS: i32 = 0x4d54_4445; // "MTDE"

/// Takes the tenant's change lock exclusively (see `advisory_tenant_lock`), then its row, and
/// returns the change's number in the tenant's order of changes; None when the tenant does not
/// exist. On SQLite, whose writer is one at a time, the row's update takes the write lock.
async fn lock_tenant(tx: &mut sqlx::Transaction<'static, Db>, tenant_id: &str) -> Result<Option<i64>, sqlx::Error> {
    if DIALECT_NAME == "postgres" {
        advisory_tenant_lock(tx, tenant_id, false).await?;
    }
    sqlx::query_scalar("UPDATE tenants SET queue_version = queue_version + 1 WHERE id = $1 RETURNING queue_version")
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
}

/// The number a transaction runs at in the tenant's order of changes (`change!`'s `$gen`).
trait ChangeNumber: Copy {
    fn number(self) -> i64;
}

/// A change's own number (`lock_tenant`).
impl ChangeNumber for i64 {
    fn number(self) -> i64 {
        self
    }
}

/// What a report batch sharing the change lock (`share_tenant`) reads of the tenant.
#[derive(Debug, Clone, Copy)]
struct SharedChange {
    /// The last change's number, which no other change passes until the batch ends.
    number: i64,
    /// Whether a worker pass found the queue empty of entries at or below `number`
    /// (`mark_queue_seen`). None can appear later: every entry carries the number of the change
    /// that made it, and the changes up to `number` had all committed when the pass read it. The
    /// batch then has no entry to take, and need not probe the queue for each device.
    queue_drained: bool,
}

impl ChangeNumber for SharedChange {
    fn number(self) -> i64 {
        self.number
    }
}

/// Shares the tenant's change lock (see `advisory_tenant_lock`) and reads the tenant's change
/// number and queue mark, in one statement; None when the tenant does not exist. The tenant row
/// itself is not locked. On SQLite a no-op update of the row takes the write lock, as
/// `lock_tenant` does.
async fn share_tenant(
    tx: &mut sqlx::Transaction<'static, Db>,
    tenant_id: &str,
) -> Result<Option<SharedChange>, sqlx::Error> {
    let sql = if DIALECT_NAME == "postgres" {
        advisory_tenant_lock(tx, tenant_id, true).await?;
        "SELECT queue_version, queue_seen >= queue_version FROM tenants WHERE id = $1"
    } else {
        "UPDATE tenants SET queue_version = queue_version WHERE id = $1 \
         RETURNING queue_version, queue_seen >= queue_version"
    };
    let row: Option<(i64, bool)> = sqlx::query_as(sql).bind(tenant_id).fetch_optional(&mut **tx).await?;
    Ok(row.map(|(number, queue_drained)| SharedChange { number, queue_drained }))
}

/// Takes the tenant's change lock exclusively without counting a change (a reset or deletion
/// of the whole tenant): no change or ingest runs beside it.
async fn exclude_changes(tx: &mut sqlx::Transaction<'static, Db>, tenant_id: &str) -> Result<(), sqlx::Error> {
    if DIALECT_NAME == "postgres" {
        advisory_tenant_lock(tx, tenant_id, false).await?;
    }
    Ok(())
}

/// Moves the tenant's cache version (what replicas cache of the tenant is stale from then on;
/// see `service::cache`) inside the write's transaction. It takes the tenant row first, as the
/// change lock does, so writes that lock the tenant row and other rows take them in one order.
async fn bump_cache_version(tx: &mut sqlx::Transaction<'static, Db>, tenant_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET cache_version = cache_version + 1 WHERE id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Locks the devices' rows in id order, so that transactions that lock several devices never
/// wait on each other in a cycle. SQLite has one writer at a time: nothing to lock there.
async fn lock_devices(
    tx: &mut sqlx::Transaction<'static, Db>,
    tenant_id: &str,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    if DIALECT_NAME != "postgres" || ids.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    // Each key locks its row as the sorted list is walked (`per_key`), so in id order too.
    for chunk in sorted.chunks(1000) {
        let sql = format!(
            "WITH k AS ({}) SELECT d.id FROM k {} ORDER BY d.id FOR NO KEY UPDATE OF d",
            values_list(2, chunk.len()),
            per_key("managed_devices", "d", "d.tenant_id = $1 AND d.id = k.column1")
        );
        let mut q = sqlx::query(&sql).bind(tenant_id);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Locks, in id order, the tenant's devices that `condition` (SQL over `managed_devices`, with
/// `$2` bound to `value`) selects; see `lock_devices`.
async fn lock_devices_where(
    tx: &mut sqlx::Transaction<'static, Db>,
    tenant_id: &str,
    condition: &str,
    value: &str,
) -> Result<(), sqlx::Error> {
    if DIALECT_NAME != "postgres" {
        return Ok(());
    }
    sqlx::query(&format!(
        "SELECT id FROM managed_devices WHERE tenant_id = $1 AND {condition} ORDER BY id FOR NO KEY UPDATE"
    ))
    .bind(tenant_id)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts the devices in scope on the re-evaluation queue, marked with the change's number. Rows
/// are taken in id order (see `lock_devices`).
async fn enqueue_in(
    tx: &mut sqlx::Transaction<'static, Db>,
    tenant_id: &str,
    scope: &DeviceScope,
    gen: i64,
    wall: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let (select, values): (String, &[String]) = match scope {
        DeviceScope::Due(at) => {
            let sql = "INSERT INTO reevaluation_queue (tenant_id, device_id, enqueued_at, gen) SELECT $1, device_id, $2, $3 \
                 FROM device_compliance WHERE tenant_id = $1 AND compliance_due_at <= $4 ORDER BY device_id \
                 ON CONFLICT (tenant_id, device_id) DO UPDATE SET enqueued_at = excluded.enqueued_at, gen = excluded.gen";
            let q = sqlx::query(sql).bind(tenant_id).bind(wall).bind(gen).bind(*at);
            return Ok(q.execute(&mut **tx).await?.rows_affected());
        }
        DeviceScope::All => ("SELECT d.id FROM managed_devices d WHERE d.tenant_id = $1".into(), &[]),
        DeviceScope::Platforms(p) | DeviceScope::Members(p) | DeviceScope::Devices(p) if p.is_empty() => return Ok(0),
        DeviceScope::Devices(ids) => (
            format!(
                "SELECT d.id FROM ({}) AS k CROSS JOIN managed_devices d WHERE d.tenant_id = $1 AND d.id = k.column1",
                values_list(4, ids.len())
            ),
            ids.as_slice(),
        ),
        DeviceScope::Platforms(p) => (
            format!(
                "SELECT d.id FROM ({}) AS k CROSS JOIN managed_devices d WHERE d.tenant_id = $1 \
                 AND d.platform = k.column1",
                values_list(4, p.len())
            ),
            p.as_slice(),
        ),
        DeviceScope::Members(m) => (
            format!(
                "SELECT d.id FROM ({list}) AS k CROSS JOIN managed_devices d WHERE d.tenant_id = $1 \
                 AND d.azure_ad_device_id = k.column1 UNION SELECT d.id FROM ({list}) AS k CROSS JOIN \
                 managed_devices d WHERE d.tenant_id = $1 AND d.user_id = k.column1",
                list = values_list(4, m.len())
            ),
            m.as_slice(),
        ),
    };
    let sql = format!(
        "INSERT INTO reevaluation_queue (tenant_id, device_id, enqueued_at, gen) SELECT $1, id, $2, $3 FROM ({select}) AS s \
         ORDER BY id ON CONFLICT (tenant_id, device_id) DO UPDATE SET enqueued_at = excluded.enqueued_at, gen = excluded.gen"
    );
    let mut q = sqlx::query(&sql).bind(tenant_id).bind(wall).bind(gen);
    for v in values {
        q = q.bind(v.as_str());
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// The change's consequences, in its transaction: the devices it queues and its events.
async fn apply_effects(
    tx: &mut sqlx::Transaction<'static, Db>,
    tenant_id: &str,
    gen: i64,
    fx: &Effects,
    wall: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // A queue entry's time is when the worker may take it.
    let claimable = if fx.caller_evaluates {
        wall + chrono::Duration::from_std(CALLER_EVALUATES).unwrap_or_default()
    } else {
        wall
    };
    for scope in &fx.enqueue {
        enqueue_in(tx, tenant_id, scope, gen, claimable).await?;
    }
    insert_events(tx, tenant_id, &fx.events, wall).await
}

/// Runs a change in one transaction: the tenant's change lock first (so that the changes of a
/// tenant take rows in one order: tenant, then devices by id, then queue entries by id), then
/// `$body`, then the change's effects `$fx`, then commit. `$body` evaluates to the change's
/// result; `return Ok(Some(x))` inside it rolls back and answers `x` (nothing changed, so no
/// effects). A transaction the database broke to end a deadlock runs again. The whole is
/// `Result<Option<T>, StoreError>`, None when the tenant does not exist.
/// `change!(@locked share_tenant, ...)` shares the change lock instead (partner ingest): `$gen`
/// is then a `SharedChange`, with the number of the last change, which no change passes before
/// this one commits.
macro_rules! change {
    (@locked $lock:ident, $self:expr, $tenant:expr, $fx:expr, |$tx:ident, $gen:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            let run = async {
                let mut $tx = $self.writer().begin().await?;
                let Some($gen) = $lock(&mut $tx, $tenant).await? else {
                    return Ok(None);
                };
                let out = $body;
                apply_effects(&mut $tx, $tenant, $gen.number(), $fx, $self.wall()).await?;
                $tx.commit().await?;
                Ok::<_, StoreError>(Some(out))
            };
            match run.await {
                Err(e) if is_retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "a change was rolled back by the database to break a deadlock; running it again");
                }
                other => break other,
            }
        }
    }};
    ($self:expr, $tenant:expr, $fx:expr, |$tx:ident| $body:block) => {
        change!($self, $tenant, $fx, |$tx, _gen| $body)
    };
    ($self:expr, $tenant:expr, $fx:expr, |$tx:ident, $gen:ident| $body:block) => {
        change!(@locked lock_tenant, $self, $tenant, $fx, |$tx, $gen| $body)
    };
}

/// `change!` for a write of one row: `$body` evaluates to the rows it affected; the change
/// commits (with its effects) and answers true when that is 1, else rolls back and answers false.
macro_rules! change_one {
    ($self:expr, $tenant:expr, $fx:expr, |$tx:ident| $body:block) => {
        change!($self, $tenant, $fx, |$tx| {
            let affected: u64 = $body;
            if affected != 1 {
                return Ok(Some(false));
            }
            true
        })
        .map(|done| done == Some(true))
    };
}
