//! Who is calling: a Graph token's tenant and permissions, or the control plane's admin key.
//! Each route's `Access` rule (declared in the route table) reaches the extractor as a request
//! extension; a handler cannot be reached without the rule it declared being enforced.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use super::error::{ApiError, STALE_CACHE};
use super::routes::Access;
use super::AppState;
use super::{Effects, RequestIds};
use crate::clock::tenant_now;
use crate::domain::faults::{graph_error_code, Disconnect, Incoming, Surface};
use crate::domain::tenant::{Tenant, PARTNER_ROLE};
use crate::identity::tokens::{check_lifetime, verify_signature, AccessClaims, TokenRejection};
use crate::service::cache::CachedTenant;
use crate::service::rbac;
use crate::service::{App, Cause, Ctx};

/// The caller of a Graph route: a valid token of an existing tenant holding the route's permission.
#[derive(Debug, Clone)]
pub struct GraphCaller {
    pub tenant: Tenant,
    /// The tenant's now, read once for the request.
    pub now: DateTime<Utc>,
    pub claims: Arc<AccessClaims>,
    /// The request, as the event log names what it causes.
    pub cause: Cause,
    /// The tenant's cache entry this request was admitted with (the source of `tenant`).
    cached: Arc<CachedTenant>,
    /// `cached` was taken without reading the stored version: the route's use case checks it.
    unchecked: bool,
}

impl GraphCaller {
    /// The context of a use case for this call: its tenant, its now and its request.
    pub fn cx<'a>(&'a self, app: &'a App) -> Ctx<'a> {
        if self.unchecked {
            app.cx_unchecked(&self.cached, self.now, &self.cause)
        } else {
            app.cx_cached(&self.cached, self.now, &self.cause)
        }
    }
}

/// Marks a route whose use case reads the tenant's cache version in the statement of its answer
/// (`RouteTable::get_checked`): its app-only callers are admitted with the replica's cache entry
/// unchecked.
#[derive(Debug, Clone, Copy)]
pub struct VersionChecked;

/// Marks the second run of a request whose first found its cache entry outdated: admitted
/// through a checked entry.
#[derive(Debug, Clone, Copy)]
struct ServedAgain;

/// The layer of a `get_checked` route: a request whose use case found the cache entry it was
/// admitted with outdated ([`crate::service::ServiceError::StaleCache`]) is served again, once,
/// admitted through a checked entry. Only for GET: the first run changed nothing.
pub async fn serve_again_if_stale(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let mut again = Request::new(Body::empty());
    *again.method_mut() = parts.method.clone();
    *again.uri_mut() = parts.uri.clone();
    *again.version_mut() = parts.version;
    *again.headers_mut() = parts.headers.clone();
    *again.extensions_mut() = parts.extensions.clone();
    again.extensions_mut().insert(ServedAgain);
    let response = next.clone().run(Request::from_parts(parts, body)).await;
    let stale = response
        .extensions()
        .get::<ApiError>()
        .is_some_and(|e| e.internal.as_deref() == Some(STALE_CACHE));
    if stale {
        next.run(again).await
    } else {
        response
    }
}

/// The request's cause, from the ids the request-context middleware gave it.
pub fn request_cause(parts: &Parts) -> Cause {
    Cause::Request(
        parts
            .extensions
            .get::<RequestIds>()
            .map(|r| r.request_id.clone())
            .unwrap_or_default(),
    )
}

fn declared_access(parts: &Parts) -> Result<Access, ApiError> {
    parts
        .extensions
        .get::<Access>()
        .copied()
        .ok_or_else(|| ApiError::internal(format!("route {} declares no access rule", parts.uri.path())))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn rejected(r: TokenRejection) -> ApiError {
    ApiError::unauthorized(r.to_string())
}

impl FromRequestParts<AppState> for GraphCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Access::Graph(permission, requirement) = declared_access(parts)? else {
            return Err(ApiError::internal(
                "a Graph handler sits on a route without a Graph access rule",
            ));
        };
        let may_skip_check =
            parts.extensions.get::<VersionChecked>().is_some() && parts.extensions.get::<ServedAgain>().is_none();
        let Admitted {
            claims,
            cached,
            now,
            unchecked,
        } = authenticate(parts, state, may_skip_check).await?;
        // A request served again has been counted already.
        if parts.extensions.get::<ServedAgain>().is_none() {
            if let Some(limits) = &cached.tenant().limits {
                let route = route_template(parts);
                let write = !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
                let bucket = crate::domain::limits::Bucket::of_route(&route);
                let counters = crate::domain::limits::graph_counters(limits, bucket, &claims.appid, write, now);
                throttle(parts, state, cached.tenant(), limits, now, &counters, &claims.appid).await?;
            }
            if !cached.tenant().faults.is_empty() {
                inject_faults(parts, state, cached.tenant(), now, Surface::Graph, &claims).await?;
            }
        }
        let scope_refused = || {
            ApiError::forbidden(format!(
                "Application is not authorized to perform this operation. Application must have one of the following scopes: {}",
                permission.any_of.join(", ")
            ))
        };
        match claims.idtyp.as_str() {
            // App-only: the application permission is all Intune asks; RBAC is not evaluated.
            "app" => {
                if !permission.is_granted_by(claims.roles.iter().map(String::as_str)) {
                    return Err(scope_refused());
                }
            }
            // Delegated: the delegated permission, then the signed-in user's roles.
            "user" => {
                let scopes = claims.scp.as_deref().unwrap_or("");
                if !permission.is_granted_by(scopes.split(' ').filter(|s| !s.is_empty())) {
                    return Err(scope_refused());
                }
                let cause = request_cause(parts);
                let cx = state.app.cx_cached(&cached, now, &cause);
                if !crate::service::directory::user_may_sign_in(&cx, &claims.oid).await? {
                    return Err(rejected(TokenRejection::UserGone));
                }
                let allowed = rbac::user_meets(&cx, &claims.oid, &claims.wids, requirement).await?;
                if !allowed {
                    return Err(ApiError::forbidden(
                        "The signed-in user is not authorized to perform this operation: no role assigned to the user allows it.",
                    ));
                }
            }
            _ => return Err(scope_refused()),
        }
        Ok(GraphCaller {
            tenant: cached.tenant().clone(),
            now,
            claims,
            cause: request_cause(parts),
            cached,
            unchecked,
        })
    }
}

