//! The route table. Every route is declared here with its surface and its access rule, next to
//! its handler; the router is built from the table, and tests walk the same table (against
//! `openapi.yaml`, and to check that every route says who may call it).

use std::collections::BTreeMap;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};

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
        let endpoint = on(filter, handler).layer(Extension(access));
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
