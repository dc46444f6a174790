//! Intune role-based access control: the resource operations Intune knows, the built-in role
//! definitions every tenant has (same ids everywhere), the directory roles the emulator can give
//! users, and how a delegated caller's rights are decided.
//!
//! Built-in roles are static data merged with the tenant's custom roles: they cannot be changed
//! or deleted, so there is nothing to store, and a reset tenant has them as a new one does.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a Graph route asks of a delegated caller beyond the Graph permission in `scp`
/// (app-only callers are not subject to Intune RBAC: their application permission is enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleRequirement {
    /// An Intune route: the signed-in user needs an Intune role, assigned to a group the user
    /// is a member of, whose permissions allow this resource action (or an administrator
    /// directory role, see `bypasses_intune_rbac`).
    Intune(&'static str),
    /// An Entra ID directory route (users, groups): Intune roles play no part. A delegated
    /// caller needs one of these directory roles (template ids, `wids`); an empty list means any
    /// signed-in user with the scope, as Entra lets member users read the directory.
    Directory(&'static [&'static str]),
    /// The route answers about the caller's own rights (`getEffectivePermissions`): any
    /// signed-in user with the scope may ask.
    OwnRights,
}

/// Entra ID built-in directory role template ids (the values of the `wids` claim).
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const INTUNE_ADMINISTRATOR: &str = "3a2c62db-5318-420d-8d74-23affee5d9d5";
pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const GROUPS_ADMINISTRATOR: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";

/// The directory roles the control plane can give a user: (template id, display name).
pub const DIRECTORY_ROLES: &[(&str, &str)] = &[
    (GLOBAL_ADMINISTRATOR, "Global Administrator"),
    (INTUNE_ADMINISTRATOR, "Intune Administrator"),
    (USER_ADMINISTRATOR, "User Administrator"),
    (GROUPS_ADMINISTRATOR, "Groups Administrator"),
];

/// A directory role by template id or display name (case-insensitively), as its template id.
pub fn directory_role(name_or_id: &str) -> Option<&'static str> {
    let wanted = name_or_id.trim();
    DIRECTORY_ROLES
        .iter()
        .find(|(id, name)| id.eq_ignore_ascii_case(wanted) || name.eq_ignore_ascii_case(wanted))
        .map(|(id, _)| *id)
}

pub fn directory_role_name(id: &str) -> Option<&'static str> {
    DIRECTORY_ROLES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Intune Administrator and Global Administrator hold every Intune permission without any
/// Intune role assignment.
pub fn bypasses_intune_rbac<'a>(wids: impl IntoIterator<Item = &'a str>) -> bool {
    wids.into_iter()
        .any(|w| w.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR) || w.eq_ignore_ascii_case(INTUNE_ADMINISTRATOR))
}

/// One Intune resource and the actions on it: (resource key as in the action id, resource name
/// the admin center shows, whether the permission is validated against assignment scopes,
/// actions as (key, name)). The operation id is `Microsoft.Intune_{resource}_{action}`.
type ResourceEntry = (
    &'static str,
    &'static str,
    bool,
    &'static [(&'static str, &'static str)],
);

const SIX_POLICY_ACTIONS: &[(&str, &str)] = &[
    ("Assign", "Assign"),
    ("Create", "Create"),
    ("Delete", "Delete"),
    ("Read", "Read"),
    ("Update", "Update"),
    ("ViewReports", "View reports"),
];
const CRUD_ASSIGN: &[(&str, &str)] = &[
    ("Assign", "Assign"),
    ("Create", "Create"),
    ("Delete", "Delete"),
    ("Read", "Read"),
    ("Update", "Update"),
];
const CRUD: &[(&str, &str)] = &[
    ("Create", "Create"),
    ("Delete", "Delete"),
    ("Read", "Read"),
    ("Update", "Update"),
];
const READ_MODIFY: &[(&str, &str)] = &[("Modify", "Modify"), ("Read", "Read")];
const READ_ONLY: &[(&str, &str)] = &[("Read", "Read")];

