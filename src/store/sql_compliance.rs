// `ComplianceStore` for both backends; see sql_impl.rs.

const POLICY_COLUMNS: &str = "tenant_id, id, odata_type, properties, scheduled_actions, assignments, version, \
     created_at, last_modified_at, revision";

fn policy_from_row(row: &<Db as sqlx::Database>::Row) -> Result<StoredPolicy, StoreError> {
    let odata_type: String = row.try_get("odata_type")?;
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    let actions: sqlx::types::Json<Vec<crate::domain::policy::ScheduledActionRule>> =
        row.try_get("scheduled_actions")?;
    let assignments: sqlx::types::Json<Vec<crate::domain::policy::Assignment>> = row.try_get("assignments")?;
    Ok(StoredPolicy {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        family: PolicyFamily::from_odata_type(&odata_type)
            .ok_or_else(|| StoreError::Corrupt(format!("policy type '{odata_type}'")))?,
        properties: properties.0,
        scheduled_actions: actions.0,
        assignments: assignments.0,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        last_modified_at: row.try_get("last_modified_at")?,
        revision: row.try_get("revision")?,
    })
}

const TEMPLATE_COLUMNS: &str = "tenant_id, id, properties, messages, created_at, last_modified_at, revision";

fn template_from_row(row: &<Db as sqlx::Database>::Row) -> Result<NotificationTemplate, StoreError> {
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    let messages: sqlx::types::Json<Vec<crate::domain::policy::LocalizedMessage>> = row.try_get("messages")?;
    Ok(NotificationTemplate {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        properties: properties.0,
        messages: messages.0,
        created_at: row.try_get("created_at")?,
        last_modified_at: row.try_get("last_modified_at")?,
        revision: row.try_get("revision")?,
    })
}

const STATE_COLUMNS: &str =
    "device_id, policy_id, state, settings, episode_start, grace_deadline, policy_version, evaluated_at";

fn state_from_row(row: &<Db as sqlx::Database>::Row) -> Result<PolicyStateRow, StoreError> {
    let settings: sqlx::types::Json<serde_json::Value> = row.try_get("settings")?;
    Ok(PolicyStateRow {
        device_id: row.try_get("device_id")?,
        policy_id: row.try_get("policy_id")?,
        state: row.try_get("state")?,
        settings: settings.0,
        episode_start: row.try_get("episode_start")?,
        grace_deadline: row.try_get("grace_deadline")?,
        policy_version: row.try_get("policy_version")?,
        evaluated_at: row.try_get("evaluated_at")?,
    })
}

/// `sql` with the tenant id as `$1` and `ids` from `$2`.
fn bind_ids<'q>(sql: &'q str, tenant_id: &'q str, ids: &'q [String]) -> Query<'q> {
    let mut q = sqlx::query(sql).bind(tenant_id);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q
}

/// `bind_ids`, or the bounds of `range` (`$2`, `$3`) when the rows are read by range.
fn bind_devices<'q>(sql: &'q str, tenant_id: &'q str, ids: &'q [String], range: Option<&'q IdRange>) -> Query<'q> {
    match range {
        Some(r) => sqlx::query(sql)
            .bind(tenant_id)
            .bind(r.low.as_str())
            .bind(r.high.as_str()),
        None => bind_ids(sql, tenant_id, ids),
    }
}

