//! Server-driven paging: `$top` sets the page size, and a page that is not the last carries an
//! absolute `@odata.nextLink` whose `$skiptoken` is opaque to clients. Collections ordered by
//! their key page by key (keyset), so that a deep page costs what the first one does; sorted
//! collections page by offset.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::error::ApiError;
use crate::odata::{Expr, OrderBy, QueryOptions};
use crate::store::{ListQuery, ListScope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    Offset(u64),
    /// After the row with this key.
    After(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub start: PageStart,
}

impl PageRequest {
    /// The store query for this page, asking for one row more than the page to learn whether
    /// another page follows.
    pub fn list_query(
        &self,
        filter: Option<Expr>,
        order_by: impl IntoIterator<Item = OrderBy>,
        count: bool,
    ) -> ListQuery {
        let (offset, after) = match &self.start {
            PageStart::Offset(n) => (*n, None),
            PageStart::After(key) => (0, Some(key.clone())),
        };
        ListQuery {
            filter,
            order_by: order_by.into_iter().collect(),
            scope: ListScope::All,
            limit: self.size + 1,
            offset,
            after,
            count,
        }
    }

    /// Where the next page starts, given the key of this page's last row.
    pub fn next(&self, keyset: bool, last_key: &str) -> PageStart {
        match (&self.start, keyset) {
            (PageStart::Offset(n), false) => PageStart::Offset(n + self.size),
            _ => PageStart::After(last_key.to_string()),
        }
    }
}

/// The store query for `page` of a collection listed with the request's `$filter` and
/// `$orderby`, narrowed to `scope`; the store translates and checks them.
pub fn list_query(q: &QueryOptions, page: &PageRequest, scope: ListScope, count: bool) -> ListQuery {
    ListQuery {
        scope,
        ..page.list_query(q.filter.clone(), q.orderby.clone(), count)
    }
}

/// Page size and start from `$top`, `$skip` and `$skiptoken`, with the collection's default
/// and maximum page size.
pub fn page_request(q: &QueryOptions, default_size: u64, max_size: u64) -> Result<PageRequest, ApiError> {
    let size = q.top.unwrap_or(default_size).min(max_size);
    let start = match &q.skiptoken {
        Some(token) => decode_skiptoken(token)?,
        None => PageStart::Offset(q.skip.unwrap_or(0)),
    };
    Ok(PageRequest { size, start })
}

fn decode_skiptoken(token: &str) -> Result<PageStart, ApiError> {
    let invalid = || ApiError::bad_request("The $skiptoken is not valid. Follow @odata.nextLink as returned.");
    let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    if let Some(n) = text.strip_prefix("o:") {
        return n.parse().map(PageStart::Offset).map_err(|_| invalid());
    }
    match text.strip_prefix("k:") {
        // A key the database could not compare (NUL) cannot have come from a next link.
        Some(key) if !key.is_empty() && !key.contains('\0') => Ok(PageStart::After(key.to_string())),
        _ => Err(invalid()),
    }
}

pub fn encode_skiptoken(start: &PageStart) -> String {
    match start {
        PageStart::Offset(n) => URL_SAFE_NO_PAD.encode(format!("o:{n}")),
        PageStart::After(key) => URL_SAFE_NO_PAD.encode(format!("k:{key}")),
    }
}

/// The link to the page at `start`: the request's own URL with `$skip`/`$skiptoken` replaced.
pub fn next_link(base_url: &str, path: &str, raw_query: Option<&str>, start: &PageStart) -> String {
    let mut params: Vec<&str> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            let name = percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .to_ascii_lowercase();
            let name = name.trim_start_matches('$');
            name != "skip" && name != "skiptoken"
        })
        .collect();
    let token = format!("$skiptoken={}", encode_skiptoken(start));
    params.push(&token);
    format!("{base_url}{path}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptokens_round_trip_and_forgeries_are_refused() {
        for start in [PageStart::Offset(2000), PageStart::After("3f2c".into())] {
            let q = QueryOptions {
                skiptoken: Some(encode_skiptoken(&start)),
                ..Default::default()
            };
            assert_eq!(page_request(&q, 100, 1000).unwrap(), PageRequest { size: 100, start });
        }
        for bad in [
            "",
            "xyz",
            "b2Zm",
            &URL_SAFE_NO_PAD.encode("o:-1"),
            &URL_SAFE_NO_PAD.encode("k:"),
        ] {
            let q = QueryOptions {
                skiptoken: Some(bad.to_string()),
                ..Default::default()
            };
            assert!(page_request(&q, 100, 1000).is_err(), "{bad}");
        }
    }

    #[test]
    fn top_is_the_page_size_within_the_maximum() {
        let q = QueryOptions {
            top: Some(5000),
            skip: Some(7),
            ..Default::default()
        };
        assert_eq!(
            page_request(&q, 100, 1000).unwrap(),
            PageRequest {
                size: 1000,
                start: PageStart::Offset(7)
            }
        );
    }

    #[test]
    fn keyset_collections_continue_after_the_last_key() {
        let first = PageRequest {
            size: 2,
            start: PageStart::Offset(0),
        };
        assert_eq!(first.next(true, "b"), PageStart::After("b".into()));
        assert_eq!(first.next(false, "b"), PageStart::Offset(2));
        let q = first.list_query(None, None, false);
        assert_eq!((q.limit, q.offset, q.after), (3, 0, None));
        let later = PageRequest {
            size: 2,
            start: PageStart::After("b".into()),
        };
        assert_eq!(later.list_query(None, None, false).after.as_deref(), Some("b"));
        // The request's $filter and $orderby travel to the store as parsed, with the scope.
        let q = crate::odata::parse_query("$filter=deviceName eq 'a'&$orderby=deviceName desc").unwrap();
        let query = list_query(&q, &later, ListScope::UserDevices("u".into()), true);
        assert_eq!(query.filter, q.filter);
        assert_eq!(query.order_by, q.orderby);
        assert_eq!(query.scope, ListScope::UserDevices("u".into()));
        assert_eq!((query.limit, query.after.as_deref(), query.count), (3, Some("b"), true));
    }

    #[test]
    fn next_link_replaces_skip_and_keeps_the_rest() {
        let start = PageStart::Offset(6);
        let link = next_link(
            "http://h:1",
            "/v1.0/x",
            Some("$top=2&$skip=4&$filter=a%20eq%201&%24skiptoken=zz"),
            &start,
        );
        assert_eq!(
            link,
            format!(
                "http://h:1/v1.0/x?$top=2&$filter=a%20eq%201&$skiptoken={}",
                encode_skiptoken(&start)
            )
        );
    }
}
