//! Entra ID directory objects the emulator keeps: users, security groups and their members.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub tenant_id: String,
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub account_enabled: bool,
    /// Salted hash of the password from `passwordProfile`, for delegated sign-in; never shown.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Every other Graph property the client stored, by its Graph name.
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub tenant_id: String,
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub security_enabled: bool,
    pub mail_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

/// What a group member is. Devices are the Entra device objects of enrolled devices, named by
/// their Entra device id (`azureADDeviceId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Device,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Device => "device",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(MemberKind::User),
            "device" => Some(MemberKind::Device),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub group_id: String,
    pub member_id: String,
    pub kind: MemberKind,
}

/// A password as the store keeps it: `salt$sha256(salt ‖ password)`. An emulator's users are
/// test fixtures, not people, so a salted hash is enough to keep passwords out of the database.
pub fn hash_password(password: &str, salt: &str) -> String {
    format!(
        "{salt}${}",
        crate::domain::tenant::hash_secret(&format!("{salt}{password}"))
    )
}

pub fn password_matches(password: &str, stored: &str) -> bool {
    match stored.split_once('$') {
        Some((salt, _)) => {
            use subtle::ConstantTimeEq;
            hash_password(password, salt).as_bytes().ct_eq(stored.as_bytes()).into()
        }
        None => false,
    }
}

/// Entra's rule for a user principal name: `alias@domain`, no spaces, at most 113 characters
/// before the domain.
pub fn valid_user_principal_name(upn: &str) -> bool {
    let Some((alias, domain)) = upn.split_once('@') else {
        return false;
    };
    !alias.is_empty()
        && alias.len() <= 113
        && !alias.starts_with('.')
        && !alias.ends_with('.')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && upn.matches('@').count() == 1
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let stored = hash_password("Pa55w.rd!", "salt1");
        assert!(password_matches("Pa55w.rd!", &stored));
        assert!(!password_matches("pa55w.rd!", &stored));
        assert!(!password_matches("Pa55w.rd!", "garbage"));
        assert_ne!(hash_password("x", "a"), hash_password("x", "b"));
    }

    #[test]
    fn user_principal_names_follow_entra_rules() {
        for ok in [
            "adele@contoso.com",
            "a.b-c_d@sub.contoso.onmicrosoft.com",
            "o'neil@contoso.com",
        ] {
            assert!(valid_user_principal_name(ok), "{ok}");
        }
        for bad in [
            "adele",
            "@contoso.com",
            "adele@contoso",
            "a b@contoso.com",
            "a@b@contoso.com",
            ".a@contoso.com",
            "a@.com",
            "a%b@contoso.com",
        ] {
            assert!(!valid_user_principal_name(bad), "{bad}");
        }
    }
}