/// The Intune permissions (memdocs "role-based access control reference", as strings in
/// graph-reference 5.4; the misspelt `DeviceCompliancePolices` is Intune's own).
const RESOURCES: &[ResourceEntry] = &[
    ("AndroidFota", "Android FOTA", true, CRUD_ASSIGN),
    (
        "AndroidSync",
        "Android for work",
        false,
        &[("Read", "Read"), ("Update", "Update")],
    ),
    ("AppControlPolicy", "App Control for Business", true, SIX_POLICY_ACTIONS),
    ("ASRPolicy", "Attack surface reduction", true, SIX_POLICY_ACTIONS),
    ("AssignmentFilter", "Filters", true, CRUD),
    ("Audit", "Audit data", false, READ_ONLY),
    (
        "AppleDeviceSerialNumbers",
        "Enrollment programs",
        false,
        &[("Read", "Read device")],
    ),
    (
        "AppleEnrollmentProfiles",
        "Enrollment programs",
        false,
        &[("Read", "Read profile")],
    ),
    (
        "EnrollmentProgramToken",
        "Enrollment programs",
        false,
        &[("Read", "Read token")],
    ),
    ("CertificateConnector", "Certificate Connector", false, READ_MODIFY),
    (
        "CloudAttach",
        "Cloud attached devices",
        true,
        &[
            ("ClientDetails", "View client details"),
            ("CMPivot", "Run CMPivot query"),
            ("Collections", "View collections"),
            ("ResourceExplorer", "View resource explorer"),
            ("Scripts", "View scripts"),
            ("SoftwareUpdates", "View software updates"),
            ("Timeline", "View timeline"),
        ],
    ),
    (
        "CorporateDeviceIdentifiers",
        "Corporate device identifiers",
        false,
        CRUD,
    ),
    ("Customization", "Customization", true, CRUD_ASSIGN),
    ("DerivedCredentials", "Derived Credentials", false, READ_MODIFY),
    (
        "DeviceCompliancePolices",
        "Device compliance policies",
        true,
        SIX_POLICY_ACTIONS,
    ),
    (
        "DeviceConfigurations",
        "Device configurations",
        true,
        SIX_POLICY_ACTIONS,
    ),
    (
        "DeviceEnrollmentManagers",
        "Device enrollment managers",
        false,
        &[("Read", "Read"), ("Update", "Update")],
    ),
    ("EDRPolicy", "Endpoint Detection and Response", true, SIX_POLICY_ACTIONS),
    ("EndpointAnalytics", "Endpoint Analytics", false, CRUD),
    ("EndpointProtection", "Endpoint protection reports", false, READ_ONLY),
    (
        "EpmPolicy",
        "Endpoint Privilege Management Policy Authoring",
        true,
        SIX_POLICY_ACTIONS,
    ),
    (
        "EpmPolicy",
        "EPM Elevation Requests",
        true,
        &[
            ("ModifyElevationRequests", "Modify Elevation Requests"),
            ("ViewElevationRequests", "View Elevation Requests"),
        ],
    ),
    (
        "ManagedApps",
        "Managed apps",
        true,
        &[
            ("Assign", "Assign"),
            ("Create", "Create"),
            ("Delete", "Delete"),
            ("Read", "Read"),
            ("Update", "Update"),
            ("Wipe", "Wipe"),
        ],
    ),
    (
        "ManagedDevices",
        "Managed devices",
        true,
        &[
            ("Delete", "Delete"),
            ("Read", "Read"),
            ("SetPrimaryUser", "Set primary user"),
            ("Update", "Update"),
            ("ViewReports", "View reports"),
        ],
    ),
    ("MicrosoftDefenderATP", "Microsoft Defender ATP", false, READ_ONLY),
    (
        "MicrosoftStoreForBusiness",
        "Microsoft Store For Business",
        false,
        READ_MODIFY,
    ),
    (
        "MobileApps",
        "Mobile apps",
        true,
        &[
            ("Assign", "Assign"),
            ("Create", "Create"),
            ("Delete", "Delete"),
            ("Read", "Read"),
            ("Relate", "Relate"),
            ("Update", "Update"),
        ],
    ),
    ("MobileThreatDefense", "Mobile Threat Defense", false, READ_MODIFY),
    ("Organization", "Organization", false, CRUD),
    (
        "PartnerDeviceManagement",
        "Partner Device Management",
        false,
        READ_MODIFY,
    ),
    ("PolicySets", "Policy Sets", true, CRUD_ASSIGN),
    (
        "RemoteAssistance",
        "Remote assistance connectors",
        false,
        &[("Read", "Read"), ("Update", "Update"), ("ViewReports", "View reports")],
    ),
    (
        "RemoteTasks",
        "Remote tasks",
        true,
        &[
            ("CleanPC", "Clean PC"),
            ("ConfigurationManagerAction", "Initiate Configuration Manager action"),
            ("DisableLostMode", "Disable lost mode"),
            ("EnableLostMode", "Enable lost mode"),
            ("GetFileVaultKey", "Get FileVault key"),
            ("LocateDevice", "Locate device"),
            ("ManageSharedDeviceUsers", "Manage shared device users"),
            ("RebootNow", "Reboot now"),
            ("RemoteLock", "Remote lock"),
            ("ResetPasscode", "Reset passcode"),
            ("Retire", "Retire"),
            ("RotateBitLockerKeys", "Rotate BitLockerKeys"),
            ("RotateFileVaultKey", "Rotate FileVault key"),
            ("ShutDown", "Shut down"),
            ("SyncDevice", "Sync devices"),
            ("WindowsDefender", "Windows Defender"),
            ("Wipe", "Wipe"),
        ],
    ),
    ("Reports", "Intune data warehouse", false, READ_ONLY),
    ("Roles", "Roles", false, CRUD_ASSIGN),
    ("SecurityBaselines", "Security baselines", true, CRUD_ASSIGN),
    (
        "SecurityTasks",
        "Security tasks",
        false,
        &[("Read", "Read"), ("Update", "Update")],
    ),
    (
        "TelecomExpenses",
        "Telecom expenses",
        false,
        &[("Read", "Read"), ("Update", "Update")],
    ),
    ("TermsAndConditions", "Terms and conditions", false, CRUD_ASSIGN),
    (
        "WindowsEnterpriseCertificate",
        "Windows Enterprise Certificate",
        false,
        READ_MODIFY,
    ),
];