#[async_trait]
impl ComplianceStore for StoreImpl {
    async fn insert_policy(&self, p: &StoredPolicy) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO compliance_policies ({POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&p.tenant_id)
        .bind(&p.id)
        .bind(p.family.odata_type())
        .bind(sqlx::types::Json(&p.properties))
        .bind(sqlx::types::Json(&p.scheduled_actions))
        .bind(sqlx::types::Json(&p.assignments))
        .bind(p.version)
        .bind(p.created_at)
        .bind(p.last_modified_at)
        .bind(p.revision)
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn get_policy(&self, tenant_id: &str, id: &str) -> Result<Option<StoredPolicy>, StoreError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM compliance_policies WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| policy_from_row(&r)).transpose()
    }

    async fn list_policies(&self, tenant_id: &str) -> Result<Vec<StoredPolicy>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        list_policies_in(&mut conn, tenant_id).await
    }

    async fn update_policy(&self, p: &StoredPolicy, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, &p.tenant_id, fx, |tx| {
            let updated = sqlx::query(
            "UPDATE compliance_policies SET properties = $3, scheduled_actions = $4, assignments = $5, version = $6, \
             last_modified_at = $7, revision = revision + 1 WHERE tenant_id = $1 AND id = $2 AND revision = $8",
        )
        .bind(&p.tenant_id)
        .bind(&p.id)
        .bind(sqlx::types::Json(&p.properties))
        .bind(sqlx::types::Json(&p.scheduled_actions))
        .bind(sqlx::types::Json(&p.assignments))
        .bind(p.version)
        .bind(p.last_modified_at)
        .bind(p.revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
            updated
        })
    }

    async fn delete_policy(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, tenant_id, fx, |tx| {
            // The queue entries of the states' devices first, in id order, as evaluations take
            // them before they write states. (The tenant's change lock keeps other changes from
            // adding entries meanwhile.)
            if DIALECT_NAME == "postgres" {
                sqlx::query(
                    "SELECT device_id FROM reevaluation_queue WHERE tenant_id = $1 AND device_id IN \
                     (SELECT device_id FROM device_policy_states WHERE tenant_id = $1 AND policy_id = $2) \
                     ORDER BY device_id FOR UPDATE",
                )
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM device_policy_states WHERE tenant_id = $1 AND policy_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM compliance_policies WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            deleted
        })
    }

    async fn insert_template(&self, t: &NotificationTemplate) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO notification_templates ({TEMPLATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&t.tenant_id)
        .bind(&t.id)
        .bind(sqlx::types::Json(&t.properties))
        .bind(sqlx::types::Json(&t.messages))
        .bind(t.created_at)
        .bind(t.last_modified_at)
        .bind(t.revision)
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn get_template(&self, tenant_id: &str, id: &str) -> Result<Option<NotificationTemplate>, StoreError> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM notification_templates WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| template_from_row(&r)).transpose()
    }

    async fn list_templates(&self, tenant_id: &str) -> Result<Vec<NotificationTemplate>, StoreError> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM notification_templates WHERE tenant_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(self.reader()).await?;
        rows.iter().map(template_from_row).collect()
    }

    async fn update_template(&self, t: &NotificationTemplate) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE notification_templates SET properties = $3, messages = $4, last_modified_at = $5, \
             revision = revision + 1 WHERE tenant_id = $1 AND id = $2 AND revision = $6",
        )
        .bind(&t.tenant_id)
        .bind(&t.id)
        .bind(sqlx::types::Json(&t.properties))
        .bind(sqlx::types::Json(&t.messages))
        .bind(t.last_modified_at)
        .bind(t.revision)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn delete_template(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM notification_templates WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn insert_notification(
        &self,
        tenant_id: &str,
        kind: &str,
        document: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = document
            .get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        sqlx::query(
            "INSERT INTO notifications (tenant_id, id, kind, document, created_at, wall_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(kind)
        .bind(sqlx::types::Json(document))
        .bind(at)
        .bind(self.wall())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn list_notifications(
        &self,
        tenant_id: &str,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, document FROM notifications WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after_seq)
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

    async fn queue_due(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // The earliest due time first (an index probe): most passes find nothing due.
        let earliest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT compliance_due_at FROM device_compliance WHERE tenant_id = $1 AND compliance_due_at IS NOT NULL \
             ORDER BY compliance_due_at LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        if earliest.is_none_or(|d| d > now) {
            return Ok(false);
        }
        let fx = Effects::enqueue(DeviceScope::Due(now));
        Ok(change!(self, tenant_id, &fx, |_tx| {})?.is_some())
    }

    async fn evaluation_inputs(
        &self,
        tenant_id: &str,
        ids: &[String],
        with_groups: bool,
    ) -> Result<Vec<EvaluationInput>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        evaluation_inputs_in(&mut conn, tenant_id, ids, with_groups).await
    }

    async fn store_compliance(
        &self,
        tenant_id: &str,
        version: i64,
        evaluated: &[String],
        changes: &[ComplianceChange],
        events: &[Event],
        actions: &[FiredAction],
    ) -> Result<StoredOutcome, StoreError> {
        if evaluated.is_empty() {
            return Ok(StoredOutcome::default());
        }
        let mut attempt = 0u32;
        loop {
            match store_compliance_once(self, tenant_id, version, evaluated, changes, events, actions).await {
                Err(e) if is_retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "an evaluation batch was rolled back by the database to break a deadlock; running it again");
                }
                other => return other,
            }
        }
    }

    async fn groups_with_devices(&self, tenant_id: &str, group_ids: &[String]) -> Result<Vec<String>, StoreError> {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = values_list(2, group_ids.len());
        let sql = format!(
            "WITH k AS ({list}) SELECT DISTINCT g.group_id FROM k JOIN group_members g ON g.tenant_id = $1 \
             AND g.group_id = k.column1 WHERE g.member_kind = 'device' ORDER BY g.group_id"
        );
        let mut q = sqlx::query_scalar(&sql).bind(tenant_id);
        for g in group_ids {
            q = q.bind(g.as_str());
        }
        Ok(q.fetch_all(self.reader()).await?)
    }

    async fn policy_states_of_devices(
        &self,
        tenant_id: &str,
        device_ids: &[String],
    ) -> Result<Vec<PolicyStateRow>, StoreError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = values_list(2, device_ids.len());
        let sql = format!(
            "WITH k AS ({list}) SELECT {STATE_COLUMNS} FROM device_policy_states WHERE tenant_id = $1 \
             AND device_id IN (SELECT column1 FROM k) ORDER BY device_id, policy_id"
        );
        let mut q = sqlx::query(&sql).bind(tenant_id);
        for id in device_ids {
            q = q.bind(id.as_str());
        }
        let rows = q.fetch_all(self.reader()).await?;
        rows.iter().map(state_from_row).collect()
    }

    async fn policy_state_counts(&self, tenant_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT policy_id, state, COUNT(*) FROM device_policy_states WHERE tenant_id = $1 \
             GROUP BY policy_id, state ORDER BY policy_id, state",
        )
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?)
    }

    async fn policy_states_of_policy(
        &self,
        tenant_id: &str,
        policy_id: &str,
    ) -> Result<Vec<(PolicyStateRow, ManagedDevice)>, StoreError> {
        let state_columns: Vec<String> = STATE_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect();
        let sql = format!(
            "SELECT {}, {} FROM device_policy_states s JOIN device_view d ON d.tenant_id = s.tenant_id \
             AND d.id = s.device_id WHERE s.tenant_id = $1 AND s.policy_id = $2 ORDER BY s.device_id",
            state_columns.join(", "),
            device_columns_of_d()
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(policy_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((state_from_row(r)?, device_from_row(r)?)))
            .collect()
    }
}

