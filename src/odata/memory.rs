//! `$filter` and `$orderby` over JSON documents held in memory, for collections whose
//! properties are computed rather than stored (an MTD connector's `partnerState` depends on the
//! tenant's clock). The same semantics as the SQL translation (`store::filter_sql`): text
//! compares ASCII case-insensitively, `ne` and `not` hold for nulls, timestamps compare as
//! instants. A black-box test (tests/api/filter_semantics.rs) runs one table of filters through
//! both and compares.
//!
//! Documents carry no types, so two things the SQL side knows from its columns are inferred or
//! missing here: a string in RFC 3339 is taken for a timestamp, and enum members order by name
//! rather than by declaration (`gt`/`lt` on an enum; no in-memory collection's clients rely on
//! it, and Intune refuses it on managed devices).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{parse_datetime, CmpOp, Expr, Literal, ODataError, OrderBy, StrFunc};

type Item = Map<String, Value>;

/// A property, or a path into complex properties (`status/errorCode`); a path through a null
/// complex value is null.
fn lookup<'a>(item: &'a Item, property: &str, type_name: &str) -> Result<&'a Value, ODataError> {
    static NULL: Value = Value::Null;
    let unknown = || ODataError::UnknownProperty {
        property: property.into(),
        type_name: type_name.into(),
    };
    let find = |m: &'a Item, name: &str| {
        m.iter()
            .find(|(k, _)| !k.starts_with('@') && k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let mut parts = property.split('/');
    let mut value = find(item, parts.next().unwrap_or(property)).ok_or_else(unknown)?;
    for part in parts {
        value = match value {
            Value::Object(m) => find(m, part).ok_or_else(unknown)?,
            Value::Null => &NULL,
            _ => return Err(unknown()),
        };
    }
    Ok(value)
}

fn incompatible(value: &Value, literal: &Literal, operator: &str) -> ODataError {
    let left = match value {
        Value::Bool(_) => "Edm.Boolean",
        Value::Number(_) => "Edm.Int32",
        Value::String(s) if instant(s).is_some() => "Edm.DateTimeOffset",
        _ => "Edm.String",
    };
    ODataError::IncompatibleTypes {
        left: left.into(),
        right: literal.edm_type().into(),
        operator: operator.into(),
    }
}

/// A timestamp as Graph writes it. Graph writes nothing else in RFC 3339, so a string that
/// parses is taken for an `Edm.DateTimeOffset`, which is what the SQL columns know.
fn instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// How a JSON value orders against a literal; None when either is null.
fn compare(value: &Value, literal: &Literal, operator: &str) -> Result<Option<Ordering>, ODataError> {
    Ok(match (value, literal) {
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::String(s), Literal::String(l) | Literal::Guid(l)) => match instant(s) {
            // Timestamps compare as instants, with a literal in any form OData allows.
            Some(a) => match parse_datetime(l, false) {
                Some(b) => Some(a.cmp(&b)),
                None => return Err(incompatible(value, literal, operator)),
            },
            None => Some(s.to_ascii_lowercase().cmp(&l.to_ascii_lowercase())),
        },
        (Value::String(s), Literal::DateTime(l)) => match instant(s) {
            Some(a) => Some(a.cmp(l)),
            None => return Err(incompatible(value, literal, operator)),
        },
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(n), Literal::Int(i)) => n.as_f64().and_then(|a| a.partial_cmp(&(*i as f64))),
        (Value::Number(n), Literal::Float(f)) => n.as_f64().and_then(|a| a.partial_cmp(f)),
        _ => return Err(incompatible(value, literal, operator)),
    })
}

/// Whether `item` satisfies `expr`. Comparisons are two-valued (`null eq 'a'` is false, `null
/// ne 'a'` true) while a string function of a null is null, and null propagates through `not`,
/// `and` and `or` as in SQL: `not contains(x,'a')` does not hold for a null x.
pub fn matches(expr: &Expr, item: &Item, type_name: &str) -> Result<bool, ODataError> {
    Ok(eval(expr, item, type_name)? == Some(true))
}

/// Three-valued: None is OData's null.
fn eval(expr: &Expr, item: &Item, type_name: &str) -> Result<Option<bool>, ODataError> {
    Ok(match expr {
        Expr::And(a, b) => match (eval(a, item, type_name)?, eval(b, item, type_name)?) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Expr::Or(a, b) => match (eval(a, item, type_name)?, eval(b, item, type_name)?) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Expr::Not(e) => eval(e, item, type_name)?.map(|b| !b),
        Expr::Compare { property, op, value } => {
            let v = lookup(item, property, type_name)?;
            Some(match (op, value, v) {
                (CmpOp::Eq, Literal::Null, v) => v.is_null(),
                (CmpOp::Ne, Literal::Null, v) => !v.is_null(),
                (op, literal, v) => match (compare(v, literal, op.kind_name())?, op) {
                    (None, CmpOp::Ne) => true,
                    (None, _) => false,
                    (Some(o), CmpOp::Eq) => o == Ordering::Equal,
                    (Some(o), CmpOp::Ne) => o != Ordering::Equal,
                    (Some(o), CmpOp::Gt) => o == Ordering::Greater,
                    (Some(o), CmpOp::Ge) => o != Ordering::Less,
                    (Some(o), CmpOp::Lt) => o == Ordering::Less,
                    (Some(o), CmpOp::Le) => o != Ordering::Greater,
                },
            })
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
            Some(any)
        }
        Expr::Func { func, property, value } => {
            let v = lookup(item, property, type_name)?;
            let needle = match value {
                Literal::String(n) | Literal::Guid(n) => n,
                _ => {
                    return Err(ODataError::FunctionArguments {
                        function: func.name().to_owned(),
                    })
                }
            };
            let s = match v {
                Value::String(s) if instant(s).is_none() => s,
                Value::Null => return Ok(None),
                _ => {
                    return Err(ODataError::FunctionArguments {
                        function: func.name().to_owned(),
                    })
                }
            };
            let (s, needle) = (s.to_ascii_lowercase(), needle.to_ascii_lowercase());
            Some(match func {
                StrFunc::StartsWith => s.starts_with(&needle),
                StrFunc::EndsWith => s.ends_with(&needle),
                StrFunc::Contains => s.contains(&needle),
            })
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
pub fn query(
    items: Vec<Item>,
    filter: Option<&Expr>,
    orderby: &[OrderBy],
    type_name: &str,
) -> Result<Vec<Item>, ODataError> {
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