/// A `resourceOperation`: its id is the resource-action string role permissions name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceOperation {
    pub id: String,
    pub resource_name: &'static str,
    pub action_name: &'static str,
    pub enabled_for_scope_validation: bool,
}

impl ResourceOperation {
    pub fn description(&self) -> String {
        format!("{}: {}", self.resource_name, self.action_name)
    }

    /// The Graph document (every version's properties; rendering drops what a version lacks).
    pub fn document(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("actionName".into(), self.action_name.into());
        m.insert("description".into(), self.description().into());
        m.insert(
            "enabledForScopeValidation".into(),
            self.enabled_for_scope_validation.into(),
        );
        m.insert("resource".into(), self.resource_name.into());
        m.insert("resourceName".into(), self.resource_name.into());
        m
    }
}

pub static RESOURCE_OPERATIONS: LazyLock<Vec<ResourceOperation>> = LazyLock::new(|| {
    let mut ops: Vec<ResourceOperation> = RESOURCES
        .iter()
        .flat_map(|(resource, name, scoped, actions)| {
            actions.iter().map(move |(action, action_name)| ResourceOperation {
                id: format!("Microsoft.Intune_{resource}_{action}"),
                resource_name: name,
                action_name,
                enabled_for_scope_validation: *scoped,
            })
        })
        .collect();
    ops.sort_by(|a, b| a.id.cmp(&b.id));
    ops
});

