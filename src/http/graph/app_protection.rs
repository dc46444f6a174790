//! `/deviceAppManagement`: the iOS and Android app protection policies (with `assign`,
//! `targetApps`, their assignments, apps and deployment summary), the polymorphic
//! `managedAppPolicies` list, and the managed app registrations (with their applied and intended
//! policies and operations), also under `/users/{id}`.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::compliance_policies::{parse_assignment_parts, render_target};
use super::{graph_json, memory, with_context, GraphCtx};
use crate::domain::app_protection::{
    AppPlatform, AppPolicyAssignment, AppProtectionPolicy, AppRegistration, TargetedApp,
};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::schema::app_protection::{
    ANDROID_MANAGED_APP_PROTECTION, ANDROID_MANAGED_APP_REGISTRATION, IOS_MANAGED_APP_PROTECTION,
    IOS_MANAGED_APP_REGISTRATION, MANAGED_APP_OPERATION, MANAGED_APP_POLICY_DEPLOYMENT_SUMMARY, MANAGED_MOBILE_APP,
    TARGETED_MANAGED_APP_POLICY_ASSIGNMENT,
};
use crate::schema::{render, validate_patch, StructType};
use crate::service::app_protection::{self as mam, DeploymentSummary};
use crate::service::clock::rfc3339;

const READ: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementApps.Read.All", "DeviceManagementApps.ReadWrite.All"],
};
const WRITE: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementApps.ReadWrite.All"],
};

const R: crate::domain::rbac::RoleRequirement = Intune("Microsoft.Intune_ManagedApps_Read");
const W: crate::domain::rbac::RoleRequirement = Intune("Microsoft.Intune_ManagedApps_Update");

/// Which platform's policies a request is for, from its path (`iosManagedAppProtections` or
/// `androidManagedAppProtections`): both are served by the same handlers.
/// None under `managedAppPolicies`, which serves every platform.
struct Plat(Option<AppPlatform>);

impl<S: Send + Sync> FromRequestParts<S> for Plat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path().to_ascii_lowercase();
        if path.contains("/iosmanagedappprotections") {
            Ok(Plat(Some(AppPlatform::Ios)))
        } else if path.contains("/androidmanagedappprotections") {
            Ok(Plat(Some(AppPlatform::Android)))
        } else if path.contains("/managedapppolicies") {
            Ok(Plat(None))
        } else {
            Err(ApiError::internal(
                "an app protection handler was mounted outside its paths",
            ))
        }
    }
}

/// A platform's policy paths: the collection, an item, `assign`, `targetApps`, `assignments`,
/// `assignments/{id}`, `apps`, `deploymentSummary`.
macro_rules! policy_paths {
    ($segment:literal) => {
        [
            concat!("/deviceAppManagement/", $segment),
            concat!("/deviceAppManagement/", $segment, "/{policyId}"),
            concat!("/deviceAppManagement/", $segment, "/{policyId}/assign"),
            concat!("/deviceAppManagement/", $segment, "/{policyId}/targetApps"),
            concat!("/deviceAppManagement/", $segment, "/{policyId}/assignments"),
            concat!(
                "/deviceAppManagement/",
                $segment,
                "/{policyId}/assignments/{assignmentId}"
            ),
            concat!("/deviceAppManagement/", $segment, "/{policyId}/apps"),
            concat!("/deviceAppManagement/", $segment, "/{policyId}/deploymentSummary"),
        ]
    };
}

