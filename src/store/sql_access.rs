// `AccessStore` for both backends; see sql_impl.rs.

#[async_trait]
impl AccessStore for StoreImpl {
    async fn list_ca_policies(&self, tenant_id: &str) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<sqlx::types::Json<Value>> =
            sqlx::query_scalar("SELECT document FROM ca_policies WHERE tenant_id = $1 ORDER BY created_at, id")
                .bind(tenant_id)
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|d| d.0).collect())
    }

    async fn insert_ca_policy(
        &self,
        tenant_id: &str,
        id: &str,
        document: &Value,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO ca_policies (tenant_id, id, document, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id)
            .bind(id)
            .bind(sqlx::types::Json(document))
            .bind(created_at)
            .execute(self.writer())
            .await
            .map_err(map_unique)?;
        Ok(())
    }

    async fn update_ca_policy(&self, tenant_id: &str, id: &str, document: &Value) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE ca_policies SET document = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .bind(sqlx::types::Json(document))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_ca_policy(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM ca_policies WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_sign_in(
        &self,
        tenant_id: &str,
        id: &str,
        created_at: DateTime<Utc>,
        document: &Value,
        keep: i64,
    ) -> Result<(), StoreError> {
        // The next number of the tenant's log; two sign-ins taking the same one at once: the
        // second tries again.
        for _ in 0..5 {
            let mut tx = self.writer().begin().await?;
            let inserted: Result<i64, StoreError> = sqlx::query_scalar(
                "INSERT INTO sign_ins (tenant_id, seq, id, created_at, document) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM sign_ins WHERE tenant_id = $1 RETURNING seq",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(created_at)
            .bind(sqlx::types::Json(document))
            .fetch_one(&mut *tx)
            .await
            .map_err(map_unique);
            let seq = match inserted {
                Ok(seq) => seq,
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            };
            sqlx::query("DELETE FROM sign_ins WHERE tenant_id = $1 AND seq <= $2")
                .bind(tenant_id)
                .bind(seq - keep)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(());
        }
        Err(StoreError::Conflict("sign_ins".into()))
    }

    async fn list_sign_ins(&self, tenant_id: &str) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<sqlx::types::Json<Value>> =
            sqlx::query_scalar("SELECT document FROM sign_ins WHERE tenant_id = $1 ORDER BY seq DESC")
                .bind(tenant_id)
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|d| d.0).collect())
    }
}
