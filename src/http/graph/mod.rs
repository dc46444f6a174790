//! The Graph admin API, mounted under `/v1.0` and `/beta`. Paths here are relative to the version.

pub mod app_protection;
pub mod compliance_policies;
pub mod conditional_access;
pub mod connectors;
mod device_management;
mod directory;
pub mod managed_devices;
mod memory;
mod notification_templates;
mod policy_states;
mod rbac;
mod reports;

use axum::http::{Method, Uri};
use axum::Router;

use super::error::{ApiError, ApiResult};
use super::routes::{RouteInfo, RouteTable, Surface};
use super::AppState;

pub fn router() -> (Router<AppState>, Vec<RouteInfo>) {
    let mut t = RouteTable::new(Surface::Graph);
    device_management::routes(&mut t);
    connectors::routes(&mut t);
    compliance_policies::routes(&mut t);
    conditional_access::routes(&mut t);
    app_protection::routes(&mut t);
    reports::routes(&mut t);
    notification_templates::routes(&mut t);
    directory::routes(&mut t);
    managed_devices::routes(&mut t);
    policy_states::routes(&mut t);
    rbac::routes(&mut t);
    let (router, infos) = t.into_parts();
    let templates: Vec<&'static str> = infos.iter().map(|i| i.path).collect();
    let templates_for_405 = templates.clone();
    let router = router
        .fallback(move |uri: Uri| {
            let templates = templates.clone();
            async move {
                ApiError::bad_request(format!(
                    "Resource not found for the segment '{}'.",
                    unknown_segment(&templates, uri.path())
                ))
            }
        })
        .method_not_allowed_fallback(move |method: Method, uri: Uri| {
            let templates = templates_for_405.clone();
            async move { no_method_match(&templates, &method, uri.path()) }
        });
    (router, infos)
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Strips the version segment when the path still carries it (nested routers see the full path
/// in `Uri` extractors only sometimes, so accept both).
fn relative(path: &str) -> &str {
    for prefix in ["/v1.0", "/beta"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if rest.is_empty() || rest.starts_with('/') {
                return rest;
            }
        }
    }
    path
}

/// The first segment of `path` that no route template continues with, as Graph's router
/// names it.
fn unknown_segment(templates: &[&str], path: &str) -> String {
    let parts = segments(relative(path));
    let mut matched = 0;
    for t in templates {
        let tparts = segments(t);
        let n = parts
            .iter()
            .zip(&tparts)
            .take_while(|(p, t)| t.starts_with('{') || p.eq_ignore_ascii_case(t))
            .count();
        matched = matched.max(n);
    }
    parts
        .get(matched)
        .or(parts.last())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Intune's answer to a verb a path does not have: 400 with the template in OData's words.
fn no_method_match(templates: &[&str], method: &Method, path: &str) -> ApiError {
    let rel = relative(path);
    let parts = segments(rel);
    let template = templates
        .iter()
        .map(|t| segments(t))
        .find(|t| {
            t.len() == parts.len()
                && t.iter()
                    .zip(&parts)
                    .all(|(t, p)| t.starts_with('{') || t.eq_ignore_ascii_case(p))
        })
        .map(|t| {
            t.iter()
                .enumerate()
                .map(|(i, s)| match (i, s.starts_with('{')) {
                    (_, true) => "key",
                    (0, false) => "singleton",
                    _ => "navigation",
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_else(|| "unknown".into());
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "No method match route template",
        format!("No OData route exists that match template ~/{template} with http verb {method} for request {rel}."),
    )
}

/// Graph's JSON media type, parameters included.
pub const GRAPH_CONTENT_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub fn graph_json(
    status: axum::http::StatusCode,
    body: serde_json::Map<String, serde_json::Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (status, [(axum::http::header::CONTENT_TYPE, GRAPH_CONTENT_TYPE)], bytes).into_response()
}

/// Puts `@odata.context` first, as Graph does.
pub fn with_context(
    context: String,
    body: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = body;
    // First, as Graph puts it; the body's entries are moved along, not hashed again.
    out.shift_insert(0, "@odata.context".into(), serde_json::Value::String(context));
    out
}

/// A single entity has no pages to filter, sort or count.
pub fn reject_collection_options(q: &crate::odata::QueryOptions) -> Result<(), ApiError> {
    let given = [
        ("$filter", q.filter.is_some()),
        ("$orderby", !q.orderby.is_empty()),
        ("$top", q.top.is_some()),
        ("$skip", q.skip.is_some()),
        ("$count", q.count),
        ("$skiptoken", q.skiptoken.is_some()),
        ("$search", q.search.is_some()),
    ];
    match given.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(ApiError::bad_request(format!(
            "The query specified in the URI is not valid. Query option '{name}' is not allowed on a single entity."
        ))),
        None => Ok(()),
    }
}

/// What every Graph handler needs to shape its answer: the version, how to show enums, and
/// the base of absolute links.
pub struct GraphCtx {
    pub version: crate::http::extract::ApiVersion,
    pub view: crate::schema::View,
    pub base: String,
}

impl GraphCtx {
    /// The v1.0 view, for answers outside the Graph surface (the control plane shows devices
    /// as Graph v1.0 does).
    pub fn v1(base: String) -> Self {
        let version = crate::http::extract::ApiVersion::V1;
        GraphCtx {
            version,
            view: crate::schema::View {
                version,
                include_unknown_enum_members: false,
            },
            base,
        }
    }

    /// `{base}/{version}/$metadata#{path}`, with the `$select` list when there is one.
    pub fn context(&self, path: &str, select: Option<&[String]>) -> String {
        let mut c = format!("{}/{}/$metadata#{path}", self.base, self.version.segment());
        if let Some(names) = select {
            c.push_str(&format!("({})", names.join(",")));
        }
        c
    }
}

impl axum::extract::FromRequestParts<AppState> for GraphCtx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use crate::http::extract::{ApiVersion, BaseUrl, IncludeUnknownEnumMembers};
        let version = ApiVersion::from_request_parts(parts, state).await?;
        let IncludeUnknownEnumMembers(include) = IncludeUnknownEnumMembers::from_request_parts(parts, state).await?;
        let BaseUrl(base) = BaseUrl::from_request_parts(parts, state).await?;
        Ok(GraphCtx {
            version,
            view: crate::schema::View {
                version,
                include_unknown_enum_members: include,
            },
            base,
        })
    }
}

/// One page of a collection, as Graph writes it: context, count, next link, then the values.
pub fn collection_response(
    context: String,
    values: Vec<serde_json::Map<String, serde_json::Value>>,
    count: Option<i64>,
    next_link: Option<String>,
) -> axum::response::Response {
    let mut body = serde_json::Map::new();
    body.insert("@odata.context".into(), context.into());
    if let Some(n) = count {
        body.insert("@odata.count".into(), n.into());
    }
    if let Some(link) = next_link {
        body.insert("@odata.nextLink".into(), link.into());
    }
    body.insert(
        "value".into(),
        serde_json::Value::Array(values.into_iter().map(serde_json::Value::Object).collect()),
    );
    graph_json(axum::http::StatusCode::OK, body)
}

/// Applies `$select` (validated against the type) to a rendered entity.
pub fn apply_select(
    rendered: serde_json::Map<String, serde_json::Value>,
    st: &crate::schema::StructType,
    select: Option<&Vec<String>>,
    version: crate::http::extract::ApiVersion,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match select {
        Some(names) => crate::schema::select(rendered, st, names, version).map_err(|e| ApiError::bad_request(e.0)),
        None => Ok(rendered),
    }
}

/// Refuses `$expand` of anything: for collections whose navigation properties are not served.
pub fn reject_expand(q: &crate::odata::QueryOptions, type_name: &str) -> Result<(), ApiError> {
    match q.expand.first() {
        Some(e) => Err(ApiError::bad_request(format!(
            "Could not find a navigation property named '{}' on type 'microsoft.graph.{type_name}' that can be expanded.",
            e.property
        ))),
        None => Ok(()),
    }
}

/// The answer for one page of a listed collection: `rows` were fetched with
/// `paging::list_query(..)` (one row more than the page, to learn whether another follows); `key`
/// names a row's key for keyset paging; `render` shapes each row.
#[allow(clippy::too_many_arguments)]
pub fn page_response<T>(
    ctx: &GraphCtx,
    uri: &axum::http::Uri,
    page: &crate::http::paging::PageRequest,
    keyset: bool,
    rows: crate::store::ListPage<T>,
    key: impl Fn(&T) -> &str,
    render: impl Fn(&T) -> ApiResult<serde_json::Map<String, serde_json::Value>>,
    context: String,
) -> ApiResult<axum::response::Response> {
    let shown = rows.items.len().min(page.size as usize);
    let items = &rows.items[..shown];
    let next = match (rows.items.len() > shown, items.last()) {
        (true, Some(last)) => Some(crate::http::paging::next_link(
            &ctx.base,
            uri.path(),
            uri.query(),
            &page.next(keyset, key(last)),
        )),
        _ => None,
    };
    let values = items.iter().map(render).collect::<ApiResult<Vec<_>>>()?;
    Ok(collection_response(context, values, rows.total, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_unknown_segment() {
        let t = ["/deviceManagement", "/deviceManagement/managedDevices/{id}"];
        assert_eq!(unknown_segment(&t, "/v1.0/foo"), "foo");
        assert_eq!(
            unknown_segment(&t, "/v1.0/deviceManagement/deviceStatuses"),
            "deviceStatuses"
        );
        assert_eq!(unknown_segment(&t, "/deviceManagement/managedDevices/1/apps"), "apps");
    }

    #[test]
    fn describes_the_route_template() {
        let t = ["/deviceManagement"];
        let e = no_method_match(&t, &Method::DELETE, "/v1.0/deviceManagement");
        assert_eq!(e.code, "No method match route template");
        assert_eq!(
            e.message,
            "No OData route exists that match template ~/singleton with http verb DELETE for request /deviceManagement."
        );
    }
}