pub fn routes(t: &mut RouteTable) {
    for [root, item, assign_path, target_apps_path, assignments_path, assignment_path, apps_path, summary_path] in [
        policy_paths!("iosManagedAppProtections"),
        policy_paths!("androidManagedAppProtections"),
    ] {
        t.route(Method::GET, root, Access::Graph(READ, R), list)
            .route(
                Method::POST,
                root,
                Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Create")),
                create,
            )
            .route(Method::GET, item, Access::Graph(READ, R), get)
            .route(Method::PATCH, item, Access::Graph(WRITE, W), patch)
            .route(
                Method::DELETE,
                item,
                Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Delete")),
                delete,
            )
            .route(
                Method::POST,
                assign_path,
                Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Assign")),
                assign,
            )
            .route(Method::POST, target_apps_path, Access::Graph(WRITE, W), target_apps)
            .route(Method::GET, assignments_path, Access::Graph(READ, R), assignments)
            .route(
                Method::POST,
                assignments_path,
                Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Assign")),
                create_assignment,
            )
            .route(Method::GET, assignment_path, Access::Graph(READ, R), get_assignment)
            .route(
                Method::DELETE,
                assignment_path,
                Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Assign")),
                delete_assignment,
            )
            .route(Method::GET, apps_path, Access::Graph(READ, R), apps)
            .route(Method::GET, summary_path, Access::Graph(READ, R), deployment_summary);
    }
    t.route(
        Method::GET,
        "/deviceAppManagement/managedAppPolicies",
        Access::Graph(READ, R),
        list,
    )
    .route(
        Method::POST,
        "/deviceAppManagement/managedAppPolicies",
        Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Create")),
        create,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppPolicies/{policyId}",
        Access::Graph(READ, R),
        get,
    )
    .route(
        Method::PATCH,
        "/deviceAppManagement/managedAppPolicies/{policyId}",
        Access::Graph(WRITE, W),
        patch,
    )
    .route(
        Method::DELETE,
        "/deviceAppManagement/managedAppPolicies/{policyId}",
        Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Delete")),
        delete,
    )
    .route(
        Method::POST,
        "/deviceAppManagement/managedAppPolicies/{policyId}/assign",
        Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedApps_Assign")),
        assign,
    )
    .route(
        Method::POST,
        "/deviceAppManagement/managedAppPolicies/{policyId}/targetApps",
        Access::Graph(WRITE, W),
        target_apps,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppRegistrations",
        Access::Graph(READ, R),
        list_registrations,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppRegistrations/{registrationId}",
        Access::Graph(READ, R),
        get_registration,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppRegistrations/{registrationId}/appliedPolicies",
        Access::Graph(READ, R),
        applied_policies,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppRegistrations/{registrationId}/intendedPolicies",
        Access::Graph(READ, R),
        intended_policies,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppRegistrations/{registrationId}/operations",
        Access::Graph(READ, R),
        operations,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppStatuses",
        Access::Graph(READ, R),
        list_statuses,
    )
    .route(
        Method::GET,
        "/deviceAppManagement/managedAppStatuses/{statusId}",
        Access::Graph(READ, R),
        get_status,
    )
    .route(
        Method::GET,
        "/users/{userId}/managedAppRegistrations",
        Access::Graph(READ, R),
        user_registrations,
    );
}

fn schema_of(platform: AppPlatform) -> &'static StructType {
    match platform {
        AppPlatform::Ios => &IOS_MANAGED_APP_PROTECTION,
        AppPlatform::Android => &ANDROID_MANAGED_APP_PROTECTION,
    }
}

fn collection_path(platform: AppPlatform) -> &'static str {
    match platform {
        AppPlatform::Ios => "deviceAppManagement/iosManagedAppProtections",
        AppPlatform::Android => "deviceAppManagement/androidManagedAppProtections",
    }
}

/// Navigation properties of the policy types; `apps` and `assignments` may be given on create.
const NAVIGATION: &[&str] = &["apps", "assignments", "deploymentSummary"];

/// The policy's Graph document.
fn render_policy(p: &AppProtectionPolicy, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = p.properties.clone();
    m.insert("id".into(), p.id.clone().into());
    m.insert("createdDateTime".into(), rfc3339(p.created_at).into());
    m.insert("lastModifiedDateTime".into(), rfc3339(p.last_modified_at).into());
    m.insert("version".into(), format!("\"{}\"", p.version).into());
    m.insert("isAssigned".into(), (!p.assignments.is_empty()).into());
    m.insert("deployedAppCount".into(), (p.apps.len() as i64).into());
    render(schema_of(p.platform), &m, ctx.view)
}

fn app_identifier(platform: AppPlatform, app_id: &str) -> Value {
    let (odata, key) = platform.app_identifier();
    json!({ "@odata.type": format!("#microsoft.graph.{odata}"), key: app_id })
}

