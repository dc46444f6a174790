//! Conditional Access: the tenant's policies (Graph's `conditionalAccessPolicy`) evaluated for a
//! sign-in, as Entra does before it issues a user's tokens. A policy applies when every
//! condition it sets holds for the sign-in; an enabled policy that applies must have its grant
//! controls satisfied, or the sign-in is refused with Entra's code. Report-only policies are
//! evaluated and recorded, never enforced. Conditions and controls the emulator does not
//! evaluate are listed as such: a condition it cannot evaluate is taken to hold (the policy is
//! not skipped silently) and a control it cannot evaluate is not satisfied.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Microsoft Graph, as a resource.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Office 365 Exchange Online.
pub const EXCHANGE_ONLINE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// Office 365 SharePoint Online.
pub const SHAREPOINT_ONLINE_APP_ID: &str = "00000003-0000-0ff1-ce00-000000000000";
/// The resources of the `Office365` group the emulator knows. Microsoft Graph is not one of
/// them: Microsoft lists the group by name and leaves Graph out.
pub const OFFICE365_APP_IDS: [&str; 2] = [EXCHANGE_ONLINE_APP_ID, SHAREPOINT_ONLINE_APP_ID];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyState {
    Enabled,
    Disabled,
    EnabledForReportingButNotEnforced,
}

/// The conditions and controls of a policy the emulator evaluates, read from its Graph document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub id: String,
    pub display_name: String,
    pub state: PolicyState,
    users: Users,
    applications: Applications,
    platforms: Option<Platforms>,
    client_app_types: Vec<String>,
    grant: Option<Grant>,
    /// The conditions and controls set that the emulator does not evaluate (Graph's names).
    not_evaluated: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Users {
    include_users: Vec<String>,
    exclude_users: Vec<String>,
    include_groups: Vec<String>,
    exclude_groups: Vec<String>,
    include_roles: Vec<String>,
    exclude_roles: Vec<String>,
    include_guests_or_external_users: Option<Value>,
    exclude_guests_or_external_users: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Applications {
    include_applications: Vec<String>,
    exclude_applications: Vec<String>,
    include_user_actions: Vec<String>,
    include_authentication_context_class_references: Vec<String>,
    application_filter: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Platforms {
    include_platforms: Vec<String>,
    exclude_platforms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Grant {
    /// `AND`: every control; `OR`: any one.
    all: bool,
    controls: Vec<String>,
    /// Terms of use, custom factors, an authentication strength: never satisfied here.
    other: Vec<String>,
}

/// The grant controls the emulator evaluates.
const EVALUATED_CONTROLS: [&str; 3] = ["block", "compliantDevice", "compliantApplication"];
/// Every built-in control Graph knows (`conditionalAccessGrantControl`).
const BUILT_IN_CONTROLS: [&str; 9] = [
    "block",
    "mfa",
    "compliantDevice",
    "domainJoinedDevice",
    "approvedApplication",
    "compliantApplication",
    "passwordChange",
    "unknownFutureValue",
    "riskRemediation",
];
/// `conditionalAccessDevicePlatform`.
pub const PLATFORMS: [&str; 8] = [
    "android",
    "iOS",
    "windows",
    "windowsPhone",
    "macOS",
    "all",
    "unknownFutureValue",
    "linux",
];
/// `conditionalAccessClientApp`.
pub const CLIENT_APP_TYPES: [&str; 7] = [
    "all",
    "browser",
    "mobileAppsAndDesktopClients",
    "exchangeActiveSync",
    "easSupported",
    "other",
    "unknownFutureValue",
];

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(non_empty),
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(_) => true,
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("'{what}' is a collection of strings."))
            })
            .collect(),
        _ => Err(format!("'{what}' is a collection of strings.")),
    }
}

fn find<'a>(list: &'a [String], value: &str) -> Option<&'a String> {
    list.iter().find(|x| x.eq_ignore_ascii_case(value))
}

