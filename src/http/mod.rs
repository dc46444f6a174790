//! The HTTP edge: four surfaces (Graph, identity, control plane, operations) on one router.

pub mod auth;
pub mod control;
pub mod error;
pub mod extract;
pub mod graph;
pub mod identity;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod partner;
pub mod routes;
mod signin;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::ServerConfig;
use error::ApiError;
use routes::RouteInfo;

#[derive(Clone)]
pub struct AppState {
    /// The use cases; handlers call one of them per request. Shared: axum clones the state for
    /// each extractor, and `App` holds several handles.
    pub app: Arc<crate::service::App>,
    pub config: Arc<ServerConfig>,
}

impl AppState {
    pub fn new(app: crate::service::App, config: ServerConfig) -> Self {
        AppState {
            app: Arc::new(app),
            config: Arc::new(config),
        }
    }
}

/// Every route the server serves, with its surface and access rule.
pub fn route_table() -> Vec<RouteInfo> {
    assemble().1
}

fn assemble() -> (Router<AppState>, Vec<RouteInfo>) {
    let mut infos = Vec::new();
    let mut router = Router::new();
    for (table, browsers) in [
        (ops::routes(), false),
        (identity::routes(), true),
        (control::routes(), false),
        (partner::routes(), true),
    ] {
        let (r, i) = table.into_parts();
        router = router.merge(if browsers {
            r.layer(cors()).layer(middleware::map_response(withhold_cors))
        } else {
            r
        });
        infos.extend(i);
    }
    let (graph, graph_infos) = graph::router();
    let graph = graph.layer(cors());
    router = router
        .nest("/v1.0", graph.clone().layer(axum::Extension(extract::ApiVersion::V1)))
        .nest("/beta", graph.layer(axum::Extension(extract::ApiVersion::Beta)));
    infos.extend(graph_infos);
    (router, infos)
}

/// Marks a response that browsers must not read (a token request refused because it came from a
/// page that is not a single-page app's): its CORS headers are taken off.
#[derive(Debug, Clone, Copy)]
pub struct WithoutCors;

async fn withhold_cors(mut response: Response) -> Response {
    if response.extensions().get::<WithoutCors>().is_some() {
        let h = response.headers_mut();
        for name in [
            axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            axum::http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            axum::http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        ] {
            h.remove(name);
        }
    }
    response
}

/// CORS as Microsoft's endpoints answer it, for pages on other origins (an admin console on
/// `localhost:3000`): preflights answered, the caller's origin and requested headers allowed,
/// and the headers a client reads (`request-id`, `client-request-id`, `Location`,
/// `Retry-After`) exposed. Bearer tokens travel in `Authorization`, never in cookies, so no
/// credentials mode. The control plane and the operations routes get none: browsers stay out.
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, Method};
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("request-id"),
            HeaderName::from_static("client-request-id"),
            header::LOCATION,
            header::RETRY_AFTER,
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// The application: the router with its middleware, wrapped in the path normalisation that must
/// happen before routing.
pub fn app(
    state: AppState,
) -> impl tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future = impl Send + 'static>
       + Clone
       + Send
       + Sync
       + 'static {
    let (router, _) = assemble();
    let router = router
        .fallback(|| async { ApiError::for_status(StatusCode::NOT_FOUND) })
        // A panic is a bug, but the client still gets a 500 in the envelope (rendered by
        // request_context, outside) rather than a dropped connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(middleware::from_fn(refuse_invalid_text))
        .layer(middleware::from_fn_with_state(state.clone(), request_context))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .with_state(state);
    tower::ServiceBuilder::new()
        .map_request(normalize_request)
        .service(router)
}

/// Refuses, before routing, a URL carrying text no surface can take: the NUL character (which
/// PostgreSQL cannot store and SQLite's string functions stop at) or bytes that are not UTF-8,
/// percent-encoded or not. In the path such a segment names nothing (404); in the query it is
/// a bad option (400). Both backends answer alike.
async fn refuse_invalid_text(req: Request, next: Next) -> Response {
    match invalid_text(req.uri()) {
        Some(refusal) => refusal.into_response(),
        None => next.run(req).await,
    }
}