fn render_app(platform: AppPlatform, a: &TargetedApp, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), a.id.clone().into());
    m.insert("version".into(), a.version.clone().into());
    let mut out = render(&MANAGED_MOBILE_APP, &m, ctx.view);
    // `mobileAppIdentifier` is abstract: the value is the platform's subtype.
    out.insert("mobileAppIdentifier".into(), app_identifier(platform, &a.app_id));
    out
}

fn render_assignment(a: &AppPolicyAssignment, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), a.id.clone().into());
    m.insert("source".into(), a.source.clone().into());
    m.insert("sourceId".into(), json!(a.source_id));
    let mut out = render(&TARGETED_MANAGED_APP_POLICY_ASSIGNMENT, &m, ctx.view);
    out.insert("target".into(), render_target(&a.target, ctx));
    out
}

/// A `managedMobileApp` of a body (create's `apps`, `targetApps`' `apps`).
fn parse_app(platform: AppPlatform, v: &Value) -> ApiResult<TargetedApp> {
    let Value::Object(fields) = v else {
        return Err(ApiError::bad_request(
            "An app must be an object of type 'microsoft.graph.managedMobileApp'.",
        ));
    };
    let (odata, key) = platform.app_identifier();
    let ident = fields.get("mobileAppIdentifier").ok_or_else(|| {
        ApiError::bad_request("The property 'mobileAppIdentifier' of a managedMobileApp is required.")
    })?;
    let given = ident.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    if given.trim_start_matches('#').trim_start_matches("microsoft.graph.") != odata {
        return Err(ApiError::bad_request(format!(
            "The app's 'mobileAppIdentifier' must be a '#microsoft.graph.{odata}' for a {} policy, not '{given}'.",
            platform.policy_type()
        )));
    }
    let app_id = ident
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("The property '{key}' of a {odata} is required.")))?
        .to_string();
    let mut rest = fields.clone();
    rest.remove("mobileAppIdentifier");
    rest.remove("id");
    let props = validate_patch(&MANAGED_MOBILE_APP, &Value::Object(rest), ApiVersion::V1)
        .map_err(|e| ApiError::bad_request(e.0))?;
    let suffix = match platform {
        AppPlatform::Ios => "ios",
        AppPlatform::Android => "android",
    };
    Ok(TargetedApp {
        // Intune names a targeted app by its id and the platform: `com.microsoft.outlook.ios`.
        id: format!("{}.{suffix}", app_id.to_ascii_lowercase()),
        app_id,
        version: props.get("version").and_then(Value::as_str).unwrap_or("-1").to_string(),
    })
}

fn parse_apps(platform: AppPlatform, v: &Value, name: &str) -> ApiResult<Vec<TargetedApp>> {
    let items = v.as_array().ok_or_else(|| {
        ApiError::bad_request(format!(
            "The parameter '{name}' must be a collection of managedMobileApp."
        ))
    })?;
    items.iter().map(|i| parse_app(platform, i)).collect()
}

/// A `targetedManagedAppPolicyAssignment` of a body; its id is the policy's and the group's
/// (or the target kind's).
fn parse_assignment(policy_id: &str, v: &Value, version: ApiVersion) -> ApiResult<AppPolicyAssignment> {
    let (target, source, source_id) = parse_assignment_parts(v, &TARGETED_MANAGED_APP_POLICY_ASSIGNMENT, version)?;
    let key = target
        .group_id
        .clone()
        .unwrap_or_else(|| target.kind.odata_name().to_string());
    Ok(AppPolicyAssignment {
        id: format!("{policy_id}_{key}"),
        target,
        source,
        source_id,
    })
}

/// Validates a create or PATCH body against the platform's schema: navigation properties are
/// not taken from it.
fn parse_properties(platform: AppPlatform, body: &Value, version: ApiVersion) -> ApiResult<Map<String, Value>> {
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request(format!(
            "A request body of type 'microsoft.graph.{}' is required.",
            platform.policy_type()
        )));
    };
    if let Some(t) = fields.get("@odata.type").and_then(Value::as_str) {
        if t.trim_start_matches('#').trim_start_matches("microsoft.graph.") != platform.policy_type() {
            return Err(ApiError::bad_request(format!(
                "A type named '{t}' could not be resolved by the model. The expected type is 'microsoft.graph.{}'.",
                platform.policy_type()
            )));
        }
    }
    let rest: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| {
            !NAVIGATION.contains(&k.as_str()) && !k.ends_with("@odata.bind") && k.as_str() != "@odata.type"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The service's properties (id, times, version, isAssigned, deployedAppCount) are read-only
    // in the schema: validated, then dropped.
    validate_patch(schema_of(platform), &Value::Object(rest), version).map_err(|e| ApiError::bad_request(e.0))
}