/// The caller of a partner route: a partner app's valid token, naming its tenant and connector.
#[derive(Debug, Clone)]
pub struct PartnerCaller {
    pub tenant: Tenant,
    pub now: DateTime<Utc>,
    /// The catalog connector the app speaks for.
    pub connector_id: String,
    pub cause: Cause,
}

impl PartnerCaller {
    pub fn cx<'a>(&'a self, app: &'a App) -> Ctx<'a> {
        app.cx(&self.tenant.id, self.now, &self.cause)
    }
}

/// A token's tenant and the tenant's now: what admission checks a token against.
struct Admitted {
    claims: Arc<AccessClaims>,
    cached: Arc<CachedTenant>,
    now: DateTime<Utc>,
    /// `cached` is the replica's entry, its version not read (see `service::cache`).
    unchecked: bool,
}

/// Checks a bearer token's signature, tenant and lifetime on the tenant's clock. With
/// `may_skip_check` (an app-only caller of a `get_checked` route), the replica's cache entry is
/// taken without reading its version when it holds one.
async fn authenticate(parts: &Parts, state: &AppState, may_skip_check: bool) -> Result<Admitted, ApiError> {
    let token = bearer(parts).ok_or_else(|| rejected(TokenRejection::Missing))?;
    let claims = verify_signature(state.app.keys(), token).await.map_err(rejected)?;
    let held = if may_skip_check && claims.idtyp == "app" {
        crate::service::tenants::held(&state.app, &claims.tid)
    } else {
        None
    };
    let unchecked = held.is_some();
    let cached = match held {
        Some(entry) => entry,
        None => match crate::service::tenants::current(&state.app, &claims.tid).await {
            Ok(t) => t,
            Err(crate::service::ServiceError::NotFound(_)) => return Err(rejected(TokenRejection::UnknownTenant)),
            Err(e) => return Err(e.into()),
        },
    };
    let now = tenant_now(state.app.clock().wall_now(), cached.tenant().clock_offset_us);
    if let Err(rejection) = check_lifetime(&claims, now) {
        // An outdated clock offset must not refuse a token the tenant's clock still accepts.
        if unchecked {
            return Box::pin(authenticate(parts, state, false)).await;
        }
        return Err(rejected(rejection));
    }
    if !crate::service::tenants::app_registered(&state.app, &cached, &claims.appid).await? {
        // An outdated entry may belong to another tenant of the same id (deleted and created
        // again): decide on the current one.
        if unchecked {
            return Box::pin(authenticate(parts, state, false)).await;
        }
        return Err(rejected(TokenRejection::UnknownApp));
    }
    tracing::Span::current().record("tenant", cached.tenant().id.as_str());
    Ok(Admitted {
        claims,
        cached,
        now,
        unchecked,
    })
}

/// The route a request matched (its template), as the router names it.
fn route_template(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string())
}

/// Applies the tenant's limits to the request: refused with 429, slowed down, or let through.
async fn throttle(
    parts: &Parts,
    state: &AppState,
    tenant: &Tenant,
    limits: &crate::domain::limits::Limits,
    now: DateTime<Utc>,
    counters: &[crate::domain::limits::Counter],
    app_id: &str,
) -> Result<(), ApiError> {
    use crate::domain::limits::Admission;
    let route = route_template(parts);
    let cause = request_cause(parts);
    let request = crate::service::limits::Request {
        method: parts.method.as_str(),
        route: &route,
        app_id,
        cause: &cause,
    };
    let admission = crate::service::limits::check(&state.app, tenant, limits, now, counters, request).await?;
    // The limit that slowed or refused the request is named in the tenant's rule header.
    let named = match &admission {
        Admission::Serve => None,
        Admission::Slow { rule, .. } | Admission::Refuse { rule, .. } => Some(rule),
    };
    if let (Some(rule), Some(header), Some(effects)) = (named, &limits.rule_header, parts.extensions.get::<Effects>()) {
        effects.name_rule(header, rule);
    }
    match admission {
        Admission::Serve => Ok(()),
        Admission::Slow { delay_ms, .. } => {
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(delay_ms))).await;
            Ok(())
        }
        Admission::Refuse {
            rule,
            retry_after,
            limit,
        } => Err(ApiError::throttled(
            format!("Application is over its resource limit: {rule} allows {limit} requests in its window."),
            (!limits.omit_retry_after).then_some(retry_after),
        )),
    }
}