fn invalid_text(uri: &Uri) -> Option<ApiError> {
    let bad = |bytes: &[u8]| bytes.contains(&0) || std::str::from_utf8(bytes).is_err();
    let path: Vec<u8> = percent_encoding::percent_decode_str(uri.path()).collect();
    if bad(&path) {
        return Some(ApiError::for_status(StatusCode::NOT_FOUND));
    }
    for pair in uri.query().unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| -> Vec<u8> { percent_encoding::percent_decode_str(&s.replace('+', " ")).collect() };
        let (name, value) = (decode(name), decode(value));
        if bad(&name) || bad(&value) {
            let shown = String::from_utf8_lossy(&name).replace('\0', "\\0");
            let what = if name.contains(&0) || value.contains(&0) {
                "contains the NUL character (U+0000)"
            } else {
                "is not valid UTF-8"
            };
            return Some(ApiError::bad_request(format!("The query parameter '{shown}' {what}.")));
        }
    }
    None
}

fn normalize_request(mut req: Request) -> Request {
    if let Some(path) = normalize_path(req.uri().path()) {
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        // The scheme and authority stay: over HTTP/2 the authority is the request's host
        // (there is no Host header), which absolute links are built from.
        let mut uri = Uri::builder();
        if let (Some(scheme), Some(authority)) = (req.uri().scheme(), req.uri().authority()) {
            uri = uri.scheme(scheme.clone()).authority(authority.clone());
        }
        if let Ok(uri) = uri.path_and_query(rebuilt).build() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Graph's URL tolerance: `//` collapsed (the Python SDKs send `/v1.0//deviceManagement`), a
/// trailing `/` dropped, and the OData key syntax `name('id')` turned into `name/id`. None when
/// the path is already normal.
pub fn normalize_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_graph = matches!(segments.first(), Some(&"v1.0") | Some(&"beta"));
    let mut out = String::with_capacity(path.len());
    for seg in &segments {
        out.push('/');
        match is_graph.then(|| split_key_segment(seg)).flatten() {
            Some((name, key)) => {
                out.push_str(name);
                out.push('/');
                out.push_str(&key);
            }
            None => out.push_str(seg),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    (out != path).then_some(out)
}

/// `name('key')` (quotes possibly percent-encoded, `''` escaping a quote) → (name, key with
/// path-unsafe characters percent-encoded).
fn split_key_segment(seg: &str) -> Option<(&str, String)> {
    let open = seg.find('(')?;
    let inner = seg.strip_suffix(')')?.get(open + 1..)?;
    let name = &seg[..open];
    if name.is_empty() {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(inner).decode_utf8().ok()?;
    // A function's single named parameter, `getEffectivePermissions(scope='x')`, is kept like
    // a key: the parameter's value becomes the next segment.
    let quoted = match decoded.split_once('=') {
        Some((param, value)) if !param.is_empty() && param.chars().all(|c| c.is_ascii_alphanumeric()) => value,
        _ => &decoded,
    };
    let key = quoted.strip_prefix('\'')?.strip_suffix('\'')?.replace("''", "'");
    if key.is_empty() {
        return None;
    }
    const UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'/')
        .add(b'?')
        .add(b'#')
        .add(b'%')
        .add(b'"')
        .add(b'<')
        .add(b'>');
    Some((name, percent_encoding::utf8_percent_encode(&key, UNSAFE).to_string()))
}

/// What a request's admission decided for its response, beyond its answer: a header naming the
/// rule that fired (faults, throttling's slowdown), or a connection dropped without an answer
/// (a fault rule's `disconnect`). The request-context middleware applies it once the request
/// was served; shared through the request's extensions, so a request served again shares it.
#[derive(Debug, Clone, Default)]
pub struct Effects(Arc<std::sync::Mutex<EffectsSet>>);

#[derive(Debug, Default)]
struct EffectsSet {
    header: Option<(HeaderName, HeaderValue)>,
    disconnect: bool,
}

impl Effects {
    fn with<T>(&self, f: impl FnOnce(&mut EffectsSet) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Names the rule in the response's `name` header.
    pub fn name_rule(&self, name: &str, rule: &str) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(rule)) {
            self.with(|e| e.header = Some((name, value)));
        }
    }

    /// Drops the connection instead of answering.
    pub fn disconnect(&self) {
        self.with(|e| e.disconnect = true);
    }
}

/// A response whose body fails before its first byte: the server closes the connection without
/// sending the response (HTTP/1.1: not even its status line; HTTP/2: the stream is reset).
fn dropped_connection() -> Response {
    struct Dropped;
    impl http_body::Body for Dropped {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the connection was dropped by a fault rule",
            ))))
        }
    }
    Response::new(axum::body::Body::new(Dropped))
}

