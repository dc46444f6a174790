//! The Microsoft Graph application permissions the emulator knows, and what a route demands.

/// Every Graph application permission an endpoint of the emulator may require. The tenant's
/// bootstrap admin app holds all of them; apps registered later hold a chosen subset.
pub const GRAPH_APPLICATION_PERMISSIONS: &[&str] = &[
    "AuditLog.Read.All",
    "DeviceManagementApps.Read.All",
    "DeviceManagementApps.ReadWrite.All",
    "DeviceManagementConfiguration.Read.All",
    "DeviceManagementConfiguration.ReadWrite.All",
    "DeviceManagementManagedDevices.PrivilegedOperations.All",
    "DeviceManagementManagedDevices.Read.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
    "DeviceManagementRBAC.Read.All",
    "DeviceManagementRBAC.ReadWrite.All",
    "DeviceManagementServiceConfig.Read.All",
    "DeviceManagementServiceConfig.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Policy.Read.All",
    "Policy.Read.ConditionalAccess",
    "Policy.ReadWrite.ConditionalAccess",
    "User.Read.All",
    "User.ReadWrite.All",
];

/// Canonical spelling of a known permission, matched case-insensitively as Entra does.
pub fn canonical_permission(name: &str) -> Option<&'static str> {
    GRAPH_APPLICATION_PERMISSIONS
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(name))
}

/// What a Graph route requires of an app-only token: any one of these application permissions
/// (Graph lists the `ReadWrite` permission beside the `Read` one for reads, so a route names
/// every permission that grants it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphPermission {
    pub any_of: &'static [&'static str],
}

impl GraphPermission {
    pub fn is_granted_by<'a>(&self, roles: impl IntoIterator<Item = &'a str>) -> bool {
        roles
            .into_iter()
            .any(|r| self.any_of.iter().any(|p| p.eq_ignore_ascii_case(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_matched_case_insensitively() {
        assert_eq!(
            canonical_permission("devicemanagementserviceconfig.read.all"),
            Some("DeviceManagementServiceConfig.Read.All")
        );
        assert_eq!(canonical_permission("Mail.Read"), None);
    }

    #[test]
    fn a_route_is_granted_by_any_listed_permission() {
        let p = GraphPermission {
            any_of: &["A.Read.All", "A.ReadWrite.All"],
        };
        assert!(p.is_granted_by(["B.Read.All", "a.readwrite.all"]));
        assert!(!p.is_granted_by(["B.Read.All"]));
        assert!(!p.is_granted_by([]));
    }
}