/// Rows handed to one statement as one JSON parameter (`$param`, an array of objects), as a
/// table `k` with these columns (name, PostgreSQL type): `jsonb_to_recordset` on PostgreSQL,
/// `json_each` on SQLite. One round trip carries thousands of rows, under no parameter limit.
fn json_rows(param: usize, columns: &[(&str, &str)]) -> String {
    if DIALECT_NAME == "postgres" {
        let typed: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
        format!("jsonb_to_recordset(${param}::jsonb) AS k({})", typed.join(", "))
    } else {
        let picked: Vec<String> = columns
            .iter()
            .map(|(n, _)| format!("json_extract(value, '$.{n}') AS {n}"))
            .collect();
        format!("(SELECT {} FROM json_each(${param})) AS k", picked.join(", "))
    }
}

/// A time in JSON text, to the value sqlx would bind: SQLite keeps the text as sqlx writes it;
/// PostgreSQL keeps microseconds, which sqlx truncates to (the database would round).
fn json_time(t: Option<DateTime<Utc>>) -> serde_json::Value {
    use chrono::SubsecRound as _;
    t.map_or(serde_json::Value::Null, |t| {
        let t = if DIALECT_NAME == "postgres" {
            t.trunc_subsecs(6)
        } else {
            t
        };
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false).into()
    })
}