pub fn resource_operation(id: &str) -> Option<&'static ResourceOperation> {
    RESOURCE_OPERATIONS.iter().find(|o| o.id.eq_ignore_ascii_case(id))
}

/// `resourceAction`: allowed and not-allowed resource-action strings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAction {
    #[serde(default)]
    pub allowed_resource_actions: Vec<String>,
    #[serde(default)]
    pub not_allowed_resource_actions: Vec<String>,
}

/// `rolePermission`; `actions` is the deprecated list some clients still send.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolePermission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub resource_actions: Vec<ResourceAction>,
}

/// A role definition: built-in (static) or a tenant's custom one (stored).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleDefinition {
    pub tenant_id: String,
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub is_built_in: bool,
    pub permissions: Vec<RolePermission>,
    pub role_scope_tag_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Bumped by every update, for compare-and-set.
    pub revision: i64,
}

impl RoleDefinition {
    /// Whether the role's permissions allow `action`: some allowed entry matches it (exactly
    /// or as a `*` pattern) and no not-allowed entry of the same resource action does.
    pub fn allows(&self, action: &str) -> bool {
        permissions_allow(&self.permissions, action)
    }

    /// The Graph document of every version: `permissions` (beta) mirrors `rolePermissions` and
    /// `isBuiltInRoleDefinition` mirrors `isBuiltIn`, as the service answers.
    pub fn document(&self) -> Map<String, Value> {
        let permissions = serde_json::to_value(&self.permissions).unwrap_or(Value::Array(Vec::new()));
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("description".into(), opt(&self.description));
        m.insert("displayName".into(), opt(&self.display_name));
        m.insert("isBuiltIn".into(), self.is_built_in.into());
        m.insert("isBuiltInRoleDefinition".into(), self.is_built_in.into());
        m.insert("permissions".into(), permissions.clone());
        m.insert("rolePermissions".into(), permissions);
        m.insert(
            "roleScopeTagIds".into(),
            Value::Array(
                self.role_scope_tag_ids
                    .iter()
                    .map(|s| Value::String(s.clone()))
                    .collect(),
            ),
        );
        m
    }
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map(|s| Value::String(s.clone())).unwrap_or(Value::Null)
}

fn pattern_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.len() >= prefix.len() && action[..prefix.len()].eq_ignore_ascii_case(prefix),
        None => pattern.eq_ignore_ascii_case(action),
    }
}

pub fn permissions_allow(permissions: &[RolePermission], action: &str) -> bool {
    permissions.iter().flat_map(|p| &p.resource_actions).any(|ra| {
        ra.allowed_resource_actions.iter().any(|a| pattern_matches(a, action))
            && !ra
                .not_allowed_resource_actions
                .iter()
                .any(|a| pattern_matches(a, action))
    })
}

/// A role assignment: the role, the groups whose members get it (`members`), and the scope.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAssignment {
    pub tenant_id: String,
    pub id: String,
    pub role_definition_id: String,
    /// displayName, description, members, resourceScopes, scopeMembers, scopeType,
    /// roleScopeTagIds as Graph names them.
    pub properties: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub revision: i64,
}

