//! `$filter` and `$orderby` translated into parameterized SQL for SQLite and PostgreSQL, with
//! the semantics of the in-memory evaluator (`odata::memory`).
//!
//! Client-supplied values never reach the SQL text: every literal becomes a bind parameter.
//! The only things written into SQL are the static column expressions declared in an
//! [`Entity`] (see `columns.rs`) and fixed keywords.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::odata::{parse_datetime, CmpOp, Expr, Literal, ODataError, OrderBy, StrFunc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value to bind to a `$N` placeholder, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Float(f64),
    /// SQLite has no boolean type; sqlx binds this as 0/1, matching how it stores bools.
    Bool(bool),
    /// On SQLite timestamps are TEXT and compare as text, so this must be bound in the same
    /// representation the rows were written with (binding the `DateTime<Utc>` through sqlx,
    /// as for writes, gives that; the tests check ordering with fractional seconds).
    Timestamp(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    // No listed collection has a numeric column yet; the translation (and its tests) covers them.
    #[cfg_attr(not(test), allow(dead_code))]
    Int,
    Bool,
    Timestamp,
    #[cfg_attr(not(test), allow(dead_code))]
    Float,
    /// Members in camelCase, in the order of their underlying values (used for `gt`/`lt`).
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// OData property name or path (`settings/secureByDefault`), matched case-insensitively.
    pub property: &'static str,
    /// SQL expression, e.g. `device_name` or `d.os_version`.
    pub sql: &'static str,
    pub ty: ColType,
    pub filterable: bool,
    pub sortable: bool,
    /// For Text/Enum: compare ASCII case-insensitively.
    pub case_insensitive: bool,
}

impl Column {
    fn is_textual(&self) -> bool {
        matches!(self.ty, ColType::Text | ColType::Enum(_))
    }

    fn folds_case(&self) -> bool {
        self.case_insensitive && self.is_textual()
    }

    fn edm_type(&self) -> String {
        match self.ty {
            ColType::Text => "Edm.String".to_owned(),
            ColType::Int => "Edm.Int32".to_owned(),
            ColType::Bool => "Edm.Boolean".to_owned(),
            ColType::Timestamp => "Edm.DateTimeOffset".to_owned(),
            ColType::Float => "Edm.Double".to_owned(),
            ColType::Enum(_) => format!("microsoft.graph.{}", self.enum_name()),
        }
    }

    /// Graph names most enum types after the property that holds them.
    fn enum_name(&self) -> &'static str {
        self.property.rsplit('/').next().unwrap_or(self.property)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Entity {
    /// e.g. `microsoft.graph.managedDevice`.
    pub type_name: &'static str,
    pub columns: &'static [Column],
    /// Properties that exist on the type but have no column (selectable only). They get the
    /// "cannot be used in the $filter query option" error rather than "could not find".
    pub known_properties: &'static [&'static str],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlFragment {
    pub sql: String,
    /// `binds[i]` belongs to placeholder `$(first_placeholder + i)`.
    pub binds: Vec<SqlValue>,
}

/// A list query's `$filter` and `$orderby` as SQL for `entity`: the WHERE fragment, its
/// placeholders numbered from `first_placeholder`, and the ORDER BY list. The filter is
/// checked first, so that a query wrong in both is told about its filter.
pub fn translate(
    filter: Option<&Expr>,
    orderby: &[OrderBy],
    entity: &Entity,
    dialect: Dialect,
    first_placeholder: usize,
) -> Result<(Option<SqlFragment>, Option<String>), ODataError> {
    let filter = filter
        .map(|f| filter_sql(f, entity, dialect, first_placeholder))
        .transpose()?;
    let order = if orderby.is_empty() {
        None
    } else {
        Some(orderby_sql_for(orderby, entity, dialect)?)
    };
    Ok((filter, order))
}

/// Builds a WHERE-clause fragment (without the word WHERE) for `expr`. Placeholders are `$N`,
/// numbered from `first_placeholder` (which must be at least 1), so callers can put their own
/// `$1 = tenant_id` first. sqlx accepts `$N` for SQLite as well as PostgreSQL.
///
/// The result means the same on both dialects, NULLs and letter case included: text is
/// folded ASCII-only, case-sensitive matching stays case-sensitive on SQLite, and
/// comparisons follow OData's null rules (`x ne 'a'` matches a null x).
pub fn filter_sql(
    expr: &Expr,
    entity: &Entity,
    dialect: Dialect,
    first_placeholder: usize,
) -> Result<SqlFragment, ODataError> {
    debug_assert!(first_placeholder >= 1, "SQL placeholders start at $1");
    let mut builder = SqlBuilder {
        dialect,
        entity,
        next: first_placeholder.max(1),
        binds: Vec::new(),
    };
    let sql = builder.expr(expr, false)?;
    Ok(SqlFragment {
        sql: sql.text,
        binds: builder.binds,
    })
}

/// Builds an ORDER BY list (without the words ORDER BY), e.g.
/// `device_name DESC NULLS LAST, id ASC NULLS FIRST`. Callers append a unique tie-breaker.
///
/// NULL placement is spelled out because the backends' defaults differ (SQLite puts NULLs
/// first when ascending, PostgreSQL last); OData sorts null before any value. Case-insensitive
/// text columns sort by `lower(col)`; enum columns sort by declaration order, as OData orders
/// enums by their underlying value.
///
/// Without a dialect, text on PostgreSQL sorts by the database's collation and `lower()`
/// follows its locale, so the order matches SQLite's only for a database created with the
/// C collation; [`orderby_sql_for`] does not have that caveat.
#[cfg(test)]
fn orderby_sql(orderby: &[OrderBy], entity: &Entity) -> Result<String, ODataError> {
    orderby_list(orderby, entity, None)
}

/// Like [`orderby_sql`], but text sorts identically on both dialects: by code point, with
/// ASCII-only case folding for case-insensitive columns (`COLLATE "C"` on PostgreSQL).
pub fn orderby_sql_for(orderby: &[OrderBy], entity: &Entity, dialect: Dialect) -> Result<String, ODataError> {
    orderby_list(orderby, entity, Some(dialect))
}

fn orderby_list(orderby: &[OrderBy], entity: &Entity, dialect: Option<Dialect>) -> Result<String, ODataError> {
    let mut parts = Vec::with_capacity(orderby.len());
    for item in orderby {
        let column = find_column(entity, &item.property, "$orderby")?;
        if !column.sortable {
            return Err(ODataError::PropertyNotAllowed {
                property: item.property.clone(),
                option: "$orderby",
            });
        }
        let direction = if item.descending {
            "DESC NULLS LAST"
        } else {
            "ASC NULLS FIRST"
        };
        parts.push(format!("{} {direction}", sort_key(column, dialect)));
    }
    Ok(parts.join(", "))
}

fn sort_key(column: &Column, dialect: Option<Dialect>) -> String {
    let target = atom(column.sql);
    let collated = match dialect {
        Some(Dialect::Postgres) if column.is_textual() => format!("{target} COLLATE \"C\""),
        _ => target.into_owned(),
    };
    let folded = if column.folds_case() {
        format!("lower({collated})")
    } else {
        collated
    };
    let ColType::Enum(members) = column.ty else {
        return folded;
    };
    // Members are declared in code, not sent by the client, so writing them into the SQL
    // does not open an injection path; quotes are doubled all the same. Unknown stored
    // values map to NULL and sort with the nulls.
    let mut key = format!("CASE {folded}");
    for (index, member) in members.iter().enumerate() {
        let member = if column.case_insensitive {
            member.to_ascii_lowercase()
        } else {
            (*member).to_owned()
        };
        key.push_str(&format!(" WHEN '{}' THEN {index}", member.replace('\'', "''")));
    }
    key.push_str(" END");
    key
}

fn unknown_property(entity: &Entity, property: &str) -> ODataError {
    ODataError::UnknownProperty {
        property: property.to_owned(),
        type_name: entity.type_name.to_owned(),
    }
}

fn find_column(entity: &Entity, property: &str, option: &'static str) -> Result<&'static Column, ODataError> {
    if let Some(column) = entity
        .columns
        .iter()
        .find(|c| c.property.eq_ignore_ascii_case(property))
    {
        return Ok(column);
    }
    if entity.known_properties.iter().any(|k| k.eq_ignore_ascii_case(property)) {
        return Err(ODataError::PropertyNotAllowed {
            property: property.to_owned(),
            option,
        });
    }
    Err(unknown_property(entity, property))
}

/// Parenthesizes a column expression unless it is a plain (qualified) identifier, so that
/// appending `COLLATE`, `IS NULL` or an operator cannot change how it parses.
fn atom(sql: &str) -> Cow<'_, str> {
    if sql
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '"')
    {
        Cow::Borrowed(sql)
    } else {
        Cow::Owned(format!("({sql})"))
    }
}

fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// GLOB has no escape character; a one-character class matches a metacharacter literally.
fn escape_glob(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            _ => out.push(c),
        }
    }
    out
}

const SQL_FALSE: &str = "1 = 0";

/// A translated predicate, and whether it is already enclosed in parentheses (so NOT can
/// avoid doubling them).
struct Sql {
    text: String,
    enclosed: bool,
}

impl Sql {
    fn bare(text: String) -> Sql {
        Sql { text, enclosed: false }
    }

    fn enclose(text: String) -> Sql {
        Sql {
            text: format!("({text})"),
            enclosed: true,
        }
    }

    fn always_false() -> Sql {
        Sql::bare(SQL_FALSE.to_owned())
    }
}

struct SqlBuilder<'e> {
    dialect: Dialect,
    entity: &'e Entity,
    next: usize,
    binds: Vec<SqlValue>,
}

impl SqlBuilder<'_> {
    fn bind(&mut self, value: SqlValue) -> String {
        let placeholder = format!("${}", self.next);
        self.next += 1;
        self.binds.push(value);
        placeholder
    }

    /// Binds every value and returns the comma-separated placeholders.
    fn bind_list(&mut self, values: Vec<SqlValue>) -> String {
        values.into_iter().map(|v| self.bind(v)).collect::<Vec<_>>().join(", ")
    }

    fn filter_column(&self, property: &str) -> Result<&'static Column, ODataError> {
        let column = find_column(self.entity, property, "$filter")?;
        if !column.filterable {
            return Err(ODataError::PropertyNotAllowed {
                property: property.to_owned(),
                option: "$filter",
            });
        }
        Ok(column)
    }

    /// The left-hand side for comparing a column.
    ///
    /// Case folding is ASCII-only on both backends: SQLite's built-in lower() folds only
    /// ASCII, and PostgreSQL's lower() does the same under the "C" collation, whereas under
    /// the database's default collation it would also fold other letters. The bound values
    /// are lower-cased with `to_ascii_lowercase` to match. Ordering comparisons on text use
    /// "C" on PostgreSQL for the same reason: it orders by code point, as SQLite's BINARY
    /// collation does, instead of by the locale.
    fn lhs(&self, column: &Column, ordering: bool) -> String {
        let target = atom(column.sql);
        match (self.dialect, column.folds_case()) {
            (Dialect::Sqlite, true) => format!("lower({target})"),
            (Dialect::Postgres, true) => format!("lower({target} COLLATE \"C\")"),
            (Dialect::Postgres, false) if ordering && column.is_textual() => {
                format!("{target} COLLATE \"C\"")
            }
            _ => target.into_owned(),
        }
    }

    fn fold(column: &Column, value: SqlValue) -> SqlValue {
        match value {
            SqlValue::Text(s) if column.folds_case() => SqlValue::Text(s.to_ascii_lowercase()),
            other => other,
        }
    }

    /// `in_not` is true below any NOT. SQL comparisons are three-valued (NULL when the column
    /// is NULL) while OData's are two-valued (`null eq 'a'` is false), so under NOT a
    /// comparison must be guarded with IS NOT NULL or `not (x eq 'a')` would drop rows where
    /// x is null. Outside NOT the guard is unnecessary: WHERE treats NULL as false and AND/OR
    /// are monotone. String functions are left three-valued, as OData defines them to return
    /// null for a null argument.
    fn expr(&mut self, expr: &Expr, in_not: bool) -> Result<Sql, ODataError> {
        match expr {
            Expr::And(left, right) => {
                let left = self.expr(left, in_not)?.text;
                let right = self.expr(right, in_not)?.text;
                Ok(Sql::enclose(format!("{left} AND {right}")))
            }
            Expr::Or(left, right) => {
                let left = self.expr(left, in_not)?.text;
                let right = self.expr(right, in_not)?.text;
                Ok(Sql::enclose(format!("{left} OR {right}")))
            }
            Expr::Not(inner) => {
                let inner = self.expr(inner, true)?;
                Ok(Sql::enclose(if inner.enclosed {
                    format!("NOT {}", inner.text)
                } else {
                    format!("NOT ({})", inner.text)
                }))
            }
            Expr::Compare { property, op, value } => self.compare(property, *op, value, in_not),
            Expr::In { property, values } => self.in_list(property, values, in_not),
            Expr::Func { func, property, value } => self.function(*func, property, value),
        }
    }

    fn compare(&mut self, property: &str, op: CmpOp, value: &Literal, in_not: bool) -> Result<Sql, ODataError> {
        let column = self.filter_column(property)?;
        let target = atom(column.sql);
        if *value == Literal::Null {
            return Ok(match op {
                CmpOp::Eq => Sql::bare(format!("{target} IS NULL")),
                CmpOp::Ne => Sql::bare(format!("{target} IS NOT NULL")),
                // OData: an ordering comparison with null is false.
                _ => Sql::always_false(),
            });
        }
        let bound = coerce(column, value, op.kind_name())?;
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        if let (ColType::Enum(members), true, SqlValue::Text(member)) = (column.ty, ordering, &bound) {
            // Enums order by underlying value, i.e. declaration order, not by name.
            let index = members
                .iter()
                .position(|m| m == member)
                .expect("coerce returns a declared member");
            let range = match op {
                CmpOp::Gt => &members[index + 1..],
                CmpOp::Ge => &members[index..],
                CmpOp::Lt => &members[..index],
                _ => &members[..=index],
            };
            if range.is_empty() {
                return Ok(Sql::always_false());
            }
            let values = range
                .iter()
                .map(|m| Self::fold(column, SqlValue::Text((*m).to_owned())))
                .collect();
            let lhs = self.lhs(column, false);
            let list = self.bind_list(values);
            return Ok(guard(&target, format!("{lhs} IN ({list})"), in_not));
        }
        let lhs = self.lhs(column, ordering);
        let placeholder = self.bind(Self::fold(column, bound));
        let comparison = format!("{lhs} {} {placeholder}", sql_operator(op));
        Ok(if op == CmpOp::Ne {
            // OData: `x ne 'a'` is true when x is null.
            Sql::enclose(format!("{target} IS NULL OR {comparison}"))
        } else {
            guard(&target, comparison, in_not)
        })
    }

    fn in_list(&mut self, property: &str, values: &[Literal], in_not: bool) -> Result<Sql, ODataError> {
        let column = self.filter_column(property)?;
        let target = atom(column.sql);
        let mut has_null = false;
        let mut bound = Vec::with_capacity(values.len());
        for value in values {
            if *value == Literal::Null {
                has_null = true;
            } else {
                bound.push(Self::fold(column, coerce(column, value, "In")?));
            }
        }
        if bound.is_empty() {
            return Ok(Sql::bare(format!("{target} IS NULL")));
        }
        let lhs = self.lhs(column, false);
        let list = self.bind_list(bound);
        let membership = format!("{lhs} IN ({list})");
        // SQL's `x IN (…, NULL)` never matches a NULL x, so null is tested separately.
        Ok(if has_null {
            Sql::enclose(format!("{target} IS NULL OR {membership}"))
        } else {
            guard(&target, membership, in_not)
        })
    }

    /// startswith/endswith/contains. The pattern is built here with its metacharacters
    /// escaped, never by SQL concatenation.
    ///
    /// Case-insensitive columns use `lower(col) LIKE pattern ESCAPE '\'` with an ASCII
    /// lower-cased pattern on both backends. Case-sensitive columns use LIKE on PostgreSQL,
    /// where it is case-sensitive, and GLOB on SQLite, because SQLite's LIKE ignores ASCII
    /// case (unless a connection turned on `case_sensitive_like`) while GLOB never does.
    fn function(&mut self, func: StrFunc, property: &str, value: &Literal) -> Result<Sql, ODataError> {
        let column = self.filter_column(property)?;
        let text = match (column.ty, value) {
            (ColType::Text, Literal::String(s) | Literal::Guid(s)) => s,
            _ => {
                return Err(ODataError::FunctionArguments {
                    function: func.name().to_owned(),
                })
            }
        };
        let target = atom(column.sql);
        let (before, after) = match func {
            StrFunc::StartsWith => (false, true),
            StrFunc::EndsWith => (true, false),
            StrFunc::Contains => (true, true),
        };
        if self.dialect == Dialect::Sqlite && !column.case_insensitive {
            let pattern = format!(
                "{}{}{}",
                if before { "*" } else { "" },
                escape_glob(text),
                if after { "*" } else { "" }
            );
            let placeholder = self.bind(SqlValue::Text(pattern));
            return Ok(Sql::bare(format!("{target} GLOB {placeholder}")));
        }
        let text = if column.case_insensitive {
            text.to_ascii_lowercase()
        } else {
            text.clone()
        };
        let pattern = format!(
            "{}{}{}",
            if before { "%" } else { "" },
            escape_like(&text),
            if after { "%" } else { "" }
        );
        let lhs = self.lhs(column, false);
        let placeholder = self.bind(SqlValue::Text(pattern));
        Ok(Sql::bare(format!("{lhs} LIKE {placeholder} ESCAPE '\\'")))
    }
}