/// One attempt of `store_compliance`: the devices that device actions change locked in id
/// order, then the queue entries in id order (the order every change takes them); the changes of
/// the devices whose entries this evaluation covers written in bulk, those entries taken off, and
/// the events and actions of those devices recorded, all in one transaction.
async fn store_compliance_once(
    store: &StoreImpl,
    tenant_id: &str,
    version: i64,
    evaluated: &[String],
    changes: &[ComplianceChange],
    events: &[Event],
    actions: &[FiredAction],
) -> Result<StoredOutcome, StoreError> {
    use std::collections::HashSet;
    let mut tx = store.writer().begin().await?;
    let acted: Vec<String> = actions
        .iter()
        .filter(|a| a.device_action.is_some())
        .map(|a| a.device_id.clone())
        .collect();
    lock_devices(&mut tx, tenant_id, &acted).await?;

    let mut ids: Vec<&str> = evaluated.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    // The devices this evaluation stores: those queued by a change it saw. Their entries' locks
    // are held to the end, so no other evaluation stores them meanwhile.
    let mut owned: HashSet<String> = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(2000) {
        // Taken off the queue as they are found, locked in id order.
        let sql = claim_sql(&values_list(3, chunk.len()), true);
        let mut q = sqlx::query_scalar::<Db, String>(&sql).bind(tenant_id).bind(version);
        for id in chunk {
            q = q.bind(*id);
        }
        owned.extend(q.fetch_all(&mut *tx).await?);
    }
    if owned.is_empty() {
        tx.commit().await?;
        return Ok(StoredOutcome::default());
    }
    let outcome = write_results(&mut tx, tenant_id, &owned, changes, events, actions, store.wall()).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Writes an evaluation's results for the devices in `owned` (whose queue entries or change
/// lock the transaction holds): changed verdicts and policy states, events, and the actions
/// for noncompliance (each once per episode, with its message and device change).
async fn write_results(
    tx: &mut Conn,
    tenant_id: &str,
    owned: &std::collections::HashSet<String>,
    changes: &[ComplianceChange],
    events: &[Event],
    actions: &[FiredAction],
    wall: DateTime<Utc>,
) -> Result<StoredOutcome, StoreError> {
    use std::collections::HashSet;
    let mut rows = 0u64;

    // Verdicts that changed: on PostgreSQL one statement for thousands; SQLite (in process, no
    // round trips) updates each by its key, which its planner does not do for a join with
    // `json_each`.
    let verdicts: Vec<(&str, &VerdictRow)> = changes
        .iter()
        .filter(|c| owned.contains(&c.device_id))
        .filter_map(|c| c.verdict.as_ref().map(|v| (c.device_id.as_str(), v)))
        .collect();
    if DIALECT_NAME == "postgres" {
        for part in verdicts.chunks(5000) {
            let json: Vec<serde_json::Value> = part
                .iter()
                .map(|(id, v)| {
                    serde_json::json!({
                        "device_id": id, "state": v.state, "grace": json_time(v.grace_expires_at),
                        "due": json_time(v.due_at), "partner": v.partner_threat_state,
                    })
                })
                .collect();
            // The rows are found by their keys as one array (an index scan on the primary key):
            // joined to `k` alone, a plan from statistics older than the tenant's devices hashed
            // every verdict of the tenant for each batch (measured: 11 ms a batch of 500 at
            // 20,000 devices, growing with the tenant).
            let sql = format!(
                "WITH k AS (SELECT * FROM {}) UPDATE device_compliance SET compliance_state = k.state, \
                 compliance_grace_expires_at = k.grace, compliance_due_at = k.due, partner_threat_state = k.partner \
                 FROM k WHERE device_compliance.tenant_id = $1 \
                 AND device_compliance.device_id = ANY(ARRAY(SELECT device_id FROM k)) \
                 AND device_compliance.device_id = k.device_id",
                json_rows(
                    2,
                    &[
                        ("device_id", "text"),
                        ("state", "text"),
                        ("grace", "timestamptz"),
                        ("due", "timestamptz"),
                        ("partner", "text")
                    ]
                )
            );
            rows += sqlx::query(&sql)
                .bind(tenant_id)
                .bind(serde_json::Value::Array(json).to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
    } else {
        for (id, v) in &verdicts {
            rows += sqlx::query(
                "UPDATE device_compliance SET compliance_state = $3, compliance_grace_expires_at = $4, \
                 compliance_due_at = $5, partner_threat_state = $6 WHERE tenant_id = $1 AND device_id = $2",
            )
            .bind(tenant_id)
            .bind(*id)
            .bind(v.state.as_str())
            .bind(v.grace_expires_at)
            .bind(v.due_at)
            .bind(v.partner_threat_state.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
    }

    // Policy states that went (their policy is gone), then those new or changed.
    let gone: Vec<serde_json::Value> = changes
        .iter()
        .filter(|c| owned.contains(&c.device_id))
        .flat_map(|c| {
            c.delete
                .iter()
                .map(|p| serde_json::json!({"device_id": c.device_id, "policy_id": p}))
        })
        .collect();
    for part in gone.chunks(5000) {
        let sql = format!(
            "DELETE FROM device_policy_states WHERE tenant_id = $1 AND (device_id, policy_id) IN \
             (SELECT k.device_id, k.policy_id FROM {})",
            json_rows(2, &[("device_id", "text"), ("policy_id", "text")])
        );
        rows += sqlx::query(&sql)
            .bind(tenant_id)
            .bind(serde_json::Value::Array(part.to_vec()).to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    let states: Vec<serde_json::Value> = changes
        .iter()
        .filter(|c| owned.contains(&c.device_id))
        .flat_map(|c| &c.upsert)
        .map(|s| {
            serde_json::json!({
                "device_id": s.device_id, "policy_id": s.policy_id, "state": s.state,
                "settings": s.settings.to_string(), "episode_start": json_time(s.episode_start),
                "grace_deadline": json_time(s.grace_deadline), "policy_version": s.policy_version,
                "evaluated_at": json_time(Some(s.evaluated_at)),
            })
        })
        .collect();
    let settings = if DIALECT_NAME == "postgres" {
        "k.settings::jsonb"
    } else {
        "k.settings"
    };
    // (`WHERE true`: without it SQLite reads the `ON` of `ON CONFLICT` as a join's.)
    for part in states.chunks(5000) {
        let sql = format!(
            "INSERT INTO device_policy_states (tenant_id, {STATE_COLUMNS}) SELECT $1, k.device_id, k.policy_id, \
             k.state, {settings}, k.episode_start, k.grace_deadline, k.policy_version, k.evaluated_at FROM {} \
             WHERE true ON CONFLICT (tenant_id, device_id, policy_id) DO UPDATE SET state = excluded.state, \
             settings = excluded.settings, episode_start = excluded.episode_start, \
             grace_deadline = excluded.grace_deadline, policy_version = excluded.policy_version, \
             evaluated_at = excluded.evaluated_at",
            json_rows(
                2,
                &[
                    ("device_id", "text"),
                    ("policy_id", "text"),
                    ("state", "text"),
                    ("settings", "text"),
                    ("episode_start", "timestamptz"),
                    ("grace_deadline", "timestamptz"),
                    ("policy_version", "bigint"),
                    ("evaluated_at", "timestamptz"),
                ]
            )
        );
        rows += sqlx::query(&sql)
            .bind(tenant_id)
            .bind(serde_json::Value::Array(part.to_vec()).to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }

    let written = owned;

    let mut log: Vec<Event> = events
        .iter()
        .filter(|e| e.device_id.as_ref().is_none_or(|d| written.contains(d)))
        .cloned()
        .collect();
    let changed = log.len() as u64;

    // Actions of the stored verdicts: each fires once per episode (the key), with its message,
    // its device change and its event.
    let due: Vec<&FiredAction> = actions.iter().filter(|a| written.contains(&a.device_id)).collect();
    let mut fired: Vec<&FiredAction> = Vec::new();
    for part in due.chunks(500) {
        let mut b = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO fired_actions (tenant_id, device_id, policy_id, episode_start, action_id, fired_at) ",
        );
        b.push_values(part, |mut row, a| {
            row.push_bind(tenant_id)
                .push_bind(a.device_id.as_str())
                .push_bind(a.policy_id.as_str())
                .push_bind(a.episode_start)
                .push_bind(a.action_id.as_str())
                .push_bind(a.fired_at);
        });
        b.push(" ON CONFLICT DO NOTHING RETURNING device_id, policy_id, action_id");
        let rows = b.build().fetch_all(&mut *tx).await?;
        let mut keys: HashSet<(String, String, String)> = HashSet::with_capacity(rows.len());
        for r in &rows {
            keys.insert((
                r.try_get("device_id")?,
                r.try_get("policy_id")?,
                r.try_get("action_id")?,
            ));
        }
        // One episode per device and policy in a batch: the three ids name the action.
        fired.extend(
            part.iter()
                .filter(|a| keys.contains(&(a.device_id.clone(), a.policy_id.clone(), a.action_id.clone()))),
        );
    }
    let messages: Vec<(&FiredAction, &String, &serde_json::Value)> = fired
        .iter()
        .filter_map(|a| a.message.as_ref().map(|(kind, doc)| (*a, kind, doc)))
        .collect();
    for part in messages.chunks(500) {
        let mut b = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO notifications (tenant_id, id, kind, document, created_at, wall_at) ",
        );
        b.push_values(part, |mut row, (a, kind, doc)| {
            row.push_bind(tenant_id)
                .push_bind(
                    doc.get("id")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
                .push_bind(kind.as_str())
                .push_bind(sqlx::types::Json(*doc))
                .push_bind(a.fired_at)
                .push_bind(wall);
        });
        b.build().execute(&mut *tx).await?;
    }
    for a in &fired {
        let Some((name, management_state)) = &a.device_action else {
            continue;
        };
        // Applied to the row as it is now (locked above): another action or a change of the
        // device keeps what it wrote.
        let row = sqlx::query(
            "UPDATE managed_devices SET management_state = COALESCE($3, management_state) \
             WHERE tenant_id = $1 AND id = $2 RETURNING properties",
        )
        .bind(tenant_id)
        .bind(&a.device_id)
        .bind(management_state.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let mut props: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
            crate::domain::device::record_pending_action(&mut props.0, name, a.fired_at);
            sqlx::query("UPDATE managed_devices SET properties = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(&a.device_id)
                .bind(props)
                .execute(&mut *tx)
                .await?;
        }
    }
    log.extend(fired.iter().map(|a| a.event.clone()));
    insert_events(tx, tenant_id, &log, wall).await?;
    Ok(StoredOutcome {
        written: written.len() as u64,
        changed,
        actions_fired: fired.len() as u64,
        rows,
    })
}

// The id list drives each query (`per_key`; on SQLite, without it the planner scanned the
// tenant's reports or memberships and probed the list instead: measured 220 ms a batch of 500
// at 20,000 reports, against 1 ms).
async fn evaluation_inputs_in(
    conn: &mut Conn,
    tenant_id: &str,
    ids: &[String],
    with_groups: bool,
) -> Result<Vec<EvaluationInput>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(2000) {
        let (devices, range) = match devices_by_range(conn, tenant_id, chunk).await? {
            Some((devices, range)) => (devices, Some(range)),
            None => (devices_by_key(conn, tenant_id, chunk).await?, None),
        };
        out.extend(complete_inputs(conn, tenant_id, devices, with_groups, range.as_ref()).await?);
    }
    Ok(out)
}

/// The devices `ids` names, each found by its key (`per_key`), with their due times.
async fn devices_by_key(
    conn: &mut Conn,
    tenant_id: &str,
    ids: &[String],
) -> Result<Vec<(ManagedDevice, Option<DateTime<Utc>>)>, StoreError> {
    let sql = format!(
        "WITH k AS ({}) SELECT {}, d.compliance_due_at FROM k {}",
        values_list(2, ids.len()),
        evaluated_columns_of_d(DEVICE_COLUMNS),
        per_key("device_view", "d", "d.tenant_id = $1 AND d.id = k.column1")
    );
    let rows = bind_ids(&sql, tenant_id, ids).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| Ok((device_from_row(r)?, r.try_get("compliance_due_at")?)))
        .collect()
}

/// The ids between two bounds (inclusive) that hold a batch's devices and their rows.
#[derive(Debug, Clone)]
struct IdRange {
    low: String,
    high: String,
}

/// On PostgreSQL, the devices `ids` names read as one range of the tenant's ids, when they are
/// most of it (a queue swept in id order, as a full re-evaluation's): one index descent and a
/// walk along the leaves, where a probe per key descends the index for each device. The bounds
/// hold on both sides of the view's join (`verdict_device_id`), so that both are walked by
/// range (a merge join). Measured on 200,000 devices, 2,000 of them: the devices 10 ms against
/// 26 ms by key, their policy states 1.4 ms against 6.3 ms. None when the range holds more than
/// twice as many devices (the batch is sparse), or when a device of the batch is found only by
/// its key (the database orders ids otherwise than bytes do): the caller probes by key then.
async fn devices_by_range(
    conn: &mut Conn,
    tenant_id: &str,
    ids: &[String],
) -> Result<Option<(Vec<(ManagedDevice, Option<DateTime<Utc>>)>, IdRange)>, StoreError> {
    use std::collections::HashSet;
    if DIALECT_NAME != "postgres" || ids.len() < 2 {
        return Ok(None);
    }
    let (Some(low), Some(high)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(None);
    };
    let cap = 2 * ids.len();
    let sql = format!(
        "SELECT {}, d.compliance_due_at FROM device_view d WHERE d.tenant_id = $1 AND d.id >= $2 \
         AND d.id <= $3 AND d.verdict_device_id >= $2 AND d.verdict_device_id <= $3 ORDER BY d.id LIMIT $4",
        evaluated_columns_of_d(DEVICE_COLUMNS)
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(low.as_str())
        .bind(high.as_str())
        .bind((cap + 1) as i64)
        .fetch_all(&mut *conn)
        .await?;
    if rows.len() > cap {
        return Ok(None);
    }
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut devices = Vec::with_capacity(ids.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        if wanted.contains(id.as_str()) {
            devices.push((device_from_row(r)?, r.try_get("compliance_due_at")?));
        }
    }
    if devices.len() < wanted.len() {
        // Devices gone since they were queued, or outside the range as the database orders ids.
        let found: HashSet<&str> = devices.iter().map(|(d, _)| d.id.as_str()).collect();
        let missing: Vec<String> = ids.iter().filter(|id| !found.contains(id.as_str())).cloned().collect();
        if !devices_by_key(conn, tenant_id, &missing).await?.is_empty() {
            return Ok(None);
        }
    }
    let range = IdRange {
        low: low.clone(),
        high: high.clone(),
    };
    Ok(Some((devices, range)))
}

/// The stored verdicts (with due times and partner threat states) of the devices `ids` names.
async fn verdicts_in(
    conn: &mut Conn,
    tenant_id: &str,
    ids: &[String],
) -> Result<std::collections::HashMap<String, VerdictRow>, StoreError> {
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(2000) {
        let sql = format!(
            "WITH k AS ({}) SELECT c.device_id, c.compliance_state, c.compliance_grace_expires_at, \
             c.compliance_due_at, c.partner_threat_state FROM k {}",
            values_list(2, chunk.len()),
            per_key("device_compliance", "c", "c.tenant_id = $1 AND c.device_id = k.column1")
        );
        for r in &bind_ids(&sql, tenant_id, chunk).fetch_all(&mut *conn).await? {
            out.insert(
                r.try_get("device_id")?,
                VerdictRow {
                    state: r.try_get("compliance_state")?,
                    grace_expires_at: r.try_get("compliance_grace_expires_at")?,
                    due_at: r.try_get("compliance_due_at")?,
                    partner_threat_state: r.try_get("partner_threat_state")?,
                },
            );
        }
    }
    Ok(out)
}

/// The evaluation inputs of `devices` (read with their verdicts and due times): their groups
/// (when `with_groups`: only policies' assignments use them) and those of their users, their
/// reports, policy states and fired actions.
async fn complete_inputs(
    conn: &mut Conn,
    tenant_id: &str,
    devices: Vec<(ManagedDevice, Option<DateTime<Utc>>)>,
    with_groups: bool,
    range: Option<&IdRange>,
) -> Result<Vec<EvaluationInput>, StoreError> {
    use std::collections::HashMap;
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = devices.iter().map(|(d, _)| d.id.clone()).collect();
    // The rows of the devices' reports, states and actions: by key, or (`range`) every row of
    // the range, of which only the batch's devices' are taken below.
    let of_devices = |table: &str, alias: &str, columns: &str, order: &str| match range {
        Some(_) => format!(
            "SELECT {columns} FROM {table} {alias} WHERE {alias}.tenant_id = $1 AND {alias}.device_id >= $2 \
             AND {alias}.device_id <= $3{order}"
        ),
        None => format!(
            "WITH k AS ({}) SELECT {columns} FROM k {}{order}",
            values_list(2, ids.len()),
            per_key(
                table,
                alias,
                &format!("{alias}.tenant_id = $1 AND {alias}.device_id = k.column1")
            )
        ),
    };
    let bind = |sql| bind_devices(sql, tenant_id, &ids, range);
    // Group memberships of the devices and of their primary users.
    let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
    if with_groups {
        let mut members: Vec<String> = devices
            .iter()
            .flat_map(|(d, _)| std::iter::once(d.azure_ad_device_id.clone()).chain(d.user_id.clone()))
            .collect();
        members.sort_unstable();
        members.dedup();
        let sql = format!(
            "WITH m AS ({}) SELECT g.member_id, g.group_id FROM m {}",
            values_list(2, members.len()),
            per_key("group_members", "g", "g.tenant_id = $1 AND g.member_id = m.column1"),
        );
        for r in &bind_ids(&sql, tenant_id, &members).fetch_all(&mut *conn).await? {
            groups_of
                .entry(r.try_get("member_id")?)
                .or_default()
                .push(r.try_get("group_id")?);
        }
    }
    let sql = of_devices(
        "threat_reports",
        "r",
        "r.device_id, r.connector_id, r.state, r.reported_at",
        "",
    );
    let mut reports_of: HashMap<String, Vec<StoredReport>> = HashMap::new();
    for r in &bind(&sql).fetch_all(&mut *conn).await? {
        reports_of
            .entry(r.try_get("device_id")?)
            .or_default()
            .push(StoredReport {
                connector_id: r.try_get("connector_id")?,
                state: r.try_get("state")?,
                reported_at: r.try_get("reported_at")?,
            });
    }
    let state_columns: Vec<String> = STATE_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect();
    let sql = of_devices(
        "device_policy_states",
        "s",
        &state_columns.join(", "),
        " ORDER BY s.device_id, s.policy_id",
    );
    let mut states_of: HashMap<String, Vec<PolicyStateRow>> = HashMap::new();
    for r in &bind(&sql).fetch_all(&mut *conn).await? {
        let state = state_from_row(r)?;
        states_of.entry(state.device_id.clone()).or_default().push(state);
    }
    let sql = of_devices(
        "fired_actions",
        "f",
        "f.device_id, f.policy_id, f.episode_start, f.action_id",
        "",
    );
    let mut fired_of: HashMap<String, Vec<(String, DateTime<Utc>, String)>> = HashMap::new();
    for r in &bind(&sql).fetch_all(&mut *conn).await? {
        fired_of.entry(r.try_get("device_id")?).or_default().push((
            r.try_get("policy_id")?,
            r.try_get("episode_start")?,
            r.try_get("action_id")?,
        ));
    }
    Ok(devices
        .into_iter()
        .map(|(device, due_at)| EvaluationInput {
            user_groups: device
                .user_id
                .as_ref()
                .and_then(|u| groups_of.get(u).cloned())
                .unwrap_or_default(),
            device_groups: groups_of.get(&device.azure_ad_device_id).cloned().unwrap_or_default(),
            reports: reports_of.remove(&device.id).unwrap_or_default(),
            due_at,
            states: states_of.remove(&device.id).unwrap_or_default(),
            fired: fired_of.remove(&device.id).unwrap_or_default(),
            device,
        })
        .collect())
}

async fn list_policies_in(conn: &mut Conn, tenant_id: &str) -> Result<Vec<StoredPolicy>, StoreError> {
    let sql = format!("SELECT {POLICY_COLUMNS} FROM compliance_policies WHERE tenant_id = $1 ORDER BY created_at, id");
    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&mut *conn).await?;
    rows.iter().map(policy_from_row).collect()
}

/// The tenant-wide inputs of evaluation, read in the transaction of change `version`.
async fn tenant_rows_in(conn: &mut Conn, tenant_id: &str, version: i64) -> Result<TenantRows, StoreError> {
    Ok(TenantRows {
        version,
        policies: list_policies_in(conn, tenant_id).await?,
        connectors: list_connectors_in(conn, tenant_id).await?,
        device_management: device_management_in(conn, tenant_id).await?,
    })
}

/// Takes the devices' queue entries off the queue, in id order (see `lock_devices`): an
/// evaluation that sees every change up to `gen` satisfies them.
async fn take_queue_entries(conn: &mut Conn, tenant_id: &str, gen: i64, ids: &[String]) -> Result<(), StoreError> {
    for chunk in ids.chunks(2000) {
        let sql = claim_sql(&values_list(3, chunk.len()), false);
        let mut q = sqlx::query(&sql).bind(tenant_id).bind(gen);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Takes the queue entries at or below change `$2` of the devices `list` names (`$3`…) off the
/// queue, answering their ids with `returning`. On PostgreSQL the entries are found by one
/// index probe per key (`per_key`: the queue is refilled between statistics runs, so a plan
/// from them scanned it whole) and locked in id order before they are deleted (see
/// `lock_devices`). The delete finds the locked entries again by their keys as one array (an
/// index scan): joined to them, it hashed the tenant's whole queue for every batch (measured:
/// 86 ms against 21 ms for 2,000 entries of a queue of 100,000, and about 0.3 s a batch at
/// 1,000,000).
fn claim_sql(list: &str, returning: bool) -> String {
    if DIALECT_NAME == "postgres" {
        let returning = if returning {
            " RETURNING reevaluation_queue.device_id"
        } else {
            ""
        };
        format!(
            "WITH k AS ({list}), c AS (SELECT q.device_id FROM k {} ORDER BY q.device_id FOR UPDATE OF q) \
             DELETE FROM reevaluation_queue WHERE tenant_id = $1 \
             AND device_id = ANY(ARRAY(SELECT device_id FROM c)){returning}",
            per_key(
                "reevaluation_queue",
                "q",
                "q.tenant_id = $1 AND q.device_id = k.column1 AND q.gen <= $2"
            )
        )
    } else {
        let returning = if returning { " RETURNING device_id" } else { "" };
        format!(
            "DELETE FROM reevaluation_queue WHERE tenant_id = $1 AND device_id IN (SELECT device_id \
             FROM reevaluation_queue WHERE tenant_id = $1 AND gen <= $2 \
             AND device_id IN (SELECT column1 FROM ({list}) AS k)){returning}"
        )
    }
}
