//! Extractors shared by every surface, so that bad input is refused in the Graph envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::AppState;
use crate::odata::{self, QueryOptions};

/// A JSON request body. An empty body is `Value::Null`: actions may be posted without one.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = match req.headers().get(header::CONTENT_TYPE) {
            None => true,
            Some(v) => {
                let essence = v
                    .to_str()
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            }
        };
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ApiError::bad_request("The request body could not be read.")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        if !declared_json {
            return Err(ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid JSON in the request body at line {}, column {}: {}.",
                e.line(),
                e.column(),
                describe_json_error(&e)
            ))
        })?;
        if let Some(path) = nul_in(&value, String::new()) {
            return Err(ApiError::bad_request(format!(
                "Invalid value for property '{path}': text must not contain the NUL character (U+0000)."
            )));
        }
        Ok(JsonBody(value))
    }
}

/// Where a JSON document holds the NUL character, in a name or a string (`value[3].deviceId`):
/// no surface stores it (PostgreSQL's text cannot, and SQLite's functions stop at it), so it is
/// refused before any use case sees it, the same on both backends.
pub fn nul_in(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() { "(body)".into() } else { path }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let at = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(at)
            } else {
                nul_in(v, at)
            }
        }),
        _ => None,
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the position is reported separately.
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Decodes a control-plane body into its request type; refusals name the property.
pub fn decode<T: DeserializeOwned>(value: Value, type_name: &str) -> Result<T, ApiError> {
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "The request body must be a JSON object of type '{type_name}'."
        )));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        if let Some(rest) = inner.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or(rest);
            return ApiError::bad_request(format!(
                "The property '{name}' does not exist on type '{type_name}'. Make sure to only use property names that are defined by the type."
            ));
        }
        if let Some(rest) = inner.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or(rest);
            return ApiError::bad_request(format!("The property '{name}' is required on type '{type_name}'."));
        }
        ApiError::bad_request(format!("Invalid value for property '{path}': {inner}."))
    })
}

/// The OData query options of the request.
pub struct OData(pub QueryOptions);

impl<S: Send + Sync> FromRequestParts<S> for OData {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        odata::parse_query(parts.uri.query().unwrap_or(""))
            .map(OData)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// Scheme and authority clients use to reach this server, for absolute links.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.config.public_url {
            return Ok(BaseUrl(url.clone()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = if parts.extensions.get::<crate::http::tls::Https>().is_some() {
            "https"
        } else {
            "http"
        };
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

/// The Graph version a request came through (its path prefix); a schema notion.
pub use crate::schema::ApiVersion;

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .ok_or_else(|| ApiError::internal("a Graph handler was mounted outside /v1.0 and /beta"))
    }
}

/// `Prefer: include-unknown-enum-members`: show evolvable enum members on v1.0 as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncludeUnknownEnumMembers(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for IncludeUnknownEnumMembers {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let wanted = parts.headers.get_all("prefer").iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("include-unknown-enum-members"))
        });
        Ok(IncludeUnknownEnumMembers(wanted))
    }
}
