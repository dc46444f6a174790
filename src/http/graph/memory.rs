//! A small collection held in memory as one Graph page: filtered and sorted by
//! `odata::memory`, then counted, paged and selected here.

use serde_json::{Map, Value};

use crate::http::error::ApiResult;
pub use crate::odata::memory::query;

type Item = Map<String, Value>;

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
        .map(|d| select(d, q.select.as_deref()))
        .collect();
    Ok(super::collection_response(context, values, count, None))
}

/// `$select` by name: annotations and `id` always stay; no list keeps everything.
pub fn select(mut doc: Item, names: Option<&[String]>) -> Item {
    if let Some(names) = names {
        doc.retain(|k, _| k.starts_with('@') || k == "id" || names.iter().any(|n| n.eq_ignore_ascii_case(k)));
    }
    doc
}