impl Policy {
    /// The policy a Graph document (as stored) describes; `Err` names what is wrong with it.
    pub fn from_document(doc: &Value) -> Result<Policy, String> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str);
        let id = text("id").unwrap_or_default().to_string();
        let display_name = text("displayName")
            .filter(|s| !s.trim().is_empty())
            .ok_or("'displayName' is required.")?
            .to_string();
        let state: PolicyState = serde_json::from_value(doc.get("state").cloned().unwrap_or(Value::Null))
            .map_err(|_| "'state' is required: enabled, disabled or enabledForReportingButNotEnforced.".to_string())?;
        let conditions = doc
            .get("conditions")
            .filter(|c| c.is_object())
            .ok_or("'conditions' is required.")?;
        let part = |key: &str| conditions.get(key).cloned().unwrap_or(Value::Null);
        let users: Users = if part("users").is_null() {
            Users::default()
        } else {
            serde_json::from_value(part("users")).map_err(|e| format!("'conditions.users': {e}."))?
        };
        let applications: Applications = if part("applications").is_null() {
            Applications::default()
        } else {
            serde_json::from_value(part("applications")).map_err(|e| format!("'conditions.applications': {e}."))?
        };
        let platforms: Option<Platforms> = if part("platforms").is_null() {
            None
        } else {
            Some(serde_json::from_value(part("platforms")).map_err(|e| format!("'conditions.platforms': {e}."))?)
        };
        if let Some(p) = &platforms {
            for value in p.include_platforms.iter().chain(&p.exclude_platforms) {
                if find(&PLATFORMS.map(String::from), value).is_none() {
                    return Err(format!(
                        "'{value}' is not a device platform: one of {}.",
                        PLATFORMS.join(", ")
                    ));
                }
            }
        }
        let client_app_types = strings(&part("clientAppTypes"), "conditions.clientAppTypes")?;
        for value in &client_app_types {
            if find(&CLIENT_APP_TYPES.map(String::from), value).is_none() {
                return Err(format!(
                    "'{value}' is not a client app type: one of {}.",
                    CLIENT_APP_TYPES.join(", ")
                ));
            }
        }
        let no_users =
            users.include_users.is_empty() && users.include_groups.is_empty() && users.include_roles.is_empty();
        let service_principals = conditions.get("clientApplications").is_some_and(non_empty);
        if no_users
            && !service_principals
            && users
                .include_guests_or_external_users
                .as_ref()
                .is_none_or(|g| !non_empty(g))
        {
            return Err("A policy's conditions name the users it applies to ('conditions.users'), or the service principals ('conditions.clientApplications'): use 'None' for neither.".into());
        }
        if applications.include_applications.is_empty()
            && applications.include_user_actions.is_empty()
            && applications.include_authentication_context_class_references.is_empty()
        {
            return Err("A policy's conditions name the applications it applies to ('conditions.applications.includeApplications'): use 'None' for none.".into());
        }

        let mut not_evaluated = Vec::new();
        let mut note = |name: &str, set: bool| {
            if set {
                not_evaluated.push(name.to_string());
            }
        };
        note(
            "conditions.users.includeGuestsOrExternalUsers",
            users.include_guests_or_external_users.as_ref().is_some_and(non_empty),
        );
        note(
            "conditions.users.excludeGuestsOrExternalUsers",
            users.exclude_guests_or_external_users.as_ref().is_some_and(non_empty),
        );
        note(
            "conditions.applications.includeUserActions",
            !applications.include_user_actions.is_empty(),
        );
        note(
            "conditions.applications.includeAuthenticationContextClassReferences",
            !applications.include_authentication_context_class_references.is_empty(),
        );
        note(
            "conditions.applications.applicationFilter",
            applications.application_filter.as_ref().is_some_and(non_empty),
        );
        for key in [
            "locations",
            "signInRiskLevels",
            "userRiskLevels",
            "servicePrincipalRiskLevels",
            "insiderRiskLevels",
            "devices",
            "clientApplications",
            "authenticationFlows",
            "deviceStates",
        ] {
            note(&format!("conditions.{key}"), non_empty(&part(key)));
        }

        let grant = match doc.get("grantControls") {
            None | Some(Value::Null) => None,
            Some(g) => {
                let operator = g.get("operator").and_then(Value::as_str).unwrap_or("OR");
                let all = match operator.to_ascii_uppercase().as_str() {
                    "AND" => true,
                    "OR" => false,
                    _ => return Err(format!("'grantControls.operator' is AND or OR, not '{operator}'.")),
                };
                let controls = strings(
                    g.get("builtInControls").unwrap_or(&Value::Null),
                    "grantControls.builtInControls",
                )?;
                let mut canonical = Vec::new();
                for c in &controls {
                    let known = BUILT_IN_CONTROLS
                        .iter()
                        .find(|k| k.eq_ignore_ascii_case(c))
                        .ok_or_else(|| {
                            format!(
                                "'{c}' is not a built-in grant control: one of {}.",
                                BUILT_IN_CONTROLS.join(", ")
                            )
                        })?;
                    canonical.push(known.to_string());
                }
                if canonical.iter().any(|c| c == "block") && canonical.len() > 1 {
                    return Err("'block' is the only grant control of a policy that has it.".into());
                }
                let mut other = Vec::new();
                for key in ["customAuthenticationFactors", "termsOfUse"] {
                    if g.get(key).is_some_and(non_empty) {
                        other.push(format!("grantControls.{key}"));
                    }
                }
                if g.get("authenticationStrength").is_some_and(non_empty) {
                    other.push("grantControls.authenticationStrength".into());
                }
                for c in &canonical {
                    if !EVALUATED_CONTROLS.contains(&c.as_str()) {
                        not_evaluated.push(format!("grantControls.builtInControls.{c}"));
                    }
                }
                not_evaluated.extend(other.iter().cloned());
                Some(Grant {
                    all,
                    controls: canonical,
                    other,
                })
            }
        };
        if doc.get("sessionControls").is_some_and(non_empty) {
            not_evaluated.push("sessionControls".into());
        }
        Ok(Policy {
            id,
            display_name,
            state,
            users,
            applications,
            platforms,
            client_app_types,
            grant,
            not_evaluated,
        })
    }

    /// What the emulator leaves unevaluated in this policy.
    pub fn not_evaluated(&self) -> &[String] {
        &self.not_evaluated
    }
}

