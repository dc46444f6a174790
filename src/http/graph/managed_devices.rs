//! `/deviceManagement/managedDevices`, `/users/{id}/managedDevices`, `/deviceManagement/detectedApps`
//! and the remote actions retire, wipe and remoteLock.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{
    apply_select, collection_response, graph_json, page_response, reject_collection_options, reject_expand,
    with_context, GraphCtx,
};
use crate::domain::device::{ManagedDevice, OwnerType};
use crate::domain::permissions::GraphPermission;
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, JsonBody, OData};
use crate::http::paging::{list_query, page_request};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::{CmpOp, Expr, QueryOptions, StrFunc};
use crate::schema::managed_device::{DETECTED_APP, MANAGED_DEVICE};
use crate::schema::served::WIPE_PARAMETERS;
use crate::schema::{render, render_owned, validate_patch};
use crate::service::clock::rfc3339;
use crate::service::devices::{self, RemoteAction};
use crate::store::{DetectedApp, ListQuery, ListScope};

const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementManagedDevices.Read.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
    ],
};
const WRITE: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementManagedDevices.ReadWrite.All"],
};
const PRIVILEGED: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementManagedDevices.PrivilegedOperations.All"],
};

pub fn routes(t: &mut RouteTable) {
    t.route(
        Method::GET,
        "/deviceManagement/managedDevices",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        list,
    )
    .get_checked(
        "/deviceManagement/managedDevices/{deviceId}",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        get,
    )
    .route(
        Method::PATCH,
        "/deviceManagement/managedDevices/{deviceId}",
        Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedDevices_Update")),
        patch,
    )
    .route(
        Method::DELETE,
        "/deviceManagement/managedDevices/{deviceId}",
        Access::Graph(WRITE, Intune("Microsoft.Intune_ManagedDevices_Delete")),
        delete,
    )
    .route(
        Method::POST,
        "/deviceManagement/managedDevices/{deviceId}/retire",
        Access::Graph(PRIVILEGED, Intune("Microsoft.Intune_RemoteTasks_Retire")),
        retire,
    )
    .route(
        Method::POST,
        "/deviceManagement/managedDevices/{deviceId}/wipe",
        Access::Graph(PRIVILEGED, Intune("Microsoft.Intune_RemoteTasks_Wipe")),
        wipe,
    )
    .route(
        Method::POST,
        "/deviceManagement/managedDevices/{deviceId}/remoteLock",
        Access::Graph(PRIVILEGED, Intune("Microsoft.Intune_RemoteTasks_RemoteLock")),
        remote_lock,
    )
    .route(
        Method::GET,
        "/deviceManagement/managedDevices/{deviceId}/detectedApps",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        apps_of_device,
    )
    .route(
        Method::GET,
        "/users/{userId}/managedDevices",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        list_of_user,
    )
    .route(
        Method::GET,
        "/users/{userId}/managedDevices/{deviceId}",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        get_of_user,
    )
    .route(
        Method::GET,
        "/deviceManagement/detectedApps",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        list_detected_apps,
    )
    .route(
        Method::GET,
        "/deviceManagement/detectedApps/{detectedAppId}",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        get_detected_app,
    )
    .route(
        Method::GET,
        "/deviceManagement/detectedApps/{detectedAppId}/managedDevices",
        Access::Graph(READ, Intune("Microsoft.Intune_ManagedDevices_Read")),
        devices_with_app,
    );
}

/// Intune's page size for managed devices: 1,000 by default and at most.
const DEVICE_PAGE: u64 = 1000;
const APP_PAGE: u64 = 100;

/// Properties Intune leaves out of lists and of a GET without `$select` naming them.
const NON_DEFAULT: &[&str] = &[
    "activationLockBypassCode",
    "ethernetMacAddress",
    "iccid",
    "udid",
    "notes",
    "physicalMemoryInBytes",
    "remoteAssistanceSessionUrl",
];

/// What `$filter` may do with each property, as the managedDevice descriptions say ("Supports
/// $filter operator 'eq' and 'or'"...). Anything else is refused, as Intune refuses it.
struct FilterRule {
    property: &'static str,
    ops: &'static [&'static str],
}

