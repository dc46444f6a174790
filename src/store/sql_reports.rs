// `ReportStore` for both backends; see sql_impl.rs.

const EXPORT_JOB_COLUMNS: &str =
    "tenant_id, id, report_name, request, status, requested_at, completed_at, expires_at, token";

fn export_job_from_row(row: &<Db as sqlx::Database>::Row) -> Result<ExportJob, StoreError> {
    let request: sqlx::types::Json<crate::domain::reports::ExportRequest> = row.try_get("request")?;
    Ok(ExportJob {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        report_name: row.try_get("report_name")?,
        request: request.0,
        status: row.try_get("status")?,
        requested_at: row.try_get("requested_at")?,
        completed_at: row.try_get("completed_at")?,
        expires_at: row.try_get("expires_at")?,
        token: row.try_get("token")?,
    })
}

#[async_trait]
impl ReportStore for StoreImpl {
    async fn insert_export_job(&self, j: &ExportJob) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO report_export_jobs ({EXPORT_JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&j.tenant_id)
        .bind(&j.id)
        .bind(&j.report_name)
        .bind(sqlx::types::Json(&j.request))
        .bind(&j.status)
        .bind(j.requested_at)
        .bind(j.completed_at)
        .bind(j.expires_at)
        .bind(&j.token)
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn get_export_job(&self, tenant_id: &str, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let sql = format!("SELECT {EXPORT_JOB_COLUMNS} FROM report_export_jobs WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| export_job_from_row(&r)).transpose()
    }

    async fn list_export_jobs(&self, tenant_id: &str) -> Result<Vec<ExportJob>, StoreError> {
        let sql = format!(
            "SELECT {EXPORT_JOB_COLUMNS} FROM report_export_jobs WHERE tenant_id = $1 ORDER BY requested_at, id"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(self.reader()).await?;
        rows.iter().map(export_job_from_row).collect()
    }

    async fn next_export_job(&self, tenant_id: &str) -> Result<Option<ExportJob>, StoreError> {
        let sql = format!(
            "SELECT {EXPORT_JOB_COLUMNS} FROM report_export_jobs WHERE tenant_id = $1 AND status = 'notStarted' \
             ORDER BY requested_at, id LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(tenant_id).fetch_optional(self.writer()).await?;
        row.map(|r| export_job_from_row(&r)).transpose()
    }

    async fn requeue_export_jobs(&self, tenant_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE report_export_jobs SET status = 'notStarted' WHERE tenant_id = $1 AND status = 'inProgress'",
        )
        .bind(tenant_id)
        .execute(self.writer())
        .await?
        .rows_affected())
    }

    async fn set_export_job_status(&self, tenant_id: &str, id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE report_export_jobs SET status = $4 WHERE tenant_id = $1 AND id = $2 AND status = $3")
                .bind(tenant_id)
                .bind(id)
                .bind(from)
                .bind(to)
                .execute(self.writer())
                .await?
                .rows_affected();
        Ok(updated == 1)
    }

    async fn complete_export_job(&self, j: &ExportJob, content: &[u8]) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE report_export_jobs SET status = 'completed', completed_at = $3, expires_at = $4, token = $5, \
             content = $6 WHERE tenant_id = $1 AND id = $2 AND status = 'inProgress'",
        )
        .bind(&j.tenant_id)
        .bind(&j.id)
        .bind(j.completed_at)
        .bind(j.expires_at)
        .bind(&j.token)
        .bind(content)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn export_job_file(&self, tenant_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let content: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT content FROM report_export_jobs WHERE tenant_id = $1 AND id = $2 AND status = 'completed'",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(content.flatten())
    }

    async fn drop_expired_export_files(&self, tenant_id: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE report_export_jobs SET content = NULL \
             WHERE tenant_id = $1 AND expires_at <= $2 AND content IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(now)
        .execute(self.writer())
        .await?
        .rows_affected())
    }
}
