//! `$filter`, `$orderby` and `$top` over a small collection held in memory, for collections
//! whose properties are computed rather than stored (an MTD connector's `partnerState` depends
//! on the tenant's clock). Same semantics as the SQL translation: text compares ASCII
//! case-insensitively, `ne` and `not` hold for nulls, enums compare by member name.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::http::error::{ApiError, ApiResult};
use crate::odata::{CmpOp, Expr, Literal, ODataError, OrderBy, StrFunc};

type Item = Map<String, Value>;

fn lookup<'a>(item: &'a Item, property: &str, type_name: &str) -> ApiResult<&'a Value> {
    item.iter()
        .find(|(k, _)| !k.starts_with('@') && k.eq_ignore_ascii_case(property))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            ApiError::bad_request(
                ODataError::UnknownProperty {
                    property: property.into(),
                    type_name: type_name.into(),
                }
                .to_string(),
            )
        })
}

fn incompatible(value: &Value, literal: &Literal, op: &str) -> ApiError {
    let left = match value {
        Value::Bool(_) => "Edm.Boolean",
        Value::Number(_) => "Edm.Int32",
        _ => "Edm.String",
    };
    let right = match literal {
        Literal::String(_) | Literal::Guid(_) => "Edm.String",
        Literal::Int(_) => "Edm.Int32",
        Literal::Float(_) => "Edm.Double",
        Literal::Bool(_) => "Edm.Boolean",
        Literal::Null => "null",
        Literal::DateTime(_) => "Edm.DateTimeOffset",
    };
    ApiError::bad_request(
        ODataError::IncompatibleTypes {
            left: left.into(),
            right: right.into(),
            operator: op.into(),
        }
        .to_string(),
    )
}

/// How a JSON value orders against a literal; None when either is null.
fn compare(value: &Value, literal: &Literal, op: &str) -> ApiResult<Option<Ordering>> {
    Ok(match (value, literal) {
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::String(s), Literal::String(l) | Literal::Guid(l)) => {
            // Timestamps written by Graph compare as instants.
            match (
                chrono::DateTime::parse_from_rfc3339(s),
                chrono::DateTime::parse_from_rfc3339(l),
            ) {
                (Ok(a), Ok(b)) => Some(a.cmp(&b)),
                _ => Some(s.to_ascii_lowercase().cmp(&l.to_ascii_lowercase())),
            }
        }
        (Value::String(s), Literal::DateTime(l)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(a) => Some(a.with_timezone(&chrono::Utc).cmp(l)),
            Err(_) => return Err(incompatible(value, literal, op)),
        },
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(n), Literal::Int(i)) => n.as_f64().and_then(|a| a.partial_cmp(&(*i as f64))),
        (Value::Number(n), Literal::Float(f)) => n.as_f64().and_then(|a| a.partial_cmp(f)),
        _ => return Err(incompatible(value, literal, op)),
    })
}

pub fn matches(expr: &Expr, item: &Item, type_name: &str) -> ApiResult<bool> {
    Ok(match expr {
        Expr::And(a, b) => matches(a, item, type_name)? && matches(b, item, type_name)?,
        Expr::Or(a, b) => matches(a, item, type_name)? || matches(b, item, type_name)?,
        Expr::Not(e) => !matches(e, item, type_name)?,
        Expr::Compare { property, op, value } => {
            let v = lookup(item, property, type_name)?;
            let name = format!("{op:?}");
            match (op, value, v) {
                (CmpOp::Eq, Literal::Null, v) => v.is_null(),
                (CmpOp::Ne, Literal::Null, v) => !v.is_null(),
                (op, literal, v) => match (compare(v, literal, &name)?, op) {
                    (None, CmpOp::Ne) => true,
                    (None, _) => false,
                    (Some(o), CmpOp::Eq) => o == Ordering::Equal,
                    (Some(o), CmpOp::Ne) => o != Ordering::Equal,
                    (Some(o), CmpOp::Gt) => o == Ordering::Greater,
                    (Some(o), CmpOp::Ge) => o != Ordering::Less,
                    (Some(o), CmpOp::Lt) => o == Ordering::Less,
                    (Some(o), CmpOp::Le) => o != Ordering::Greater,
                },
            }
        }
        Expr::In { property, values } => {
            let v = lookup(item, property, type_name)?;
            let mut any = false;
            for l in values {
                any |= match l {
                    Literal::Null => v.is_null(),
                    l => compare(v, l, "In")? == Some(Ordering::Equal),
                };
            }
            any
        }
        Expr::Func { func, property, value } => {
            let v = lookup(item, property, type_name)?;
            let (Value::String(s), Literal::String(needle)) = (v, value) else {
                if v.is_null() {
                    return Ok(false);
                }
                return Err(incompatible(v, value, &format!("{func:?}")));
            };
            let (s, needle) = (s.to_ascii_lowercase(), needle.to_ascii_lowercase());
            match func {
                StrFunc::StartsWith => s.starts_with(&needle),
                StrFunc::EndsWith => s.ends_with(&needle),
                StrFunc::Contains => s.contains(&needle),
            }
        }
    })
}

fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::String(x), Value::String(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

/// Filters and sorts rendered items (stable, so ties keep the collection's order).
pub fn query(items: Vec<Item>, filter: Option<&Expr>, orderby: &[OrderBy], type_name: &str) -> ApiResult<Vec<Item>> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if filter
            .map(|f| matches(f, &item, type_name))
            .transpose()?
            .unwrap_or(true)
        {
            kept.push(item);
        }
    }
    if let Some(first) = kept.first() {
        for o in orderby {
            lookup(first, &o.property, type_name)?;
        }
    }
    kept.sort_by(|a, b| {
        for o in orderby {
            let find = |i: &Item| {
                i.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&o.property))
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null)
            };
            let ord = order_values(&find(a), &find(b));
            let ord = if o.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    Ok(kept)
}

/// A whole small collection as one page: `$filter`, `$orderby`, `$count`, `$skip`, `$top`, and
/// `$select` by name (annotations and `id` always stay). `type_name` is unqualified.
pub fn page(
    q: &crate::odata::QueryOptions,
    docs: Vec<Item>,
    type_name: &str,
    context: String,
) -> ApiResult<axum::response::Response> {
    let kept = query(
        docs,
        q.filter.as_ref(),
        &q.orderby,
        &format!("microsoft.graph.{type_name}"),
    )?;
    let count = q.count.then_some(kept.len() as i64);
    let values: Vec<Item> = kept
        .into_iter()
        .skip(q.skip.unwrap_or(0) as usize)
        .take(q.top.map(|t| t as usize).unwrap_or(usize::MAX))
        .map(|d| match &q.select {
            Some(names) => d
                .into_iter()
                .filter(|(k, _)| k.starts_with('@') || k == "id" || names.iter().any(|n| n.eq_ignore_ascii_case(k)))
                .collect(),
            None => d,
        })
        .collect();
    Ok(super::collection_response(context, values, count, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::{parse_filter, parse_query};
    use serde_json::json;

    fn items() -> Vec<Item> {
        [
            json!({"id": "a", "partnerState": "enabled", "iosEnabled": true, "days": 3, "name": "Lookout", "note": null}),
            json!({"id": "b", "partnerState": "notSetUp", "iosEnabled": false, "days": 7, "name": "zimperium", "note": "x"}),
            json!({"id": "c", "partnerState": "available", "iosEnabled": true, "days": 10, "name": "Jamf", "note": null}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect()
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn filters_like_the_sql_translation() {
        let cases = [
            ("partnerState eq 'ENABLED'", vec!["a"]),
            ("iosEnabled eq true and days gt 3", vec!["c"]),
            ("days le 7 or startswith(name,'jam')", vec!["a", "b", "c"]),
            ("note eq null", vec!["a", "c"]),
            ("note ne 'x'", vec!["a", "c"]),
            ("not (partnerState eq 'enabled')", vec!["b", "c"]),
            ("partnerState in ('notSetUp','available')", vec!["b", "c"]),
            ("contains(name,'IMP')", vec!["b"]),
        ];
        for (f, expected) in cases {
            let got = query(items(), Some(&parse_filter(f).unwrap()), &[], "t").unwrap();
            assert_eq!(ids(&got), expected, "{f}");
        }
        for bad in ["nope eq 1", "days eq 'x'", "contains(days,'1')"] {
            assert!(
                query(items(), Some(&parse_filter(bad).unwrap()), &[], "t").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sorts_by_each_key_in_turn() {
        let q = parse_query("$orderby=iosEnabled desc,name").unwrap();
        assert_eq!(ids(&query(items(), None, &q.orderby, "t").unwrap()), ["c", "a", "b"]);
        let q = parse_query("$orderby=nope").unwrap();
        assert!(query(items(), None, &q.orderby, "t").is_err());
    }
}