/// The policy a path names: of the path's platform, or of any under `managedAppPolicies`.
async fn policy_at(
    cx: &crate::service::Ctx<'_>,
    platform: Option<AppPlatform>,
    id: &str,
) -> ApiResult<AppProtectionPolicy> {
    Ok(match platform {
        Some(p) => mam::get_of(cx, p, id).await?,
        None => mam::get(cx, id).await?,
    })
}

fn path_of(platform: Option<AppPlatform>) -> &'static str {
    match platform {
        Some(p) => collection_path(p),
        None => "deviceAppManagement/managedAppPolicies",
    }
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let policies = mam::list(&caller.cx(&state.app), platform).await?;
    let docs = policies.iter().map(|p| render_policy(p, &ctx)).collect();
    let type_name = platform.map_or("managedAppPolicy", AppPlatform::policy_type);
    memory::page(&q, docs, type_name, ctx.context(path_of(platform), q.select.as_deref()))
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_collection_options(&q)?;
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    let mut body = render_policy(&p, &ctx);
    for e in &q.expand {
        match e.property.as_str() {
            "apps" => {
                let apps: Vec<Value> = p.apps.iter().map(|a| Value::Object(render_app(p.platform, a, &ctx))).collect();
                body.insert("apps".into(), Value::Array(apps));
            }
            "assignments" => {
                let a: Vec<Value> = p.assignments.iter().map(|a| Value::Object(render_assignment(a, &ctx))).collect();
                body.insert("assignments".into(), Value::Array(a));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Could not find a navigation property named '{other}' on type 'microsoft.graph.{}' that can be expanded.",
                    p.platform.policy_type()
                )))
            }
        }
    }
    let body = memory::select(body, q.select.as_deref());
    let context = ctx.context(&format!("{}/$entity", path_of(platform)), q.select.as_deref());
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

/// The platform of a create body: the path's, or under `managedAppPolicies` its `@odata.type`.
fn platform_of_body(platform: Option<AppPlatform>, body: &Value) -> ApiResult<AppPlatform> {
    if let Some(p) = platform {
        return Ok(p);
    }
    let given = body.get("@odata.type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(
            "The '@odata.type' of the policy is required: 'microsoft.graph.managedAppPolicy' is abstract and cannot be created.",
        )
    })?;
    match given.trim_start_matches('#').trim_start_matches("microsoft.graph.") {
        "iosManagedAppProtection" => Ok(AppPlatform::Ios),
        "androidManagedAppProtection" => Ok(AppPlatform::Android),
        _ => Err(ApiError::bad_request(format!(
            "The emulator creates iosManagedAppProtection and androidManagedAppProtection policies, not '{given}'."
        ))),
    }
}

async fn create(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let target = platform_of_body(platform, &body)?;
    let props = parse_properties(target, &body, ctx.version)?;
    if props
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad_request("The property 'displayName' is required."));
    }
    // Observed: Intune refuses assignments inline (docs/app-protection.md); `assign` sets them.
    if body.get("assignments").is_some() || body.get("deploymentSummary").is_some() {
        return Err(ApiError::bad_request(
            "Assignments cannot be given when creating an app protection policy: use the policy's 'assign' action.",
        ));
    }
    let apps = match body.get("apps") {
        Some(v) => parse_apps(target, v, "apps")?,
        None => Vec::new(),
    };
    let policy = mam::create(&caller.cx(&state.app), target, props, apps).await?;
    let body = render_policy(&policy, &ctx);
    let context = ctx.context(&format!("{}/$entity", path_of(platform)), None);
    Ok(graph_json(StatusCode::CREATED, with_context(context, body)))
}