impl RoleAssignment {
    /// The security groups whose members hold the role.
    pub fn member_groups(&self) -> impl Iterator<Item = &str> {
        self.properties
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    pub fn document(&self) -> Map<String, Value> {
        let mut m = self.properties.clone();
        m.insert("id".into(), self.id.clone().into());
        m
    }
}

/// The id, name, description and allowed actions of a built-in role.
struct BuiltIn {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    allowed: fn() -> Vec<String>,
}

pub const ENDPOINT_SECURITY_MANAGER: &str = "c56d53a2-73d0-4502-b6bd-4a9d3dba28d5";
pub const READ_ONLY_OPERATOR: &str = "fa1d7878-e8cb-41a1-8254-0142355c9f84";
pub const HELP_DESK_OPERATOR: &str = "9e0cc482-82df-4ab2-a24c-0c23a3f52e1e";
pub const INTUNE_ROLE_ADMINISTRATOR: &str = "fb2603eb-3c87-4be3-8b5b-d58a5b4a0bc0";

/// Endpoint Security Manager's permissions, verbatim (graph-reference 5.4).
pub const ENDPOINT_SECURITY_MANAGER_ACTIONS: &[&str] = &[
    "Microsoft.Intune_MobileThreatDefense_Read",
    "Microsoft.Intune_MobileThreatDefense_Modify",
    "Microsoft.Intune_DeviceCompliancePolices_Read",
    "Microsoft.Intune_DeviceCompliancePolices_Create",
    "Microsoft.Intune_DeviceCompliancePolices_Update",
    "Microsoft.Intune_DeviceCompliancePolices_Delete",
    "Microsoft.Intune_DeviceCompliancePolices_Assign",
    "Microsoft.Intune_DeviceCompliancePolices_ViewReports",
    "Microsoft.Intune_ManagedDevices_Read",
    "Microsoft.Intune_ManagedDevices_Update",
    "Microsoft.Intune_ManagedDevices_Delete",
    "Microsoft.Intune_ManagedDevices_SetPrimaryUser",
    "Microsoft.Intune_ManagedDevices_ViewReports",
    "Microsoft.Intune_RemoteTasks_RemoteLock",
    "Microsoft.Intune_RemoteTasks_RebootNow",
    "Microsoft.Intune_RemoteTasks_SyncDevice",
    "Microsoft.Intune_RemoteTasks_ShutDown",
    "Microsoft.Intune_RemoteTasks_WindowsDefender",
    "Microsoft.Intune_RemoteTasks_RotateBitLockerKeys",
    "Microsoft.Intune_RemoteTasks_RotateFileVaultKey",
    "Microsoft.Intune_RemoteTasks_GetFileVaultKey",
    "Microsoft.Intune_RemoteTasks_ConfigurationManagerAction",
    "Microsoft.Intune_DeviceConfigurations_Read",
    "Microsoft.Intune_DeviceConfigurations_ViewReports",
    "Microsoft.Intune_SecurityBaselines_Assign",
    "Microsoft.Intune_SecurityBaselines_Create",
    "Microsoft.Intune_SecurityBaselines_Delete",
    "Microsoft.Intune_SecurityBaselines_Read",
    "Microsoft.Intune_SecurityBaselines_Update",
    "Microsoft.Intune_SecurityTasks_Read",
    "Microsoft.Intune_SecurityTasks_Update",
    "Microsoft.Intune_EDRPolicy_Assign",
    "Microsoft.Intune_EDRPolicy_Create",
    "Microsoft.Intune_EDRPolicy_Delete",
    "Microsoft.Intune_EDRPolicy_Read",
    "Microsoft.Intune_EDRPolicy_Update",
    "Microsoft.Intune_EDRPolicy_ViewReports",
    "Microsoft.Intune_ASRPolicy_Assign",
    "Microsoft.Intune_ASRPolicy_Create",
    "Microsoft.Intune_ASRPolicy_Delete",
    "Microsoft.Intune_ASRPolicy_Read",
    "Microsoft.Intune_ASRPolicy_Update",
    "Microsoft.Intune_ASRPolicy_ViewReports",
    "Microsoft.Intune_AppControlPolicy_Assign",
    "Microsoft.Intune_AppControlPolicy_Create",
    "Microsoft.Intune_AppControlPolicy_Delete",
    "Microsoft.Intune_AppControlPolicy_Read",
    "Microsoft.Intune_AppControlPolicy_Update",
    "Microsoft.Intune_AppControlPolicy_ViewReports",
    "Microsoft.Intune_EpmPolicy_Assign",
    "Microsoft.Intune_EpmPolicy_Create",
    "Microsoft.Intune_EpmPolicy_Delete",
    "Microsoft.Intune_EpmPolicy_Read",
    "Microsoft.Intune_EpmPolicy_Update",
    "Microsoft.Intune_EpmPolicy_ViewReports",
    "Microsoft.Intune_EpmPolicy_ViewElevationRequests",
    "Microsoft.Intune_EpmPolicy_ModifyElevationRequests",
    "Microsoft.Intune_MicrosoftDefenderATP_Read",
    "Microsoft.Intune_EndpointProtection_Read",
    "Microsoft.Intune_Audit_Read",
    "Microsoft.Intune_Roles_Read",
    "Microsoft.Intune_Organization_Read",
    "Microsoft.Intune_ManagedApps_Read",
    "Microsoft.Intune_MobileApps_Read",
    "Microsoft.Intune_PolicySets_Read",
    "Microsoft.Intune_AndroidSync_Read",
    "Microsoft.Intune_AndroidFota_Read",
    "Microsoft.Intune_AssignmentFilter_Read",
    "Microsoft.Intune_CertificateConnector_Read",
    "Microsoft.Intune_DerivedCredentials_Read",
    "Microsoft.Intune_Customization_Read",
    "Microsoft.Intune_CorporateDeviceIdentifiers_Read",
    "Microsoft.Intune_DeviceEnrollmentManagers_Read",
    "Microsoft.Intune_EndpointAnalytics_Read",
    "Microsoft.Intune_AppleDeviceSerialNumbers_Read",
    "Microsoft.Intune_AppleEnrollmentProfiles_Read",
    "Microsoft.Intune_EnrollmentProgramToken_Read",
    "Microsoft.Intune_MicrosoftStoreForBusiness_Read",
    "Microsoft.Intune_PartnerDeviceManagement_Read",
    "Microsoft.Intune_WindowsEnterpriseCertificate_Read",
    "Microsoft.Intune_RemoteAssistance_Read",
    "Microsoft.Intune_RemoteAssistance_ViewReports",
    "Microsoft.Intune_TelecomExpenses_Read",
    "Microsoft.Intune_TermsAndConditions_Read",
    "Microsoft.Intune_CloudAttach_ClientDetails",
    "Microsoft.Intune_CloudAttach_CMPivot",
    "Microsoft.Intune_CloudAttach_Collections",
    "Microsoft.Intune_CloudAttach_ResourceExplorer",
    "Microsoft.Intune_CloudAttach_Scripts",
    "Microsoft.Intune_CloudAttach_SoftwareUpdates",
    "Microsoft.Intune_CloudAttach_Timeline",
    "Microsoft.Intune_Reports_Read",
];

/// Every operation whose action is one of `actions` (e.g. every `Read`).
fn ops_with_action(actions: &[&str]) -> Vec<String> {
    RESOURCE_OPERATIONS
        .iter()
        .filter(|o| actions.iter().any(|a| o.id.rsplit('_').next() == Some(*a)))
        .map(|o| o.id.clone())
        .collect()
}

/// Every operation on one of `resources` (whole resources: all their actions).
fn ops_on(resources: &[&str]) -> Vec<String> {
    RESOURCE_OPERATIONS
        .iter()
        .filter(|o| {
            resources.iter().any(|r| {
                o.id.strip_prefix("Microsoft.Intune_")
                    .and_then(|s| s.strip_prefix(r))
                    .is_some_and(|s| s.starts_with('_'))
            })
        })
        .map(|o| o.id.clone())
        .collect()
}

fn union(parts: Vec<Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in parts.into_iter().flatten() {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The built-in roles (graph-reference 5.3 ids; descriptions and permission sets after memdocs'
/// built-in role reference: readers read and view reports, operators add their tasks).
const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        id: "0bd113fe-6be5-400c-a28f-ae5553f9c0be",
        name: "Policy and Profile manager",
        description: "Manages compliance policy, configuration profiles, Apple enrollment, corporate device identifiers, and security baselines.",
        allowed: || {
            union(vec![
                ops_with_action(&["Read", "ViewReports"]),
                ops_on(&[
                    "AndroidFota",
                    "AssignmentFilter",
                    "CorporateDeviceIdentifiers",
                    "DeviceCompliancePolices",
                    "DeviceConfigurations",
                    "PolicySets",
                    "SecurityBaselines",
                    "TermsAndConditions",
                ]),
                strings(&["Microsoft.Intune_SecurityTasks_Update"]),
            ])
        },
    },
    BuiltIn {
        id: "2f9f4f7e-2d13-427b-adf2-361a1eef7ae8",
        name: "School Administrator",
        description: "Manages Windows 10 devices in Intune for Education.",
        allowed: || {
            union(vec![
                ops_with_action(&["Read", "ViewReports"]),
                ops_on(&[
                    "DeviceConfigurations",
                    "ManagedDevices",
                    "MobileApps",
                    "RemoteTasks",
                    "Organization",
                ]),
            ])
        },
    },
    BuiltIn {
        id: HELP_DESK_OPERATOR,
        name: "Help Desk Operator",
        description: "Performs remote tasks on users and devices, and can assign applications or policies to users or devices.",
        allowed: || {
            union(vec![
                ops_with_action(&["Read", "ViewReports"]),
                ops_on(&["RemoteTasks"]),
                strings(&[
                    "Microsoft.Intune_ManagedDevices_Update",
                    "Microsoft.Intune_ManagedDevices_SetPrimaryUser",
                    "Microsoft.Intune_DeviceCompliancePolices_Assign",
                    "Microsoft.Intune_DeviceConfigurations_Assign",
                    "Microsoft.Intune_MobileApps_Assign",
                    "Microsoft.Intune_ManagedApps_Assign",
                    "Microsoft.Intune_ManagedApps_Wipe",
                    "Microsoft.Intune_PolicySets_Assign",
                ]),
            ])
        },
    },
    BuiltIn {
        id: "c1d9fcbb-cba5-40b0-bf6b-527006585f4b",
        name: "Application Manager",
        description: "Manages mobile and managed applications, can read device information and can view device configuration profiles.",
        allowed: || {
            union(vec![
                ops_with_action(&["Read", "ViewReports"]),
                ops_on(&["ManagedApps", "MobileApps", "PolicySets"]),
                strings(&["Microsoft.Intune_RemoteTasks_SyncDevice"]),
            ])
        },
    },
    BuiltIn {
        id: ENDPOINT_SECURITY_MANAGER,
        name: "Endpoint Security Manager",
        description: "Manages security and compliance features such as security baselines, device compliance, conditional access, and Microsoft Defender for Endpoint.",
        allowed: || strings(ENDPOINT_SECURITY_MANAGER_ACTIONS),
    },
    BuiltIn {
        id: READ_ONLY_OPERATOR,
        name: "Read Only Operator",
        description: "Views user, device, enrollment, configuration, and application information. Cannot make changes to Intune.",
        allowed: || ops_with_action(&["Read", "ViewReports"]),
    },
    BuiltIn {
        id: INTUNE_ROLE_ADMINISTRATOR,
        name: "Intune Role Administrator",
        description: "Manages custom Intune roles and adds assignments for built-in Intune roles. It is the only Intune role that can assign permissions to Administrators.",
        allowed: || {
            union(vec![
                ops_on(&["Roles"]),
                strings(&["Microsoft.Intune_Organization_Read", "Microsoft.Intune_Audit_Read"]),
            ])
        },
    },
    BuiltIn {
        id: "9553af24-bd83-4ac3-a339-0e58f9e5478e",
        name: "Endpoint Privilege Reader",
        description: "Endpoint Privilege Readers can view Endpoint Privilege Management policies in the Intune console.",
        allowed: || {
            strings(&[
                "Microsoft.Intune_EpmPolicy_Read",
                "Microsoft.Intune_EpmPolicy_ViewReports",
                "Microsoft.Intune_EpmPolicy_ViewElevationRequests",
                "Microsoft.Intune_Organization_Read",
            ])
        },
    },
];

static BUILT_IN_DEFINITIONS: LazyLock<Vec<RoleDefinition>> = LazyLock::new(|| {
    BUILT_INS
        .iter()
        .map(|b| RoleDefinition {
            tenant_id: String::new(),
            id: b.id.to_string(),
            display_name: Some(b.name.to_string()),
            description: Some(b.description.to_string()),
            is_built_in: true,
            permissions: vec![RolePermission {
                actions: Vec::new(),
                resource_actions: vec![ResourceAction {
                    allowed_resource_actions: (b.allowed)(),
                    not_allowed_resource_actions: Vec::new(),
                }],
            }],
            role_scope_tag_ids: vec!["0".to_string()],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            revision: 0,
        })
        .collect()
});

/// The built-in role definitions, as every tenant has them.
pub fn built_in_roles() -> &'static [RoleDefinition] {
    &BUILT_IN_DEFINITIONS
}

pub fn built_in_role(id: &str) -> Option<&'static RoleDefinition> {
    BUILT_IN_DEFINITIONS.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_have_their_fixed_ids_and_known_operations() {
        assert_eq!(built_in_roles().len(), 8);
        let esm = built_in_role(ENDPOINT_SECURITY_MANAGER).unwrap();
        assert_eq!(esm.display_name.as_deref(), Some("Endpoint Security Manager"));
        assert!(esm.allows("Microsoft.Intune_DeviceCompliancePolices_Create"));
        assert!(esm.allows("microsoft.intune_mobilethreatdefense_modify"));
        assert!(!esm.allows("Microsoft.Intune_RemoteTasks_Wipe"));
        for role in built_in_roles() {
            for p in &role.permissions {
                for a in p.resource_actions.iter().flat_map(|r| &r.allowed_resource_actions) {
                    assert!(resource_operation(a).is_some(), "{} has unknown {a}", role.id);
                }
            }
        }
        let ro = built_in_role(READ_ONLY_OPERATOR).unwrap();
        assert!(ro.allows("Microsoft.Intune_MobileThreatDefense_Read"));
        assert!(!ro.allows("Microsoft.Intune_MobileThreatDefense_Modify"));
        let hd = built_in_role(HELP_DESK_OPERATOR).unwrap();
        assert!(hd.allows("Microsoft.Intune_RemoteTasks_Wipe"));
    }

