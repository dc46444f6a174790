//! Fault rules, as a tenant sets them (`/_emulator/tenants/{tid}/faults`): which requests a rule
//! matches, what it does to them (an error status in Graph's envelope, latency, a dropped
//! connection), and when it fires: a probability decided by a seeded sequence, so the same seed
//! gives the same run, a count limit and a window of the tenant's clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// At most this many rules per tenant: each request is matched against all of them.
pub const MAX_RULES: usize = 50;
/// The header naming the rule that fired, unless a rule names another or none.
pub const DEFAULT_RULE_HEADER: &str = "x-emulator-rule";
/// `Retry-After` of a 429 or 503 rule that does not give one.
pub const DEFAULT_RETRY_AFTER_S: u32 = 5;
/// The statuses a rule may answer with.
pub const STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// The surface a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Surface {
    Graph,
    Partner,
}

/// Which requests a rule matches: all of the given conditions hold (none given: every request of
/// the tenant on both surfaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<Surface>,
    /// An HTTP method, any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A path template as the API reference writes it (`/deviceManagement/managedDevices/{id}`):
    /// parameters match whatever they are named, case does not matter, and without a leading
    /// `/v1.0` or `/beta` both versions match. A trailing `*` matches every path it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The calling app's client id (the token's `appid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The signed-in user: object id or user principal name (delegated tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// When a matched request's connection is dropped, without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Disconnect {
    /// Once the request was read and admitted; the request does nothing.
    AfterRead,
    /// Once the request was served and its changes committed: the client cannot know they were.
    AfterCommit,
}

/// Latency added before the request is served (or failed): `fixedMs`; or uniform between
/// `minMs` and `maxMs`; or exponential around `meanMs`, capped at `maxMs` when given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Latency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_ms: Option<u32>,
}

/// The longest latency a rule may add.
pub const MAX_LATENCY_MS: u32 = 120_000;

impl Latency {
    fn validate(&self) -> Result<(), String> {
        if [self.fixed_ms, self.min_ms, self.max_ms, self.mean_ms]
            .into_iter()
            .any(|v| v.is_some_and(|v| v > MAX_LATENCY_MS))
        {
            return Err(format!("latency is at most {MAX_LATENCY_MS} ms."));
        }
        match (self.fixed_ms, self.min_ms, self.max_ms, self.mean_ms) {
            (Some(_), None, None, None) => Ok(()),
            (None, Some(min), Some(max), None) if min <= max => Ok(()),
            (None, None, _, Some(_)) => Ok(()),
            _ => Err(
                "'latency' is {\"fixedMs\"}, {\"minMs\", \"maxMs\"} (uniform, minMs <= maxMs) or {\"meanMs\"} (exponential, with an optional \"maxMs\" cap)."
                    .into(),
            ),
        }
    }

    /// The delay for a request, from `u` uniform in [0, 1).
    pub fn sample(&self, u: f64) -> u32 {
        match (self.fixed_ms, self.min_ms, self.max_ms, self.mean_ms) {
            (Some(ms), ..) => ms,
            (None, Some(min), Some(max), None) => {
                min + ((f64::from(max - min) + 1.0) * u).floor().min(f64::from(max - min)) as u32
            }
            (None, None, cap, Some(mean)) => {
                let ms = -f64::from(mean) * (1.0 - u).ln();
                ms.min(f64::from(cap.unwrap_or(MAX_LATENCY_MS))).round() as u32
            }
            _ => 0,
        }
    }
}

/// A tenant's fault rule. Rules are tried in the order they were created; the first that fires
/// decides the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: FaultMatch,
    /// The status answered, in Graph's envelope (429, 500, 502, 503, 504).
    #[serde(default)]
    pub status: Option<u16>,
    /// The envelope's `error.code` and `error.message` (none: what Graph sends for the status).
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// `Retry-After` sent with the status.
    #[serde(default)]
    pub retry_after_seconds: Option<u32>,
    #[serde(default)]
    pub latency: Option<Latency>,
    #[serde(default)]
    pub disconnect: Option<Disconnect>,
    /// The chance that a matched request is faulted, decided by the rule's seeded sequence.
    pub probability: f64,
    /// Fires at most this many times (none: no limit).
    #[serde(default)]
    pub count: Option<i64>,
    /// The window of the tenant's clock the rule is active in.
    #[serde(default)]
    pub start_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date_time: Option<DateTime<Utc>>,
    pub seed: u64,
    pub enabled: bool,
    /// The response header naming the rule on every request it fires on (none: no header).
    #[serde(default)]
    pub rule_header: Option<String>,
    pub created_date_time: DateTime<Utc>,
}

