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
    /// The tenant's throttling; none: off.
    pub limits: Option<crate::domain::limits::Limits>,
    /// The tenant's fault rules, in the order they are tried.
    pub faults: Vec<crate::domain::faults::FaultRule>,
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
    /// How users sign in through the app (redirect URIs and delegated permissions).
    pub sign_in: SignInSettings,
    pub created_at: DateTime<Utc>,
}

/// The platform a redirect URI is registered under, as an app registration's `web`, `spa` and
/// `publicClient` sections hold them. It decides how the code is redeemed: a web app with its
/// secret, a single-page app from the browser (cross-origin, with PKCE), a public client with
/// neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Web,
    Spa,
    PublicClient,
}

/// What user sign-in needs of an app registration, in Microsoft Graph's `application` shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInSettings {
    #[serde(default)]
    pub web: RedirectUris,
    #[serde(default)]
    pub spa: RedirectUris,
    #[serde(default)]
    pub public_client: RedirectUris,
    /// Lets the app use the public-client flows (device code, password) without a secret.
    #[serde(default)]
    pub is_fallback_public_client: bool,
    /// The delegated Graph permissions users may grant the app; none set means any the
    /// emulator knows (users consent as they sign in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_permissions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectUris {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl SignInSettings {
    /// The platform under which `uri` is registered, if it is. Matched exactly, except that
    /// the port of a loopback `http` address is ignored, as Entra ignores it.
    pub fn platform_of(&self, uri: &str) -> Option<Platform> {
        [
            (Platform::Spa, &self.spa),
            (Platform::PublicClient, &self.public_client),
            (Platform::Web, &self.web),
        ]
        .into_iter()
        .find(|(_, list)| list.redirect_uris.iter().any(|r| redirect_uri_matches(r, uri)))
        .map(|(p, _)| p)
    }

    /// Whether a user may grant the app `permission` (a canonical Graph permission name).
    pub fn allows(&self, permission: &str) -> bool {
        self.delegated_permissions
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p.eq_ignore_ascii_case(permission)))
    }
}

/// A registered redirect URI against the one a request names.
fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let loopback =
        |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match (url::Url::parse(registered), url::Url::parse(requested)) {
        (Ok(mut r), Ok(mut q)) if loopback(&r) && loopback(&q) => {
            let _ = r.set_port(None);
            let _ = q.set_port(None);
            r == q
        }
        _ => false,
    }
}

/// Whether `uri` may be registered as a redirect URI: an absolute `https` address, or `http`
/// on a loopback host, without a fragment; a public client may also use a custom scheme.
pub fn redirect_uri_problem(uri: &str, platform: Platform) -> Option<&'static str> {
    let Ok(u) = url::Url::parse(uri) else {
        return Some("is not an absolute URI");
    };
    if u.fragment().is_some() {
        return Some("must not have a fragment");
    }
    match u.scheme() {
        "https" => None,
        "http" if matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => None,
        "http" => Some("must use https unless its host is localhost"),
        _ if platform == Platform::PublicClient => None,
        _ => Some("must use https (or http on localhost)"),
    }
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

    #[test]
    fn redirect_uris_match_exactly_except_loopback_ports() {
        let settings = SignInSettings {
            spa: RedirectUris {
                redirect_uris: vec!["http://localhost:3000/".into()],
            },
            web: RedirectUris {
                redirect_uris: vec!["https://app.contoso.com/auth".into()],
            },
            ..Default::default()
        };
        assert_eq!(settings.platform_of("http://localhost:3000/"), Some(Platform::Spa));
        assert_eq!(settings.platform_of("http://localhost:5173/"), Some(Platform::Spa));
        assert_eq!(
            settings.platform_of("https://app.contoso.com/auth"),
            Some(Platform::Web)
        );
        assert_eq!(settings.platform_of("https://app.contoso.com/auth/"), None);
        assert_eq!(settings.platform_of("https://app.contoso.com:444/auth"), None);
        assert_eq!(settings.platform_of("http://localhost:3000/other"), None);
        assert_eq!(
            redirect_uri_problem("http://example.com/", Platform::Web),
            Some("must use https unless its host is localhost")
        );
        assert_eq!(redirect_uri_problem("msal123://auth", Platform::PublicClient), None);
        assert!(redirect_uri_problem("msal123://auth", Platform::Spa).is_some());
        assert!(redirect_uri_problem("https://a/#x", Platform::Web).is_some());
    }

    #[test]
    fn delegated_permissions_limit_what_users_grant_only_when_set() {
        let mut s = SignInSettings::default();
        assert!(s.allows("DeviceManagementConfiguration.Read.All"));
        s.delegated_permissions = Some(vec!["DeviceManagementConfiguration.Read.All".into()]);
        assert!(s.allows("DeviceManagementConfiguration.Read.All"));
        assert!(!s.allows("DeviceManagementManagedDevices.ReadWrite.All"));
    }
}