const FILTER_RULES: &[FilterRule] = &[
    FilterRule {
        property: "azureADDeviceId",
        ops: &["eq"],
    },
    FilterRule {
        property: "complianceGracePeriodExpirationDateTime",
        ops: &["lt", "gt"],
    },
    FilterRule {
        property: "complianceState",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "deviceCategoryDisplayName",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "deviceName",
        ops: &["eq", "contains"],
    },
    FilterRule {
        property: "emailAddress",
        ops: &["contains"],
    },
    FilterRule {
        property: "enrolledDateTime",
        ops: &["lt", "gt"],
    },
    FilterRule {
        property: "exchangeAccessState",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "imei",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "jailBroken",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "lastSyncDateTime",
        ops: &["lt", "gt"],
    },
    FilterRule {
        property: "managementAgent",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "managementState",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "manufacturer",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "model",
        ops: &["eq", "contains"],
    },
    FilterRule {
        property: "operatingSystem",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "osVersion",
        ops: &["contains"],
    },
    FilterRule {
        property: "phoneNumber",
        ops: &["contains"],
    },
    FilterRule {
        property: "serialNumber",
        ops: &["eq", "or"],
    },
    FilterRule {
        property: "userPrincipalName",
        ops: &["eq", "ne"],
    },
];

fn rule(property: &str) -> Option<&'static FilterRule> {
    FILTER_RULES.iter().find(|r| r.property.eq_ignore_ascii_case(property))
}

fn unsupported(property: &str, op: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid filter clause: managedDevices does not support the '{op}' operator on property '{property}'."
    ))
}

fn op_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Gt | CmpOp::Ge => "gt",
        CmpOp::Lt | CmpOp::Le => "lt",
    }
}

/// The property a leaf of the filter names, after checking its operator.
fn check_leaf(expr: &Expr) -> ApiResult<&str> {
    let (property, op) = match expr {
        Expr::Compare { property, op, .. } => (property, op_name(*op)),
        Expr::In { property, .. } => (property, "in"),
        Expr::Func {
            func: StrFunc::Contains,
            property,
            ..
        } => (property, "contains"),
        Expr::Func {
            func: StrFunc::StartsWith,
            property,
            ..
        } => (property, "startswith"),
        Expr::Func {
            func: StrFunc::EndsWith,
            property,
            ..
        } => (property, "endswith"),
        Expr::Not(_) => {
            return Err(ApiError::bad_request(
                "Invalid filter clause: managedDevices does not support 'not'.",
            ))
        }
        Expr::And(..) | Expr::Or(..) => unreachable!("combinations are walked by check_filter"),
    };
    // An unknown property falls through to the OData layer's own message.
    let Some(r) = rule(property) else { return Ok(property) };
    let allowed = match op {
        "in" => r.ops.contains(&"eq") && r.ops.contains(&"or"),
        op => r.ops.contains(&op),
    };
    if allowed {
        Ok(property)
    } else {
        Err(unsupported(property, op))
    }
}

/// Intune's `$filter` rules for managedDevices: documented operators per property; different
/// properties combine with `and` only; `or` joins terms on one property that supports it.
fn check_filter(expr: &Expr) -> ApiResult<()> {
    match expr {
        Expr::And(a, b) => {
            check_filter(a)?;
            check_filter(b)
        }
        Expr::Or(..) => {
            let mut leaves = Vec::new();
            collect_or(expr, &mut leaves);
            let mut property: Option<&str> = None;
            for leaf in leaves {
                let p = match leaf {
                    Expr::And(..) | Expr::Or(..) => {
                        return Err(ApiError::bad_request(
                            "Invalid filter clause: on managedDevices, 'or' may only join terms on one property; combine properties with 'and'.",
                        ))
                    }
                    leaf => check_leaf(leaf)?,
                };
                match property {
                    None => property = Some(p),
                    Some(q) if q.eq_ignore_ascii_case(p) => {}
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "Invalid filter clause: on managedDevices, 'or' may only join terms on one property; combine properties with 'and'.",
                        ))
                    }
                }
                if rule(p).is_some_and(|r| !r.ops.contains(&"or")) {
                    return Err(unsupported(p, "or"));
                }
            }
            Ok(())
        }
        leaf => check_leaf(leaf).map(|_| ()),
    }
}

fn collect_or<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::Or(a, b) => {
            collect_or(a, out);
            collect_or(b, out);
        }
        other => out.push(other),
    }
}