/// The device a sign-in comes from, as the directory knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignInDevice {
    /// The Entra device id (`azureADDeviceId`).
    pub device_id: String,
    pub display_name: String,
    /// `conditionalAccessDevicePlatform` of its operating system.
    pub platform: Option<String>,
    pub operating_system: String,
    pub is_compliant: bool,
    pub is_managed: bool,
}

/// A sign-in as policies see it.
#[derive(Debug, Clone)]
pub struct SignIn<'a> {
    pub user_id: &'a str,
    /// The groups the user is in, directly or through other groups.
    pub groups: &'a [String],
    /// The user's directory roles (role template ids).
    pub roles: &'a [String],
    /// The resource the token is for (its app id).
    pub resource_app_id: &'a str,
    /// `browser` or `mobileAppsAndDesktopClients`.
    pub client_app_type: &'a str,
    /// None: an unknown device (no device identity came with the sign-in).
    pub device: Option<&'a SignInDevice>,
}

/// `appliedConditionalAccessPolicy.result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Success,
    Failure,
    NotApplied,
    NotEnabled,
    ReportOnlySuccess,
    ReportOnlyFailure,
    ReportOnlyNotApplied,
}

/// Why a policy refuses a sign-in, in Entra's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// AADSTS53003.
    Blocked,
    /// AADSTS53000: a known device that is not compliant.
    DeviceNotCompliant,
    /// AADSTS530003: the device is unknown (no device identity), so not managed.
    DeviceNotManaged,
    /// AADSTS53001.
    DeviceNotDomainJoined,
    /// AADSTS53002: the app is not an approved (or compliant) one.
    AppNotApproved,
    /// AADSTS50076: multifactor authentication, which the emulator does not perform.
    MfaRequired,
}

impl Refusal {
    /// Entra's AADSTS code.
    pub fn code(self) -> u32 {
        match self {
            Refusal::Blocked => 53003,
            Refusal::DeviceNotCompliant => 53000,
            Refusal::DeviceNotManaged => 530003,
            Refusal::DeviceNotDomainJoined => 53001,
            Refusal::AppNotApproved => 53002,
            Refusal::MfaRequired => 50076,
        }
    }

