// The body of the `Store` implementations, shared by both backends: `sqlite.rs` and
// `postgres.rs` each `include!` this file and its siblings (`sql_directory.rs`,
// `sql_devices.rs`) after defining `Db` (the sqlx database), `DIALECT_NAME`,
// their store type with `reader()`/`writer()` pools, and `migrator()`. The SQL is written once
// in the subset both databases accept (`$N` placeholders, `ON CONFLICT`, `RETURNING`); the few
// differences go through `DIALECT`.

use sqlx::Row as _;

type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

fn bind_values<'q>(mut q: Query<'q>, values: &'q [SqlValue]) -> Query<'q> {
    for v in values {
        q = match v {
            SqlValue::Text(s) => q.bind(s.as_str()),
            SqlValue::Int(i) => q.bind(*i),
            SqlValue::Float(f) => q.bind(*f),
            SqlValue::Bool(b) => q.bind(*b),
            SqlValue::Timestamp(t) => q.bind(*t),
        };
    }
    q
}

fn dialect() -> Dialect {
    if DIALECT_NAME == "postgres" {
        Dialect::Postgres
    } else {
        Dialect::Sqlite
    }
}

/// The query's `$filter` (placeholders from `first_placeholder`) and `$orderby` as SQL over
/// the columns of `entity`.
fn list_sql(
    query: &ListQuery,
    entity: &filter_sql::Entity,
    first_placeholder: usize,
) -> Result<(Option<SqlFragment>, Option<String>), StoreError> {
    filter_sql::translate(
        query.filter.as_ref(),
        &query.order_by,
        entity,
        dialect(),
        first_placeholder,
    )
    .map_err(StoreError::Query)
}

const TENANT_COLUMNS: &str = "id, display_name, created_at, clock_offset_us, bootstrap_client_id, limits, faults";

fn tenant_from_row(row: &<Db as sqlx::Database>::Row) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
        clock_offset_us: row.try_get("clock_offset_us")?,
        bootstrap_client_id: row.try_get("bootstrap_client_id")?,
        limits: row
            .try_get::<Option<sqlx::types::Json<Limits>>, _>("limits")?
            .map(|j| j.0),
        faults: row
            .try_get::<Option<sqlx::types::Json<Vec<FaultRule>>>, _>("faults")?
            .map(|j| j.0)
            .unwrap_or_default(),
    })
}

const APP_COLUMNS: &str =
    "tenant_id, client_id, display_name, kind, secret_hash, permissions, connector_id, sign_in, created_at";

/// Granted scopes, stored space-separated.
fn scope_list(text: &str) -> Vec<String> {
    text.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

const DEVICE_CODE_COLUMNS: &str = "device_code_hash, user_code, tenant_id, client_id, scopes, expires_at, user_id";

fn device_code_from_row(row: &<Db as sqlx::Database>::Row) -> Result<DeviceCodeRecord, StoreError> {
    let scopes: String = row.try_get("scopes")?;
    Ok(DeviceCodeRecord {
        device_code_hash: row.try_get("device_code_hash")?,
        user_code: row.try_get("user_code")?,
        tenant_id: row.try_get("tenant_id")?,
        client_id: row.try_get("client_id")?,
        scopes: scope_list(&scopes),
        expires_at: row.try_get("expires_at")?,
        user_id: row.try_get("user_id")?,
    })
}

fn app_from_row(row: &<Db as sqlx::Database>::Row) -> Result<App, StoreError> {
    let kind: String = row.try_get("kind")?;
    let permissions: sqlx::types::Json<Vec<String>> = row.try_get("permissions")?;
    let sign_in: sqlx::types::Json<crate::domain::tenant::SignInSettings> = row.try_get("sign_in")?;
    Ok(App {
        tenant_id: row.try_get("tenant_id")?,
        client_id: row.try_get("client_id")?,
        display_name: row.try_get("display_name")?,
        kind: AppKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("app kind '{kind}'")))?,
        secret_hash: row.try_get("secret_hash")?,
        permissions: permissions.0,
        connector_id: row.try_get("connector_id")?,
        sign_in: sign_in.0,
        created_at: row.try_get("created_at")?,
    })
}

async fn insert_app_in<'c, E>(executor: E, app: &App) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    sqlx::query(
        "INSERT INTO apps (tenant_id, client_id, display_name, kind, secret_hash, permissions, connector_id, created_at, sign_in) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&app.tenant_id)
    .bind(&app.client_id)
    .bind(&app.display_name)
    .bind(app.kind.as_str())
    .bind(&app.secret_hash)
    .bind(sqlx::types::Json(&app.permissions))
    .bind(&app.connector_id)
    .bind(app.created_at)
    .bind(sqlx::types::Json(&app.sign_in))
    .execute(executor)
    .await
    .map_err(map_unique)?;
    Ok(())
}

