// `DirectoryStore` for both backends; see sql_impl.rs.

const USER_COLUMNS: &str =
    "tenant_id, id, user_principal_name, display_name, mail, account_enabled, password_hash, created_at, properties";

fn user_from_row(row: &<Db as sqlx::Database>::Row) -> Result<User, sqlx::Error> {
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    Ok(User {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        user_principal_name: row.try_get("user_principal_name")?,
        display_name: row.try_get("display_name")?,
        mail: row.try_get("mail")?,
        account_enabled: row.try_get("account_enabled")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        properties: properties.0,
    })
}

const GROUP_COLUMNS: &str =
    "tenant_id, id, display_name, mail_nickname, security_enabled, mail_enabled, created_at, properties";

fn group_from_row(row: &<Db as sqlx::Database>::Row) -> Result<Group, sqlx::Error> {
    let properties: sqlx::types::Json<serde_json::Map<String, serde_json::Value>> = row.try_get("properties")?;
    Ok(Group {
        tenant_id: row.try_get("tenant_id")?,
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        mail_nickname: row.try_get("mail_nickname")?,
        security_enabled: row.try_get("security_enabled")?,
        mail_enabled: row.try_get("mail_enabled")?,
        created_at: row.try_get("created_at")?,
        properties: properties.0,
    })
}

/// A table (or view) to list, and a column equal to `id` (a join's other key) that keyset
/// pages are bound on too.
#[derive(Clone, Copy)]
struct Listed<'a> {
    table: &'a str,
    also_keyed: Option<&'a str>,
}

impl<'a> Listed<'a> {
    fn table(table: &'a str) -> Self {
        Listed {
            table,
            also_keyed: None,
        }
    }
}

/// A tenant's page of `table`, whose columns `entity` describes: `$1` is the tenant, the
/// placeholders of `scope` (a condition of the store's own) follow, then the filter's, then
/// limit and offset. Keyset paging on `id` when `query.after` is set and there is no order.
async fn list_tenant_rows<'e, E>(
    executor: E,
    columns: &str,
    table: Listed<'_>,
    tenant_id: &str,
    entity: &filter_sql::Entity,
    scope: Option<SqlFragment>,
    query: &ListQuery,
) -> Result<(Vec<<Db as sqlx::Database>::Row>, Option<i64>), StoreError>
where
    E: sqlx::Executor<'e, Database = Db> + Copy,
{
    let first = 2 + scope.as_ref().map_or(0, |s| s.binds.len());
    let (filter, order_by) = list_sql(query, entity, first)?;
    let mut conditions = String::from("tenant_id = $1");
    let mut binds = Vec::new();
    for part in scope.into_iter().chain(filter) {
        conditions.push_str(&format!(" AND ({})", part.sql));
        binds.extend(part.binds);
    }
    let count = if query.count {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {conditions}", table.table);
        let row = bind_values(sqlx::query(&sql).bind(tenant_id), &binds)
            .fetch_one(executor)
            .await?;
        Some(row.try_get::<i64, _>(0)?)
    } else {
        None
    };
    let mut n = binds.len() + 1;
    let keyset = order_by.is_none() && query.after.is_some();
    if keyset {
        n += 1;
        conditions.push_str(&format!(" AND id > ${n}"));
        // A join's other key is bound too, so that each page starts at the bound on both
        // sides (see device_view).
        if let Some(other) = table.also_keyed {
            conditions.push_str(&format!(" AND {other} > ${n}"));
        }
    }
    let order = match order_by {
        Some(o) => format!("{o}, id"),
        None => "id".to_string(),
    };
    let sql = format!(
        "SELECT {columns} FROM {} WHERE {conditions} ORDER BY {order} LIMIT ${} OFFSET ${}",
        table.table,
        n + 1,
        n + 2
    );
    let mut q = bind_values(sqlx::query(&sql).bind(tenant_id), &binds);
    if keyset {
        q = q.bind(query.after.as_deref());
    }
    let offset = if keyset { 0 } else { query.offset as i64 };
    let rows = q.bind(query.limit as i64).bind(offset).fetch_all(executor).await?;
    Ok((rows, count))
}