/// The device's stored properties with the typed columns laid over them, in Graph's names.
fn device_document(d: &ManagedDevice) -> Map<String, Value> {
    let mut m = d.properties.clone();
    let opt = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
    m.insert("id".into(), d.id.clone().into());
    m.insert("deviceName".into(), d.device_name.clone().into());
    m.insert("operatingSystem".into(), d.operating_system.clone().into());
    m.insert("osVersion".into(), d.os_version.clone().into());
    m.insert("managedDeviceOwnerType".into(), d.owner_type.as_str().into());
    m.insert("userId".into(), opt(&d.user_id));
    m.insert("userPrincipalName".into(), opt(&d.user_principal_name));
    m.insert("userDisplayName".into(), opt(&d.user_display_name));
    m.insert("emailAddress".into(), opt(&d.email_address));
    m.insert("azureADDeviceId".into(), d.azure_ad_device_id.clone().into());
    m.insert(
        "azureActiveDirectoryDeviceId".into(),
        d.azure_ad_device_id.clone().into(),
    );
    m.insert("model".into(), opt(&d.model));
    m.insert("manufacturer".into(), opt(&d.manufacturer));
    m.insert("serialNumber".into(), opt(&d.serial_number));
    m.insert("imei".into(), opt(&d.imei));
    m.insert("phoneNumber".into(), opt(&d.phone_number));
    m.insert("enrolledDateTime".into(), rfc3339(d.enrolled_at).into());
    m.insert("lastSyncDateTime".into(), rfc3339(d.last_sync_at).into());
    m.insert("complianceState".into(), d.compliance_state.clone().into());
    // Intune shows the far future when a device is not in a grace period.
    let grace = d
        .compliance_grace_expires_at
        .map(rfc3339)
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".into());
    m.insert("complianceGracePeriodExpirationDateTime".into(), grace.into());
    m.insert(
        "partnerReportedThreatState".into(),
        d.partner_threat_state.clone().into(),
    );
    m.insert("managementState".into(), d.management_state.clone().into());
    m
}

/// A device as Graph shows it: non-default properties only when a single GET selects them.
pub fn render_device(
    d: &ManagedDevice,
    ctx: &GraphCtx,
    select: Option<&Vec<String>>,
    single: bool,
) -> ApiResult<Map<String, Value>> {
    let mut doc = device_document(d);
    let selected = |name: &str| single && select.is_some_and(|s| s.iter().any(|n| n.eq_ignore_ascii_case(name)));
    for name in NON_DEFAULT {
        if !selected(name) {
            doc.remove(*name);
        }
    }
    apply_select(
        render_owned(&MANAGED_DEVICE, doc, ctx.view),
        &MANAGED_DEVICE,
        select,
        ctx.version,
    )
}

fn check_device_query(q: &QueryOptions) -> ApiResult<()> {
    if q.search.is_some() {
        return Err(ApiError::bad_request("$search is not supported on managedDevices."));
    }
    reject_expand(q, "managedDevice")?;
    if let Some(f) = &q.filter {
        check_filter(f)?;
    }
    Ok(())
}

/// A page of devices: of the tenant, or of the user `user` names (an id or a UPN).
async fn device_page(
    state: &AppState,
    caller: &GraphCaller,
    ctx: &GraphCtx,
    q: &QueryOptions,
    uri: &Uri,
    user: Option<&str>,
    context_path: &str,
) -> ApiResult<Response> {
    // The store query, narrowed to `scope`; built once the user is known, so that an unknown
    // user is told before a query Intune refuses.
    let query = |scope: ListScope| -> ApiResult<ListQuery> {
        check_device_query(q)?;
        let page = page_request(q, DEVICE_PAGE, DEVICE_PAGE)?;
        // Intune answers @odata.count on device lists whether or not $count was asked for.
        Ok(list_query(q, &page, scope, true))
    };
    let cx = caller.cx(&state.app);
    let rows = match user {
        None => devices::list(&cx, &query(ListScope::All)?).await?,
        Some(key) => devices::list_of_user(&cx, key, |user_id| query(ListScope::UserDevices(user_id.to_string())))
            .await?
            .ok_or_else(|| user_not_found(key))?,
    };
    // Accepted already, when the query was built.
    let page = page_request(q, DEVICE_PAGE, DEVICE_PAGE)?;
    let keyset = q.orderby.is_empty();
    let context = ctx.context(context_path, q.select.as_deref());
    page_response(
        ctx,
        uri,
        &page,
        keyset,
        rows,
        |d| &d.id,
        |d| render_device(d, ctx, q.select.as_ref(), false),
        context,
    )
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    device_page(&state, &caller, &ctx, &q, &uri, None, "deviceManagement/managedDevices").await
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_collection_options(&q)?;
    reject_expand(&q, "managedDevice")?;
    let device = devices::get(&caller.cx(&state.app), &id).await?;
    let body = render_device(&device, &ctx, q.select.as_ref(), true)?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(
            ctx.context("deviceManagement/managedDevices/$entity", q.select.as_deref()),
            body,
        ),
    ))
}