/// The ids of one request, for error envelopes and logs.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

/// Gives each request its ids and span, renders `ApiError`s (and axum's bare refusals) in the
/// Graph envelope, sets `request-id`/`client-request-id`, logs 5xx once and records metrics.
async fn request_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = Uuid::new_v4().to_string();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %req.uri().path(),
        request_id = %request_id,
        tenant = tracing::field::Empty,
    );
    req.extensions_mut().insert(RequestIds {
        request_id: request_id.clone(),
        client_request_id: client_request_id.clone(),
    });
    let effects = Effects::default();
    req.extensions_mut().insert(effects.clone());

    let mut response = next.run(req).instrument(span.clone()).await;

    let error = response.extensions_mut().remove::<ApiError>().or_else(|| {
        let status = response.status();
        // A body of its own (JSON, or a sign-in page's HTML) is the answer; an empty one gets
        // the envelope.
        let has_body = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
        (status.is_client_error() || status.is_server_error())
            .then_some(())
            .filter(|_| !has_body)
            .map(|_| ApiError::for_status(status))
    });
    if let Some(error) = error {
        if error.status == StatusCode::SERVICE_UNAVAILABLE {
            // An outage or contention the client is told to wait out, not a bug.
            tracing::warn!(parent: &span, status = 503, cause = error.internal.as_deref().unwrap_or(""), "request refused for now");
        } else if error.status.is_server_error() {
            tracing::error!(parent: &span, status = error.status.as_u16(), cause = error.internal.as_deref().unwrap_or(""), "request failed");
        }
        let mut rendered = error.render(&request_id, &client_request_id, state.app.clock().wall_now());
        // Keep headers the handler set (e.g. Retry-After), but not the empty body's length.
        for (name, value) in response.headers() {
            if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                rendered.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response = rendered;
    }
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&client_request_id) {
        headers.insert("client-request-id", v);
    }
    let (rule_header, disconnect) = effects.with(|e| (e.header.take(), e.disconnect));
    if let Some((name, value)) = rule_header {
        response.headers_mut().insert(name, value);
    }
    if disconnect {
        response = dropped_connection();
    }
    let status = if disconnect {
        "dropped".to_string()
    } else {
        response.status().as_u16().to_string()
    };
    let elapsed = started.elapsed().as_secs_f64();
    if state.config.request_log {
        tracing::info!(parent: &span, route = %route, status = %status, elapsed_ms = format_args!("{:.1}", elapsed * 1e3), "request");
    }
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.to_string(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method.to_string())
        .record(elapsed);
    response
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn graph_paths_are_normalised() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/v1.0//deviceManagement", Some("/v1.0/deviceManagement")),
            ("/beta/deviceManagement/", Some("/beta/deviceManagement")),
            (
                "/v1.0/deviceManagement/mobileThreatDefenseConnectors('abc')",
                Some("/v1.0/deviceManagement/mobileThreatDefenseConnectors/abc"),
            ),
            (
                "/v1.0/roleDefinitions(%27a%27%27b%27)/x",
                Some("/v1.0/roleDefinitions/a'b/x"),
            ),
            ("/v1.0/things('a%2Fb')", Some("/v1.0/things/a%2Fb")),
            (
                "/beta/deviceManagement/getEffectivePermissions(scope='AllLicensedUsers')",
                Some("/beta/deviceManagement/getEffectivePermissions/AllLicensedUsers"),
            ),
            (
                "/v1.0/deviceManagement/getEffectivePermissions(scope=%27a%20b%27)",
                Some("/v1.0/deviceManagement/getEffectivePermissions/a%20b"),
            ),
            ("/v1.0/f(scope=x)", None),
            ("/v1.0/deviceManagement", None),
            ("/healthz", None),
            ("//healthz", Some("/healthz")),
            ("/", None),
            // Only Graph paths have OData keys.
            ("/_emulator/tenants('x')", None),
            ("/v1.0/things()", None),
            ("/v1.0/things('')", None),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_path(input).as_deref(), *expected, "{input}");
        }
    }
}