    /// Entra's message (after `AADSTS<code>: `), as its responses carry it.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Blocked => "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
            Refusal::DeviceNotCompliant => "Device is not in required device state: compliant. Conditional Access policy requires a compliant device, and the device is not compliant. The user must enroll their device with an approved MDM provider like Intune.",
            Refusal::DeviceNotManaged => "Your device is required to be managed to access this resource.",
            Refusal::DeviceNotDomainJoined => "Device is not in required device state: domain_joined. Conditional Access policy requires a domain joined device, and the device is not domain joined.",
            Refusal::AppNotApproved => "The app used is not an approved app for Conditional Access. The user must use one of the apps from the list of approved apps to get access.",
            Refusal::MfaRequired => "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this resource.",
        }
    }

    /// The order in which refusals win when several policies refuse: a block first.
    fn rank(self) -> u8 {
        match self {
            Refusal::Blocked => 0,
            Refusal::DeviceNotManaged => 1,
            Refusal::DeviceNotCompliant => 2,
            Refusal::DeviceNotDomainJoined => 3,
            Refusal::AppNotApproved => 4,
            Refusal::MfaRequired => 5,
        }
    }
}

/// A policy's result for a sign-in, with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub policy_id: String,
    pub display_name: String,
    pub result: Outcome,
    /// The grant controls the policy enforced (or would have, report-only), as Graph names them.
    pub enforced_grant_controls: Vec<String>,
    /// Why it applied or not, and which controls held.
    pub reasons: Vec<String>,
    pub not_evaluated: Vec<String>,
    /// What it refuses the sign-in for (report-only policies too: they would have).
    pub refusal: Option<Refusal>,
}

/// Every policy's result for a sign-in, and the refusal the enforced ones make.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub applied: Vec<Applied>,
    pub refusal: Option<Refusal>,
}

impl Evaluation {
    /// `signIn.conditionalAccessStatus`: `failure` when refused, `success` when an enforced
    /// policy applied, else `notApplied`.
    pub fn status(&self) -> &'static str {
        if self.refusal.is_some() {
            "failure"
        } else if self.applied.iter().any(|a| a.result == Outcome::Success) {
            "success"
        } else {
            "notApplied"
        }
    }
}