impl FaultRule {
    /// Checks what a client set (after the defaults were filled in).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = self.status {
            if !STATUSES.contains(&s) {
                return Err(format!(
                    "'status' is one of {}: {s} is not.",
                    STATUSES.map(|s| s.to_string()).join(", ")
                ));
            }
        }
        if self.status.is_some() && self.disconnect.is_some() {
            return Err("A rule answers with a 'status' or drops the connection ('disconnect'), not both.".into());
        }
        if self.status.is_none() && (self.error_code.is_some() || self.error_message.is_some()) {
            return Err("'errorCode' and 'errorMessage' go with a 'status'.".into());
        }
        if let Some(l) = &self.latency {
            l.validate()?;
        }
        if !(self.probability > 0.0 && self.probability <= 1.0) {
            return Err("'probability' is more than 0 and at most 1.".into());
        }
        if self.count.is_some_and(|c| c < 1) {
            return Err("'count' is a positive number (leave it out for no limit).".into());
        }
        if let (Some(a), Some(b)) = (self.start_date_time, self.end_date_time) {
            if a >= b {
                return Err("'startDateTime' comes before 'endDateTime'.".into());
            }
        }
        if let Some(m) = &self.matches.method {
            if m.is_empty() || !m.bytes().all(|c| c.is_ascii_alphabetic()) {
                return Err(format!("'match.method' is an HTTP method: '{m}' is not."));
            }
        }
        if let Some(p) = &self.matches.path {
            if !p.starts_with('/') {
                return Err(format!(
                    "'match.path' is a path template starting with '/': '{p}' is not."
                ));
            }
        }
        if let Some(h) = &self.rule_header {
            if h.is_empty() || !h.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                return Err("'ruleHeader' must be a header name (letters, digits and '-').".into());
            }
        }
        if self.display_name.as_deref().is_some_and(|n| n.len() > 200) {
            return Err("'displayName' is at most 200 characters.".into());
        }
        Ok(())
    }

    /// Whether the rule applies to `request` (its conditions and its window; not its chance).
    pub fn applies_to(&self, request: &Incoming<'_>) -> bool {
        let m = &self.matches;
        self.enabled
            && self.start_date_time.is_none_or(|s| request.now >= s)
            && self.end_date_time.is_none_or(|e| request.now < e)
            && m.surface.is_none_or(|s| s == request.surface)
            && m.method
                .as_deref()
                .is_none_or(|x| x.eq_ignore_ascii_case(request.method))
            && m.app_id
                .as_deref()
                .is_none_or(|x| x.eq_ignore_ascii_case(request.app_id))
            && m.user_id.as_deref().is_none_or(|x| {
                request.user_id.is_some_and(|u| u.eq_ignore_ascii_case(x))
                    || request.user_name.is_some_and(|u| u.eq_ignore_ascii_case(x))
            })
            && m.path.as_deref().is_none_or(|p| path_matches(p, request.route))
    }

    /// Whether the rule fires on the `n`-th request it matched (from 1): its seeded sequence
    /// against its probability. The count limit is the store's to enforce.
    pub fn fires_on(&self, n: i64) -> bool {
        self.probability >= 1.0 || unit(self.seed, n, 0) < self.probability
    }

    /// The latency added to the `n`-th request it matched.
    pub fn latency_on(&self, n: i64) -> u32 {
        self.latency.map(|l| l.sample(unit(self.seed, n, 1))).unwrap_or(0)
    }

    /// What the rule does, as the event log names it: `status:503`, `disconnect:afterCommit`,
    /// `latency`, or `observe` (a rule with no effect, that only records the requests it matches).
    pub fn effect(&self) -> String {
        match (self.status, self.disconnect, self.latency) {
            (Some(s), ..) => format!("status:{s}"),
            (None, Some(Disconnect::AfterRead), _) => "disconnect:afterRead".into(),
            (None, Some(Disconnect::AfterCommit), _) => "disconnect:afterCommit".into(),
            (None, None, Some(_)) => "latency".into(),
            (None, None, None) => "observe".into(),
        }
    }
}

/// A request as rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub surface: Surface,
    pub method: &'a str,
    /// The route's template as the router names it (`/v1.0/deviceManagement/managedDevices/{managedDeviceId}`).
    pub route: &'a str,
    pub app_id: &'a str,
    pub user_id: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// A template's segments, lower-case, every `{parameter}` as `{}`; and its Graph version if it
/// starts with one.
fn template(path: &str) -> (Option<String>, Vec<String>) {
    let mut segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}".to_string()
            } else {
                s.to_ascii_lowercase()
            }
        })
        .collect();
    let version = match segments.first().map(String::as_str) {
        Some("v1.0") | Some("beta") => Some(segments.remove(0)),
        _ => None,
    };
    (version, segments)
}

