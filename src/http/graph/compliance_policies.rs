//! `/deviceManagement/deviceCompliancePolicies`: the platform compliance policies, polymorphic by
//! `@odata.type`, with their assignments, actions for noncompliance and the status views that
//! evaluation keeps.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::memory;
use super::{collection_response, graph_json, with_context, GraphCtx};
use crate::domain::compliance::PolicyFamily;
use crate::domain::permissions::GraphPermission;
use crate::domain::policy::{
    assignment_id, check_grace_hours, check_one_block, ActionItem, Assignment, AssignmentTarget, ScheduledActionRule,
    StoredPolicy, TargetKind,
};
use crate::domain::rbac::RoleRequirement::Intune;
use crate::http::auth::GraphCaller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiVersion, JsonBody, OData};
use crate::http::routes::{Access, RouteTable};
use crate::http::AppState;
use crate::odata::QueryOptions;
use crate::schema::compliance::{
    ANDROID_COMPLIANCE_POLICY, ANDROID_DEVICE_OWNER_COMPLIANCE_POLICY, ANDROID_WORK_PROFILE_COMPLIANCE_POLICY,
    DEVICE_COMPLIANCE_ACTION_ITEM, DEVICE_COMPLIANCE_POLICY_ASSIGNMENT, IOS_COMPLIANCE_POLICY,
    MAC_OS_COMPLIANCE_POLICY, WINDOWS10_COMPLIANCE_POLICY,
};
use crate::schema::compliance_status::{
    DEVICE_COMPLIANCE_DEVICE_OVERVIEW, DEVICE_COMPLIANCE_DEVICE_STATUS, DEVICE_COMPLIANCE_USER_OVERVIEW,
    DEVICE_COMPLIANCE_USER_STATUS,
};
use crate::schema::{render, validate_patch, Invalid, StructType};
use crate::service::clock::rfc3339;
use crate::service::policies::{self, DeviceStatus, Statuses, UserStatus};
use crate::service::Ctx;

pub(super) const READ: GraphPermission = GraphPermission {
    any_of: &[
        "DeviceManagementConfiguration.Read.All",
        "DeviceManagementConfiguration.ReadWrite.All",
    ],
};
pub(super) const WRITE: GraphPermission = GraphPermission {
    any_of: &["DeviceManagementConfiguration.ReadWrite.All"],
};

const PATH: &str = "/deviceManagement/deviceCompliancePolicies";
const ITEM: &str = "/deviceManagement/deviceCompliancePolicies/{policyId}";

pub fn routes(t: &mut RouteTable) {
    t.route(
        Method::GET,
        PATH,
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        list,
    )
    .route(
        Method::POST,
        PATH,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Create")),
        create,
    )
    .route(
        Method::GET,
        ITEM,
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        get,
    )
    .route(
        Method::PATCH,
        ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        patch,
    )
    .route(
        Method::DELETE,
        ITEM,
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Delete")),
        delete,
    )
    .route(
        Method::POST,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/assign",
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Assign")),
        assign,
    )
    .route(
        Method::POST,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/scheduleActionsForRules",
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Update")),
        schedule_actions,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/scheduledActionsForRule",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        scheduled_actions_direct,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/assignments",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        list_assignments,
    )
    .route(
        Method::POST,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/assignments",
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Assign")),
        create_assignment,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/assignments/{assignmentId}",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        get_assignment,
    )
    .route(
        Method::DELETE,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/assignments/{assignmentId}",
        Access::Graph(WRITE, Intune("Microsoft.Intune_DeviceCompliancePolices_Assign")),
        delete_assignment,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/deviceStatuses",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        device_statuses,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/deviceStatuses/{statusId}",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        device_status,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/userStatuses",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        user_statuses,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/userStatuses/{statusId}",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        user_status,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/deviceStatusOverview",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        device_status_overview,
    )
    .route(
        Method::GET,
        "/deviceManagement/deviceCompliancePolicies/{policyId}/userStatusOverview",
        Access::Graph(READ, Intune("Microsoft.Intune_DeviceCompliancePolices_Read")),
        user_status_overview,
    );
}

pub fn schema_of(family: PolicyFamily) -> &'static StructType {
    match family {
        PolicyFamily::Android => &ANDROID_COMPLIANCE_POLICY,
        PolicyFamily::AndroidWorkProfile => &ANDROID_WORK_PROFILE_COMPLIANCE_POLICY,
        PolicyFamily::AndroidDeviceOwner => &ANDROID_DEVICE_OWNER_COMPLIANCE_POLICY,
        PolicyFamily::Ios => &IOS_COMPLIANCE_POLICY,
        PolicyFamily::MacOs => &MAC_OS_COMPLIANCE_POLICY,
        PolicyFamily::Windows10 => &WINDOWS10_COMPLIANCE_POLICY,
    }
}