#[async_trait]
impl DirectoryStore for StoreImpl {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&user.tenant_id)
        .bind(&user.id)
        .bind(&user.user_principal_name)
        .bind(&user.display_name)
        .bind(&user.mail)
        .bind(user.account_enabled)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .bind(sqlx::types::Json(&user.properties))
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn get_user(&self, tenant_id: &str, id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| user_from_row(&r)).transpose()?)
    }

    async fn find_user_by_upn(&self, tenant_id: &str, upn: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND lower({}) = $2",
            text_key("user_principal_name")
        );
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(upn.to_ascii_lowercase())
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| user_from_row(&r)).transpose()?)
    }

    async fn list_users(&self, tenant_id: &str, query: &ListQuery) -> Result<ListPage<User>, StoreError> {
        debug_assert_eq!(query.scope, ListScope::All, "only device lists are scoped");
        let (rows, total) = list_tenant_rows(
            self.reader(),
            USER_COLUMNS,
            Listed::table("users"),
            tenant_id,
            super::columns::users(),
            None,
            query,
        )
        .await?;
        let items = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(ListPage { items, total })
    }

    async fn update_user(&self, user: &User, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, &user.tenant_id, fx, |tx| {
            lock_devices_where(&mut tx, &user.tenant_id, "user_id = $2", &user.id).await?;
            let updated = sqlx::query(
                "UPDATE users SET user_principal_name = $3, display_name = $4, mail = $5, account_enabled = $6, \
             password_hash = $7, properties = $8 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&user.tenant_id)
            .bind(&user.id)
            .bind(&user.user_principal_name)
            .bind(&user.display_name)
            .bind(&user.mail)
            .bind(user.account_enabled)
            .bind(&user.password_hash)
            .bind(sqlx::types::Json(&user.properties))
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?
            .rows_affected();
            sqlx::query(
                "UPDATE managed_devices SET user_principal_name = $3, user_display_name = $4, email_address = $5 \
             WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(&user.tenant_id)
            .bind(&user.id)
            .bind(&user.user_principal_name)
            .bind(&user.display_name)
            .bind(&user.mail)
            .execute(&mut *tx)
            .await?;
            updated
        })
    }

    async fn delete_user(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError> {
        let done = change!(self, tenant_id, fx, |tx, gen| {
            lock_devices_where(&mut tx, tenant_id, "user_id = $2", id).await?;
            // Its devices lose their primary user, and with it user-targeted policies: queued while
            // they can still be found through the user.
            enqueue_in(
                &mut tx,
                tenant_id,
                &DeviceScope::Members(vec![id.to_string()]),
                gen,
                self.wall(),
            )
            .await?;
            sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND member_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE managed_devices SET user_id = NULL, user_principal_name = NULL, user_display_name = NULL, \
             email_address = NULL WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let deleted = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted != 1 {
                return Ok(Some(false));
            }
            true
        })?;
        Ok(done == Some(true))
    }

    async fn insert_group(&self, group: &Group) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&group.tenant_id)
        .bind(&group.id)
        .bind(&group.display_name)
        .bind(&group.mail_nickname)
        .bind(group.security_enabled)
        .bind(group.mail_enabled)
        .bind(group.created_at)
        .bind(sqlx::types::Json(&group.properties))
        .execute(self.writer())
        .await
        .map_err(map_unique)?;
        Ok(())
    }

    async fn get_group(&self, tenant_id: &str, id: &str) -> Result<Option<Group>, StoreError> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| group_from_row(&r)).transpose()?)
    }

    async fn list_groups(&self, tenant_id: &str, query: &ListQuery) -> Result<ListPage<Group>, StoreError> {
        debug_assert_eq!(query.scope, ListScope::All, "only device lists are scoped");
        let (rows, total) = list_tenant_rows(
            self.reader(),
            GROUP_COLUMNS,
            Listed::table("groups"),
            tenant_id,
            super::columns::groups(),
            None,
            query,
        )
        .await?;
        let items = rows.iter().map(group_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(ListPage { items, total })
    }

    async fn update_group(&self, group: &Group) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE groups SET display_name = $3, mail_nickname = $4, security_enabled = $5, mail_enabled = $6, \
             properties = $7 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&group.tenant_id)
        .bind(&group.id)
        .bind(&group.display_name)
        .bind(&group.mail_nickname)
        .bind(group.security_enabled)
        .bind(group.mail_enabled)
        .bind(sqlx::types::Json(&group.properties))
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn delete_group(&self, tenant_id: &str, id: &str, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, tenant_id, fx, |tx| {
            sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM groups WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            deleted
        })
    }

    async fn add_member(&self, tenant_id: &str, member: &Member, fx: &Effects) -> Result<bool, StoreError> {
        change_one!(self, tenant_id, fx, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO group_members (tenant_id, group_id, member_id, member_kind) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(&member.group_id)
            .bind(&member.member_id)
            .bind(member.kind.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            inserted
        })
    }

    async fn remove_member(
        &self,
        tenant_id: &str,
        group_id: &str,
        member_id: &str,
        fx: &Effects,
    ) -> Result<bool, StoreError> {
        change_one!(self, tenant_id, fx, |tx| {
            let deleted =
                sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3")
                    .bind(tenant_id)
                    .bind(group_id)
                    .bind(member_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            deleted
        })
    }

    async fn list_members(
        &self,
        tenant_id: &str,
        group_id: &str,
        query: &ListQuery,
    ) -> Result<ListPage<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_id, member_id, member_kind FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
             ORDER BY member_id LIMIT $3 OFFSET $4",
        )
        .bind(tenant_id)
        .bind(group_id)
        .bind(query.limit as i64)
        .bind(query.offset as i64)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                let kind: String = r.try_get("member_kind")?;
                Ok(Member {
                    group_id: r.try_get("group_id")?,
                    member_id: r.try_get("member_id")?,
                    kind: MemberKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("member kind '{kind}'")))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let total = if query.count {
            let row = sqlx::query("SELECT COUNT(*) FROM group_members WHERE tenant_id = $1 AND group_id = $2")
                .bind(tenant_id)
                .bind(group_id)
                .fetch_one(self.reader())
                .await?;
            Some(row.try_get::<i64, _>(0)?)
        } else {
            None
        };
        Ok(ListPage { items, total })
    }

    async fn groups_of(&self, tenant_id: &str, member_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE tenant_id = $1 AND member_id = $2 ORDER BY group_id",
        )
        .bind(tenant_id)
        .bind(member_id)
        .fetch_all(self.reader())
        .await?)
    }
}