async fn patch(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if let Some(name) = body
        .as_object()
        .and_then(|m| m.keys().find(|k| NAVIGATION.contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(format!(
            "The navigation property '{name}' cannot be written with PATCH: use its own action (assign, targetApps)."
        )));
    }
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    let props = parse_properties(p.platform, &body, ctx.version)?;
    if props
        .get("displayName")
        .is_some_and(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
    {
        return Err(ApiError::bad_request("The property 'displayName' cannot be empty."));
    }
    mam::patch(&cx, p.platform, &p.id, props).await?;
    // Intune answers 204, although the docs say 200 (graph-reference 4).
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    caller: GraphCaller,
    Plat(platform): Plat,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    mam::delete(&cx, p.platform, &p.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn assign(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if let Some(other) = body
        .as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != "assignments"))
    {
        return Err(ApiError::bad_request(format!(
            "The parameter '{other}' in the request payload is not a valid parameter for the operation 'assign'."
        )));
    }
    let items = body.get("assignments").and_then(Value::as_array).ok_or_else(|| {
        ApiError::bad_request(
            "The parameter 'assignments' is required: a collection of targetedManagedAppPolicyAssignment.",
        )
    })?;
    let cx = caller.cx(&state.app);
    let policy = policy_at(&cx, platform, &id).await?;
    let assignments = items
        .iter()
        .map(|i| parse_assignment(&policy.id, i, ctx.version))
        .collect::<ApiResult<Vec<_>>>()?;
    mam::assign(&cx, policy.platform, &policy.id, assignments).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `targetApps`: the apps replace the policy's; on a protection's own path `appGroupType` may
/// come with them (when it does not, the policy targets the selected apps, as observed).
async fn target_apps(
    caller: GraphCaller,
    Plat(platform): Plat,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    let allowed: &[&str] = if platform.is_some() {
        &["apps", "appGroupType"]
    } else {
        &["apps"]
    };
    if let Some(other) = body
        .as_object()
        .and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(format!(
            "The parameter '{other}' in the request payload is not a valid parameter for the operation 'targetApps'."
        )));
    }
    let cx = caller.cx(&state.app);
    let policy = policy_at(&cx, platform, &id).await?;
    let apps = parse_apps(
        policy.platform,
        body.get("apps").ok_or_else(|| {
            ApiError::bad_request("The parameter 'apps' is required: a collection of managedMobileApp.")
        })?,
        "apps",
    )?;
    let group = body
        .get("appGroupType")
        .cloned()
        .unwrap_or_else(|| "selectedPublicApps".into());
    let group = match group.as_str() {
        Some(g) if ["selectedPublicApps", "allCoreMicrosoftApps", "allMicrosoftApps", "allApps"].contains(&g) => g.to_string(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "The value '{group}' is not a valid member of enum type 'microsoft.graph.targetedManagedAppGroupType' for parameter 'appGroupType'."
            )))
        }
    };
    mam::target_apps(&cx, policy.platform, &policy.id, apps, group).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn assignments(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let p = policy_at(&caller.cx(&state.app), platform, &id).await?;
    let docs = p.assignments.iter().map(|a| render_assignment(a, &ctx)).collect();
    let path = format!("{}('{}')/assignments", path_of(platform), p.id);
    memory::page(
        &q,
        docs,
        "targetedManagedAppPolicyAssignment",
        ctx.context(&path, q.select.as_deref()),
    )
}

async fn create_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    let a = parse_assignment(&p.id, &body, ctx.version)?;
    let a = mam::add_assignment(&cx, p.platform, &p.id, a).await?;
    let path = format!("{}('{}')/assignments/$entity", path_of(platform), p.id);
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(ctx.context(&path, None), render_assignment(&a, &ctx)),
    ))
}