async fn upsert_device_management_in<'c, E>(executor: E, dm: &DeviceManagementRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    sqlx::query(
        "INSERT INTO device_management (tenant_id, properties, revision) VALUES ($1, $2, 0) \
         ON CONFLICT (tenant_id) DO UPDATE SET properties = excluded.properties, \
         revision = device_management.revision + 1",
    )
    .bind(&dm.tenant_id)
    .bind(sqlx::types::Json(&dm.properties))
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl TenantStore for StoreImpl {
    fn backend(&self) -> &'static str {
        DIALECT_NAME
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        super::migrations::migrator(MIGRATIONS)
            .await?
            .run(self.writer())
            .await?;
        Ok(())
    }

    async fn ready(&self) -> Result<bool, StoreError> {
        let latest = super::migrations::latest(MIGRATIONS);
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(self.reader())
            .await?;
        Ok(applied.unwrap_or(0) >= latest)
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.reader().size() + self.writer_only_size(),
            idle: (self.reader().num_idle() + self.writer_only_idle()) as u32,
        }
    }

    async fn insert_tenant(
        &self,
        tenant: &Tenant,
        bootstrap: &App,
        dm: &DeviceManagementRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO tenants (id, display_name, created_at, clock_offset_us, bootstrap_client_id, cache_version) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&tenant.id)
        .bind(&tenant.display_name)
        .bind(tenant.created_at)
        .bind(tenant.clock_offset_us)
        .bind(&tenant.bootstrap_client_id)
        // A random start: a tenant deleted and created again under the same id never takes up
        // a cache version that a replica's cache still holds for the deleted one.
        .bind((rand::random::<u64>() >> 2) as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        insert_app_in(&mut *tx, bootstrap).await?;
        upsert_device_management_in(&mut *tx, dm).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_tenant(&self, tenant_id: &str) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        let row = sqlx::query(&sql).bind(tenant_id).fetch_optional(self.reader()).await?;
        Ok(row.map(|r| tenant_from_row(&r)).transpose()?)
    }

    async fn get_tenant_versioned(&self, tenant_id: &str) -> Result<Option<(Tenant, i64)>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS}, cache_version FROM tenants WHERE id = $1");
        let row = sqlx::query(&sql).bind(tenant_id).fetch_optional(self.reader()).await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((tenant_from_row(&r)?, r.try_get("cache_version")?)))
            .transpose()?)
    }

    async fn tenant_cache_version(&self, tenant_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT cache_version FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?)
    }

    async fn list_tenants(&self, query: &ListQuery) -> Result<ListPage<Tenant>, StoreError> {
        debug_assert_eq!(query.scope, ListScope::All, "only device lists are scoped");
        let (filter, order_by) = list_sql(query, &super::columns::TENANTS, 1)?;
        let (filter, binds) = match &filter {
            Some(f) => (format!(" WHERE {}", f.sql), f.binds.as_slice()),
            None => (String::new(), &[][..]),
        };
        let order = match order_by {
            Some(o) => format!("{o}, id"),
            None => "id".to_string(),
        };
        let n = binds.len();
        let sql = format!(
            "SELECT {TENANT_COLUMNS} FROM tenants{filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let rows = bind_values(sqlx::query(&sql), binds)
            .bind(query.limit as i64)
            .bind(query.offset as i64)
            .fetch_all(self.reader())
            .await?;
        let items = rows.iter().map(tenant_from_row).collect::<Result<Vec<_>, _>>()?;
        let total = if query.count {
            let sql = format!("SELECT COUNT(*) FROM tenants{filter}");
            let row = bind_values(sqlx::query(&sql), binds).fetch_one(self.reader()).await?;
            Some(row.try_get::<i64, _>(0)?)
        } else {
            None
        };
        Ok(ListPage { items, total })
    }

    async fn delete_tenant(&self, tenant_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        exclude_changes(&mut tx, tenant_id).await?;
        for table in TENANT_DATA_TABLES.iter().chain(&["apps", "device_management"]) {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn reset_tenant(&self, tenant_id: &str, dm: &DeviceManagementRecord) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        exclude_changes(&mut tx, tenant_id).await?;
        let updated = sqlx::query(
            "UPDATE tenants SET clock_offset_us = 0, limits = NULL, faults = NULL, cache_version = cache_version + 1 WHERE id = $1",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        for table in TENANT_DATA_TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM apps WHERE tenant_id = $1 \
             AND client_id <> (SELECT bootstrap_client_id FROM tenants WHERE id = $1)",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        upsert_device_management_in(&mut *tx, dm).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_clock_offset(&self, tenant_id: &str, expected: i64, new_offset_us: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE tenants SET clock_offset_us = $3, cache_version = cache_version + 1 \
             WHERE id = $1 AND clock_offset_us = $2",
        )
        .bind(tenant_id)
        .bind(expected)
        .bind(new_offset_us)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn set_limits(&self, tenant_id: &str, limits: Option<&Limits>) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let updated = sqlx::query("UPDATE tenants SET limits = $2, cache_version = cache_version + 1 WHERE id = $1")
            .bind(tenant_id)
            .bind(limits.map(sqlx::types::Json))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM throttle_counts WHERE tenant_id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated == 1)
    }

    async fn count_requests(&self, tenant_id: &str, counters: &[(String, i64)]) -> Result<Vec<i64>, StoreError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        let mut b =
            sqlx::QueryBuilder::<Db>::new("INSERT INTO throttle_counts (tenant_id, counter, window_start, count) ");
        b.push_values(counters, |mut row, (key, start)| {
            row.push_bind(tenant_id)
                .push_bind(key.as_str())
                .push_bind(*start)
                .push_bind(1i64);
        });
        b.push(
            " ON CONFLICT (tenant_id, counter) DO UPDATE SET count = CASE \
             WHEN throttle_counts.window_start = excluded.window_start THEN throttle_counts.count + 1 ELSE 1 END, \
             window_start = excluded.window_start RETURNING counter, count",
        );
        let rows: Vec<(String, i64)> = b.build_query_as().fetch_all(self.writer()).await?;
        let counts: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        Ok(counters
            .iter()
            .map(|(key, _)| counts.get(key).copied().unwrap_or(1))
            .collect())
    }

    async fn replace_faults(
        &self,
        tenant_id: &str,
        version: i64,
        rules: &[FaultRule],
        afresh: &[String],
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let stored = (!rules.is_empty()).then_some(sqlx::types::Json(rules));
        let updated = sqlx::query(
            "UPDATE tenants SET faults = $2, cache_version = cache_version + 1 WHERE id = $1 AND cache_version = $3",
        )
        .bind(tenant_id)
        .bind(stored)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        for rule_id in afresh {
            sqlx::query("DELETE FROM fault_counts WHERE tenant_id = $1 AND rule_id = $2")
                .bind(tenant_id)
                .bind(rule_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn fault_matched(&self, tenant_id: &str, rule_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO fault_counts (tenant_id, rule_id, matched, fired) VALUES ($1, $2, 1, 0) \
             ON CONFLICT (tenant_id, rule_id) DO UPDATE SET matched = fault_counts.matched + 1 RETURNING matched",
        )
        .bind(tenant_id)
        .bind(rule_id)
        .fetch_one(self.writer())
        .await?)
    }

    async fn fault_fired(&self, tenant_id: &str, rule_id: &str, limit: Option<i64>) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE fault_counts SET fired = fired + 1 WHERE tenant_id = $1 AND rule_id = $2 AND fired < $3",
        )
        .bind(tenant_id)
        .bind(rule_id)
        .bind(limit.unwrap_or(i64::MAX))
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn fault_counts(&self, tenant_id: &str) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT rule_id, matched, fired FROM fault_counts WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_all(self.reader())
                .await?,
        )
    }

    async fn append_events(&self, tenant_id: &str, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // Under the tenant's change lock, shared, as every append to the log is.
        let mut tx = self.writer().begin().await?;
        if share_tenant(&mut tx, tenant_id).await?.is_none() {
            return Ok(());
        }
        insert_events(&mut tx, tenant_id, events, self.wall()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
        insert_app_in(self.writer(), app).await
    }

    async fn delete_app(&self, tenant_id: &str, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, tenant_id).await?;
        let deleted = sqlx::query("DELETE FROM apps WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in ["refresh_tokens", "authorization_codes", "device_codes"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND client_id = $2"))
                .bind(tenant_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn get_app(&self, tenant_id: &str, client_id: &str) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 AND client_id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(client_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| app_from_row(&r)).transpose()
    }

    async fn list_apps(&self, tenant_id: &str) -> Result<Vec<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 ORDER BY created_at, client_id");
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(self.reader()).await?;
        rows.iter().map(app_from_row).collect()
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT kid, private_key_pem, created_at FROM signing_keys ORDER BY created_at")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    private_key_pem: r.try_get("private_key_pem")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn insert_signing_key_if_none(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        // `slot` is a one-row unique key: the first replica to generate a key wins.
        sqlx::query(
            "INSERT INTO signing_keys (slot, kid, private_key_pem, created_at) VALUES ('active', $1, $2, $3) \
             ON CONFLICT (slot) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.private_key_pem)
        .bind(key.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn tls_authority(&self) -> Result<Option<TlsAuthorityRecord>, StoreError> {
        let row =
            sqlx::query("SELECT certificate_pem, private_key_pem, created_at FROM tls_authority WHERE slot = 'active'")
                .fetch_optional(self.reader())
                .await?;
        row.map(|r| {
            Ok(TlsAuthorityRecord {
                certificate_pem: r.try_get("certificate_pem")?,
                private_key_pem: r.try_get("private_key_pem")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn insert_tls_authority_if_none(&self, ca: &TlsAuthorityRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tls_authority (slot, certificate_pem, private_key_pem, created_at) VALUES ('active', $1, $2, $3) \
             ON CONFLICT (slot) DO NOTHING",
        )
        .bind(&ca.certificate_pem)
        .bind(&ca.private_key_pem)
        .bind(ca.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn insert_device_code(&self, code: &DeviceCodeRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM device_codes WHERE tenant_id = $1 AND expires_at < $2")
            .bind(&code.tenant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code, tenant_id, client_id, scopes, expires_at, user_id) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(&code.device_code_hash)
        .bind(&code.user_code)
        .bind(&code.tenant_id)
        .bind(&code.client_id)
        .bind(code.scopes.join(" "))
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        tx.commit().await?;
        Ok(())
    }

    async fn device_code_by_user_code(&self, user_code: &str) -> Result<Option<DeviceCodeRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_CODE_COLUMNS} FROM device_codes WHERE user_code = $1"
        ))
        .bind(user_code)
        .fetch_optional(self.writer())
        .await?;
        row.map(|r| device_code_from_row(&r)).transpose()
    }

    async fn approve_device_code(&self, user_code: &str, user_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE device_codes SET user_id = $2 WHERE user_code = $1 AND user_id IS NULL")
            .bind(user_code)
            .bind(user_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn device_code(
        &self,
        tenant_id: &str,
        device_code_hash: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_CODE_COLUMNS} FROM device_codes WHERE tenant_id = $1 AND device_code_hash = $2"
        ))
        .bind(tenant_id)
        .bind(device_code_hash)
        .fetch_optional(self.writer())
        .await?;
        row.map(|r| device_code_from_row(&r)).transpose()
    }

    async fn take_device_code(&self, tenant_id: &str, device_code_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM device_codes WHERE tenant_id = $1 AND device_code_hash = $2 AND user_id IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(device_code_hash)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, tenant_id, client_id, user_id, scopes, expires_at, family, \
             single_page_app, device_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&token.token_hash)
        .bind(&token.tenant_id)
        .bind(&token.client_id)
        .bind(&token.user_id)
        .bind(token.scopes.join(" "))
        .bind(token.expires_at)
        .bind(&token.family)
        .bind(token.single_page_app)
        .bind(&token.device_id)
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn revoke_refresh_tokens(&self, tenant_id: &str, user_id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    async fn take_refresh_token(
        &self,
        tenant_id: &str,
        token_hash: &str,
        single_page_app: bool,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2 AND single_page_app = $3 \
             RETURNING token_hash, tenant_id, client_id, user_id, scopes, expires_at, family, single_page_app, \
             device_id",
        )
        .bind(tenant_id)
        .bind(token_hash)
        .bind(single_page_app)
        .fetch_optional(self.writer())
        .await?;
        row.map(|r| {
            let scopes: String = r.try_get("scopes")?;
            Ok(RefreshTokenRecord {
                token_hash: r.try_get("token_hash")?,
                tenant_id: r.try_get("tenant_id")?,
                client_id: r.try_get("client_id")?,
                user_id: r.try_get("user_id")?,
                scopes: scope_list(&scopes),
                expires_at: r.try_get("expires_at")?,
                family: r.try_get("family")?,
                single_page_app: r.try_get("single_page_app")?,
                device_id: r.try_get("device_id")?,
            })
        })
        .transpose()
    }

    async fn refresh_token_kind(&self, tenant_id: &str, token_hash: &str) -> Result<Option<bool>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT single_page_app FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2")
                .bind(tenant_id)
                .bind(token_hash)
                .fetch_optional(self.writer())
                .await?,
        )
    }

    async fn revoke_refresh_token_family(&self, tenant_id: &str, family: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM refresh_tokens WHERE tenant_id = $1 AND family = $2")
            .bind(tenant_id)
            .bind(family)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    async fn insert_authorization_code(
        &self,
        code: &AuthorizationCodeRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM authorization_codes WHERE tenant_id = $1 AND expires_at < $2")
            .bind(&code.tenant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, tenant_id, client_id, user_id, redirect_uri, code_challenge, \
             code_challenge_method, nonce, scopes, expires_at, redeemed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&code.code_hash)
        .bind(&code.tenant_id)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.code_challenge_method)
        .bind(&code.nonce)
        .bind(code.scopes.join(" "))
        .bind(code.expires_at)
        .bind(false)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        tx.commit().await?;
        Ok(())
    }

    async fn authorization_code(
        &self,
        tenant_id: &str,
        code_hash: &str,
    ) -> Result<Option<(AuthorizationCodeRecord, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT code_hash, tenant_id, client_id, user_id, redirect_uri, code_challenge, code_challenge_method, \
             nonce, scopes, expires_at, redeemed FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2",
        )
        .bind(tenant_id)
        .bind(code_hash)
        .fetch_optional(self.writer())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let scopes: String = r.try_get("scopes")?;
        let record = AuthorizationCodeRecord {
            code_hash: r.try_get("code_hash")?,
            tenant_id: r.try_get("tenant_id")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            redirect_uri: r.try_get("redirect_uri")?,
            code_challenge: r.try_get("code_challenge")?,
            code_challenge_method: r.try_get("code_challenge_method")?,
            nonce: r.try_get("nonce")?,
            scopes: scope_list(&scopes),
            expires_at: r.try_get("expires_at")?,
        };
        Ok(Some((record, r.try_get("redeemed")?)))
    }

    async fn mark_code_redeemed(&self, tenant_id: &str, code_hash: &str) -> Result<bool, StoreError> {
        let first = sqlx::query(
            "UPDATE authorization_codes SET redeemed = $3 WHERE tenant_id = $1 AND code_hash = $2 AND redeemed = $4",
        )
        .bind(tenant_id)
        .bind(code_hash)
        .bind(true)
        .bind(false)
        .execute(self.writer())
        .await?
        .rows_affected()
            == 1;
        Ok(first)
    }

    async fn add_session_user(
        &self,
        session_hash: &str,
        tenant_id: &str,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sign_in_sessions (session_hash, tenant_id, user_id, signed_in_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session_hash, tenant_id, user_id) DO UPDATE SET signed_in_at = excluded.signed_in_at",
        )
        .bind(session_hash)
        .bind(tenant_id)
        .bind(user_id)
        .bind(at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn session_users(&self, session_hash: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, user_id FROM sign_in_sessions WHERE session_hash = $1 ORDER BY signed_in_at DESC, user_id",
        )
        .bind(session_hash)
        .fetch_all(self.writer())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("user_id")?)))
            .collect()
    }

    async fn end_session(&self, session_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sign_in_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn find_app_anywhere(&self, client_id: &str) -> Result<Option<App>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1 LIMIT 2");
        let rows = sqlx::query(&sql).bind(client_id).fetch_all(self.reader()).await?;
        match rows.as_slice() {
            [one] => Ok(Some(app_from_row(one)?)),
            _ => Ok(None),
        }
    }

    async fn get_device_management(&self, tenant_id: &str) -> Result<Option<DeviceManagementRecord>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        device_management_in(&mut conn, tenant_id).await
    }

    async fn update_device_management(
        &self,
        record: &DeviceManagementRecord,
        fx: &Effects,
    ) -> Result<bool, StoreError> {
        change_one!(self, &record.tenant_id, fx, |tx| {
            let updated = sqlx::query(
            "UPDATE device_management SET properties = $2, revision = revision + 1 WHERE tenant_id = $1 AND revision = $3",
        )
        .bind(&record.tenant_id)
        .bind(sqlx::types::Json(&record.properties))
        .bind(record.revision)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            updated
        })
    }
}

/// A text column as a case-insensitive key lookup spells it, matching the expression indexes
/// (PostgreSQL's are on `lower(col COLLATE "C")`).
fn text_key(column: &str) -> String {
    if DIALECT_NAME == "postgres" {
        format!("{column} COLLATE \"C\"")
    } else {
        column.to_string()
    }
}

async fn device_management_in(conn: &mut Conn, tenant_id: &str) -> Result<Option<DeviceManagementRecord>, StoreError> {
    let row = sqlx::query("SELECT properties, revision FROM device_management WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            let props: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = r.try_get("properties")?;
            Ok(Some(DeviceManagementRecord {
                tenant_id: tenant_id.to_string(),
                properties: props.0,
                revision: r.try_get("revision")?,
            }))
        }
    }
}
