//! Tenants and the apps registered in them.

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    /// How far the tenant's clock is ahead of wall time, in microseconds. Never negative and
    /// never decreases, except when the tenant is reset to its just-created state.
    pub clock_offset_us: i64,
    pub bootstrap_client_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AppKind {
    /// A Graph client: app-only tokens whose `roles` are its application permissions.
    Graph,
    /// An MTD partner's service, speaking for one catalog connector on the partner API.
    Partner,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Graph => "graph",
            AppKind::Partner => "partner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "graph" => Some(AppKind::Graph),
            "partner" => Some(AppKind::Partner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub tenant_id: String,
    pub client_id: String,
    pub display_name: String,
    pub kind: AppKind,
    /// SHA-256 of the client secret, hex. The secret itself is shown once, at registration.
    pub secret_hash: String,
    pub permissions: Vec<String>,
    /// The catalog connector a partner app speaks for.
    pub connector_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The application role of a partner app's tokens.
pub const PARTNER_ROLE: &str = "MobileThreatDefense.Partner";

/// A new client secret in the shape Entra ID issues them (40 characters with a `~`).
pub fn new_client_secret() -> String {
    let mut rng = rand::thread_rng();
    let head = Alphanumeric.sample_string(&mut rng, 3);
    let tail = Alphanumeric.sample_string(&mut rng, 36);
    format!("{head}~{tail}")
}

pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares a presented secret with the stored hash in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    hash_secret(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Entra tenant and object ids are GUIDs; the emulator writes them lower-case.
pub fn parse_guid(text: &str) -> Option<String> {
    uuid::Uuid::try_parse(text).ok().map(|u| u.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_look_like_entra_secrets_and_verify_only_themselves() {
        let s = new_client_secret();
        assert_eq!(s.len(), 40);
        assert_eq!(s.as_bytes()[3], b'~');
        let h = hash_secret(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches(&new_client_secret(), &h));
        assert!(!secret_matches("", &h));
    }

    #[test]
    fn guids_are_normalised() {
        assert_eq!(
            parse_guid("2C7790DE-8B02-4814-85CF-E0C59380DEE8").as_deref(),
            Some("2c7790de-8b02-4814-85cf-e0c59380dee8")
        );
        assert_eq!(parse_guid("not-a-guid"), None);
    }
}