/// Families the version has: `androidDeviceOwnerCompliancePolicy` is beta only.
fn in_version(family: PolicyFamily, v: ApiVersion) -> bool {
    family != PolicyFamily::AndroidDeviceOwner || v == ApiVersion::Beta
}

/// Navigation properties of `deviceCompliancePolicy`: never written inline, except
/// `scheduledActionsForRule` on create.
const NAVIGATION: &[&str] = &[
    "assignments",
    "scheduledActionsForRule",
    "deviceStatuses",
    "userStatuses",
    "deviceStatusOverview",
    "userStatusOverview",
    "deviceSettingStateSummaries",
];

fn invalid(e: Invalid) -> ApiError {
    ApiError::bad_request(e.0)
}

fn family_of_body(body: &Value, version: ApiVersion) -> ApiResult<PolicyFamily> {
    let given = body.get("@odata.type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(
            "The '@odata.type' of the policy is required: 'microsoft.graph.deviceCompliancePolicy' is abstract and cannot be created.",
        )
    })?;
    PolicyFamily::from_odata_type(given)
        .filter(|f| in_version(*f, version))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "A type named '{given}' could not be resolved by the model. When a model is available, each type name must resolve to a valid type."
            ))
        })
}

/// The policy's Graph document (no navigation properties).
fn document(p: &StoredPolicy) -> Map<String, Value> {
    let mut m = p.properties.clone();
    m.insert("id".into(), p.id.clone().into());
    m.insert("createdDateTime".into(), rfc3339(p.created_at).into());
    m.insert("lastModifiedDateTime".into(), rfc3339(p.last_modified_at).into());
    m.insert("version".into(), p.version.into());
    m
}

fn render_policy(p: &StoredPolicy, ctx: &GraphCtx) -> Map<String, Value> {
    render(schema_of(p.family), &document(p), ctx.view)
}

fn render_action(a: &ActionItem, ctx: &GraphCtx) -> Map<String, Value> {
    let stored = serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    render(&DEVICE_COMPLIANCE_ACTION_ITEM, &stored, ctx.view)
}

fn render_rule(r: &ScheduledActionRule, ctx: &GraphCtx, with_actions: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        "#microsoft.graph.deviceComplianceScheduledActionForRule".into(),
    );
    m.insert("id".into(), r.id.clone().into());
    m.insert("ruleName".into(), json!(r.rule_name));
    if with_actions {
        m.insert(
            "scheduledActionConfigurations".into(),
            Value::Array(
                r.scheduled_action_configurations
                    .iter()
                    .map(|a| Value::Object(render_action(a, ctx)))
                    .collect(),
            ),
        );
    }
    m
}

pub(super) fn render_target(t: &AssignmentTarget, ctx: &GraphCtx) -> Value {
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        format!("#microsoft.graph.{}", t.kind.odata_name()).into(),
    );
    if ctx.version == ApiVersion::Beta {
        m.insert("deviceAndAppManagementAssignmentFilterId".into(), json!(t.filter_id));
        m.insert(
            "deviceAndAppManagementAssignmentFilterType".into(),
            t.filter_type.clone().into(),
        );
    }
    match t.kind {
        TargetKind::Group | TargetKind::ExclusionGroup => {
            m.insert("groupId".into(), json!(t.group_id));
        }
        TargetKind::ConfigurationManagerCollection => {
            m.insert("collectionId".into(), json!(t.collection_id));
        }
        _ => {}
    }
    Value::Object(m)
}

fn render_assignment(a: &Assignment, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        "#microsoft.graph.deviceCompliancePolicyAssignment".into(),
    );
    m.insert("id".into(), a.id.clone().into());
    if ctx.version == ApiVersion::Beta {
        m.insert("source".into(), a.source.clone().into());
        m.insert("sourceId".into(), json!(a.source_id));
    }
    m.insert("target".into(), render_target(&a.target, ctx));
    m
}