async fn get_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    Path((id, assignment_id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    let a = mam::assignment(&cx, p.platform, &p.id, &assignment_id).await?;
    let path = format!("{}('{}')/assignments/$entity", path_of(platform), p.id);
    Ok(graph_json(
        StatusCode::OK,
        with_context(ctx.context(&path, None), render_assignment(&a, &ctx)),
    ))
}

async fn delete_assignment(
    caller: GraphCaller,
    Plat(platform): Plat,
    Path((id, assignment_id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    mam::remove_assignment(&cx, p.platform, &p.id, &assignment_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn apps(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let p = policy_at(&caller.cx(&state.app), platform, &id).await?;
    let docs = p.apps.iter().map(|a| render_app(p.platform, a, &ctx)).collect();
    let path = format!("{}('{}')/apps", path_of(platform), p.id);
    memory::page(&q, docs, "managedMobileApp", ctx.context(&path, q.select.as_deref()))
}

fn render_summary(s: &DeploymentSummary, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), format!("{}_deploymentSummary", s.policy.id).into());
    m.insert("displayName".into(), s.policy.display_name().into());
    m.insert(
        "configurationDeployedUserCount".into(),
        (s.deployed_users as i64).into(),
    );
    if let Some(t) = s.last_refresh {
        m.insert("lastRefreshTime".into(), rfc3339(t).into());
    }
    m.insert("version".into(), format!("\"{}\"", s.policy.version).into());
    let mut out = render(&MANAGED_APP_POLICY_DEPLOYMENT_SUMMARY, &m, ctx.view);
    let per_app: Vec<Value> = s
        .per_app
        .iter()
        .map(|(app, n)| {
            json!({
                "mobileAppIdentifier": app_identifier(s.policy.platform, app),
                "configurationAppliedUserCount": n,
            })
        })
        .collect();
    out.insert("configurationDeploymentSummaryPerApp".into(), Value::Array(per_app));
    out
}

async fn deployment_summary(
    caller: GraphCaller,
    ctx: GraphCtx,
    Plat(platform): Plat,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let cx = caller.cx(&state.app);
    let p = policy_at(&cx, platform, &id).await?;
    let s = mam::deployment_summary(&cx, p.platform, &p.id).await?;
    let body = render_summary(&s, &ctx);
    let path = format!("{}('{}')/deploymentSummary/$entity", path_of(platform), s.policy.id);
    Ok(graph_json(StatusCode::OK, with_context(ctx.context(&path, None), body)))
}

// ---------------------------------------------------------------------------------------------
// Registrations
// ---------------------------------------------------------------------------------------------

fn render_registration(r: &AppRegistration, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), r.id.clone().into());
    m.insert("applicationVersion".into(), r.application_version.clone().into());
    m.insert("azureADDeviceId".into(), r.azure_ad_device_id.clone().into());
    m.insert("createdDateTime".into(), rfc3339(r.created_at).into());
    m.insert("deviceManufacturer".into(), json!(r.device_manufacturer));
    m.insert("deviceModel".into(), json!(r.device_model));
    m.insert("deviceName".into(), r.device_name.clone().into());
    m.insert("deviceTag".into(), r.azure_ad_device_id.clone().into());
    m.insert(
        "deviceType".into(),
        match r.platform {
            AppPlatform::Ios => "iPhone",
            AppPlatform::Android => "Android",
        }
        .into(),
    );
    m.insert("flaggedReasons".into(), json!([]));
    if let Some(t) = r.last_sync_at {
        m.insert("lastSyncDateTime".into(), rfc3339(t).into());
    }
    m.insert("managedDeviceId".into(), json!(r.managed_device_id));
    m.insert("managementSdkVersion".into(), r.management_sdk_version.clone().into());
    m.insert("platformVersion".into(), r.platform_version.clone().into());
    m.insert("userId".into(), r.user_id.clone().into());
    m.insert("version".into(), format!("\"{}\"", r.revision).into());
    let st = match r.platform {
        AppPlatform::Ios => &IOS_MANAGED_APP_REGISTRATION,
        AppPlatform::Android => &ANDROID_MANAGED_APP_REGISTRATION,
    };
    let mut out = render(st, &m, ctx.view);
    out.insert("appIdentifier".into(), app_identifier(r.platform, &r.app_id));
    out
}

async fn list_registrations(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let cx = caller.cx(&state.app);
    let all = mam::registrations(&cx, None).await?;
    let docs = registration_docs(&cx, &all, &q.expand, &ctx).await?;
    memory::page(
        &q,
        docs,
        "managedAppRegistration",
        ctx.context("deviceAppManagement/managedAppRegistrations", q.select.as_deref()),
    )
}

async fn user_registrations(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(user_id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let cx = caller.cx(&state.app);
    let all = mam::user_registrations(&cx, &user_id).await?;
    let docs = registration_docs(&cx, &all, &q.expand, &ctx).await?;
    let path = format!("users('{user_id}')/managedAppRegistrations");
    memory::page(
        &q,
        docs,
        "managedAppRegistration",
        ctx.context(&path, q.select.as_deref()),
    )
}

/// A registration's document with the navigation properties `expand` names.
async fn registration_doc(
    cx: &crate::service::Ctx<'_>,
    r: &AppRegistration,
    expand: &[crate::odata::Expand],
    ctx: &GraphCtx,
) -> ApiResult<Map<String, Value>> {
    let mut body = render_registration(r, ctx);
    for e in expand {
        let policies = match e.property.as_str() {
            "appliedPolicies" => mam::applied_policies(cx, &r.id).await?,
            "intendedPolicies" => mam::intended_policies(cx, &r.id).await?,
            "operations" => {
                let ops: Vec<Value> = r.operations.iter().map(|o| Value::Object(render_operation(o, ctx))).collect();
                body.insert("operations".into(), Value::Array(ops));
                continue;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Could not find a navigation property named '{other}' on type 'microsoft.graph.managedAppRegistration' that can be expanded."
                )))
            }
        };
        let docs: Vec<Value> = policies.iter().map(|p| Value::Object(render_policy(p, ctx))).collect();
        body.insert(e.property.clone(), Value::Array(docs));
    }
    Ok(body)
}

