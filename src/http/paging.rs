//! Server-driven paging: `$top` sets the page size, and a page that is not the last carries an
//! absolute `@odata.nextLink` whose `$skiptoken` is opaque to clients.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::error::ApiError;
use crate::odata::QueryOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub offset: u64,
}

/// Page size and offset from `$top`, `$skip` and `$skiptoken`, with the collection's default
/// and maximum page size.
pub fn page_request(q: &QueryOptions, default_size: u64, max_size: u64) -> Result<PageRequest, ApiError> {
    let size = q.top.unwrap_or(default_size).min(max_size);
    let offset = match &q.skiptoken {
        Some(token) => decode_skiptoken(token)?,
        None => q.skip.unwrap_or(0),
    };
    Ok(PageRequest { size, offset })
}

fn decode_skiptoken(token: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::bad_request("The $skiptoken is not valid. Follow @odata.nextLink as returned.");
    let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    text.strip_prefix("o:").and_then(|n| n.parse().ok()).ok_or_else(invalid)
}

pub fn encode_skiptoken(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

/// The link to the page at `offset`: the request's own URL with `$skip`/`$skiptoken` replaced.
pub fn next_link(base_url: &str, path: &str, raw_query: Option<&str>, offset: u64) -> String {
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
    let token = format!("$skiptoken={}", encode_skiptoken(offset));
    params.push(&token);
    format!("{base_url}{path}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptoken_round_trips_and_rejects_forgeries() {
        let q = QueryOptions {
            skiptoken: Some(encode_skiptoken(2000)),
            ..Default::default()
        };
        assert_eq!(
            page_request(&q, 100, 1000).unwrap(),
            PageRequest {
                size: 100,
                offset: 2000
            }
        );
        for bad in ["", "xyz", "b2Zm", &URL_SAFE_NO_PAD.encode("o:-1")] {
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
            PageRequest { size: 1000, offset: 7 }
        );
    }

    #[test]
    fn next_link_replaces_skip_and_keeps_the_rest() {
        let link = next_link(
            "http://h:1",
            "/v1.0/x",
            Some("$top=2&$skip=4&$filter=a%20eq%201&%24skiptoken=zz"),
            6,
        );
        assert_eq!(
            link,
            format!(
                "http://h:1/v1.0/x?$top=2&$filter=a%20eq%201&$skiptoken={}",
                encode_skiptoken(6)
            )
        );
    }
}