/// A `deviceComplianceActionItem` of a request body.
fn parse_action(v: &Value, version: ApiVersion) -> ApiResult<ActionItem> {
    let props = validate_patch(&DEVICE_COMPLIANCE_ACTION_ITEM, v, version).map_err(invalid)?;
    let hours = props.get("gracePeriodHours").and_then(Value::as_i64).unwrap_or(0);
    check_grace_hours(hours).map_err(ApiError::bad_request)?;
    Ok(ActionItem {
        id: uuid::Uuid::new_v4().to_string(),
        action_type: props
            .get("actionType")
            .and_then(Value::as_str)
            .unwrap_or("noAction")
            .to_string(),
        grace_period_hours: hours,
        notification_template_id: props
            .get("notificationTemplateId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        notification_message_cc_list: props
            .get("notificationMessageCCList")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    })
}

/// The `scheduledActionsForRule` (or `deviceComplianceScheduledActionForRules`) of a body.
fn parse_rules(v: &Value, name: &str, version: ApiVersion) -> ApiResult<Vec<ScheduledActionRule>> {
    let items = v.as_array().ok_or_else(|| {
        ApiError::bad_request(format!(
            "An unexpected 'StartObject' node was found for property named '{name}' when reading from the JSON reader. A 'StartArray' node was expected."
        ))
    })?;
    let mut rules = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(fields) = item else {
            return Err(ApiError::bad_request(format!(
                "The items of '{name}' must be objects of type 'microsoft.graph.deviceComplianceScheduledActionForRule'."
            )));
        };
        let mut rule = ScheduledActionRule {
            id: uuid::Uuid::new_v4().to_string(),
            rule_name: None,
            scheduled_action_configurations: Vec::new(),
        };
        for (k, v) in fields {
            match k.as_str() {
                "@odata.type" => {
                    let t = v.as_str().unwrap_or("");
                    if t.trim_start_matches('#') != "microsoft.graph.deviceComplianceScheduledActionForRule" {
                        return Err(ApiError::bad_request(format!(
                            "A type named '{t}' could not be resolved by the model. The expected type is 'microsoft.graph.deviceComplianceScheduledActionForRule'."
                        )));
                    }
                }
                "id" => {}
                "ruleName" => {
                    rule.rule_name = match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "Cannot convert the literal '{v}' to the expected type 'Edm.String' of property 'ruleName'."
                            )))
                        }
                    }
                }
                "scheduledActionConfigurations" => {
                    let actions = v.as_array().ok_or_else(|| {
                        ApiError::bad_request(
                            "An unexpected node was found for property named 'scheduledActionConfigurations' when reading from the JSON reader. A 'StartArray' node was expected.",
                        )
                    })?;
                    rule.scheduled_action_configurations = actions
                        .iter()
                        .map(|a| parse_action(a, version))
                        .collect::<ApiResult<Vec<_>>>()?;
                }
                other if other.starts_with('@') || other.ends_with("@odata.context") => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "The property '{other}' does not exist on type 'microsoft.graph.deviceComplianceScheduledActionForRule'. Make sure to only use property names that are defined by the type or mark the type as open type."
                    )))
                }
            }
        }
        rules.push(rule);
    }
    check_one_block(&rules).map_err(ApiError::bad_request)?;
    Ok(rules)
}

pub(super) fn parse_target(v: &Value, version: ApiVersion) -> ApiResult<AssignmentTarget> {
    let Value::Object(fields) = v else {
        return Err(ApiError::bad_request(
            "The property 'target' of a deviceCompliancePolicyAssignment is required.",
        ));
    };
    let given = fields.get("@odata.type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(
            "The '@odata.type' of 'target' is required: 'microsoft.graph.deviceAndAppManagementAssignmentTarget' is abstract.",
        )
    })?;
    let kind = TargetKind::parse(given).ok_or_else(|| {
        ApiError::bad_request(format!(
            "A type named '{given}' could not be resolved by the model. The expected type is a 'microsoft.graph.deviceAndAppManagementAssignmentTarget'."
        ))
    })?;
    let mut target = AssignmentTarget {
        kind,
        group_id: None,
        collection_id: None,
        filter_id: None,
        filter_type: "none".into(),
    };
    let text = |k: &str, v: &Value| -> ApiResult<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(ApiError::bad_request(format!(
                "Cannot convert the literal '{v}' to the expected type 'Edm.String' of property '{k}'."
            ))),
        }
    };
    for (k, val) in fields {
        match (k.as_str(), kind) {
            ("@odata.type", _) => {}
            ("groupId", TargetKind::Group | TargetKind::ExclusionGroup) => {
                let g = text(k, val)?.ok_or_else(|| ApiError::bad_request("The property 'groupId' cannot be null."))?;
                let g = uuid::Uuid::try_parse(&g)
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "Cannot convert the literal '{g}' to the expected type 'Edm.Guid' of property 'groupId'."
                        ))
                    })?
                    .hyphenated()
                    .to_string();
                target.group_id = Some(g);
            }
            ("collectionId", TargetKind::ConfigurationManagerCollection) => target.collection_id = text(k, val)?,
            ("deviceAndAppManagementAssignmentFilterId", _) if version == ApiVersion::Beta => {
                target.filter_id = text(k, val)?
            }
            ("deviceAndAppManagementAssignmentFilterType", _) if version == ApiVersion::Beta => {
                let t = text(k, val)?.unwrap_or_else(|| "none".into());
                target.filter_type = ["none", "include", "exclude"]
                    .into_iter()
                    .find(|m| m.eq_ignore_ascii_case(&t))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "The value '{t}' is not a valid member of enum type 'microsoft.graph.deviceAndAppManagementAssignmentFilterType' for property 'deviceAndAppManagementAssignmentFilterType'."
                        ))
                    })?
                    .to_string();
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "The property '{other}' does not exist on type 'microsoft.graph.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                    kind.odata_name()
                )))
            }
        }
    }
    if matches!(kind, TargetKind::Group | TargetKind::ExclusionGroup) && target.group_id.is_none() {
        return Err(ApiError::bad_request(format!(
            "The property 'groupId' is required on a '{}'.",
            kind.odata_name()
        )));
    }
    Ok(target)
}

