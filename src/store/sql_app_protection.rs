// `AppProtectionStore` for both backends; see sql_impl.rs.

const APP_POLICY_COLUMNS: &str =
    "tenant_id, id, platform, properties, assignments, apps, version, created_at, last_modified_at, revision";

fn app_platform(s: &str) -> Result<AppPlatform, StoreError> {
    AppPlatform::parse(s).ok_or_else(|| StoreError::Corrupt(format!("app platform '{s}'")))
}

fn app_policy_from_row(row: &<Db as sqlx::Database>::Row) -> Result<AppProtectionPolicy, StoreError> {
    let platform: String = row.try_get("platform")?;
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    let assignments: sqlx::types::Json<Vec<AppPolicyAssignment>> = row.try_get("assignments")?;
    let apps: sqlx::types::Json<Vec<TargetedApp>> = row.try_get("apps")?;
    Ok(AppProtectionPolicy {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        platform: app_platform(&platform)?,
        properties: properties.0,
        assignments: assignments.0,
        apps: apps.0,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        last_modified_at: row.try_get("last_modified_at")?,
        revision: row.try_get("revision")?,
    })
}

const APP_REGISTRATION_COLUMNS: &str = "tenant_id, id, user_id, azure_ad_device_id, platform, app_id, \
     application_version, management_sdk_version, platform_version, device_name, device_model, device_manufacturer, \
     managed_device_id, created_at, last_sync_at, verdict, applied_policy_ids, operations, revision";

fn app_registration_from_row(row: &<Db as sqlx::Database>::Row) -> Result<AppRegistration, StoreError> {
    let platform: String = row.try_get("platform")?;
    let applied: sqlx::types::Json<Vec<String>> = row.try_get("applied_policy_ids")?;
    let operations: sqlx::types::Json<Vec<AppOperation>> = row.try_get("operations")?;
    Ok(AppRegistration {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        azure_ad_device_id: row.try_get("azure_ad_device_id")?,
        platform: app_platform(&platform)?,
        app_id: row.try_get("app_id")?,
        application_version: row.try_get("application_version")?,
        management_sdk_version: row.try_get("management_sdk_version")?,
        platform_version: row.try_get("platform_version")?,
        device_name: row.try_get("device_name")?,
        device_model: row.try_get("device_model")?,
        device_manufacturer: row.try_get("device_manufacturer")?,
        managed_device_id: row.try_get("managed_device_id")?,
        created_at: row.try_get("created_at")?,
        last_sync_at: row.try_get("last_sync_at")?,
        verdict: row.try_get("verdict")?,
        applied_policy_ids: applied.0,
        operations: operations.0,
        revision: row.try_get("revision")?,
    })
}