/// Whether a rule's path template matches a route's.
pub fn path_matches(rule: &str, route: &str) -> bool {
    let (prefix, rule) = match rule.strip_suffix('*') {
        Some(r) => (true, r),
        None => (false, rule),
    };
    let (rule_version, rule) = template(rule);
    let (route_version, route) = template(route);
    if rule_version.is_some() && rule_version != route_version {
        return false;
    }
    if prefix {
        route.len() >= rule.len() && route[..rule.len()] == rule[..]
    } else {
        route == rule
    }
}

/// A number in [0, 1) for the `n`-th draw of `stream` of a seed (SplitMix64): the same seed
/// gives the same sequence on every run and every replica.
pub fn unit(seed: u64, n: i64, stream: u64) -> f64 {
    let mut z = seed
        .wrapping_add((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// What Graph sends for a status a rule answers with: `error.code`, and whether the message
/// is Intune's (the service's own failure, with its activity id and url) or empty (the gateway's).
pub fn graph_error_code(status: u16) -> (&'static str, ErrorMessage) {
    match status {
        429 => ("TooManyRequests", ErrorMessage::Throttled),
        500 => (
            "InternalServerError",
            ErrorMessage::Intune("An internal server error has occurred"),
        ),
        503 => ("serviceNotAvailable", ErrorMessage::Unavailable),
        504 => ("UnknownError", ErrorMessage::IntuneWrapped("An error has occurred")),
        _ => ("UnknownError", ErrorMessage::Empty),
    }
}

/// The message of a status's envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMessage {
    Throttled,
    Unavailable,
    /// Intune's message document (`_version` 3) with this text.
    Intune(&'static str),
    /// The same, wrapped once more in `{"Message": ...}` (Intune's 504s).
    IntuneWrapped(&'static str),
    Empty,
}

impl ErrorMessage {
    /// The message for a request with this activity (request) id and url.
    pub fn render(self, activity_id: &str, url: &str) -> String {
        let intune = |text: &str| {
            let message = format!(
                "{text} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {activity_id} - Url: {url}"
            );
            let quoted = serde_json::to_string(&message).unwrap_or_default();
            format!(
                "{{\r\n  \"_version\": 3,\r\n  \"Message\": {quoted},\r\n  \"CustomApiErrorPhrase\": \"\",\r\n  \"RetryAfter\": null,\r\n  \"ErrorSourceService\": \"\",\r\n  \"HttpHeaders\": \"{{}}\"\r\n}}"
            )
        };
        match self {
            ErrorMessage::Throttled => "Too many requests. Retry the request later.".into(),
            ErrorMessage::Unavailable => "The service is temporarily unavailable. Retry the request later.".into(),
            ErrorMessage::Intune(text) => intune(text),
            ErrorMessage::IntuneWrapped(text) => {
                let inner = serde_json::to_string(&intune(text)).unwrap_or_default();
                format!("{{\"Message\":{inner}}}")
            }
            ErrorMessage::Empty => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> FaultRule {
        FaultRule {
            id: "r1".into(),
            display_name: None,
            matches: FaultMatch::default(),
            status: Some(503),
            error_code: None,
            error_message: None,
            retry_after_seconds: Some(5),
            latency: None,
            disconnect: None,
            probability: 1.0,
            count: None,
            start_date_time: None,
            end_date_time: None,
            seed: 42,
            enabled: true,
            rule_header: Some(DEFAULT_RULE_HEADER.into()),
            created_date_time: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn incoming(now: &str) -> Incoming<'static> {
        Incoming {
            surface: Surface::Graph,
            method: "GET",
            route: "/v1.0/deviceManagement/managedDevices/{managedDeviceId}",
            app_id: "APP",
            user_id: None,
            user_name: None,
            now: now.parse().unwrap(),
        }
    }

    #[test]
    fn templates_match_whatever_their_parameters_are_called() {
        let route = "/v1.0/deviceManagement/managedDevices/{managedDeviceId}";
        assert!(path_matches("/deviceManagement/managedDevices/{id}", route));
        assert!(path_matches("/v1.0/devicemanagement/manageddevices/{x}", route));
        assert!(!path_matches("/beta/deviceManagement/managedDevices/{id}", route));
        assert!(!path_matches("/deviceManagement/managedDevices", route));
        assert!(path_matches("/deviceManagement/managedDevices*", route));
        assert!(path_matches("/deviceManagement/*", route));
        assert!(!path_matches("/deviceManagement/deviceCompliancePolicies*", route));
        assert!(path_matches(
            "/partner/v1/connector/threatStates",
            "/partner/v1/connector/threatStates"
        ));
    }

    #[test]
    fn a_rule_applies_within_its_conditions_and_window() {
        let mut r = rule();
        assert!(r.applies_to(&incoming("2026-01-01T00:00:00Z")));
        r.matches.method = Some("post".into());
        assert!(!r.applies_to(&incoming("2026-01-01T00:00:00Z")));
        r.matches.method = Some("get".into());
        r.matches.app_id = Some("app".into());
        assert!(
            r.applies_to(&incoming("2026-01-01T00:00:00Z")),
            "client ids in any case"
        );
        r.matches.user_id = Some("someone".into());
        assert!(
            !r.applies_to(&incoming("2026-01-01T00:00:00Z")),
            "an app-only call has no user"
        );
        r.matches.user_id = None;
        r.start_date_time = Some("2026-01-02T00:00:00Z".parse().unwrap());
        r.end_date_time = Some("2026-01-03T00:00:00Z".parse().unwrap());
        assert!(!r.applies_to(&incoming("2026-01-01T23:59:59Z")));
        assert!(r.applies_to(&incoming("2026-01-02T00:00:00Z")));
        assert!(
            !r.applies_to(&incoming("2026-01-03T00:00:00Z")),
            "the end is not in the window"
        );
        r.start_date_time = None;
        r.enabled = false;
        assert!(!r.applies_to(&incoming("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn a_seeded_rule_fires_on_the_same_requests_every_run_and_about_as_often_as_asked() {
        let r = FaultRule {
            probability: 0.3,
            ..rule()
        };
        let run: Vec<bool> = (1..=1000).map(|n| r.fires_on(n)).collect();
        let again: Vec<bool> = (1..=1000).map(|n| r.fires_on(n)).collect();
        assert_eq!(run, again);
        let fired = run.iter().filter(|f| **f).count();
        assert!((250..350).contains(&fired), "{fired} of 1000 at 30%");
        let other = FaultRule { seed: 43, ..r.clone() };
        assert_ne!(run, (1..=1000).map(|n| other.fires_on(n)).collect::<Vec<_>>());
    }

    #[test]
    fn latency_follows_its_distribution() {
        let fixed = Latency {
            fixed_ms: Some(200),
            ..Latency::default()
        };
        assert_eq!(fixed.sample(0.7), 200);
        let uniform = Latency {
            min_ms: Some(100),
            max_ms: Some(300),
            ..Latency::default()
        };
        assert_eq!(uniform.sample(0.0), 100);
        assert_eq!(uniform.sample(0.999_999), 300);
        let exp = Latency {
            mean_ms: Some(100),
            max_ms: Some(1000),
            ..Latency::default()
        };
        let mean = (0..10_000).map(|i| f64::from(exp.sample(unit(1, i, 1)))).sum::<f64>() / 10_000.0;
        assert!((85.0..115.0).contains(&mean), "mean {mean}");
        assert_eq!(exp.sample(0.999_999_999), 1000, "capped");
        assert!(Latency {
            min_ms: Some(5),
            max_ms: Some(1),
            ..Latency::default()
        }
        .validate()
        .is_err());
        assert!(Latency::default().validate().is_err());
    }

    #[test]
    fn rules_are_checked() {
        assert!(rule().validate().is_ok());
        assert!(FaultRule {
            status: Some(418),
            ..rule()
        }
        .validate()
        .is_err());
        assert!(FaultRule {
            disconnect: Some(Disconnect::AfterCommit),
            ..rule()
        }
        .validate()
        .is_err());
        assert!(FaultRule {
            probability: 0.0,
            ..rule()
        }
        .validate()
        .is_err());
        assert!(FaultRule {
            count: Some(0),
            ..rule()
        }
        .validate()
        .is_err());
        let observe = FaultRule {
            status: None,
            retry_after_seconds: None,
            ..rule()
        };
        assert_eq!(observe.effect(), "observe");
        assert!(FaultRule {
            error_code: Some("x".into()),
            ..observe
        }
        .validate()
        .is_err());
    }

    #[test]
    fn error_messages_are_intunes() {
        let (code, message) = graph_error_code(500);
        assert_eq!(code, "InternalServerError");
        let text = message.render("abc", "/v1.0/deviceManagement/managedDevices");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["_version"], 3);
        assert!(doc["Message"]
            .as_str()
            .unwrap()
            .contains("Activity ID: abc - Url: /v1.0/deviceManagement/managedDevices"));
        let (code, message) = graph_error_code(504);
        assert_eq!(code, "UnknownError");
        let outer: serde_json::Value = serde_json::from_str(&message.render("abc", "/x")).unwrap();
        let inner: serde_json::Value = serde_json::from_str(outer["Message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["_version"], 3);
    }
}