fn user_not_found(user_key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{user_key}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

async fn list_of_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(user): Path<String>,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    device_page(
        &state,
        &caller,
        &ctx,
        &q,
        &uri,
        Some(&user),
        "users('{id}')/managedDevices",
    )
    .await
}

async fn get_of_user(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path((user, id)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_collection_options(&q)?;
    let device = devices::get_of_user(&caller.cx(&state.app), &user, &id)
        .await?
        .ok_or_else(|| user_not_found(&user))?;
    let body = render_device(&device, &ctx, q.select.as_ref(), true)?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(
            ctx.context("users('{id}')/managedDevices/$entity", q.select.as_deref()),
            body,
        ),
    ))
}

async fn patch(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if body.is_null() {
        return Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.managedDevice' is required.",
        ));
    }
    let mut props = validate_patch(&MANAGED_DEVICE, &body, ctx.version).map_err(|e| ApiError::bad_request(e.0))?;
    // Ownership is a column (compliance and app visibility depend on it), under both names.
    let mut owner = None;
    for name in ["managedDeviceOwnerType", "ownerType"] {
        if let Some(o) = props.remove(name) {
            match o.as_str().and_then(OwnerType::parse) {
                Some(o) => owner = Some(o),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid value for property '{name}': only company and personal can be set."
                    )))
                }
            }
        }
    }
    devices::update(&caller.cx(&state.app), &id, owner, props).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(caller: GraphCaller, Path(id): Path<String>, State(state): State<AppState>) -> ApiResult<StatusCode> {
    devices::delete(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn act(state: &AppState, caller: &GraphCaller, id: &str, action: RemoteAction) -> ApiResult<StatusCode> {
    devices::act(&caller.cx(&state.app), id, action).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn retire(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    no_body(&body, "retire")?;
    act(&state, &caller, &id, RemoteAction::Retire).await
}

async fn remote_lock(
    caller: GraphCaller,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    no_body(&body, "remoteLock")?;
    act(&state, &caller, &id, RemoteAction::RemoteLock).await
}

/// Actions without parameters accept no body or an empty object, as the SDKs send them.
fn no_body(body: &Value, action: &str) -> ApiResult<()> {
    match body {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        Value::Object(m) => Err(ApiError::bad_request(format!(
            "The parameter '{}' is not in scope of the action '{action}'.",
            m.keys().next().map(String::as_str).unwrap_or_default()
        ))),
        _ => Err(ApiError::bad_request(format!(
            "The body of '{action}' must be a JSON object."
        ))),
    }
}

async fn wipe(
    caller: GraphCaller,
    version: ApiVersion,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if !body.is_null() {
        validate_patch(&WIPE_PARAMETERS, &body, version).map_err(|e| {
            ApiError::bad_request(e.0.replace("on type 'microsoft.graph.wipeRequestBody'", "in the action 'wipe'"))
        })?;
    }
    act(&state, &caller, &id, RemoteAction::Wipe).await
}

// ---- detected apps ----

fn detected_app_json(a: &DetectedApp, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), a.id.clone().into());
    m.insert("displayName".into(), a.display_name.clone().into());
    m.insert("version".into(), a.version.clone().into());
    m.insert("sizeInByte".into(), a.size_in_bytes.into());
    m.insert("deviceCount".into(), a.device_count.into());
    m.insert(
        "publisher".into(),
        a.publisher.clone().map(Value::String).unwrap_or(Value::Null),
    );
    m.insert("platform".into(), a.platform.clone().into());
    render(&DETECTED_APP, &m, ctx.view)
}

async fn list_detected_apps(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    reject_expand(&q, "detectedApp")?;
    if q.filter.is_some() || !q.orderby.is_empty() || q.search.is_some() {
        return Err(ApiError::bad_request(
            "$filter, $orderby and $search are not supported on detectedApps.",
        ));
    }
    let page = page_request(&q, APP_PAGE, APP_PAGE)?;
    let rows = devices::list_detected_apps(&caller.cx(&state.app), &page.list_query(None, None, q.count)).await?;
    let render_app = |a: &DetectedApp| {
        apply_select(
            detected_app_json(a, &ctx),
            &DETECTED_APP,
            q.select.as_ref(),
            ctx.version,
        )
    };
    let context = ctx.context("deviceManagement/detectedApps", q.select.as_deref());
    page_response(&ctx, &uri, &page, false, rows, |a| &a.id, render_app, context)
}

async fn get_detected_app(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    reject_collection_options(&q)?;
    reject_expand(&q, "detectedApp")?;
    let app = devices::detected_app(&caller.cx(&state.app), &id).await?;
    let body = apply_select(
        detected_app_json(&app, &ctx),
        &DETECTED_APP,
        q.select.as_ref(),
        ctx.version,
    )?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(
            ctx.context("deviceManagement/detectedApps/$entity", q.select.as_deref()),
            body,
        ),
    ))
}