/// Whether the policy's conditions hold for the sign-in: `Err(reason)` when one does not.
fn conditions_hold(p: &Policy, s: &SignIn<'_>) -> Result<Vec<String>, String> {
    let mut why = Vec::new();
    // Users: included by id, `All`, a group or a role; not excluded by id, group or role.
    let u = &p.users;
    let in_groups = |list: &[String]| {
        list.iter()
            .find(|g| s.groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
            .cloned()
    };
    let in_roles = |list: &[String]| {
        list.iter()
            .find(|r| s.roles.iter().any(|x| x.eq_ignore_ascii_case(r)))
            .cloned()
    };
    let included = if find(&u.include_users, "All").is_some() {
        Some("the policy includes all users".to_string())
    } else if find(&u.include_users, s.user_id).is_some() {
        Some("the policy includes the user".to_string())
    } else if let Some(g) = in_groups(&u.include_groups) {
        Some(format!("the policy includes the user's group {g}"))
    } else {
        in_roles(&u.include_roles).map(|r| format!("the policy includes the user's role {r}"))
    };
    let Some(included) = included else {
        return Err("the policy does not include the user".into());
    };
    if find(&u.exclude_users, s.user_id).is_some() {
        return Err("the policy excludes the user".into());
    }
    if let Some(g) = in_groups(&u.exclude_groups) {
        return Err(format!("the policy excludes the user's group {g}"));
    }
    if let Some(r) = in_roles(&u.exclude_roles) {
        return Err(format!("the policy excludes the user's role {r}"));
    }
    why.push(included);

    // Applications: the resource signed in to.
    let a = &p.applications;
    let names = |list: &[String], app: &str| -> Option<String> {
        list.iter()
            .find(|x| {
                x.eq_ignore_ascii_case(app)
                    || (x.eq_ignore_ascii_case("Office365")
                        && OFFICE365_APP_IDS.iter().any(|o| o.eq_ignore_ascii_case(app)))
            })
            .cloned()
    };
    let app_included = if find(&a.include_applications, "All").is_some() {
        Some("All".to_string())
    } else {
        names(&a.include_applications, s.resource_app_id)
    };
    if a.include_user_actions.is_empty() && a.include_authentication_context_class_references.is_empty() {
        let Some(app_included) = app_included else {
            return Err(format!(
                "the policy does not include the resource {}",
                s.resource_app_id
            ));
        };
        if let Some(x) = names(&a.exclude_applications, s.resource_app_id) {
            return Err(format!("the policy excludes the resource ({x})"));
        }
        why.push(format!("the policy includes the resource ({app_included})"));
    }

    // Platforms: the device's; an unknown device's platform is unknown, which only `all` holds.
    if let Some(pl) = &p.platforms {
        let platform = s.device.and_then(|d| d.platform.as_deref());
        let includes = find(&pl.include_platforms, "all").is_some()
            || platform.is_some_and(|x| find(&pl.include_platforms, x).is_some());
        if !includes {
            return Err(format!(
                "the policy does not include the device platform ({})",
                platform.unwrap_or("unknown")
            ));
        }
        if let Some(x) = platform.and_then(|x| find(&pl.exclude_platforms, x)) {
            return Err(format!("the policy excludes the device platform {x}"));
        }
        why.push(format!(
            "the policy includes the device platform ({})",
            platform.unwrap_or("unknown")
        ));
    }

    // Client apps: none set is all.
    if !p.client_app_types.is_empty()
        && find(&p.client_app_types, "all").is_none()
        && find(&p.client_app_types, s.client_app_type).is_none()
    {
        return Err(format!(
            "the policy does not include the client app type {}",
            s.client_app_type
        ));
    }
    Ok(why)
}

/// Whether a control holds for the sign-in: `Err(refusal)` when it does not.
fn control_holds(control: &str, s: &SignIn<'_>, compliant_app: bool) -> Result<String, Refusal> {
    match control {
        "block" => Err(Refusal::Blocked),
        "compliantDevice" => match s.device {
            Some(d) if d.is_compliant => Ok("the device is compliant".into()),
            Some(_) => Err(Refusal::DeviceNotCompliant),
            None => Err(Refusal::DeviceNotManaged),
        },
        "compliantApplication" if compliant_app => Ok("the app is compliant".into()),
        "compliantApplication" | "approvedApplication" => Err(Refusal::AppNotApproved),
        "domainJoinedDevice" => Err(Refusal::DeviceNotDomainJoined),
        "mfa" => Err(Refusal::MfaRequired),
        _ => Err(Refusal::Blocked),
    }
}

/// The display name Graph's sign-in log gives a grant control.
fn control_name(control: &str) -> String {
    match control {
        "block" => "Block".into(),
        "mfa" => "Mfa".into(),
        "compliantDevice" => "Require compliant device".into(),
        "domainJoinedDevice" => "Require domain joined device".into(),
        "approvedApplication" => "Require approved app".into(),
        "compliantApplication" => "Require app protection policy".into(),
        "passwordChange" => "Require password change".into(),
        other => other.to_string(),
    }
}

/// Evaluates every policy for the sign-in. `compliant_app`: whether the signing-in app meets
/// app protection (`compliantApplication`).
pub fn evaluate(policies: &[Policy], s: &SignIn<'_>, compliant_app: bool) -> Evaluation {
    let mut applied = Vec::with_capacity(policies.len());
    let mut refusal: Option<Refusal> = None;
    for p in policies {
        let report_only = p.state == PolicyState::EnabledForReportingButNotEnforced;
        let mut a = Applied {
            policy_id: p.id.clone(),
            display_name: p.display_name.clone(),
            result: Outcome::NotEnabled,
            enforced_grant_controls: Vec::new(),
            reasons: Vec::new(),
            not_evaluated: p.not_evaluated.clone(),
            refusal: None,
        };
        if p.state == PolicyState::Disabled {
            a.reasons.push("the policy is disabled".into());
            applied.push(a);
            continue;
        }
        match conditions_hold(p, s) {
            Err(why) => {
                a.result = if report_only {
                    Outcome::ReportOnlyNotApplied
                } else {
                    Outcome::NotApplied
                };
                a.reasons.push(why);
            }
            Ok(why) => {
                a.reasons.extend(why);
                let mut failed: Option<Refusal> = None;
                if let Some(g) = &p.grant {
                    a.enforced_grant_controls = g.controls.iter().map(|c| control_name(c)).collect();
                    let results: Vec<Result<String, Refusal>> =
                        g.controls.iter().map(|c| control_holds(c, s, compliant_app)).collect();
                    let other_fails = !g.other.is_empty();
                    let held: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
                    let refusals: Vec<Refusal> = results.iter().filter_map(|r| r.as_ref().err().copied()).collect();
                    let satisfied = if g.all {
                        refusals.is_empty() && !other_fails
                    } else {
                        !held.is_empty() || (g.controls.is_empty() && !other_fails)
                    };
                    a.reasons.extend(held.into_iter().cloned());
                    if !satisfied {
                        failed = Some(
                            refusals
                                .iter()
                                .copied()
                                .min_by_key(|r| r.rank())
                                .unwrap_or(Refusal::Blocked),
                        );
                        a.reasons.push(format!(
                            "the grant controls ({} of {}) are not satisfied",
                            if g.all { "all" } else { "one" },
                            g.controls.join(", ")
                        ));
                    }
                }
                a.refusal = failed;
                a.result = match (report_only, failed.is_some()) {
                    (false, false) => Outcome::Success,
                    (false, true) => Outcome::Failure,
                    (true, false) => Outcome::ReportOnlySuccess,
                    (true, true) => Outcome::ReportOnlyFailure,
                };
                if let (false, Some(r)) = (report_only, failed) {
                    if refusal.is_none_or(|x| r.rank() < x.rank()) {
                        refusal = Some(r);
                    }
                }
            }
        }
        applied.push(a);
    }
    Evaluation { applied, refusal }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = "11111111-1111-4111-8111-111111111111";
    const GROUP: &str = "22222222-2222-4222-8222-222222222222";

    fn policy(doc: Value) -> Policy {
        let mut doc = doc;
        doc["id"] = json!("p1");
        doc["displayName"] = json!("p");
        if doc.get("state").is_none() {
            doc["state"] = json!("enabled");
        }
        Policy::from_document(&doc).unwrap()
    }

    fn compliant_device_for(apps: Value, users: Value) -> Policy {
        policy(json!({
            "conditions": { "users": users, "applications": { "includeApplications": apps }, "clientAppTypes": ["all"] },
            "grantControls": { "operator": "OR", "builtInControls": ["compliantDevice"] }
        }))
    }

    fn device(compliant: bool, platform: &str) -> SignInDevice {
        SignInDevice {
            device_id: "d".into(),
            display_name: "phone".into(),
            platform: Some(platform.into()),
            operating_system: "iOS".into(),
            is_compliant: compliant,
            is_managed: true,
        }
    }

    fn sign_in<'a>(groups: &'a [String], resource: &'a str, device: Option<&'a SignInDevice>) -> SignIn<'a> {
        SignIn {
            user_id: USER,
            groups,
            roles: &[],
            resource_app_id: resource,
            client_app_type: "mobileAppsAndDesktopClients",
            device,
        }
    }

    #[test]
    fn a_compliant_device_policy_for_office365_refuses_a_noncompliant_or_unknown_device() {
        let p = compliant_device_for(json!(["Office365"]), json!({ "includeGroups": [GROUP] }));
        let groups = vec![GROUP.to_string()];
        let good = device(true, "iOS");
        let bad = device(false, "iOS");
        let ok = evaluate(
            std::slice::from_ref(&p),
            &sign_in(&groups, EXCHANGE_ONLINE_APP_ID, Some(&good)),
            false,
        );
        assert_eq!((ok.refusal, ok.status()), (None, "success"));
        assert_eq!(ok.applied[0].enforced_grant_controls, ["Require compliant device"]);
        let no = evaluate(
            std::slice::from_ref(&p),
            &sign_in(&groups, EXCHANGE_ONLINE_APP_ID, Some(&bad)),
            false,
        );
        assert_eq!(no.refusal, Some(Refusal::DeviceNotCompliant));
        assert_eq!((no.applied[0].result, no.status()), (Outcome::Failure, "failure"));
        let unknown = evaluate(
            std::slice::from_ref(&p),
            &sign_in(&groups, EXCHANGE_ONLINE_APP_ID, None),
            false,
        );
        assert_eq!(unknown.refusal.map(Refusal::code), Some(530003));
        // Graph is not part of Office 365; a user outside the group is not in scope.
        let graph = evaluate(
            std::slice::from_ref(&p),
            &sign_in(&groups, GRAPH_APP_ID, Some(&bad)),
            false,
        );
        assert_eq!((graph.refusal, graph.applied[0].result), (None, Outcome::NotApplied));
        let outside = evaluate(
            std::slice::from_ref(&p),
            &sign_in(&[], EXCHANGE_ONLINE_APP_ID, Some(&bad)),
            false,
        );
        assert_eq!(outside.status(), "notApplied");
    }

    #[test]
    fn exclusions_win_over_inclusions_and_all_means_all() {
        let groups = vec![GROUP.to_string()];
        let bad = device(false, "android");
        let all = compliant_device_for(json!(["All"]), json!({ "includeUsers": ["All"] }));
        assert!(evaluate(
            std::slice::from_ref(&all),
            &sign_in(&[], GRAPH_APP_ID, Some(&bad)),
            false
        )
        .refusal
        .is_some());
        let excluded_user = compliant_device_for(
            json!(["All"]),
            json!({ "includeUsers": ["All"], "excludeUsers": [USER] }),
        );
        let excluded_group = compliant_device_for(
            json!(["All"]),
            json!({ "includeUsers": ["All"], "excludeGroups": [GROUP] }),
        );
        let requires_compliance = compliant_device_for(json!(["All"]), json!({ "includeUsers": ["All"] }));
        let mut excluded_app_doc = json!({
            "id": "p2", "displayName": "x", "state": "enabled",
            "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"], "excludeApplications": [GRAPH_APP_ID] } },
            "grantControls": { "operator": "OR", "builtInControls": ["block"] }
        });
        let excluded_app_policy = Policy::from_document(&excluded_app_doc).unwrap();
        for p in [excluded_user, excluded_group] {
            let e = evaluate(
                std::slice::from_ref(&p),
                &sign_in(&groups, GRAPH_APP_ID, Some(&bad)),
                false,
            );
            assert_eq!(e.applied[0].result, Outcome::NotApplied, "{:?}", e.applied[0].reasons);
        }
        let e = evaluate(
            &[requires_compliance, excluded_app_policy],
            &sign_in(&groups, GRAPH_APP_ID, Some(&bad)),
            false,
        );
        assert_eq!(e.refusal, Some(Refusal::DeviceNotCompliant), "the block excludes Graph");
        excluded_app_doc["conditions"]["applications"]["excludeApplications"] = json!([]);
        let block = Policy::from_document(&excluded_app_doc).unwrap();
        let e = evaluate(
            &[block],
            &sign_in(&groups, GRAPH_APP_ID, Some(&device(true, "iOS"))),
            false,
        );
        assert_eq!(e.refusal.map(Refusal::code), Some(53003));
    }

    #[test]
    fn platforms_and_operators() {
        let groups: Vec<String> = vec![];
        let doc = |platforms: Value, operator: &str, controls: Value| {
            json!({
                "id": "p", "displayName": "p", "state": "enabled",
                "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] }, "platforms": platforms },
                "grantControls": { "operator": operator, "builtInControls": controls }
            })
        };
        let ios_only = Policy::from_document(&doc(
            json!({ "includePlatforms": ["iOS"] }),
            "OR",
            json!(["compliantDevice"]),
        ))
        .unwrap();
        let android = device(false, "android");
        let iphone = device(false, "iOS");
        assert_eq!(
            evaluate(
                std::slice::from_ref(&ios_only),
                &sign_in(&groups, GRAPH_APP_ID, Some(&android)),
                false
            )
            .status(),
            "notApplied"
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&ios_only),
                &sign_in(&groups, GRAPH_APP_ID, Some(&iphone)),
                false
            )
            .status(),
            "failure"
        );
        let all_but_ios = Policy::from_document(&doc(
            json!({ "includePlatforms": ["all"], "excludePlatforms": ["iOS"] }),
            "OR",
            json!(["compliantDevice"]),
        ))
        .unwrap();
        assert_eq!(
            evaluate(
                std::slice::from_ref(&all_but_ios),
                &sign_in(&groups, GRAPH_APP_ID, Some(&iphone)),
                false
            )
            .status(),
            "notApplied"
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&all_but_ios),
                &sign_in(&groups, GRAPH_APP_ID, None),
                false
            )
            .status(),
            "failure",
            "an unknown platform is in 'all'"
        );

        // OR: one control is enough; AND: every one.
        let or = Policy::from_document(&doc(
            Value::Null,
            "OR",
            json!(["compliantDevice", "compliantApplication"]),
        ))
        .unwrap();
        let and = Policy::from_document(&doc(
            Value::Null,
            "AND",
            json!(["compliantDevice", "compliantApplication"]),
        ))
        .unwrap();
        let good = device(true, "iOS");
        assert_eq!(
            evaluate(
                std::slice::from_ref(&or),
                &sign_in(&groups, GRAPH_APP_ID, Some(&good)),
                false
            )
            .refusal,
            None
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&or),
                &sign_in(&groups, GRAPH_APP_ID, Some(&iphone)),
                true
            )
            .refusal,
            None
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&and),
                &sign_in(&groups, GRAPH_APP_ID, Some(&good)),
                false
            )
            .refusal,
            Some(Refusal::AppNotApproved)
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&and),
                &sign_in(&groups, GRAPH_APP_ID, Some(&good)),
                true
            )
            .refusal,
            None
        );
    }

    #[test]
    fn report_only_and_disabled_policies_never_refuse_and_unevaluated_parts_are_listed() {
        let doc = |state: &str| {
            json!({
                "id": "p", "displayName": "p", "state": state,
                "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] }, "locations": { "includeLocations": ["All"] } },
                "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
            })
        };
        let report = Policy::from_document(&doc("enabledForReportingButNotEnforced")).unwrap();
        let off = Policy::from_document(&doc("disabled")).unwrap();
        let on = Policy::from_document(&doc("enabled")).unwrap();
        assert_eq!(
            on.not_evaluated(),
            ["conditions.locations", "grantControls.builtInControls.mfa"]
        );
        let e = evaluate(&[report, off], &sign_in(&[], GRAPH_APP_ID, None), false);
        assert_eq!(e.refusal, None);
        assert_eq!(
            e.applied.iter().map(|a| a.result).collect::<Vec<_>>(),
            [Outcome::ReportOnlyFailure, Outcome::NotEnabled]
        );
        assert_eq!(e.status(), "notApplied");
        let e = evaluate(&[on], &sign_in(&[], GRAPH_APP_ID, None), false);
        assert_eq!(e.refusal.map(Refusal::code), Some(50076), "MFA is never satisfied here");
    }

    #[test]
    fn documents_are_checked() {
        let base = json!({ "displayName": "p", "state": "enabled", "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] } } });
        assert!(Policy::from_document(&base).is_ok());
        for (path, value) in [
            ("state", json!("on")),
            ("displayName", json!("")),
            (
                "grantControls",
                json!({ "operator": "XOR", "builtInControls": ["block"] }),
            ),
            (
                "grantControls",
                json!({ "operator": "OR", "builtInControls": ["teleport"] }),
            ),
            (
                "grantControls",
                json!({ "operator": "OR", "builtInControls": ["block", "mfa"] }),
            ),
        ] {
            let mut bad = base.clone();
            bad[path] = value;
            assert!(Policy::from_document(&bad).is_err(), "{path}");
        }
        let mut no_users = base.clone();
        no_users["conditions"]["users"] = json!({});
        assert!(Policy::from_document(&no_users).is_err());
        let mut bad_platform = base.clone();
        bad_platform["conditions"]["platforms"] = json!({ "includePlatforms": ["symbian"] });
        assert!(Policy::from_document(&bad_platform).is_err());
    }
}
