//! One error type for the HTTP edge. Handlers return `ApiError`; the request-context
//! middleware renders it in Graph's envelope with the request's ids, so every surface, and
//! axum's own refusals, answer in the same shape.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::ServiceError;
use crate::store::StoreError;

/// The logged cause of [`ServiceError::StaleCache`]'s 503, by which the route's retry layer
/// (`auth::serve_again_if_stale`) knows to serve the request again; a client sees the 503 only
/// if that fails too.
pub const STALE_CACHE: &str = "the request was admitted with an outdated tenant cache entry";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Logged with the request id, never sent: the cause of a 5xx.
    pub internal: Option<String>,
    /// Seconds sent as `Retry-After`: when the client may try again (503, 429).
    pub retry_after: Option<u32>,
    /// `innerError.code`, when Graph sends one (`throttledRequest`).
    pub inner_code: Option<&'static str>,
}

/// `Retry-After` of a 503 for a database that does not answer: long enough for a restart or a
/// failover to finish, short enough for Kiota's three retries to span one.
pub const OUTAGE_RETRY_AFTER_S: u32 = 5;
/// `Retry-After` of a 503 for a request that met contention: trying again soon is fine.
pub const BUSY_RETRY_AFTER_S: u32 = 1;

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            internal: None,
            retry_after: None,
            inner_code: None,
        }
    }

    /// 429 `TooManyRequests` (innerError `throttledRequest`), as Graph answers a request over one
    /// of Intune's limits; `Retry-After` unless the tenant reproduces its omission.
    pub fn throttled(message: impl Into<String>, retry_after: Option<u32>) -> Self {
        ApiError {
            retry_after,
            inner_code: Some("throttledRequest"),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
        }
    }

    /// 503 `serviceNotAvailable` with `Retry-After`, as Graph answers when it cannot serve the
    /// request now; `cause` is logged, never sent.
    pub fn unavailable(message: impl Into<String>, retry_after: u32, cause: impl std::fmt::Display) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "serviceNotAvailable".into(),
            message: message.into(),
            internal: Some(cause.to_string()),
            retry_after: Some(retry_after),
            inner_code: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalError".into(),
            message: "An internal server error occurred.".into(),
            internal: Some(cause.to_string()),
            retry_after: None,
            inner_code: None,
        }
    }

    /// What a status means when nothing more specific was said (axum's own refusals).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "RequestEntityTooLarge",
                "The request body exceeds the maximum allowed size.",
            ),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "MethodNotAllowed",
                "The HTTP method is not allowed for this resource.",
            ),
            StatusCode::NOT_FOUND => Self::new(status, "NotFound", "The requested resource does not exist."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                status,
                "UnsupportedMediaType",
                "The request body must be application/json.",
            ),
            s if s.is_server_error() => Self::internal(format!("unexplained {s}")),
            s => Self::new(
                s,
                "BadRequest",
                s.canonical_reason().unwrap_or("Bad request").to_string(),
            ),
        }
    }

    /// The Graph envelope.
    pub fn render(&self, request_id: &str, client_request_id: &str, date: chrono::DateTime<chrono::Utc>) -> Response {
        let mut inner = json!({
            "date": date.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": request_id,
            "client-request-id": client_request_id,
        });
        if let (Some(code), Some(m)) = (self.inner_code, inner.as_object_mut()) {
            m.insert("code".into(), code.into());
        }
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": inner,
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered by the request-context middleware, which knows the request ids.
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // The store refused the query's `$filter` or `$orderby` (a type mismatch, an
            // unknown property): the client's mistake, told in OData's words.
            StoreError::Query(e) => e.into(),
            // The database did not answer: an outage the client can wait out, not a bug.
            e if e.is_unavailable() => ApiError::unavailable(
                "The service is temporarily unavailable: its database does not answer. Retry the request later.",
                OUTAGE_RETRY_AFTER_S,
                e,
            ),
            e => ApiError::internal(e),
        }
    }
}

/// A query option the request got wrong: 400 with OData's message.
impl From<crate::odata::ODataError> for ApiError {
    fn from(e: crate::odata::ODataError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// The one mapping of use-case failures to the Graph envelope.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => ApiError::bad_request(m),
            ServiceError::NotFound(m) => ApiError::not_found(m),
            ServiceError::Conflict(m) => ApiError::conflict(m),
            ServiceError::Forbidden(m) => ApiError::forbidden(m),
            ServiceError::Busy(m) => ApiError::unavailable(m.clone(), BUSY_RETRY_AFTER_S, m),
            ServiceError::Refused { code, message } => ApiError::new(StatusCode::BAD_REQUEST, code, message),
            ServiceError::Store(e) => e.into(),
            ServiceError::Keys(e) => ApiError::internal(e),
            ServiceError::StaleCache => ApiError::unavailable(
                "The tenant changed while the request was served. Retry the request.",
                BUSY_RETRY_AFTER_S,
                STALE_CACHE,
            ),
        }
    }
}

impl From<crate::identity::keys::KeyError> for ApiError {
    fn from(e: crate::identity::keys::KeyError) -> Self {
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
