// `DeviceStore` for both backends; see sql_impl.rs.

/// The columns of `managed_devices`.
const DEVICE_TABLE_COLUMNS: &str =
    "tenant_id, id, device_name, operating_system, os_version, platform, owner_type, user_id, \
     user_principal_name, user_display_name, email_address, azure_ad_device_id, model, manufacturer, serial_number, \
     imei, phone_number, enrolled_at, last_sync_at, management_state, properties";

/// A device as reads see it: the columns of `device_view`, the device with its verdict and
/// partner threat state (kept in `device_compliance`; migrations 0011 and 0017).
const DEVICE_COLUMNS: &str =
    "tenant_id, id, device_name, operating_system, os_version, platform, owner_type, user_id, \
     user_principal_name, user_display_name, email_address, azure_ad_device_id, model, manufacturer, serial_number, \
     imei, phone_number, enrolled_at, last_sync_at, compliance_state, compliance_grace_expires_at, \
     partner_threat_state, management_state, properties";

/// The same columns qualified with the table alias `d`, for joins.
fn device_columns_of_d() -> String {
    DEVICE_COLUMNS
        .split(", ")
        .map(|c| format!("d.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `columns` (a list such as `DEVICE_COLUMNS`) qualified with the alias `d`, the device's
/// `properties` (its Graph properties without a column of their own: about 1.5 KB of JSON for a
/// device enrolled with defaults) read as an empty object, for evaluation, which reads none of
/// them. A batch of 500 reported devices wrote out, sent and parsed most of a megabyte of JSON
/// for nothing.
fn evaluated_columns_of_d(columns: &str) -> String {
    let empty = if DIALECT_NAME == "postgres" {
        "'{}'::jsonb AS properties".to_string()
    } else {
        "'{}' AS properties".to_string()
    };
    columns
        .split(", ")
        .map(|c| match c.trim() {
            "properties" => empty.clone(),
            c => format!("d.{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A device as `device_view` shows it (`DEVICE_COLUMNS`).
fn device_from_row(row: &<Db as sqlx::Database>::Row) -> Result<ManagedDevice, StoreError> {
    Ok(ManagedDevice {
        compliance_state: row.try_get("compliance_state")?,
        compliance_grace_expires_at: row.try_get("compliance_grace_expires_at")?,
        partner_threat_state: row.try_get("partner_threat_state")?,
        ..device_table_row(row)?
    })
}

/// A device from the columns of `managed_devices` (`DEVICE_TABLE_COLUMNS`), without what
/// `device_compliance` holds: its verdict is `unknown` and its partner threat state empty until
/// read from there.
fn device_table_row(row: &<Db as sqlx::Database>::Row) -> Result<ManagedDevice, StoreError> {
    let platform: String = row.try_get("platform")?;
    let owner: String = row.try_get("owner_type")?;
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    Ok(ManagedDevice {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        device_name: row.try_get("device_name")?,
        operating_system: row.try_get("operating_system")?,
        os_version: row.try_get("os_version")?,
        platform: Platform::parse(&platform).ok_or_else(|| StoreError::Corrupt(format!("platform '{platform}'")))?,
        owner_type: OwnerType::parse(&owner).ok_or_else(|| StoreError::Corrupt(format!("owner type '{owner}'")))?,
        user_id: row.try_get("user_id")?,
        user_principal_name: row.try_get("user_principal_name")?,
        user_display_name: row.try_get("user_display_name")?,
        email_address: row.try_get("email_address")?,
        azure_ad_device_id: row.try_get("azure_ad_device_id")?,
        model: row.try_get("model")?,
        manufacturer: row.try_get("manufacturer")?,
        serial_number: row.try_get("serial_number")?,
        imei: row.try_get("imei")?,
        phone_number: row.try_get("phone_number")?,
        enrolled_at: row.try_get("enrolled_at")?,
        last_sync_at: row.try_get("last_sync_at")?,
        compliance_state: "unknown".into(),
        compliance_grace_expires_at: None,
        partner_threat_state: String::new(),
        management_state: row.try_get("management_state")?,
        properties: properties.0,
    })
}

fn devices_from_rows(rows: &[<Db as sqlx::Database>::Row]) -> Result<Vec<ManagedDevice>, StoreError> {
    rows.iter().map(device_from_row).collect()
}

/// A shown app: managed, or on a corporate device (Intune shows no personal apps of personal
/// devices). `a` is `device_apps`, `d` is `managed_devices`.
const APP_IS_SHOWN: &str = "(a.managed OR d.owner_type = 'company')";

const DETECTED_APP_SELECT: &str = "SELECT a.detected_app_id AS id, MIN(a.display_name) AS display_name, \
     MIN(a.version) AS version, MAX(a.size_in_bytes) AS size_in_bytes, COUNT(DISTINCT a.device_id) AS device_count, \
     MIN(a.publisher) AS publisher, MIN(d.platform) AS platform \
     FROM device_apps a JOIN managed_devices d ON d.tenant_id = a.tenant_id AND d.id = a.device_id";

fn detected_app_from_row(row: &<Db as sqlx::Database>::Row) -> Result<DetectedApp, StoreError> {
    let platform: String = row.try_get("platform")?;
    let platform = Platform::parse(&platform).ok_or_else(|| StoreError::Corrupt(format!("platform '{platform}'")))?;
    Ok(DetectedApp {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        version: row.try_get("version")?,
        size_in_bytes: row.try_get("size_in_bytes")?,
        device_count: row.try_get("device_count")?,
        publisher: row.try_get("publisher")?,
        platform: detected_app_platform(platform).to_string(),
    })
}

#[async_trait]
impl DeviceStore for StoreImpl {
    async fn insert_devices(&self, tenant_id: &str, devices: &[ManagedDevice], fx: &Effects) -> Result<(), StoreError> {
        change!(self, tenant_id, fx, |tx| {
            // 21 parameters a row: 500 rows stay under both databases' parameter limits.
            for chunk in devices.chunks(500) {
                let mut b =
                    sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO managed_devices ({DEVICE_TABLE_COLUMNS}) "));
                b.push_values(chunk, |mut row, d| {
                    row.push_bind(tenant_id)
                        .push_bind(&d.id)
                        .push_bind(&d.device_name)
                        .push_bind(&d.operating_system)
                        .push_bind(&d.os_version)
                        .push_bind(d.platform.as_str())
                        .push_bind(d.owner_type.as_str())
                        .push_bind(&d.user_id)
                        .push_bind(&d.user_principal_name)
                        .push_bind(&d.user_display_name)
                        .push_bind(&d.email_address)
                        .push_bind(&d.azure_ad_device_id)
                        .push_bind(&d.model)
                        .push_bind(&d.manufacturer)
                        .push_bind(&d.serial_number)
                        .push_bind(&d.imei)
                        .push_bind(&d.phone_number)
                        .push_bind(d.enrolled_at)
                        .push_bind(d.last_sync_at)
                        .push_bind(&d.management_state)
                        .push_bind(sqlx::types::Json(&d.properties));
                });
                b.build().execute(&mut *tx).await.map_err(map_unique)?;
                let mut b = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO device_compliance (tenant_id, device_id, compliance_state, compliance_grace_expires_at, \
                     partner_threat_state) ",
                );
                b.push_values(chunk, |mut row, d| {
                    row.push_bind(tenant_id)
                        .push_bind(&d.id)
                        .push_bind(&d.compliance_state)
                        .push_bind(d.compliance_grace_expires_at)
                        .push_bind(&d.partner_threat_state);
                });
                b.build().execute(&mut *tx).await?;
            }
        })?;
        Ok(())
    }

    async fn get_device(&self, tenant_id: &str, id: &str) -> Result<Option<ManagedDevice>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM device_view WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| device_from_row(&r)).transpose()
    }

    async fn get_device_versioned(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(Option<i64>, Option<ManagedDevice>), StoreError> {
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "SELECT t.cache_version AS tenant_cache_version, {} FROM tenants t \
                 LEFT JOIN device_view d ON d.tenant_id = t.id AND d.id = $2 WHERE t.id = $1",
                device_columns_of_d()
            )
        });
        let Some(row) = sqlx::query(sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok((None, None));
        };
        let version: i64 = row.try_get("tenant_cache_version")?;
        let found: Option<String> = row.try_get("id")?;
        let device = match found {
            Some(_) => Some(device_from_row(&row)?),
            None => None,
        };
        Ok((Some(version), device))
    }

    async fn find_device_by_entra_id(
        &self,
        tenant_id: &str,
        entra_id: &str,
    ) -> Result<Option<ManagedDevice>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM device_view WHERE tenant_id = $1 AND azure_ad_device_id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(entra_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| device_from_row(&r)).transpose()
    }

    async fn list_devices(&self, tenant_id: &str, query: &ListQuery) -> Result<ListPage<ManagedDevice>, StoreError> {
        // Placeholders of the scope start at $2, after the tenant id.
        let (entity, scope) = match &query.scope {
            ListScope::All => (super::columns::devices(dialect()), None),
            ListScope::UserDevices(user_id) => (
                super::columns::devices(dialect()),
                Some(SqlFragment {
                    sql: "user_id = $2".into(),
                    binds: vec![SqlValue::Text(user_id.clone())],
                }),
            ),
            ListScope::PartnerDevices(platforms) => {
                if platforms.is_empty() {
                    return Ok(ListPage {
                        items: Vec::new(),
                        total: query.count.then_some(0),
                    });
                }
                let placeholders = (2..2 + platforms.len()).map(|i| format!("${i}")).collect::<Vec<_>>();
                (
                    &super::columns::PARTNER_DEVICES,
                    Some(SqlFragment {
                        sql: format!("platform IN ({})", placeholders.join(", ")),
                        binds: platforms
                            .iter()
                            .map(|p| SqlValue::Text(p.as_str().to_string()))
                            .collect(),
                    }),
                )
            }
        };
        let (rows, total) = list_tenant_rows(
            self.reader(),
            DEVICE_COLUMNS,
            // The verdicts' side of the view's join is bound too (migration 0020).
            Listed {
                table: "device_view",
                also_keyed: Some("verdict_device_id"),
            },
            tenant_id,
            entity,
            scope,
            query,
        )
        .await?;
        Ok(ListPage {
            items: devices_from_rows(&rows)?,
            total,
        })
    }

    async fn update_device(&self, d: &ManagedDevice, fx: &Effects) -> Result<bool, StoreError> {
        // Compliance and the partner's threat state are evaluation's and ingest's to write: a
        // request that read the device earlier never puts back what it read.
        change_one!(self, &d.tenant_id, fx, |tx| {
            let updated = sqlx::query(
                "UPDATE managed_devices SET device_name = $3, operating_system = $4, os_version = $5, platform = $6, \
             owner_type = $7, user_id = $8, user_principal_name = $9, user_display_name = $10, email_address = $11, \
             model = $12, manufacturer = $13, serial_number = $14, imei = $15, phone_number = $16, last_sync_at = $17, \
             management_state = $18, properties = $19 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&d.tenant_id)
            .bind(&d.id)
            .bind(&d.device_name)
            .bind(&d.operating_system)
            .bind(&d.os_version)
            .bind(d.platform.as_str())
            .bind(d.owner_type.as_str())
            .bind(&d.user_id)
            .bind(&d.user_principal_name)
            .bind(&d.user_display_name)
            .bind(&d.email_address)
            .bind(&d.model)
            .bind(&d.manufacturer)
            .bind(&d.serial_number)
            .bind(&d.imei)
            .bind(&d.phone_number)
            .bind(d.last_sync_at)
            .bind(&d.management_state)
            .bind(sqlx::types::Json(&d.properties))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            updated
        })
    }

    async fn delete_device(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError> {
        let done = change!(self, tenant_id, fx, |tx| {
            let entra_id: Option<String> =
                sqlx::query_scalar("SELECT azure_ad_device_id FROM managed_devices WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(entra_id) = entra_id else {
                return Ok(Some(false));
            };
            sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND member_id = $2")
                .bind(tenant_id)
                .bind(&entra_id)
                .execute(&mut *tx)
                .await?;
            // PostgreSQL keeps no key from the queue to the device (see migration 0008).
            sqlx::query("DELETE FROM reevaluation_queue WHERE tenant_id = $1 AND device_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // Its results: no key ties them to the device on PostgreSQL (see migration 0011).
            for table in ["device_policy_states", "fired_actions"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND device_id = $2"))
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM device_apps WHERE tenant_id = $1 AND device_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM managed_devices WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            true
        })?;
        Ok(done == Some(true))
    }

    async fn set_device_apps(&self, tenant_id: &str, device_id: &str, apps: &[DeviceApp]) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let platform: Option<String> =
            sqlx::query_scalar("SELECT platform FROM managed_devices WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(device_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(platform) = platform else {
            return Ok(false);
        };
        let platform =
            Platform::parse(&platform).ok_or_else(|| StoreError::Corrupt(format!("platform '{platform}'")))?;
        let app_platform = detected_app_platform(platform);
        sqlx::query("DELETE FROM device_apps WHERE tenant_id = $1 AND device_id = $2")
            .bind(tenant_id)
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        for chunk in apps.chunks(1000) {
            let mut b = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO device_apps (tenant_id, device_id, bundle_id, display_name, version, managed, size_in_bytes, \
                 publisher, detected_app_id) ",
            );
            b.push_values(chunk, |mut row, a| {
                row.push_bind(tenant_id)
                    .push_bind(device_id)
                    .push_bind(&a.bundle_id)
                    .push_bind(&a.display_name)
                    .push_bind(&a.version)
                    .push_bind(a.managed)
                    .push_bind(a.size_in_bytes)
                    .push_bind(&a.publisher)
                    .push_bind(detected_app_id(app_platform, &a.display_name, &a.version));
            });
            b.build().execute(&mut *tx).await.map_err(map_unique)?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn device_apps(&self, tenant_id: &str, device_id: &str) -> Result<Vec<DeviceApp>, StoreError> {
        let rows = sqlx::query(
            "SELECT bundle_id, display_name, version, managed, size_in_bytes, publisher FROM device_apps \
             WHERE tenant_id = $1 AND device_id = $2 ORDER BY bundle_id",
        )
        .bind(tenant_id)
        .bind(device_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceApp {
                    bundle_id: r.try_get("bundle_id")?,
                    display_name: r.try_get("display_name")?,
                    version: r.try_get("version")?,
                    managed: r.try_get("managed")?,
                    size_in_bytes: r.try_get("size_in_bytes")?,
                    publisher: r.try_get("publisher")?,
                })
            })
            .collect()
    }

    async fn list_detected_apps(
        &self,
        tenant_id: &str,
        query: &ListQuery,
    ) -> Result<ListPage<DetectedApp>, StoreError> {
        let sql = format!(
            "{DETECTED_APP_SELECT} WHERE a.tenant_id = $1 AND {APP_IS_SHOWN} GROUP BY a.detected_app_id \
             ORDER BY a.detected_app_id LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(query.limit as i64)
            .bind(query.offset as i64)
            .fetch_all(self.reader())
            .await?;
        let items = rows.iter().map(detected_app_from_row).collect::<Result<Vec<_>, _>>()?;
        let total = if query.count {
            let sql = format!(
                "SELECT COUNT(DISTINCT a.detected_app_id) FROM device_apps a JOIN managed_devices d \
                 ON d.tenant_id = a.tenant_id AND d.id = a.device_id WHERE a.tenant_id = $1 AND {APP_IS_SHOWN}"
            );
            Some(
                sqlx::query_scalar::<_, i64>(&sql)
                    .bind(tenant_id)
                    .fetch_one(self.reader())
                    .await?,
            )
        } else {
            None
        };
        Ok(ListPage { items, total })
    }

    async fn get_detected_app(&self, tenant_id: &str, id: &str) -> Result<Option<DetectedApp>, StoreError> {
        let sql = format!(
            "{DETECTED_APP_SELECT} WHERE a.tenant_id = $1 AND a.detected_app_id = $2 AND {APP_IS_SHOWN} \
             GROUP BY a.detected_app_id"
        );
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| detected_app_from_row(&r)).transpose()
    }

    async fn devices_with_app(
        &self,
        tenant_id: &str,
        detected_app_id: &str,
        query: &ListQuery,
    ) -> Result<ListPage<ManagedDevice>, StoreError> {
        let sql = format!(
            "SELECT {} FROM device_view d WHERE d.tenant_id = $1 AND EXISTS (SELECT 1 FROM device_apps a \
             WHERE a.tenant_id = d.tenant_id AND a.device_id = d.id AND a.detected_app_id = $2 AND {APP_IS_SHOWN}) \
             ORDER BY d.id LIMIT $3 OFFSET $4",
            device_columns_of_d()
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(detected_app_id)
            .bind(query.limit as i64)
            .bind(query.offset as i64)
            .fetch_all(self.reader())
            .await?;
        Ok(ListPage {
            items: devices_from_rows(&rows)?,
            total: None,
        })
    }

    async fn detected_apps_of_device(&self, tenant_id: &str, device_id: &str) -> Result<Vec<DetectedApp>, StoreError> {
        // The same grouping, so that deviceCount is the app's count across the tenant.
        let sql = format!(
            "{DETECTED_APP_SELECT} WHERE a.tenant_id = $1 AND {APP_IS_SHOWN} AND a.detected_app_id IN \
             (SELECT s.detected_app_id FROM device_apps s JOIN managed_devices sd ON sd.tenant_id = s.tenant_id \
             AND sd.id = s.device_id WHERE s.tenant_id = $1 AND s.device_id = $2 AND (s.managed OR sd.owner_type = 'company')) \
             GROUP BY a.detected_app_id ORDER BY a.detected_app_id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(device_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(detected_app_from_row).collect()
    }
}