fn parse_assignment(policy_id: &str, v: &Value, version: ApiVersion) -> ApiResult<Assignment> {
    let (target, source, source_id) = parse_assignment_parts(v, &DEVICE_COMPLIANCE_POLICY_ASSIGNMENT, version)?;
    Ok(Assignment {
        id: assignment_id(policy_id, &target),
        target,
        source,
        source_id,
    })
}

/// An assignment of a request body, of the type `st` (a compliance policy's or an app
/// protection policy's): its target, and on beta its `source` and `sourceId`.
pub(super) fn parse_assignment_parts(
    v: &Value,
    st: &StructType,
    version: ApiVersion,
) -> ApiResult<(AssignmentTarget, String, Option<String>)> {
    let name = st.qualified_name();
    let Value::Object(fields) = v else {
        return Err(ApiError::bad_request(format!(
            "An assignment must be an object of type '{name}'."
        )));
    };
    let mut target = None;
    let mut source = "direct".to_string();
    let mut source_id = None;
    for (k, val) in fields {
        match k.as_str() {
            "@odata.type" => {
                let t = val.as_str().unwrap_or("");
                if t.trim_start_matches('#') != name {
                    return Err(ApiError::bad_request(format!(
                        "A type named '{t}' could not be resolved by the model. The expected type is '{name}'."
                    )));
                }
            }
            "id" => {}
            "target" => target = Some(parse_target(val, version)?),
            "source" if version == ApiVersion::Beta => {
                let s = val.as_str().unwrap_or("");
                source = ["direct", "policySets"]
                    .into_iter()
                    .find(|m| m.eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "The value '{s}' is not a valid member of enum type 'microsoft.graph.deviceAndAppManagementAssignmentSource' for property 'source'."
                        ))
                    })?
                    .to_string();
            }
            "sourceId" if version == ApiVersion::Beta => source_id = val.as_str().map(str::to_string),
            other => {
                return Err(ApiError::bad_request(format!(
                    "The property '{other}' does not exist on type '{name}'. Make sure to only use property names that are defined by the type or mark the type as open type."
                )))
            }
        }
    }
    let target =
        target.ok_or_else(|| ApiError::bad_request(format!("The property 'target' of a {} is required.", st.name)))?;
    Ok((target, source, source_id))
}

/// Whether `$expand` names a status view: they all render the policy's stored results.
fn expands_statuses(expand: &[crate::odata::Expand]) -> bool {
    expand.iter().any(|e| {
        [
            "deviceStatuses",
            "userStatuses",
            "deviceStatusOverview",
            "userStatusOverview",
        ]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&e.property))
    })
}

/// The policy's status views, read once if `$expand` names one.
async fn statuses_for_expand(cx: &Ctx<'_>, p: &StoredPolicy, expand: &[crate::odata::Expand]) -> ApiResult<Statuses> {
    if expands_statuses(expand) {
        Ok(policies::statuses_of(cx, p).await?)
    } else {
        Ok(Statuses::of(p, &[]))
    }
}