/// Applies the first of the tenant's fault rules that fires on the request: its latency, then
/// its status (in Graph's envelope), or a dropped connection (now, or once the request was
/// served), or nothing more (a latency or observing rule).
async fn inject_faults(
    parts: &Parts,
    state: &AppState,
    tenant: &Tenant,
    now: DateTime<Utc>,
    surface: Surface,
    claims: &AccessClaims,
) -> Result<(), ApiError> {
    let route = route_template(parts);
    let incoming = Incoming {
        surface,
        method: parts.method.as_str(),
        route: &route,
        app_id: &claims.appid,
        user_id: (claims.idtyp == "user").then_some(claims.oid.as_str()),
        user_name: claims.upn.as_deref(),
        now,
    };
    let cause = request_cause(parts);
    let request = crate::service::faults::Request {
        path: parts.uri.path(),
        retry_attempt: parts.headers.get("retry-attempt").and_then(|v| v.to_str().ok()),
        cause: &cause,
    };
    let Some(fired) = crate::service::faults::check(&state.app, tenant, incoming, request).await? else {
        return Ok(());
    };
    let rule = &fired.rule;
    let effects = parts.extensions.get::<Effects>();
    if let (Some(header), Some(effects)) = (&rule.rule_header, effects) {
        effects.name_rule(header, &rule.id);
    }
    if fired.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(fired.latency_ms))).await;
    }
    if let Some(status) = rule.status {
        let (code, message) = graph_error_code(status);
        let request_id = parts
            .extensions
            .get::<RequestIds>()
            .map(|r| r.request_id.as_str())
            .unwrap_or_default();
        let message = rule
            .error_message
            .clone()
            .unwrap_or_else(|| message.render(request_id, &parts.uri.to_string()));
        let mut error = ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            rule.error_code.clone().unwrap_or_else(|| code.to_string()),
            message,
        );
        error.retry_after = rule.retry_after_seconds;
        error.internal = Some(format!("injected by fault rule {}", rule.id));
        if status == 429 {
            error.inner_code = Some("throttledRequest");
        }
        return Err(error);
    }
    match (rule.disconnect, effects) {
        (Some(Disconnect::AfterRead), Some(effects)) => {
            effects.disconnect();
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The connection was dropped by a fault rule.",
            ))
        }
        (Some(Disconnect::AfterCommit), Some(effects)) => {
            effects.disconnect();
            Ok(())
        }
        _ => Ok(()),
    }
}

impl FromRequestParts<AppState> for PartnerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if declared_access(parts)? != Access::Partner {
            return Err(ApiError::internal(
                "a partner handler sits on a route without the partner access rule",
            ));
        }
        let Admitted {
            claims, cached, now, ..
        } = authenticate(parts, state, false).await?;
        let tenant = cached.tenant().clone();
        let partner = claims.idtyp == "app" && claims.roles.iter().any(|r| r == PARTNER_ROLE);
        if let (Some(limits), true, Some(connector_id)) = (&tenant.limits, partner, &claims.connector_id) {
            let counters = crate::domain::limits::partner_counters(limits, connector_id, now);
            throttle(parts, state, &tenant, limits, now, &counters, &claims.appid).await?;
        }
        if partner && !tenant.faults.is_empty() {
            inject_faults(parts, state, &tenant, now, Surface::Partner, &claims).await?;
        }
        match (partner, claims.connector_id.clone()) {
            (true, Some(connector_id)) => Ok(PartnerCaller {
                tenant,
                now,
                connector_id,
                cause: request_cause(parts),
            }),
            _ => Err(ApiError::forbidden(
                "The partner API takes tokens of MTD partner apps (role MobileThreatDefense.Partner) only.",
            )),
        }
    }
}

/// A caller of the control plane: holds the admin key, or none is configured (loopback only,
/// enforced at start-up).
#[derive(Debug, Clone)]
pub struct Admin {
    pub cause: Cause,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if declared_access(parts)? != Access::AdminKey {
            return Err(ApiError::internal(
                "a control-plane handler sits on a route without the admin-key rule",
            ));
        }
        let Some(expected) = &state.config.admin_key else {
            return Ok(Admin {
                cause: request_cause(parts),
            });
        };
        let presented = bearer(parts).unwrap_or("");
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Admin {
                cause: request_cause(parts),
            })
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The control plane requires the admin key: 'Authorization: Bearer <admin key>'.",
            ))
        }
    }
}