async fn registration_docs(
    cx: &crate::service::Ctx<'_>,
    all: &[AppRegistration],
    expand: &[crate::odata::Expand],
    ctx: &GraphCtx,
) -> ApiResult<Vec<Map<String, Value>>> {
    let mut docs = Vec::with_capacity(all.len());
    for r in all {
        docs.push(registration_doc(cx, r, expand, ctx).await?);
    }
    Ok(docs)
}

async fn get_registration(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_collection_options(&q)?;
    let cx = caller.cx(&state.app);
    let r = mam::registration(&cx, &id).await?;
    let body = registration_doc(&cx, &r, &q.expand, &ctx).await?;
    let body = memory::select(body, q.select.as_deref());
    let context = ctx.context(
        "deviceAppManagement/managedAppRegistrations/$entity",
        q.select.as_deref(),
    );
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

async fn applied_policies(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let policies = mam::applied_policies(&caller.cx(&state.app), &id).await?;
    let docs = policies.iter().map(|p| render_policy(p, &ctx)).collect();
    let path = format!("deviceAppManagement/managedAppRegistrations('{id}')/appliedPolicies");
    memory::page(&q, docs, "managedAppPolicy", ctx.context(&path, q.select.as_deref()))
}

async fn intended_policies(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let policies = mam::intended_policies(&caller.cx(&state.app), &id).await?;
    let docs = policies.iter().map(|p| render_policy(p, &ctx)).collect();
    let path = format!("deviceAppManagement/managedAppRegistrations('{id}')/intendedPolicies");
    memory::page(&q, docs, "managedAppPolicy", ctx.context(&path, q.select.as_deref()))
}

fn render_operation(o: &crate::domain::app_protection::AppOperation, ctx: &GraphCtx) -> Map<String, Value> {
    let stored = mam::operation_json(o);
    render(&MANAGED_APP_OPERATION, stored.as_object().expect("an object"), ctx.view)
}

async fn operations(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let r = mam::registration(&caller.cx(&state.app), &id).await?;
    let docs = r.operations.iter().map(|o| render_operation(o, &ctx)).collect();
    let path = format!("deviceAppManagement/managedAppRegistrations('{}')/operations", r.id);
    memory::page(&q, docs, "managedAppOperation", ctx.context(&path, q.select.as_deref()))
}

// ---------------------------------------------------------------------------------------------
// Status reports
// ---------------------------------------------------------------------------------------------

/// The query of a status report, as Microsoft's scripts send it:
/// `?fetch=6000&policyMode=0&columns=UserId,DisplayName,...&seek=<skipToken>`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StatusQuery {
    fetch: Option<String>,
    policy_mode: Option<String>,
    columns: Option<String>,
    seek: Option<String>,
}