/// Renders the navigation properties `$expand` names into the policy's document.
fn expand_into(
    ctx: &GraphCtx,
    p: &StoredPolicy,
    statuses: &Statuses,
    expand: &[crate::odata::Expand],
    out: &mut Map<String, Value>,
) -> ApiResult<()> {
    for e in expand {
        let name = NAVIGATION
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&e.property))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Could not find a navigation property named '{}' on type 'microsoft.graph.{}' that can be expanded.",
                    e.property,
                    p.family.odata_type()
                ))
            })?;
        let value = match *name {
            "assignments" => Value::Array(
                p.assignments
                    .iter()
                    .map(|a| Value::Object(render_assignment(a, ctx)))
                    .collect(),
            ),
            "scheduledActionsForRule" => {
                let nested = e
                    .options
                    .expand
                    .iter()
                    .any(|n| n.property.eq_ignore_ascii_case("scheduledActionConfigurations"));
                if let Some(other) = e
                    .options
                    .expand
                    .iter()
                    .find(|n| !n.property.eq_ignore_ascii_case("scheduledActionConfigurations"))
                {
                    return Err(ApiError::bad_request(format!(
                        "Could not find a navigation property named '{}' on type 'microsoft.graph.deviceComplianceScheduledActionForRule' that can be expanded.",
                        other.property
                    )));
                }
                Value::Array(
                    p.scheduled_actions
                        .iter()
                        .map(|r| Value::Object(render_rule(r, ctx, nested)))
                        .collect(),
                )
            }
            "deviceStatuses" => Value::Array(
                statuses
                    .devices
                    .iter()
                    .map(|d| Value::Object(device_status_doc(d, ctx)))
                    .collect(),
            ),
            "userStatuses" => Value::Array(
                statuses
                    .users
                    .iter()
                    .map(|u| Value::Object(user_status_doc(u, ctx)))
                    .collect(),
            ),
            "deviceStatusOverview" => Value::Object(overview_doc(p, statuses, ctx, false)),
            "userStatusOverview" => Value::Object(overview_doc(p, statuses, ctx, true)),
            other => {
                return Err(ApiError::bad_request(format!(
                    "The navigation property '{other}' cannot be expanded: the emulator does not compute it."
                )))
            }
        };
        out.insert((*name).to_string(), value);
    }
    Ok(())
}

fn select_policy(
    rendered: Map<String, Value>,
    p: &StoredPolicy,
    q: &QueryOptions,
    version: ApiVersion,
) -> ApiResult<Map<String, Value>> {
    let Some(names) = &q.select else {
        return Ok(rendered);
    };
    // Expanded navigation properties stay whatever `$select` says.
    let mut nav = Map::new();
    for (k, v) in &rendered {
        if NAVIGATION.contains(&k.as_str()) {
            nav.insert(k.clone(), v.clone());
        }
    }
    let wanted: Vec<String> = names
        .iter()
        .filter(|n| !NAVIGATION.iter().any(|x| x.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    let mut out = if wanted.is_empty() {
        let mut m = Map::new();
        m.insert("@odata.type".into(), rendered["@odata.type"].clone());
        m.insert("id".into(), rendered["id"].clone());
        m
    } else {
        crate::schema::select(rendered, schema_of(p.family), &wanted, version).map_err(invalid)?
    };
    out.extend(nav);
    Ok(out)
}

async fn list(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    if q.skiptoken.is_some() || q.search.is_some() {
        return Err(ApiError::bad_request(
            "$skiptoken and $search are not supported on deviceCompliancePolicies.",
        ));
    }
    let cx = caller.cx(&state.app);
    let policies: Vec<StoredPolicy> = policies::list(&cx)
        .await?
        .into_iter()
        .filter(|p| in_version(p.family, ctx.version))
        .collect();
    // Filter and order on the rendered documents (a tenant has tens of policies).
    let mut docs: Vec<Map<String, Value>> = policies.iter().map(|p| render_policy(p, &ctx)).collect();
    for d in &mut docs {
        // `@odata.type` is filterable as `isof` is not supported: keep it reachable by name.
        let t = d.get("@odata.type").cloned().unwrap_or(Value::Null);
        d.insert("odataType".into(), t);
    }
    let kept = memory::query(
        docs,
        q.filter.as_ref(),
        &q.orderby,
        "microsoft.graph.deviceCompliancePolicy",
    )?;
    let count = q.count.then_some(kept.len() as i64);
    let skip = q.skip.unwrap_or(0) as usize;
    let top = q.top.map(|t| t as usize).unwrap_or(usize::MAX);
    let mut values = Vec::new();
    for mut d in kept.into_iter().skip(skip).take(top) {
        d.remove("odataType");
        let id = d.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let p = policies.iter().find(|p| p.id == id).expect("rendered from this list");
        let statuses = statuses_for_expand(&cx, p, &q.expand).await?;
        expand_into(&ctx, p, &statuses, &q.expand, &mut d)?;
        values.push(select_policy(d, p, &q, ctx.version)?);
    }
    Ok(collection_response(
        ctx.context("deviceManagement/deviceCompliancePolicies", q.select.as_deref()),
        values,
        count,
        None,
    ))
}

async fn get(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    super::reject_collection_options(&q)?;
    let cx = caller.cx(&state.app);
    let p = policies::get(&cx, &id).await?;
    if !in_version(p.family, ctx.version) {
        return Err(policies::not_found(&id).into());
    }
    let statuses = statuses_for_expand(&cx, &p, &q.expand).await?;
    let mut body = render_policy(&p, &ctx);
    expand_into(&ctx, &p, &statuses, &q.expand, &mut body)?;
    let body = select_policy(body, &p, &q, ctx.version)?;
    let context = ctx.context("deviceManagement/deviceCompliancePolicies/$entity", q.select.as_deref());
    Ok(graph_json(StatusCode::OK, with_context(context, body)))
}

/// Splits a write body into its structural properties and the navigation ones.
fn split_navigation(body: &Value) -> (Value, Map<String, Value>) {
    let mut rest = Map::new();
    let mut nav = Map::new();
    if let Value::Object(fields) = body {
        for (k, v) in fields {
            if NAVIGATION.contains(&k.as_str()) {
                nav.insert(k.clone(), v.clone());
            } else if !k.ends_with("@odata.context") && !k.ends_with("@odata.bind") {
                rest.insert(k.clone(), v.clone());
            }
        }
    }
    (Value::Object(rest), nav)
}

async fn create(
    caller: GraphCaller,
    ctx: GraphCtx,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.deviceCompliancePolicy' is required.",
        ));
    }
    let family = family_of_body(&body, ctx.version)?;
    let (rest, nav) = split_navigation(&body);
    if let Some(name) = nav.keys().find(|k| *k != "scheduledActionsForRule") {
        return Err(ApiError::bad_request(format!(
            "The navigation property '{name}' cannot be written when creating a policy: use its own path or action."
        )));
    }
    let props = validate_patch(schema_of(family), &rest, ctx.version).map_err(invalid)?;
    if props
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad_request("The property 'displayName' is required."));
    }
    let rules = parse_rules(
        nav.get("scheduledActionsForRule").unwrap_or(&Value::Array(vec![])),
        "scheduledActionsForRule",
        ctx.version,
    )?;
    let policy = policies::create(&caller.cx(&state.app), family, props, rules).await?;
    let body = render_policy(&policy, &ctx);
    let context = ctx.context("deviceManagement/deviceCompliancePolicies/$entity", None);
    Ok(graph_json(StatusCode::CREATED, with_context(context, body)))
}

