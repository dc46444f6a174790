// `RbacStore` for both backends; see sql_impl.rs.

const ROLE_COLUMNS: &str =
    "tenant_id, id, display_name, description, permissions, role_scope_tag_ids, created_at, revision";

fn role_from_row(row: &<Db as sqlx::Database>::Row) -> Result<crate::domain::rbac::RoleDefinition, StoreError> {
    let permissions: sqlx::types::Json<Vec<crate::domain::rbac::RolePermission>> = row.try_get("permissions")?;
    let tags: sqlx::types::Json<Vec<String>> = row.try_get("role_scope_tag_ids")?;
    Ok(crate::domain::rbac::RoleDefinition {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        is_built_in: false,
        permissions: permissions.0,
        role_scope_tag_ids: tags.0,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
    })
}

const ASSIGNMENT_COLUMNS: &str = "tenant_id, id, role_definition_id, properties, created_at, revision";

fn assignment_from_row(row: &<Db as sqlx::Database>::Row) -> Result<crate::domain::rbac::RoleAssignment, StoreError> {
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    Ok(crate::domain::rbac::RoleAssignment {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        role_definition_id: row.try_get("role_definition_id")?,
        properties: properties.0,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
    })
}

#[async_trait]
impl RbacStore for StoreImpl {
    async fn insert_role_definition(&self, r: &RoleDefinition) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, &r.tenant_id).await?;
        sqlx::query(&format!(
            "INSERT INTO role_definitions ({ROLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&r.tenant_id)
        .bind(&r.id)
        .bind(&r.display_name)
        .bind(&r.description)
        .bind(sqlx::types::Json(&r.permissions))
        .bind(sqlx::types::Json(&r.role_scope_tag_ids))
        .bind(r.created_at)
        .bind(r.revision)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_role_definition(&self, tenant_id: &str, id: &str) -> Result<Option<RoleDefinition>, StoreError> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM role_definitions WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| role_from_row(&r)).transpose()
    }

    async fn list_role_definitions(&self, tenant_id: &str) -> Result<Vec<RoleDefinition>, StoreError> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM role_definitions WHERE tenant_id = $1 ORDER BY created_at, id");
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(self.reader()).await?;
        rows.iter().map(role_from_row).collect()
    }

    async fn update_role_definition(&self, r: &RoleDefinition) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, &r.tenant_id).await?;
        let updated = sqlx::query(
            "UPDATE role_definitions SET display_name = $3, description = $4, permissions = $5, \
             role_scope_tag_ids = $6, revision = revision + 1 WHERE tenant_id = $1 AND id = $2 AND revision = $7",
        )
        .bind(&r.tenant_id)
        .bind(&r.id)
        .bind(&r.display_name)
        .bind(&r.description)
        .bind(sqlx::types::Json(&r.permissions))
        .bind(sqlx::types::Json(&r.role_scope_tag_ids))
        .bind(r.revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            tx.commit().await?;
        }
        Ok(updated == 1)
    }

    async fn delete_role_definition(&self, tenant_id: &str, id: &str) -> Result<Option<bool>, StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, tenant_id).await?;
        let exists = sqlx::query("SELECT 1 FROM role_definitions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let assigned = sqlx::query("SELECT 1 FROM role_assignments WHERE tenant_id = $1 AND role_definition_id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if assigned {
            return Ok(Some(false));
        }
        sqlx::query("DELETE FROM role_definitions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    async fn insert_role_assignment(&self, a: &RoleAssignment) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, &a.tenant_id).await?;
        sqlx::query(&format!(
            "INSERT INTO role_assignments ({ASSIGNMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&a.tenant_id)
        .bind(&a.id)
        .bind(&a.role_definition_id)
        .bind(sqlx::types::Json(&a.properties))
        .bind(a.created_at)
        .bind(a.revision)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_role_assignment(&self, tenant_id: &str, id: &str) -> Result<Option<RoleAssignment>, StoreError> {
        let sql = format!("SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| assignment_from_row(&r)).transpose()
    }

    async fn list_role_assignments(
        &self,
        tenant_id: &str,
        role_definition_id: Option<&str>,
    ) -> Result<Vec<RoleAssignment>, StoreError> {
        let rows = match role_definition_id {
            Some(role) => {
                let sql = format!(
                    "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE tenant_id = $1 \
                     AND role_definition_id = $2 ORDER BY created_at, id"
                );
                sqlx::query(&sql)
                    .bind(tenant_id)
                    .bind(role)
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments WHERE tenant_id = $1 ORDER BY created_at, id"
                );
                sqlx::query(&sql).bind(tenant_id).fetch_all(self.reader()).await?
            }
        };
        rows.iter().map(assignment_from_row).collect()
    }

    async fn update_role_assignment(&self, a: &RoleAssignment) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, &a.tenant_id).await?;
        let updated = sqlx::query(
            "UPDATE role_assignments SET role_definition_id = $3, properties = $4, revision = revision + 1 \
             WHERE tenant_id = $1 AND id = $2 AND revision = $5",
        )
        .bind(&a.tenant_id)
        .bind(&a.id)
        .bind(&a.role_definition_id)
        .bind(sqlx::types::Json(&a.properties))
        .bind(a.revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            tx.commit().await?;
        }
        Ok(updated == 1)
    }

    async fn delete_role_assignment(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        bump_cache_version(&mut tx, tenant_id).await?;
        let deleted = sqlx::query("DELETE FROM role_assignments WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            tx.commit().await?;
        }
        Ok(deleted == 1)
    }

    async fn set_directory_roles(
        &self,
        tenant_id: &str,
        user_id: &str,
        role_ids: &[String],
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        sqlx::query("DELETE FROM user_directory_roles WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for role in role_ids {
            sqlx::query(
                "INSERT INTO user_directory_roles (tenant_id, user_id, role_template_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(role)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn directory_roles(&self, tenant_id: &str, user_id: &str) -> Result<Vec<String>, StoreError> {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role_template_id FROM user_directory_roles WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY role_template_id",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(self.reader())
        .await?;
        Ok(roles)
    }
}