async fn devices_with_app(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    reject_expand(&q, "managedDevice")?;
    if q.filter.is_some() || !q.orderby.is_empty() {
        return Err(ApiError::bad_request("$filter and $orderby are not supported here."));
    }
    let page = page_request(&q, APP_PAGE, DEVICE_PAGE)?;
    let rows = devices::devices_with_app(&caller.cx(&state.app), &id, &page.list_query(None, None, false)).await?;
    let context = ctx.context(
        "deviceManagement/detectedApps('{id}')/managedDevices",
        q.select.as_deref(),
    );
    page_response(
        &ctx,
        &uri,
        &page,
        false,
        rows,
        |d| &d.id,
        |d| render_device(d, &ctx, q.select.as_ref(), false),
        context,
    )
}

/// beta only: the apps Intune shows for one device.
async fn apps_of_device(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    if ctx.version == ApiVersion::V1 {
        return Err(ApiError::bad_request(
            "Resource not found for the segment 'detectedApps'.",
        ));
    }
    reject_expand(&q, "detectedApp")?;
    let apps = devices::detected_apps_of_device(&caller.cx(&state.app), &id).await?;
    let values = apps
        .iter()
        .map(|a| {
            apply_select(
                detected_app_json(a, &ctx),
                &DETECTED_APP,
                q.select.as_ref(),
                ctx.version,
            )
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(collection_response(
        ctx.context(
            "deviceManagement/managedDevices('{id}')/detectedApps",
            q.select.as_deref(),
        ),
        values,
        None,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::parse_filter;

    #[test]
    fn filters_follow_the_documented_operators() {
        let ok = [
            "operatingSystem eq 'iOS'",
            "operatingSystem eq 'iOS' or operatingSystem eq 'Android'",
            "complianceState eq 'noncompliant' and operatingSystem eq 'iOS'",
            "contains(deviceName,'lab')",
            "lastSyncDateTime lt 2026-01-01T00:00:00Z and enrolledDateTime gt 2025-01-01T00:00:00Z",
            "userPrincipalName ne 'a@b.c'",
            "operatingSystem in ('iOS','Android')",
            "(complianceState eq 'compliant' or complianceState eq 'inGracePeriod') and model eq 'iPhone'",
        ];
        for f in ok {
            assert!(check_filter(&parse_filter(f).unwrap()).is_ok(), "{f}");
        }
        let refused = [
            ("deviceName ne 'x'", "'ne' operator on property 'deviceName'"),
            ("startswith(deviceName,'x')", "'startswith'"),
            (
                "operatingSystem eq 'iOS' or complianceState eq 'compliant'",
                "one property",
            ),
            (
                "deviceName eq 'a' or deviceName eq 'b'",
                "'or' operator on property 'deviceName'",
            ),
            ("not (operatingSystem eq 'iOS')", "'not'"),
            (
                "contains(operatingSystem,'i')",
                "'contains' operator on property 'operatingSystem'",
            ),
            ("azureADDeviceId in ('a','b')", "'in'"),
        ];
        for (f, expected) in refused {
            let err = check_filter(&parse_filter(f).unwrap()).unwrap_err();
            assert!(err.message.contains(expected), "{f}: {}", err.message);
        }
    }
}