#[async_trait]
impl AppProtectionStore for StoreImpl {
    async fn insert_app_policy(&self, p: &AppProtectionPolicy) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO app_protection_policies ({APP_POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&p.tenant_id)
        .bind(&p.id)
        .bind(p.platform.as_str())
        .bind(sqlx::types::Json(&p.properties))
        .bind(sqlx::types::Json(&p.assignments))
        .bind(sqlx::types::Json(&p.apps))
        .bind(p.version)
        .bind(p.created_at)
        .bind(p.last_modified_at)
        .bind(p.revision)
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn get_app_policy(&self, tenant_id: &str, id: &str) -> Result<Option<AppProtectionPolicy>, StoreError> {
        let sql = format!("SELECT {APP_POLICY_COLUMNS} FROM app_protection_policies WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| app_policy_from_row(&r)).transpose()
    }

    async fn list_app_policies(&self, tenant_id: &str) -> Result<Vec<AppProtectionPolicy>, StoreError> {
        let sql = format!(
            "SELECT {APP_POLICY_COLUMNS} FROM app_protection_policies WHERE tenant_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(self.reader()).await?;
        rows.iter().map(app_policy_from_row).collect()
    }

    async fn update_app_policy(&self, p: &AppProtectionPolicy) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE app_protection_policies SET properties = $3, assignments = $4, apps = $5, version = $6, \
             last_modified_at = $7, revision = revision + 1 WHERE tenant_id = $1 AND id = $2 AND revision = $8",
        )
        .bind(&p.tenant_id)
        .bind(&p.id)
        .bind(sqlx::types::Json(&p.properties))
        .bind(sqlx::types::Json(&p.assignments))
        .bind(sqlx::types::Json(&p.apps))
        .bind(p.version)
        .bind(p.last_modified_at)
        .bind(p.revision)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn delete_app_policy(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM app_protection_policies WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn insert_app_registration(&self, r: &AppRegistration, fx: &Effects) -> Result<bool, StoreError> {
        let inserted = change!(self, &r.tenant_id, fx, |tx| {
            sqlx::query(&format!(
                "INSERT INTO app_registrations ({APP_REGISTRATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ))
            .bind(&r.tenant_id)
            .bind(&r.id)
            .bind(&r.user_id)
            .bind(&r.azure_ad_device_id)
            .bind(r.platform.as_str())
            .bind(&r.app_id)
            .bind(&r.application_version)
            .bind(&r.management_sdk_version)
            .bind(&r.platform_version)
            .bind(&r.device_name)
            .bind(&r.device_model)
            .bind(&r.device_manufacturer)
            .bind(&r.managed_device_id)
            .bind(r.created_at)
            .bind(r.last_sync_at)
            .bind(&r.verdict)
            .bind(sqlx::types::Json(&r.applied_policy_ids))
            .bind(sqlx::types::Json(&r.operations))
            .bind(r.revision)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
        });
        Ok(inserted?.is_some())
    }

    async fn get_app_registration(&self, tenant_id: &str, id: &str) -> Result<Option<AppRegistration>, StoreError> {
        let sql = format!("SELECT {APP_REGISTRATION_COLUMNS} FROM app_registrations WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| app_registration_from_row(&r)).transpose()
    }

    async fn list_app_registrations(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<AppRegistration>, StoreError> {
        let sql = format!(
            "SELECT {APP_REGISTRATION_COLUMNS} FROM app_registrations WHERE tenant_id = $1 \
             AND ($2 IS NULL OR user_id = $2) ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(app_registration_from_row).collect()
    }

    async fn update_app_registration(&self, r: &AppRegistration, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, &r.tenant_id, fx, |tx| {
            sqlx::query(
                "UPDATE app_registrations SET last_sync_at = $3, verdict = $4, applied_policy_ids = $5, \
                 operations = $6, managed_device_id = $7, revision = revision + 1 \
                 WHERE tenant_id = $1 AND id = $2 AND revision = $8",
            )
            .bind(&r.tenant_id)
            .bind(&r.id)
            .bind(r.last_sync_at)
            .bind(&r.verdict)
            .bind(sqlx::types::Json(&r.applied_policy_ids))
            .bind(sqlx::types::Json(&r.operations))
            .bind(&r.managed_device_id)
            .bind(r.revision)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        })
    }

    async fn delete_app_registration(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, tenant_id, fx, |tx| {
            sqlx::query("DELETE FROM app_registrations WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        })
    }

    async fn app_report_targets(
        &self,
        tenant_id: &str,
        connector_id: &str,
        keys: &[String],
    ) -> Result<Vec<AppReportTarget>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "WITH k AS ({}) SELECT a.azure_ad_device_id, a.platform, a.user_id, a.app_id, \
             (SELECT r.reported_at FROM app_threat_reports r WHERE r.tenant_id = $1 \
              AND r.azure_ad_device_id = a.azure_ad_device_id AND r.connector_id = $2) AS reported_at \
             FROM k JOIN app_registrations a ON a.tenant_id = $1 AND a.azure_ad_device_id = k.column1 \
             WHERE NOT EXISTS (SELECT 1 FROM managed_devices d WHERE d.tenant_id = $1 \
              AND d.azure_ad_device_id = a.azure_ad_device_id) ORDER BY a.azure_ad_device_id, a.id",
            values_list(3, keys.len())
        );
        let mut q = sqlx::query(&sql).bind(tenant_id).bind(connector_id);
        for k in keys {
            q = q.bind(k.as_str());
        }
        q.fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| {
                let platform: String = row.try_get("platform")?;
                Ok(AppReportTarget {
                    azure_ad_device_id: row.try_get("azure_ad_device_id")?,
                    platform: app_platform(&platform)?,
                    user_id: row.try_get("user_id")?,
                    app_id: row.try_get("app_id")?,
                    stored_at: row.try_get("reported_at")?,
                })
            })
            .collect()
    }

    async fn store_app_reports(
        &self,
        tenant_id: &str,
        connector_id: &str,
        reports: &[Accepted],
    ) -> Result<Option<()>, StoreError> {
        change!(@locked share_tenant, self, tenant_id, &Effects::none(), |tx, _gen| {
            for chunk in reports.chunks(1000) {
                let mut b = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO app_threat_reports (tenant_id, azure_ad_device_id, connector_id, state, reported_at) ",
                );
                b.push_values(chunk, |mut row, r| {
                    row.push_bind(tenant_id)
                        .push_bind(&r.device_id)
                        .push_bind(connector_id)
                        .push_bind(r.reported.graph_state())
                        .push_bind(r.reported_at);
                });
                // A concurrent batch may have stored a newer report meanwhile: it stays.
                b.push(
                    " ON CONFLICT (tenant_id, azure_ad_device_id, connector_id) DO UPDATE SET state = excluded.state, \
                     reported_at = excluded.reported_at WHERE app_threat_reports.reported_at < excluded.reported_at",
                );
                b.build().execute(&mut *tx).await?;
            }
        })
    }

    async fn app_device_reports(
        &self,
        tenant_id: &str,
        azure_ad_device_id: &str,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.connector_id, r.state, r.reported_at FROM managed_devices d JOIN threat_reports r \
             ON r.tenant_id = d.tenant_id AND r.device_id = d.id WHERE d.tenant_id = $1 AND d.azure_ad_device_id = $2 \
             UNION ALL SELECT connector_id, state, reported_at FROM app_threat_reports \
             WHERE tenant_id = $1 AND azure_ad_device_id = $2",
        )
        .bind(tenant_id)
        .bind(azure_ad_device_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredReport {
                    connector_id: row.try_get("connector_id")?,
                    state: row.try_get("state")?,
                    reported_at: row.try_get("reported_at")?,
                })
            })
            .collect()
    }
}