    #[test]
    fn not_allowed_actions_and_patterns() {
        let p = vec![RolePermission {
            actions: vec![],
            resource_actions: vec![ResourceAction {
                allowed_resource_actions: vec!["Microsoft.Intune_ManagedDevices_*".into()],
                not_allowed_resource_actions: vec!["Microsoft.Intune_ManagedDevices_Delete".into()],
            }],
        }];
        assert!(permissions_allow(&p, "Microsoft.Intune_ManagedDevices_Read"));
        assert!(!permissions_allow(&p, "Microsoft.Intune_ManagedDevices_Delete"));
        assert!(!permissions_allow(&p, "Microsoft.Intune_ManagedApps_Read"));
        assert!(!permissions_allow(&[], "Microsoft.Intune_ManagedDevices_Read"));
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<&str> = RESOURCE_OPERATIONS.iter().map(|o| o.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), RESOURCE_OPERATIONS.len());
        assert!(resource_operation("Microsoft.Intune_DeviceCompliancePolices_Assign").is_some());
    }

    #[test]
    fn directory_roles_by_name_or_id() {
        assert_eq!(directory_role("intune administrator"), Some(INTUNE_ADMINISTRATOR));
        assert_eq!(directory_role(GLOBAL_ADMINISTRATOR), Some(GLOBAL_ADMINISTRATOR));
        assert_eq!(directory_role("Teams Administrator"), None);
        assert!(bypasses_intune_rbac([INTUNE_ADMINISTRATOR]));
        assert!(!bypasses_intune_rbac([USER_ADMINISTRATOR]));
    }
}