/// The most rows a page of a status report holds (and what it holds when `fetch` is not given).
const STATUS_PAGE: usize = 6000;

fn status_query(uri: &axum::http::Uri) -> ApiResult<(Vec<&'static str>, usize, usize)> {
    let axum::extract::Query(q) = axum::extract::Query::<StatusQuery>::try_from_uri(uri).map_err(|e| {
        ApiError::bad_request(format!(
            "Invalid query: {e}. A status report takes fetch, policyMode, columns and seek."
        ))
    })?;
    let number = |name: &str, v: &Option<String>, default: usize| -> ApiResult<usize> {
        match v {
            None => Ok(default),
            Some(t) => t.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("Invalid value for '{name}': '{t}' is not a whole number."))
            }),
        }
    };
    let fetch = number("fetch", &q.fetch, STATUS_PAGE)?;
    if !(1..=STATUS_PAGE).contains(&fetch) {
        return Err(ApiError::bad_request(format!(
            "Invalid value for 'fetch': {fetch} is outside the allowed range of 1 to {STATUS_PAGE}."
        )));
    }
    let seek = number("seek", &q.seek, 0)?;
    if q.policy_mode.as_deref().is_some_and(|m| m != "0") {
        return Err(ApiError::bad_request(
            "Only policyMode=0 (app protection policies) is served: the emulator has no app configuration policies.",
        ));
    }
    let columns = match q.columns.as_deref() {
        None | Some("") => mam::REGISTRATION_SUMMARY_COLUMNS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|c| {
                mam::REGISTRATION_SUMMARY_COLUMNS
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(c.trim()))
                    .copied()
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Unknown column '{c}' of the app registration summary; the columns are {}.",
                            mam::REGISTRATION_SUMMARY_COLUMNS.join(", ")
                        ))
                    })
            })
            .collect::<ApiResult<Vec<_>>>()?,
    };
    Ok((columns, fetch, seek))
}

/// A `managedAppStatusRaw`: the report's rows under `content` (`header`, `body`, `skipToken`).
async fn status_doc(
    cx: &crate::service::Ctx<'_>,
    id: &str,
    display_name: &str,
    (columns, fetch, seek): (Vec<&'static str>, usize, usize),
) -> ApiResult<Map<String, Value>> {
    let page = mam::registration_summary(cx, columns, fetch, seek).await?;
    let mut m = Map::new();
    m.insert("@odata.type".into(), "#microsoft.graph.managedAppStatusRaw".into());
    m.insert("id".into(), id.into());
    m.insert("displayName".into(), display_name.into());
    m.insert("version".into(), Value::Null);
    m.insert(
        "content".into(),
        json!({
            "header": page.columns.iter().map(|c| json!({ "columnName": c })).collect::<Vec<_>>(),
            "body": page.rows.iter().map(|r| json!({ "values": r })).collect::<Vec<_>>(),
            "skipToken": page.next.map(|n| n.to_string()).unwrap_or_default(),
        }),
    );
    Ok(m)
}

async fn list_statuses(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let cx = caller.cx(&state.app);
    let mut docs = Vec::new();
    for (id, name) in mam::STATUS_REPORTS {
        docs.push(
            status_doc(
                &cx,
                id,
                name,
                (mam::REGISTRATION_SUMMARY_COLUMNS.to_vec(), STATUS_PAGE, 0),
            )
            .await?,
        );
    }
    memory::page(
        &q,
        docs,
        "managedAppStatus",
        ctx.context("deviceAppManagement/managedAppStatuses", q.select.as_deref()),
    )
}

async fn get_status(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let Some((id, name)) = mam::STATUS_REPORTS.iter().find(|(r, _)| r.eq_ignore_ascii_case(&id)) else {
        return Err(ApiError::not_found(format!(
            "The managed app status report '{id}' does not exist: the emulator serves {}.",
            mam::STATUS_REPORTS
                .iter()
                .map(|(r, _)| *r)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let query = status_query(&uri)?;
    let body = status_doc(&caller.cx(&state.app), id, name, query).await?;
    let context = ctx.context("deviceAppManagement/managedAppStatuses/$entity", None);
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}
