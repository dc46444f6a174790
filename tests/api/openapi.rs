//! `openapi.yaml` and the route table must agree: a route served but not documented, or
//! documented but not served, fails here. And the committed document must be the one
//! `intune-mtd-emulator openapi` generates from openapi/source.yaml and the schema tables.

use std::collections::BTreeSet;

use intune_mtd_emulator::domain::rbac::{resource_operation, RoleRequirement};
use intune_mtd_emulator::http::route_table;
use intune_mtd_emulator::http::routes::{Access, Surface};
use reqwest::Method;

use crate::common::{spawn, Backend};

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml parses");
    let paths = doc["paths"].as_mapping().expect("openapi.yaml has paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.as_str().unwrap().to_string()));
            }
        }
    }
    out
}

#[test]
fn openapi_yaml_describes_exactly_the_served_routes() {
    let served: BTreeSet<(String, String)> = route_table()
        .iter()
        .flat_map(|r| {
            let path = r.openapi_path();
            let paths = if path.contains("{version}") {
                vec![path.replace("{version}", "v1.0"), path.replace("{version}", "beta")]
            } else {
                vec![path]
            };
            paths.into_iter().map(|p| (r.method.to_string(), p))
        })
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}\nin openapi.yaml but not served: {unserved:?}"
    );
}

#[test]
fn openapi_yaml_is_what_the_generator_writes() {
    let generated = intune_mtd_emulator::http::openapi::document();
    let committed = include_str!("../../openapi.yaml");
    if generated != committed {
        let line = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .map_or_else(|| "the end".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "openapi.yaml is not what openapi/source.yaml and the schema tables give (first difference at {line}); \
             regenerate it: cargo run -- openapi > openapi.yaml"
        );
    }
}

/// Each Graph body in the document is the version's own: an iOS compliance policy's threat level
/// is an enum of exactly that version's members, `androidDeviceOwnerCompliancePolicy` is beta
/// only, and creating a policy takes the polymorphic family.
#[test]
fn graph_bodies_are_typed_per_version() {
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml parses");
    let schemas = &doc["components"]["schemas"];
    for v in ["v1.0", "beta"] {
        let ios = &schemas[format!("{v}.microsoft.graph.iosCompliancePolicy").as_str()];
        assert_eq!(
            ios["properties"]["deviceThreatProtectionRequiredSecurityLevel"]["$ref"].as_str(),
            Some(format!("#/components/schemas/{v}.microsoft.graph.deviceThreatProtectionLevel").as_str())
        );
        let level: Vec<&str> = schemas[format!("{v}.microsoft.graph.deviceThreatProtectionLevel").as_str()]["enum"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert_eq!(level, ["unavailable", "secured", "low", "medium", "high", "notSet"]);
        let create = &doc["paths"][format!("/{v}/deviceManagement/deviceCompliancePolicies").as_str()]["post"];
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str(),
            Some(format!("#/components/schemas/{v}.microsoft.graph.deviceCompliancePolicy").as_str())
        );
        let family = &schemas[format!("{v}.microsoft.graph.deviceCompliancePolicy").as_str()];
        let device_owner = family["discriminator"]["mapping"]
            .get("#microsoft.graph.androidDeviceOwnerCompliancePolicy")
            .is_some();
        assert_eq!(device_owner, v == "beta", "{v}");
    }
    // Beta-only properties and members stay out of v1.0.
    let v1_policy = &schemas["v1.0.microsoft.graph.androidCompliancePolicy"]["properties"];
    let beta_policy = &schemas["beta.microsoft.graph.androidCompliancePolicy"]["properties"];
    assert!(v1_policy.get("advancedThreatProtectionRequiredSecurityLevel").is_none());
    assert!(beta_policy
        .get("advancedThreatProtectionRequiredSecurityLevel")
        .is_some());
}

#[test]
fn every_route_declares_who_may_call_it() {
    for r in route_table() {
        let ok = match r.surface {
            Surface::Graph => match r.access {
                Access::Graph(p, role) => !p.any_of.is_empty() && graph_role_requirement_is_sound(r.path, role),
                _ => false,
            },
            Surface::Control => r.access == Access::AdminKey,
            Surface::Partner => r.access == Access::Partner,
            Surface::Identity | Surface::Operations => r.access == Access::Public,
        };
        assert!(ok, "{} {} has access {:?}", r.method, r.openapi_path(), r.access);
    }
}

/// Every Graph route names what a delegated caller needs beyond the scope: Intune routes an
/// Intune resource operation that exists, Entra ID routes (users, groups, Conditional Access, the
/// sign-in log) directory roles, and only `getEffectivePermissions` nothing but sign-in.
fn graph_role_requirement_is_sound(path: &str, role: RoleRequirement) -> bool {
    // Entra ID's own routes: the directory, Conditional Access and the sign-in log.
    let directory = (path.starts_with("/users")
        || path.starts_with("/groups")
        || path.starts_with("/identity/")
        || path.starts_with("/auditLogs/"))
        && !path.contains("/managedDevices")
        && !path.contains("/managedAppRegistrations");
    match role {
        RoleRequirement::Intune(action) => !directory && resource_operation(action).is_some_and(|o| o.id == action),
        RoleRequirement::Directory(_) => directory,
        RoleRequirement::OwnRights => path.starts_with("/deviceManagement/getEffectivePermissions"),
    }
}

#[test]
fn the_role_requirement_check_rejects_unsound_declarations() {
    assert!(!graph_role_requirement_is_sound(
        "/deviceManagement/mobileThreatDefenseConnectors",
        RoleRequirement::Intune("Microsoft.Intune_MobileThreatDefense_Launch")
    ));
    assert!(!graph_role_requirement_is_sound(
        "/deviceManagement/mobileThreatDefenseConnectors",
        RoleRequirement::Directory(&[])
    ));
    assert!(!graph_role_requirement_is_sound(
        "/users",
        RoleRequirement::Intune("Microsoft.Intune_Audit_Read")
    ));
    assert!(!graph_role_requirement_is_sound(
        "/deviceManagement/managedDevices",
        RoleRequirement::OwnRights
    ));
    assert!(graph_role_requirement_is_sound(
        "/users/{userId}/managedDevices",
        RoleRequirement::Intune("Microsoft.Intune_ManagedDevices_Read")
    ));
}

#[tokio::test]
async fn the_server_serves_the_committed_document() {
    let app = spawn(Backend::Sqlite).await;
    let r = app.req(Method::GET, "/openapi.yaml").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), include_str!("../../openapi.yaml"));
}