fn sql_operator(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
    }
}

/// Makes a comparison two-valued when it sits below a NOT (see [`SqlBuilder::expr`]).
fn guard(target: &str, comparison: String, in_not: bool) -> Sql {
    if in_not {
        Sql::enclose(format!("{target} IS NOT NULL AND {comparison}"))
    } else {
        Sql::bare(comparison)
    }
}

/// Checks that a literal fits the column's type and converts it to what gets bound.
fn coerce(column: &Column, value: &Literal, operator: &str) -> Result<SqlValue, ODataError> {
    let mismatch = || ODataError::IncompatibleTypes {
        left: column.edm_type(),
        right: value.edm_type().to_owned(),
        operator: operator.to_owned(),
    };
    Ok(match (column.ty, value) {
        (ColType::Text, Literal::String(s) | Literal::Guid(s)) => SqlValue::Text(s.clone()),
        (ColType::Int, Literal::Int(i)) => SqlValue::Int(*i),
        // 2^63 is exactly representable, so the upper bound is exclusive and exact.
        (ColType::Int, Literal::Float(f)) if f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63) => {
            SqlValue::Int(*f as i64)
        }
        (ColType::Float, Literal::Int(i)) => SqlValue::Float(*i as f64),
        (ColType::Float, Literal::Float(f)) => SqlValue::Float(*f),
        (ColType::Bool, Literal::Bool(b)) => SqlValue::Bool(*b),
        (ColType::Timestamp, Literal::DateTime(d)) => SqlValue::Timestamp(*d),
        (ColType::Timestamp, Literal::String(s)) => SqlValue::Timestamp(parse_datetime(s, false).ok_or_else(mismatch)?),
        (ColType::Enum(members), Literal::String(s)) => {
            let member =
                members
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(s))
                    .ok_or_else(|| ODataError::InvalidEnumMember {
                        value: s.clone(),
                        enum_name: column.enum_name().to_owned(),
                    })?;
            SqlValue::Text((*member).to_owned())
        }
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::{parse_filter, parse_query};
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    // ---- SQL ---------------------------------------------------------------------------------

    const COMPLIANCE: &[&str] = &[
        "unknown",
        "compliant",
        "noncompliant",
        "conflict",
        "error",
        "inGracePeriod",
        "configManager",
    ];

    const fn col(property: &'static str, sql: &'static str, ty: ColType, case_insensitive: bool) -> Column {
        Column {
            property,
            sql,
            ty,
            filterable: true,
            sortable: true,
            case_insensitive,
        }
    }

    static DEVICE: Entity = Entity {
        type_name: "microsoft.graph.managedDevice",
        columns: &[
            col("id", "d.id", ColType::Text, false),
            col("deviceName", "d.device_name", ColType::Text, true),
            col("serialNumber", "serial_number", ColType::Text, false),
            col("complianceState", "compliance_state", ColType::Enum(COMPLIANCE), false),
            col(
                "ownerType",
                "owner_type",
                ColType::Enum(&["unknown", "company", "personal"]),
                true,
            ),
            col("lastSyncDateTime", "last_sync", ColType::Timestamp, false),
            col("storageFreeInBytes", "storage_free", ColType::Int, false),
            col("batteryLevelPercentage", "battery", ColType::Float, false),
            col("settings/secureByDefault", "secure_by_default", ColType::Bool, false),
            col("userPrincipalName", "coalesce(upn, '')", ColType::Text, true),
            Column {
                property: "isEncrypted",
                sql: "is_encrypted",
                ty: ColType::Bool,
                filterable: true,
                sortable: false,
                case_insensitive: false,
            },
            Column {
                property: "notes",
                sql: "notes",
                ty: ColType::Text,
                filterable: false,
                sortable: false,
                case_insensitive: false,
            },
        ],
        known_properties: &["hardwareInformation", "deviceActionResults"],
    };

    fn sql(filter: &str, dialect: Dialect) -> SqlFragment {
        let expr = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        filter_sql(&expr, &DEVICE, dialect, 1).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    fn sql_error(filter: &str) -> ODataError {
        let expr = parse_filter(filter).unwrap();
        let sqlite = filter_sql(&expr, &DEVICE, Dialect::Sqlite, 1).unwrap_err();
        let postgres = filter_sql(&expr, &DEVICE, Dialect::Postgres, 1).unwrap_err();
        assert_eq!(sqlite, postgres, "{filter}");
        sqlite
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.to_owned())
    }

    /// (filter, SQLite SQL, PostgreSQL SQL, binds): binds are the same for both dialects.
    #[test]
    fn sql_text_and_binds() {
        let ts = utc(2024, 1, 1, 0, 0, 0);
        let cases: Vec<(&str, &str, &str, Vec<SqlValue>)> = vec![
            ("id eq 'A1'", "d.id = $1", "d.id = $1", vec![text("A1")]),
            (
                "deviceName eq 'PC-One'",
                "lower(d.device_name) = $1",
                r#"lower(d.device_name COLLATE "C") = $1"#,
                vec![text("pc-one")],
            ),
            (
                "serialNumber ne 'X'",
                "(serial_number IS NULL OR serial_number <> $1)",
                "(serial_number IS NULL OR serial_number <> $1)",
                vec![text("X")],
            ),
            (
                "deviceName ne 'X'",
                "(d.device_name IS NULL OR lower(d.device_name) <> $1)",
                r#"(d.device_name IS NULL OR lower(d.device_name COLLATE "C") <> $1)"#,
                vec![text("x")],
            ),
            (
                "serialNumber gt 'M'",
                "serial_number > $1",
                r#"serial_number COLLATE "C" > $1"#,
                vec![text("M")],
            ),
            (
                "storageFreeInBytes ge 1024 and storageFreeInBytes lt 2e3",
                "(storage_free >= $1 AND storage_free < $2)",
                "(storage_free >= $1 AND storage_free < $2)",
                vec![SqlValue::Int(1024), SqlValue::Int(2000)],
            ),
            (
                "batteryLevelPercentage le 50",
                "battery <= $1",
                "battery <= $1",
                vec![SqlValue::Float(50.0)],
            ),
            (
                "settings/secureByDefault eq true or isEncrypted eq false",
                "(secure_by_default = $1 OR is_encrypted = $2)",
                "(secure_by_default = $1 OR is_encrypted = $2)",
                vec![SqlValue::Bool(true), SqlValue::Bool(false)],
            ),
            (
                "lastSyncDateTime gt 2024-01-01T02:00:00+02:00",
                "last_sync > $1",
                "last_sync > $1",
                vec![SqlValue::Timestamp(ts)],
            ),
            (
                "lastSyncDateTime le '2024-01-01T00:00:00Z'",
                "last_sync <= $1",
                "last_sync <= $1",
                vec![SqlValue::Timestamp(ts)],
            ),
            (
                "id eq 01234567-89AB-cdef-0123-456789abcdef",
                "d.id = $1",
                "d.id = $1",
                vec![text("01234567-89ab-cdef-0123-456789abcdef")],
            ),
            (
                "complianceState eq 'NONCOMPLIANT'",
                "compliance_state = $1",
                "compliance_state = $1",
                vec![text("noncompliant")],
            ),
            (
                "complianceState eq microsoft.graph.complianceState'ingraceperiod'",
                "compliance_state = $1",
                "compliance_state = $1",
                vec![text("inGracePeriod")],
            ),
            (
                "ownerType eq 'Company'",
                "lower(owner_type) = $1",
                r#"lower(owner_type COLLATE "C") = $1"#,
                vec![text("company")],
            ),
            (
                "complianceState ge 'error'",
                "compliance_state IN ($1, $2, $3)",
                "compliance_state IN ($1, $2, $3)",
                vec![text("error"), text("inGracePeriod"), text("configManager")],
            ),
            (
                "complianceState lt 'compliant'",
                "compliance_state IN ($1)",
                "compliance_state IN ($1)",
                vec![text("unknown")],
            ),
            ("complianceState gt 'configManager'", "1 = 0", "1 = 0", vec![]),
            (
                "id in ('a', 'B')",
                "d.id IN ($1, $2)",
                "d.id IN ($1, $2)",
                vec![text("a"), text("B")],
            ),
            (
                "deviceName in ('a', 'B')",
                "lower(d.device_name) IN ($1, $2)",
                r#"lower(d.device_name COLLATE "C") IN ($1, $2)"#,
                vec![text("a"), text("b")],
            ),
            (
                "complianceState in ('Compliant', null)",
                "(compliance_state IS NULL OR compliance_state IN ($1))",
                "(compliance_state IS NULL OR compliance_state IN ($1))",
                vec![text("compliant")],
            ),
            ("id in (null)", "d.id IS NULL", "d.id IS NULL", vec![]),
            ("id eq null", "d.id IS NULL", "d.id IS NULL", vec![]),
            ("null ne id", "d.id IS NOT NULL", "d.id IS NOT NULL", vec![]),
            ("storageFreeInBytes gt null", "1 = 0", "1 = 0", vec![]),
            (
                "startswith(serialNumber,'AB')",
                "serial_number GLOB $1",
                r"serial_number LIKE $1 ESCAPE '\'",
                vec![],
            ),
            (
                "contains(deviceName,'Ab')",
                r"lower(d.device_name) LIKE $1 ESCAPE '\'",
                r#"lower(d.device_name COLLATE "C") LIKE $1 ESCAPE '\'"#,
                vec![text("%ab%")],
            ),
            (
                "endswith(userPrincipalName,'@X.com')",
                r"lower((coalesce(upn, ''))) LIKE $1 ESCAPE '\'",
                r#"lower((coalesce(upn, '')) COLLATE "C") LIKE $1 ESCAPE '\'"#,
                vec![text("%@x.com")],
            ),
            (
                "userPrincipalName eq null",
                "(coalesce(upn, '')) IS NULL",
                "(coalesce(upn, '')) IS NULL",
                vec![],
            ),
            (
                "id eq 'a' or id eq 'b' and not (id eq 'c')",
                "(d.id = $1 OR (d.id = $2 AND (NOT (d.id IS NOT NULL AND d.id = $3))))",
                "(d.id = $1 OR (d.id = $2 AND (NOT (d.id IS NOT NULL AND d.id = $3))))",
                vec![text("a"), text("b"), text("c")],
            ),
            (
                "not (id eq 'a' or startswith(deviceName,'x'))",
                r"(NOT ((d.id IS NOT NULL AND d.id = $1) OR lower(d.device_name) LIKE $2 ESCAPE '\'))",
                r#"(NOT ((d.id IS NOT NULL AND d.id = $1) OR lower(d.device_name COLLATE "C") LIKE $2 ESCAPE '\'))"#,
                vec![text("a"), text("x%")],
            ),
            (
                "not (serialNumber ne 'a')",
                "(NOT (serial_number IS NULL OR serial_number <> $1))",
                "(NOT (serial_number IS NULL OR serial_number <> $1))",
                vec![text("a")],
            ),
            (
                "not (id in ('a','b'))",
                "(NOT (d.id IS NOT NULL AND d.id IN ($1, $2)))",
                "(NOT (d.id IS NOT NULL AND d.id IN ($1, $2)))",
                vec![text("a"), text("b")],
            ),
            (
                "not not id eq 'a'",
                "(NOT (NOT (d.id IS NOT NULL AND d.id = $1)))",
                "(NOT (NOT (d.id IS NOT NULL AND d.id = $1)))",
                vec![text("a")],
            ),
            (
                "ID eq 'x' and DEVICENAME eq 'y'",
                "(d.id = $1 AND lower(d.device_name) = $2)",
                r#"(d.id = $1 AND lower(d.device_name COLLATE "C") = $2)"#,
                vec![text("x"), text("y")],
            ),
        ];
        for (filter, sqlite, postgres, binds) in cases {
            let lite = sql(filter, Dialect::Sqlite);
            let pg = sql(filter, Dialect::Postgres);
            assert_eq!(lite.sql, sqlite, "sqlite: {filter}");
            assert_eq!(pg.sql, postgres, "postgres: {filter}");
            // Pattern binds differ between GLOB and LIKE; those cases list no binds.
            if !binds.is_empty() || !lite.sql.contains("GLOB") {
                assert_eq!(lite.binds, binds, "sqlite binds: {filter}");
                assert_eq!(pg.binds, binds, "postgres binds: {filter}");
            }
        }
    }

    #[test]
    fn placeholders_start_at_first_placeholder() {
        let expr = parse_filter("id eq 'a' and deviceName in ('b','c') and storageFreeInBytes gt 1").unwrap();
        let fragment = filter_sql(&expr, &DEVICE, Dialect::Postgres, 3).unwrap();
        assert_eq!(
            fragment.sql,
            r#"((d.id = $3 AND lower(d.device_name COLLATE "C") IN ($4, $5)) AND storage_free > $6)"#
        );
        assert_eq!(fragment.binds, vec![text("a"), text("b"), text("c"), SqlValue::Int(1)]);
    }

    #[test]
    fn pattern_metacharacters_are_escaped() {
        let value = r"50%_off\";
        let cases = [
            ("startswith", r"50\%\_off\\%", r"50%_off\*"),
            ("endswith", r"%50\%\_off\\", r"*50%_off\"),
            ("contains", r"%50\%\_off\\%", r"*50%_off\*"),
        ];
        for (function, like, glob) in cases {
            let filter = format!("{function}(serialNumber,'{value}')");
            assert_eq!(sql(&filter, Dialect::Postgres).binds, vec![text(like)]);
            assert_eq!(sql(&filter, Dialect::Sqlite).binds, vec![text(glob)]);
        }
        assert_eq!(
            sql("contains(serialNumber,'a*b?[c]')", Dialect::Sqlite).binds,
            vec![text("*a[*]b[?][[]c]*")]
        );
        assert_eq!(
            sql("contains(serialNumber,'a*b?[c]')", Dialect::Postgres).binds,
            vec![text("%a*b?[c]%")]
        );
        assert_eq!(
            sql("startswith(deviceName,'A_b')", Dialect::Sqlite).binds,
            vec![text(r"a\_b%")]
        );
        // The value never reaches the SQL text.
        let hostile = sql("deviceName eq 'x'' OR 1=1 --'", Dialect::Sqlite);
        assert_eq!(hostile.sql, "lower(d.device_name) = $1");
        assert_eq!(hostile.binds, vec![text("x' or 1=1 --")]);
    }

    #[test]
    fn case_folding_is_ascii_only() {
        // Non-ASCII letters are left alone so Rust agrees with SQLite's lower() and with
        // PostgreSQL's lower() under COLLATE "C".
        assert_eq!(
            sql("deviceName eq 'ÉCOLE'", Dialect::Postgres).binds,
            vec![text("École")]
        );
    }

    #[test]
    fn type_mismatches() {
        let cases = [
            (
                "storageFreeInBytes eq 'abc'",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.String' for operator kind 'Equal'.",
            ),
            (
                "storageFreeInBytes lt 1.5",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.Double' for operator kind 'LessThan'.",
            ),
            (
                "id ne 5",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.String' and 'Edm.Int32' for operator kind 'NotEqual'.",
            ),
            (
                "isEncrypted eq 1",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Boolean' and 'Edm.Int32' for operator kind 'Equal'.",
            ),
            (
                "lastSyncDateTime gt 'yesterday'",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThan'.",
            ),
            (
                "complianceState eq 3",
                "A binary operator with incompatible types was detected. Found operand types 'microsoft.graph.complianceState' and 'Edm.Int32' for operator kind 'Equal'.",
            ),
            (
                "batteryLevelPercentage eq true",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Double' and 'Edm.Boolean' for operator kind 'Equal'.",
            ),
            (
                "id in ('a', 2024-01-01T00:00:00Z)",
                "A binary operator with incompatible types was detected. Found operand types 'Edm.String' and 'Edm.DateTimeOffset' for operator kind 'In'.",
            ),
            (
                "storageFreeInBytes eq 9999999999",
                "",
            ),
        ];
        for (filter, message) in cases {
            if message.is_empty() {
                assert!(parse_filter(filter)
                    .and_then(|e| filter_sql(&e, &DEVICE, Dialect::Sqlite, 1))
                    .is_ok());
                continue;
            }
            assert_eq!(sql_error(filter).to_string(), message, "{filter}");
        }
        for filter in [
            "contains(storageFreeInBytes,'1')",
            "startswith(complianceState,'c')",
            "endswith(id,5)",
            "contains(id,null)",
        ] {
            assert!(
                matches!(sql_error(filter), ODataError::FunctionArguments { .. }),
                "{filter}"
            );
        }
        assert_eq!(
            sql_error("contains(storageFreeInBytes,'1')").to_string(),
            "No function signature for the function with name 'contains' matches the specified arguments. The function signatures considered are: contains(Edm.String Nullable=true, Edm.String Nullable=true)."
        );
    }

    #[test]
    fn bad_enum_members_are_rejected() {
        for filter in [
            "complianceState eq 'green'",
            "complianceState in ('compliant', 'green')",
            "complianceState gt 'green'",
        ] {
            assert_eq!(
                sql_error(filter).to_string(),
                "The value 'green' is not a valid member of enum 'complianceState'.",
                "{filter}"
            );
        }
    }

    #[test]
    fn unknown_and_disallowed_properties() {
        assert_eq!(
            sql_error("Foo eq 1").to_string(),
            "Could not find a property named 'Foo' on type 'microsoft.graph.managedDevice'."
        );
        assert_eq!(
            sql_error("startswith(settings/foo,'a')").to_string(),
            "Could not find a property named 'settings/foo' on type 'microsoft.graph.managedDevice'."
        );
        assert_eq!(
            sql_error("NOTES eq 'x'").to_string(),
            "The query specified in the URI is not valid. The property 'NOTES' cannot be used in the $filter query option."
        );
        assert_eq!(
            sql_error("hardwareInformation eq null"),
            ODataError::PropertyNotAllowed {
                property: "hardwareInformation".into(),
                option: "$filter"
            }
        );
        // An error anywhere in the tree wins, even after valid terms.
        assert!(matches!(
            sql_error("id eq 'a' and (deviceName eq 'b' or nope eq 1)"),
            ODataError::UnknownProperty { .. }
        ));
    }

    #[test]
    fn orderby_translation_and_validation() {
        let q = parse_query("$orderby=DeviceName desc,storageFreeInBytes,userPrincipalName asc").unwrap();
        assert_eq!(
            orderby_sql(&q.orderby, &DEVICE).unwrap(),
            "lower(d.device_name) DESC NULLS LAST, storage_free ASC NULLS FIRST, lower((coalesce(upn, ''))) ASC NULLS FIRST"
        );
        assert_eq!(orderby_sql(&[], &DEVICE).unwrap(), "");

        let q = parse_query("$orderby=serialNumber,deviceName desc,ownerType,complianceState desc").unwrap();
        let enum_key = "CASE compliance_state WHEN 'unknown' THEN 0 WHEN 'compliant' THEN 1 \
                        WHEN 'noncompliant' THEN 2 WHEN 'conflict' THEN 3 WHEN 'error' THEN 4 \
                        WHEN 'inGracePeriod' THEN 5 WHEN 'configManager' THEN 6 END";
        let cases = [
            (
                orderby_sql(&q.orderby, &DEVICE).unwrap(),
                format!(
                    "serial_number ASC NULLS FIRST, lower(d.device_name) DESC NULLS LAST, \
                     CASE lower(owner_type) WHEN 'unknown' THEN 0 WHEN 'company' THEN 1 \
                     WHEN 'personal' THEN 2 END ASC NULLS FIRST, {enum_key} DESC NULLS LAST"
                ),
            ),
            (
                orderby_sql_for(&q.orderby, &DEVICE, Dialect::Sqlite).unwrap(),
                orderby_sql(&q.orderby, &DEVICE).unwrap(),
            ),
            (
                orderby_sql_for(&q.orderby, &DEVICE, Dialect::Postgres).unwrap(),
                format!(
                    "serial_number COLLATE \"C\" ASC NULLS FIRST, \
                     lower(d.device_name COLLATE \"C\") DESC NULLS LAST, \
                     CASE lower(owner_type COLLATE \"C\") WHEN 'unknown' THEN 0 \
                     WHEN 'company' THEN 1 WHEN 'personal' THEN 2 END ASC NULLS FIRST, \
                     {} DESC NULLS LAST",
                    enum_key.replace("compliance_state", "compliance_state COLLATE \"C\"")
                ),
            ),
        ];
        for (actual, expected) in cases {
            assert_eq!(actual, expected);
        }
        let order = |p: &str| {
            vec![OrderBy {
                property: p.to_owned(),
                descending: false,
            }]
        };
        assert_eq!(
            orderby_sql(&order("bogus"), &DEVICE).unwrap_err().to_string(),
            "Could not find a property named 'bogus' on type 'microsoft.graph.managedDevice'."
        );
        for property in ["isEncrypted", "notes", "deviceActionResults"] {
            assert_eq!(
                orderby_sql(&order(property), &DEVICE).unwrap_err().to_string(),
                format!("The query specified in the URI is not valid. The property '{property}' cannot be used in the $orderby query option.")
            );
        }
    }

    /// Runs the generated SQL on a real (in-memory) SQLite through sqlx, binding
    /// [`SqlValue`]s the way a caller would, to check LIKE/GLOB, case folding, NULL handling
    /// and placeholder numbering against OData's semantics.
    #[test]
    fn generated_sql_runs_on_sqlite() {
        use sqlx::Connection;

        static ROWS_ENTITY: Entity = Entity {
            type_name: "microsoft.graph.test",
            columns: &[
                col("name", "name", ColType::Text, true),
                col("serial", "serial", ColType::Text, false),
                col(
                    "state",
                    "state",
                    ColType::Enum(&["unknown", "compliant", "noncompliant"]),
                    false,
                ),
                col("n", "n", ColType::Int, false),
                col("flag", "flag", ColType::Bool, false),
                col("seen", "seen", ColType::Timestamp, false),
            ],
            known_properties: &[],
        };
        type Row = (
            i64,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            Option<i64>,
            Option<bool>,
            Option<DateTime<Utc>>,
        );
        let t0 = utc(2024, 1, 1, 0, 0, 0);
        let ms = chrono::Duration::milliseconds;
        let rows: [Row; 6] = [
            (
                1,
                Some("Alpha"),
                Some("AB"),
                Some("compliant"),
                Some(1),
                Some(true),
                Some(t0),
            ),
            (
                2,
                Some("ALPHA"),
                Some("ab"),
                Some("noncompliant"),
                Some(2),
                Some(false),
                Some(t0 + ms(500)),
            ),
            (3, Some("alpha"), None, None, None, None, None),
            (
                4,
                Some("Älpha"),
                Some(r"aB%_\"),
                Some("unknown"),
                Some(5),
                Some(true),
                Some(t0 + ms(1)),
            ),
            (
                5,
                Some("älpha"),
                Some("x*?[x]"),
                Some("compliant"),
                Some(7),
                Some(false),
                Some(t0 + ms(1500)),
            ),
            (
                6,
                None,
                Some("B"),
                Some("noncompliant"),
                Some(3),
                None,
                Some(t0 - ms(1)),
            ),
        ];
        let cases: &[(&str, &[i64])] = &[
            ("name eq 'alpha'", &[1, 2, 3]),
            // Folding is ASCII-only: 'Ä' and 'ä' stay distinct.
            ("name eq 'älpha'", &[5]),
            ("name eq 'ÄLPHA'", &[4]),
            ("name ne 'alpha'", &[4, 5, 6]),
            ("serial eq 'AB'", &[1]),
            ("serial ne 'AB'", &[2, 3, 4, 5, 6]),
            ("not (serial eq 'AB')", &[2, 3, 4, 5, 6]),
            ("serial gt 'B'", &[2, 4, 5]),
            ("serial lt 'b'", &[1, 2, 4, 6]),
            ("startswith(serial,'ab')", &[2]),
            ("startswith(serial,'AB')", &[1]),
            ("contains(serial,'%')", &[4]),
            ("contains(serial,'_')", &[4]),
            (r"contains(serial,'\')", &[4]),
            ("contains(serial,'*')", &[5]),
            ("contains(serial,'?')", &[5]),
            ("contains(serial,'[')", &[5]),
            ("contains(serial,'[x]')", &[5]),
            ("endswith(serial,'')", &[1, 2, 4, 5, 6]),
            ("endswith(serial,'B')", &[1, 6]),
            ("contains(name,'LP')", &[1, 2, 3, 4, 5]),
            ("contains(name,'ÄL')", &[4]),
            ("contains(name,'äl')", &[5]),
            ("startswith(name,'a') eq false", &[4, 5]),
            ("not contains(serial,'A')", &[2, 4, 5, 6]),
            ("state in ('Compliant', null)", &[1, 3, 5]),
            ("state gt 'compliant'", &[2, 6]),
            ("state le 'compliant'", &[1, 4, 5]),
            ("not (state eq 'compliant')", &[2, 3, 4, 6]),
            ("n ne 5", &[1, 2, 3, 5, 6]),
            ("not (n gt 5)", &[1, 2, 3, 4, 6]),
            ("n in (1,2)", &[1, 2]),
            ("not (n in (1,2))", &[3, 4, 5, 6]),
            ("n in (1, null)", &[1, 3]),
            ("flag eq true", &[1, 4]),
            ("flag ne true", &[2, 3, 5, 6]),
            ("not (flag eq true)", &[2, 3, 5, 6]),
            ("n gt null", &[]),
            ("not (n gt null)", &[1, 2, 3, 4, 5, 6]),
            ("name eq null", &[6]),
            ("seen gt 2024-01-01T00:00:00Z", &[2, 4, 5]),
            ("seen ge 2024-01-01T01:00:00.5+01:00", &[2, 5]),
            ("seen lt 2024-01-01T00:00:00.001Z", &[1, 6]),
            ("seen eq 2024-01-01T00:00:00.500Z or seen eq null", &[2, 3]),
        ];
        let orders: &[(&str, &[i64])] = &[
            ("name", &[6, 1, 2, 3, 4, 5]),
            ("name desc", &[5, 4, 1, 2, 3, 6]),
            ("serial", &[3, 1, 6, 4, 2, 5]),
            ("state desc,n", &[2, 6, 1, 5, 4, 3]),
            ("flag,seen desc", &[6, 3, 5, 2, 4, 1]),
        ];

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut db = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
            sqlx::query(
                "CREATE TABLE dev (tenant TEXT NOT NULL, id INTEGER NOT NULL, name TEXT, \
                 serial TEXT, state TEXT, n INTEGER, flag BOOLEAN, seen TEXT)",
            )
            .execute(&mut db)
            .await
            .unwrap();
            for (id, name, serial, state, n, flag, seen) in rows {
                for tenant in ["t1", "t2"] {
                    sqlx::query("INSERT INTO dev VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                        .bind(tenant)
                        .bind(id)
                        .bind(name)
                        .bind(serial)
                        .bind(state)
                        .bind(n)
                        .bind(flag)
                        .bind(seen)
                        .execute(&mut db)
                        .await
                        .unwrap();
                }
            }
            for (filter, expected) in cases {
                let expr = parse_filter(filter).unwrap();
                let fragment = filter_sql(&expr, &ROWS_ENTITY, Dialect::Sqlite, 2).unwrap();
                let sql = format!("SELECT id FROM dev WHERE tenant = $1 AND {} ORDER BY id", fragment.sql);
                let mut query = sqlx::query_scalar::<_, i64>(&sql).bind("t1");
                for value in fragment.binds {
                    query = match value {
                        SqlValue::Text(s) => query.bind(s),
                        SqlValue::Int(i) => query.bind(i),
                        SqlValue::Float(f) => query.bind(f),
                        SqlValue::Bool(b) => query.bind(b),
                        SqlValue::Timestamp(t) => query.bind(t),
                    };
                }
                let ids = query.fetch_all(&mut db).await.unwrap();
                assert_eq!(ids, *expected, "{filter}: {sql}");
            }
            for (orderby, expected) in orders {
                let options = parse_query(&format!("$orderby={orderby}")).unwrap();
                let order = orderby_sql_for(&options.orderby, &ROWS_ENTITY, Dialect::Sqlite).unwrap();
                assert_eq!(order, orderby_sql(&options.orderby, &ROWS_ENTITY).unwrap());
                let sql = format!("SELECT id FROM dev WHERE tenant = 't1' ORDER BY {order}, id");
                let ids = sqlx::query_scalar::<_, i64>(&sql).fetch_all(&mut db).await.unwrap();
                assert_eq!(ids, *expected, "{orderby}: {sql}");
            }
        });
    }
}
