//! The route table. Every route is declared here with its surface and its access rule, next to
//! its handler; the router is built from the table, and tests walk the same table (against
//! `openapi.yaml`, and to check that every route says who may call it).

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};

use super::auth::{serve_again_if_stale, VersionChecked};
use super::AppState;
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/v1.0/...` and `/beta/...`; paths in the table are relative to the version.
    Graph,
    Identity,
    Control,
    /// `/partner/v1/...`, for MTD partner systems.
    Partner,
    Operations,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials: health, metrics, the OpenAPI document and the token endpoint itself.
    Public,
    /// The control plane's admin key (product brief, section 7).
    AdminKey,
    /// A Graph token granting one of the permissions (`roles` of an app-only token, `scp` of a
    /// delegated one); a delegated caller must also meet the role requirement (an Intune role
    /// allowing the route's resource action, or a directory role for Entra routes).
    Graph(GraphPermission, RoleRequirement),
    /// A partner app's token (`MobileThreatDefense.Partner`, with its `connector_id`).
    Partner,
}

#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub surface: Surface,
    pub method: Method,
    /// axum/OpenAPI template; Graph routes are relative to `/{version}`.
    pub path: &'static str,
    pub access: Access,
}

impl RouteInfo {
    /// The path as `openapi.yaml` names it.
    pub fn openapi_path(&self) -> String {
        match self.surface {
            Surface::Graph => format!("/{{version}}{}", self.path),
            _ => self.path.to_string(),
        }
    }
}

pub struct RouteTable {
    surface: Surface,
    by_path: BTreeMap<&'static str, MethodRouter<AppState>>,
    infos: Vec<RouteInfo>,
}

impl RouteTable {
    pub fn new(surface: Surface) -> Self {
        RouteTable {
            surface,
            by_path: BTreeMap::new(),
            infos: Vec::new(),
        }
    }

    /// Declares `method path` with its access rule. The rule travels with the request as an
    /// extension, where the Graph and control-plane extractors enforce it.
    pub fn route<H, T>(&mut self, method: Method, path: &'static str, access: Access, handler: H) -> &mut Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        let endpoint: MethodRouter<AppState> = on(filter, handler).layer(Extension(access));
        self.add(method, path, access, endpoint)
    }

    /// Declares `GET path` for a handler whose use case reads the tenant's cache version in the
    /// statement of its answer and checks it (`Ctx::confirm_version`): its app-only callers are
    /// admitted without reading the version first, and a request that finds its cache entry
    /// outdated is served again (see `service::cache`).
    pub fn get_checked<H, T>(&mut self, path: &'static str, access: Access, handler: H) -> &mut Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let endpoint: MethodRouter<AppState> = on(MethodFilter::GET, handler)
            .layer::<_, Infallible>(Extension(access))
            .layer::<_, Infallible>(Extension(VersionChecked))
            .layer(axum::middleware::from_fn(serve_again_if_stale));
        self.add(Method::GET, path, access, endpoint)
    }

    fn add(
        &mut self,
        method: Method,
        path: &'static str,
        access: Access,
        endpoint: MethodRouter<AppState>,
    ) -> &mut Self {
        let merged = match self.by_path.remove(path) {
            Some(existing) => existing.merge(endpoint),
            None => endpoint,
        };
        self.by_path.insert(path, merged);
        self.infos.push(RouteInfo {
            surface: self.surface,
            method,
            path,
            access,
        });
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<RouteInfo>) {
        let mut router = Router::new();
        for (path, method_router) in self.by_path {
            router = router.route(path, method_router);
        }
        (router, self.infos)
    }
}