/// A PATCH body, read against the schema of the policy's `family`.
fn parse_patch(body: &Value, family: PolicyFamily, version: ApiVersion) -> ApiResult<Map<String, Value>> {
    if body.get("@odata.type").is_some() && family_of_body(body, version)? != family {
        return Err(ApiError::bad_request(format!(
            "The '@odata.type' of the body does not match the policy's type 'microsoft.graph.{}'.",
            family.odata_type()
        )));
    }
    let (rest, nav) = split_navigation(body);
    if let Some(name) = nav.keys().next() {
        return Err(ApiError::bad_request(format!(
            "The navigation property '{name}' cannot be written with PATCH: use its own path or action (scheduleActionsForRules, assign)."
        )));
    }
    let props = validate_patch(schema_of(family), &rest, version).map_err(invalid)?;
    if props
        .get("displayName")
        .is_some_and(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
    {
        return Err(ApiError::bad_request("The property 'displayName' cannot be empty."));
    }
    Ok(props)
}

async fn patch(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "A request body of type 'microsoft.graph.deviceCompliancePolicy' is required.",
        ));
    }
    policies::patch(&caller.cx(&state.app), &id, |family| {
        parse_patch(&body, family, ctx.version)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(caller: GraphCaller, Path(id): Path<String>, State(state): State<AppState>) -> ApiResult<StatusCode> {
    policies::delete(&caller.cx(&state.app), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn assign(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let items = body.get("assignments").and_then(Value::as_array).ok_or_else(|| {
        ApiError::bad_request(
            "The parameter 'assignments' is required: a collection of deviceCompliancePolicyAssignment.",
        )
    })?;
    if let Some(other) = body
        .as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != "assignments"))
    {
        return Err(ApiError::bad_request(format!(
            "The parameter '{other}' in the request payload is not a valid parameter for the operation 'assign'."
        )));
    }
    let assignments = policies::assign(&caller.cx(&state.app), &id, |policy_id| {
        items
            .iter()
            .map(|item| parse_assignment(policy_id, item, ctx.version))
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    let values: Vec<Map<String, Value>> = assignments.iter().map(|a| render_assignment(a, &ctx)).collect();
    Ok(collection_response(
        ctx.context("Collection(microsoft.graph.deviceCompliancePolicyAssignment)", None),
        values,
        None,
        None,
    ))
}

async fn schedule_actions(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    const PARAM: &str = "deviceComplianceScheduledActionForRules";
    let rules = body
        .get(PARAM)
        .ok_or_else(|| ApiError::bad_request(format!("The parameter '{PARAM}' is required.")))?;
    if let Some(other) = body.as_object().and_then(|m| m.keys().find(|k| k.as_str() != PARAM)) {
        return Err(ApiError::bad_request(format!(
            "The parameter '{other}' in the request payload is not a valid parameter for the operation 'scheduleActionsForRules'."
        )));
    }
    let rules = parse_rules(rules, PARAM, ctx.version)?;
    policies::schedule_actions(&caller.cx(&state.app), &id, rules).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Intune does not serve this navigation directly (graph-reference 2.1): it is read with
/// `$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)`.
async fn scheduled_actions_direct(OriginalUri(uri): OriginalUri) -> ApiError {
    let rel = uri
        .path()
        .trim_start_matches("/v1.0")
        .trim_start_matches("/beta")
        .to_string();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "No method match route template",
        format!(
            "No OData route exists that match template ~/singleton/navigation/key/navigation with http verb GET for request {rel}."
        ),
    )
}

async fn list_assignments(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let p = policies::get(&caller.cx(&state.app), &id).await?;
    let docs: Vec<Map<String, Value>> = p.assignments.iter().map(|a| render_assignment(a, &ctx)).collect();
    let context = ctx.context(
        &format!("deviceManagement/deviceCompliancePolicies('{}')/assignments", p.id),
        None,
    );
    list_of(&q, docs, "deviceCompliancePolicyAssignment", context)
}

async fn get_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, aid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (policy_id, a) = policies::assignment(&caller.cx(&state.app), &id, &aid).await?;
    Ok(graph_json(
        StatusCode::OK,
        with_context(
            ctx.context(
                &format!("deviceManagement/deviceCompliancePolicies('{policy_id}')/assignments/$entity"),
                None,
            ),
            render_assignment(&a, &ctx),
        ),
    ))
}

async fn create_assignment(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (policy_id, a) = policies::add_assignment(&caller.cx(&state.app), &id, |policy_id| {
        parse_assignment(policy_id, &body, ctx.version)
    })
    .await?;
    Ok(graph_json(
        StatusCode::CREATED,
        with_context(
            ctx.context(
                &format!("deviceManagement/deviceCompliancePolicies('{policy_id}')/assignments/$entity"),
                None,
            ),
            render_assignment(&a, &ctx),
        ),
    ))
}

async fn delete_assignment(
    caller: GraphCaller,
    Path((id, aid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    policies::remove_assignment(&caller.cx(&state.app), &id, &aid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `complianceGracePeriodExpirationDateTime` of a device that has no grace period running.
const NO_GRACE: &str = "9999-12-31T23:59:59Z";

fn device_status_doc(d: &DeviceStatus, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), d.id.clone().into());
    m.insert("deviceDisplayName".into(), d.device_display_name.clone().into());
    m.insert("userName".into(), json!(d.user_name));
    m.insert("deviceModel".into(), json!(d.device_model));
    m.insert(
        "complianceGracePeriodExpirationDateTime".into(),
        d.grace_expires_at
            .map(rfc3339)
            .unwrap_or_else(|| NO_GRACE.into())
            .into(),
    );
    m.insert("status".into(), d.status.into());
    m.insert("lastReportedDateTime".into(), rfc3339(d.last_reported).into());
    m.insert("userPrincipalName".into(), json!(d.user_principal_name));
    render(&DEVICE_COMPLIANCE_DEVICE_STATUS, &m, ctx.view)
}

fn user_status_doc(u: &UserStatus, ctx: &GraphCtx) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), u.id.clone().into());
    m.insert("userDisplayName".into(), json!(u.user_display_name));
    m.insert("devicesCount".into(), u.devices_count.into());
    m.insert("status".into(), u.status.into());
    m.insert("lastReportedDateTime".into(), rfc3339(u.last_reported).into());
    m.insert("userPrincipalName".into(), json!(u.user_principal_name));
    render(&DEVICE_COMPLIANCE_USER_STATUS, &m, ctx.view)
}

/// `deviceStatusOverview` (or, with `users`, `userStatusOverview`).
fn overview_doc(p: &StoredPolicy, statuses: &Statuses, ctx: &GraphCtx, users: bool) -> Map<String, Value> {
    let (o, st, nav) = if users {
        (
            statuses.user_overview(),
            &DEVICE_COMPLIANCE_USER_OVERVIEW,
            "userStatusOverview",
        )
    } else {
        (
            statuses.device_overview(),
            &DEVICE_COMPLIANCE_DEVICE_OVERVIEW,
            "deviceStatusOverview",
        )
    };
    let mut m = Map::new();
    m.insert("id".into(), format!("{}_{nav}", p.id).into());
    m.insert("pendingCount".into(), o.pending.into());
    m.insert("notApplicableCount".into(), o.not_applicable.into());
    // Every "not applicable" the emulator computes is a platform mismatch (beta shows the count;
    // the user overview has no such property).
    m.insert("notApplicablePlatformCount".into(), o.not_applicable.into());
    m.insert("successCount".into(), o.success.into());
    m.insert("errorCount".into(), o.error.into());
    m.insert("failedCount".into(), o.failed.into());
    m.insert("conflictCount".into(), o.conflict.into());
    m.insert("lastUpdateDateTime".into(), rfc3339(o.last_update).into());
    m.insert("configurationVersion".into(), o.configuration_version.into());
    render(st, &m, ctx.view)
}

fn list_of(q: &QueryOptions, docs: Vec<Map<String, Value>>, type_name: &str, context: String) -> ApiResult<Response> {
    super::reject_expand(q, type_name)?;
    memory::page(q, docs, type_name, context)
}

async fn device_statuses(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (p, statuses) = policies::with_statuses(&caller.cx(&state.app), &id).await?;
    let docs = statuses.devices.iter().map(|d| device_status_doc(d, &ctx)).collect();
    let context = ctx.context(
        &format!("deviceManagement/deviceCompliancePolicies('{}')/deviceStatuses", p.id),
        None,
    );
    list_of(&q, docs, "deviceComplianceDeviceStatus", context)
}

async fn device_status(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, sid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (p, statuses) = policies::with_statuses(&caller.cx(&state.app), &id).await?;
    let doc = statuses
        .devices
        .iter()
        .find(|d| d.id.eq_ignore_ascii_case(&sid))
        .map(|d| device_status_doc(d, &ctx))
        .ok_or_else(|| ApiError::not_found(format!("The device status '{sid}' does not exist.")))?;
    let context = ctx.context(
        &format!(
            "deviceManagement/deviceCompliancePolicies('{}')/deviceStatuses/$entity",
            p.id
        ),
        None,
    );
    Ok(graph_json(StatusCode::OK, with_context(context, doc)))
}

async fn user_statuses(
    caller: GraphCaller,
    ctx: GraphCtx,
    OData(q): OData,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (p, statuses) = policies::with_statuses(&caller.cx(&state.app), &id).await?;
    let docs = statuses.users.iter().map(|u| user_status_doc(u, &ctx)).collect();
    let context = ctx.context(
        &format!("deviceManagement/deviceCompliancePolicies('{}')/userStatuses", p.id),
        None,
    );
    list_of(&q, docs, "deviceComplianceUserStatus", context)
}

async fn user_status(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path((id, sid)): Path<(String, String)>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (p, statuses) = policies::with_statuses(&caller.cx(&state.app), &id).await?;
    let doc = statuses
        .users
        .iter()
        .find(|u| u.id.eq_ignore_ascii_case(&sid))
        .map(|u| user_status_doc(u, &ctx))
        .ok_or_else(|| ApiError::not_found(format!("The user status '{sid}' does not exist.")))?;
    let context = ctx.context(
        &format!(
            "deviceManagement/deviceCompliancePolicies('{}')/userStatuses/$entity",
            p.id
        ),
        None,
    );
    Ok(graph_json(StatusCode::OK, with_context(context, doc)))
}

async fn device_status_overview(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (p, statuses) = policies::with_statuses(&caller.cx(&state.app), &id).await?;
    let context = ctx.context(
        &format!(
            "deviceManagement/deviceCompliancePolicies('{}')/deviceStatusOverview/$entity",
            p.id
        ),
        None,
    );
    Ok(graph_json(
        StatusCode::OK,
        with_context(context, overview_doc(&p, &statuses, &ctx, false)),
    ))
}

async fn user_status_overview(
    caller: GraphCaller,
    ctx: GraphCtx,
    Path(id): Path<String>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let (p, statuses) = policies::with_statuses(&caller.cx(&state.app), &id).await?;
    let context = ctx.context(
        &format!(
            "deviceManagement/deviceCompliancePolicies('{}')/userStatusOverview/$entity",
            p.id
        ),
        None,
    );
    Ok(graph_json(
        StatusCode::OK,
        with_context(context, overview_doc(&p, &statuses, &ctx, true)),
    ))
}

/// `policyPlatformType` of a policy family as the version names it.
pub fn platform_type(family: PolicyFamily, v: ApiVersion) -> &'static str {
    match family {
        PolicyFamily::Android => "android",
        PolicyFamily::AndroidWorkProfile if v == ApiVersion::Beta => "androidWorkProfile",
        PolicyFamily::AndroidWorkProfile | PolicyFamily::AndroidDeviceOwner => "androidForWork",
        PolicyFamily::Ios => "iOS",
        PolicyFamily::MacOs => "macOS",
        PolicyFamily::Windows10 => "windows10AndLater",
    }
}

/// The name Intune reports a setting under: `<Type>.<property>`.
pub fn setting_id(family: PolicyFamily, setting: &str) -> String {
    let t = family.odata_type();
    let mut type_name = t[..1].to_ascii_uppercase();
    type_name.push_str(&t[1..]);
    format!("{type_name}.{setting}")
}
