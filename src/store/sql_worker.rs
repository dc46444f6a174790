// `WorkerStore` for both backends; see sql_impl.rs.

async fn insert_events(
    conn: &mut <Db as sqlx::Database>::Connection,
    tenant_id: &str,
    events: &[Event],
    wall: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    // Seven parameters a row: 1,000 rows stay under both databases' parameter limits.
    for part in events.chunks(1000) {
        let mut b = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO events (tenant_id, kind, device_id, connector_id, document, virtual_at, wall_at) ",
        );
        b.push_values(part, |mut row, e| {
            let mut doc = e.document.clone();
            if let Some(m) = doc.as_object_mut() {
                m.insert("wallDateTime".into(), crate::domain::time::rfc3339(wall).into());
            }
            row.push_bind(tenant_id)
                .push_bind(e.kind.as_str())
                .push_bind(e.device_id.as_deref())
                .push_bind(e.connector_id.as_deref())
                .push_bind(sqlx::types::Json(doc))
                .push_bind(e.virtual_at)
                .push_bind(wall);
        });
        b.build().execute(&mut *conn).await?;
    }
    Ok(())
}

#[async_trait]
impl WorkerStore for StoreImpl {
    async fn queue_version(&self, tenant_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT queue_version FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?
            .unwrap_or(0))
    }

    async fn mark_queue_seen(&self, tenant_id: &str, version: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tenants SET queue_seen = $2 WHERE id = $1 AND queue_seen < $2")
            .bind(tenant_id)
            .bind(version)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn has_work(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // Two probes, written so that no plan can be a scan: the tenant row's queue versions,
        // and the tenant's earliest due time. (`compliance_due_at <= $2` let PostgreSQL's generic
        // plan scan the table, expecting a third of the rows to match: 49 ms at 100,000 devices;
        // probing the queue's index walked the entries deleted since the last vacuum: 33 ms
        // after a million.)
        let pending: Option<bool> = sqlx::query_scalar("SELECT queue_version > queue_seen FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?;
        if pending == Some(true) {
            return Ok(true);
        }
        let due: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT compliance_due_at FROM device_compliance WHERE tenant_id = $1 AND compliance_due_at IS NOT NULL \
             ORDER BY compliance_due_at LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        if due.is_some_and(|d| d <= now) {
            return Ok(true);
        }
        // Report export jobs waiting to run (or left running by a worker that stopped).
        let export: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM report_export_jobs WHERE tenant_id = $1 AND status IN ('notStarted', 'inProgress') LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(export.is_some())
    }

    async fn queued(
        &self,
        tenant_id: &str,
        version: i64,
        claimable: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT device_id FROM reevaluation_queue WHERE tenant_id = $1 AND device_id > $2 AND gen <= $4 \
             AND ($5 IS NULL OR enqueued_at <= $5) ORDER BY device_id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .bind(version)
        .bind(claimable)
        .fetch_all(self.reader())
        .await?)
    }

    async fn tenant_clocks(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, clock_offset_us FROM tenants ORDER BY id")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("clock_offset_us")?)))
            .collect()
    }

    async fn acquire_lease(
        &self,
        tenant_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE tenants SET worker_lease_owner = $2, worker_lease_until = $4 WHERE id = $1 \
             AND (worker_lease_owner IS NULL OR worker_lease_owner = $2 OR worker_lease_until < $3)",
        )
        .bind(tenant_id)
        .bind(owner)
        .bind(now)
        .bind(until)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn release_lease(&self, tenant_id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tenants SET worker_lease_owner = NULL, worker_lease_until = NULL \
             WHERE id = $1 AND worker_lease_owner = $2",
        )
        .bind(tenant_id)
        .bind(owner)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn list_events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, document FROM events WHERE tenant_id = $1 AND seq > $2 \
             AND ($3 IS NULL OR device_id = $3) AND ($4 IS NULL OR connector_id = $4) AND ($5 IS NULL OR kind = $5) \
             ORDER BY seq LIMIT $6",
        )
        .bind(tenant_id)
        .bind(after_seq)
        .bind(filter.device_id.as_deref())
        .bind(filter.connector_id.as_deref())
        .bind(filter.kind.as_deref())
        .bind(limit as i64)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                let doc: sqlx::types::Json<serde_json::Value> = r.try_get("document")?;
                Ok((r.try_get("seq")?, doc.0))
            })
            .collect()
    }

    async fn set_observed_state(
        &self,
        tenant_id: &str,
        connector_id: &str,
        state: &str,
        fx: &Effects,
    ) -> Result<(), StoreError> {
        change!(self, tenant_id, fx, |tx| {
            sqlx::query("UPDATE mtd_connectors SET observed_state = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(connector_id)
                .bind(state)
                .execute(&mut *tx)
                .await?;
        })?;
        Ok(())
    }

    async fn user_members_of(&self, tenant_id: &str, group_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT member_id FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_kind = 'user' \
             ORDER BY member_id",
        )
        .bind(tenant_id)
        .bind(group_id)
        .fetch_all(self.reader())
        .await?)
    }

    async fn observed_states(&self, tenant_id: &str) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = sqlx::query("SELECT id, observed_state FROM mtd_connectors WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("observed_state")?)))
            .collect()
    }

    async fn trim_logs(&self, tenant_id: &str, before: DateTime<Utc>, keep: u64) -> Result<Trimmed, StoreError> {
        let keep = keep.min(i64::MAX as u64) as i64;
        let mut tx = self.writer().begin().await?;
        let mut trimmed = Trimmed::default();
        // Events and messages are appended in the order of the tenant's clock: everything before
        // the first one young enough is old, and the walk stops there.
        for (table, at, count) in [
            ("events", "virtual_at", &mut trimmed.events),
            ("notifications", "created_at", &mut trimmed.notifications),
        ] {
            let by_age = format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND seq < COALESCE(\
                 (SELECT seq FROM {table} WHERE tenant_id = $1 AND {at} >= $2 ORDER BY seq LIMIT 1), \
                 (SELECT MAX(seq) + 1 FROM {table} WHERE tenant_id = $1))"
            );
            let by_count = format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND seq <= \
                 (SELECT seq FROM {table} WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)"
            );
            *count += sqlx::query(&by_age)
                .bind(tenant_id)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            *count += sqlx::query(&by_count)
                .bind(tenant_id)
                .bind(keep)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // A fired action's record keeps it from firing again while its episode is open (the
        // device's state for the policy still has that episode start): only closed episodes'
        // records go.
        const CLOSED: &str = "NOT EXISTS (SELECT 1 FROM device_policy_states s \
             WHERE s.tenant_id = fired_actions.tenant_id AND s.device_id = fired_actions.device_id \
             AND s.policy_id = fired_actions.policy_id AND s.episode_start = fired_actions.episode_start)";
        trimmed.fired_actions += sqlx::query(&format!(
            "DELETE FROM fired_actions WHERE tenant_id = $1 AND fired_at < $2 AND {CLOSED}"
        ))
        .bind(tenant_id)
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        trimmed.fired_actions += sqlx::query(&format!(
            "DELETE FROM fired_actions WHERE tenant_id = $1 AND {CLOSED} AND fired_at < \
             (SELECT fired_at FROM fired_actions WHERE tenant_id = $1 ORDER BY fired_at DESC LIMIT 1 OFFSET $2)"
        ))
        .bind(tenant_id)
        .bind(keep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(trimmed)
    }
}
