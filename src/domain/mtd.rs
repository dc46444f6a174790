//! Mobile Threat Defense: the partner catalog, a connector's state, and threat reports.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::device::Platform;

/// A partner of the catalog the emulator ships. Connector ids are fixed per partner and the
/// same in every tenant (graph-reference 1.4). Minimum OS versions are the partners' own
/// pages' (graph-reference 8, copies of differing age); `None` where no source gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogPartner {
    pub id: &'static str,
    pub display_name: &'static str,
    pub android: bool,
    pub ios: bool,
    pub windows: bool,
    pub mac: bool,
    pub android_mam: bool,
    pub ios_mam: bool,
    pub windows_mam: bool,
    pub min_android: Option<&'static str>,
    pub min_ios: Option<&'static str>,
    pub min_mac: Option<&'static str>,
    pub min_windows: Option<&'static str>,
}

const fn mobile(
    id: &'static str,
    display_name: &'static str,
    mam: bool,
    min_android: Option<&'static str>,
    min_ios: Option<&'static str>,
) -> CatalogPartner {
    CatalogPartner {
        id,
        display_name,
        android: true,
        ios: true,
        windows: false,
        mac: false,
        android_mam: mam,
        ios_mam: mam,
        windows_mam: false,
        min_android,
        min_ios,
        min_mac: None,
        min_windows: None,
    }
}

/// Trellix Mobile Security is left out: its published id (`4873197-ffec-4dfc-9816-db65f34c7cb9`)
/// is malformed and the real one is unconfirmed (graph-reference 1.4).
pub static CATALOG: &[CatalogPartner] = &[
    CatalogPartner {
        id: "fc780465-2017-40d4-a0c5-307022471b92",
        display_name: "Microsoft Defender for Endpoint",
        android: true,
        ios: true,
        windows: true,
        mac: true,
        android_mam: true,
        ios_mam: true,
        windows_mam: false,
        min_android: None,
        min_ios: None,
        min_mac: None,
        min_windows: None,
    },
    mobile(
        "860d3ab4-8fd1-45f5-89cd-ecf51e4f92e5",
        "BETTER Mobile Security",
        true,
        None,
        None,
    ),
    // Its page says app protection is not supported, the 2021 MAM partner list says it is.
    mobile(
        "d3ddeae8-441f-4681-b80f-aef644f7195a",
        "Check Point Harmony Mobile",
        false,
        Some("8.0"),
        Some("12.0"),
    ),
    mobile("8d0ed095-8191-4bd3-8a41-953b22d51ff7", "Pradeo", false, None, None),
    mobile(
        "1f58d6d2-02cc-4c80-b008-1bfe7396a10a",
        "Jamf Trust",
        true,
        Some("11.0"),
        Some("15.6"),
    ),
    mobile(
        "a447eca6-a986-4d3f-9838-5862bf50776c",
        "CylancePROTECT Mobile",
        false,
        None,
        None,
    ),
    mobile("4928f0f6-2660-4f69-b4c5-5170ec921f7b", "Trend Micro", false, None, None),
    mobile("bb13fe25-ce1f-45aa-b278-cabbc6b9072e", "SentinelOne", false, None, None),
    CatalogPartner {
        id: "e6f777f8-e4c2-4a5b-be01-50b5c124bc7f",
        display_name: "Windows Security Center",
        android: false,
        ios: false,
        windows: false,
        mac: false,
        android_mam: false,
        ios_mam: false,
        windows_mam: true,
        min_android: None,
        min_ios: None,
        min_mac: None,
        min_windows: None,
    },
    mobile(
        "29ee2d98-e795-475f-a0f8-0802dc3384a9",
        "CrowdStrike Falcon for Mobile",
        false,
        None,
        None,
    ),
    mobile("870b252b-0ef0-4707-8847-50fc571472b3", "Sophos", false, None, None),
    mobile(
        "2c7790de-8b02-4814-85cf-e0c59380dee8",
        "Lookout for Work",
        true,
        Some("4.1"),
        Some("8.0"),
    ),
    mobile(
        "28fd67fd-b179-4629-a8b0-dad420b697c7",
        "Symantec Endpoint Protection Mobile",
        true,
        None,
        None,
    ),
    mobile(
        "08a8455c-48dd-45ff-ad82-7211355354f3",
        "Zimperium",
        true,
        Some("5.1"),
        Some("10.0"),
    ),
];

pub fn catalog_partner(id: &str) -> Option<&'static CatalogPartner> {
    CATALOG.iter().find(|p| p.id.eq_ignore_ascii_case(id))
}

/// A tenant's connector for a catalog partner.
#[derive(Debug, Clone, PartialEq)]
pub struct Connector {
    pub tenant_id: String,
    pub id: String,
    /// The Graph settings the admin sets (toggles, threshold), by Graph name.
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// The `partner*` metadata the partner reported, by Graph name.
    pub partner_metadata: serde_json::Map<String, serde_json::Value>,
    pub set_up: bool,
    pub deprovisioned: bool,
    pub error_code: i64,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Bumped by every update, for compare-and-set.
    pub revision: i64,
}

/// The admin center's default for "Number of days until partner is unresponsive".
pub const DEFAULT_UNRESPONSIVENESS_DAYS: i64 = 7;

const TOGGLES: &[&str] = &[
    "androidEnabled",
    "iosEnabled",
    "macEnabled",
    "windowsEnabled",
    "androidMobileApplicationManagementEnabled",
    "iosMobileApplicationManagementEnabled",
    "windowsMobileApplicationManagementEnabled",
];

impl Connector {
    /// A boolean setting of the connector, false when unset.
    pub fn flag(&self, name: &str) -> bool {
        self.properties
            .get(name)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    pub fn status(&self) -> ConnectorStatus {
        ConnectorStatus {
            set_up: self.set_up,
            deprovisioned: self.deprovisioned,
            error_code: self.error_code,
            last_heartbeat_at: self.last_heartbeat_at,
            threshold_days: self
                .properties
                .get("partnerUnresponsivenessThresholdInDays")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(DEFAULT_UNRESPONSIVENESS_DAYS),
            any_toggle_on: TOGGLES.iter().any(|t| self.flag(t)),
        }
    }

    pub fn toggles(&self) -> PlatformToggles {
        PlatformToggles {
            android: self.flag("androidEnabled"),
            ios: self.flag("iosEnabled"),
            mac: self.flag("macEnabled"),
            windows: self.flag("windowsEnabled"),
        }
    }
}

/// What decides a connector's `partnerState`, besides the tenant's now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorStatus {
    /// The partner has heartbeated since the connector was created or last deprovisioned.
    pub set_up: bool,
    pub deprovisioned: bool,
    pub error_code: i64,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub threshold_days: i64,
    /// Any platform or app-protection toggle is on.
    pub any_toggle_on: bool,
}

/// `partnerState` (product brief, section 4): deprovisioned is `unavailable`, never heartbeated
/// is `notSetUp`, a non-zero error code is `error`, a heartbeat older than the threshold is
/// `unresponsive`; otherwise `enabled` when a toggle is on, else `available`.
pub fn partner_state(s: &ConnectorStatus, now: DateTime<Utc>) -> &'static str {
    if s.deprovisioned {
        "unavailable"
    } else if !s.set_up {
        "notSetUp"
    } else if s.error_code != 0 {
        "error"
    } else if is_unresponsive(s, now) {
        "unresponsive"
    } else if s.any_toggle_on {
        "enabled"
    } else {
        "available"
    }
}

/// The last heartbeat is older than `partnerUnresponsivenessThresholdInDays` on the tenant's clock.
pub fn is_unresponsive(s: &ConnectorStatus, now: DateTime<Utc>) -> bool {
    match s.last_heartbeat_at {
        Some(t) => now - t > Duration::days(s.threshold_days.max(0)),
        None => false,
    }
}

/// When the connector becomes unresponsive if no heartbeat comes first.
pub fn unresponsive_at(s: &ConnectorStatus) -> Option<DateTime<Utc>> {
    s.last_heartbeat_at.map(|t| t + Duration::days(s.threshold_days.max(0)))
}

/// A threat level as partners report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ThreatLevel {
    Secured,
    Low,
    Medium,
    High,
}

/// What a report says: a level, or a health state instead of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Level(ThreatLevel),
    Activated,
    Deactivated,
    /// Ranks as high.
    Compromised,
    /// No usable data.
    Misconfigured,
    /// No usable data.
    Unresponsive,
}

impl Reported {
    pub fn parse_level(s: &str) -> Option<Self> {
        Some(Reported::Level(match s.to_ascii_lowercase().as_str() {
            "secured" => ThreatLevel::Secured,
            "low" => ThreatLevel::Low,
            "medium" => ThreatLevel::Medium,
            "high" => ThreatLevel::High,
            _ => return None,
        }))
    }

    pub fn parse_health(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "activated" => Reported::Activated,
            "deactivated" => Reported::Deactivated,
            "compromised" => Reported::Compromised,
            "misconfigured" => Reported::Misconfigured,
            "unresponsive" => Reported::Unresponsive,
            _ => return None,
        })
    }

    /// The `managedDevicePartnerReportedHealthState` member this shows as.
    pub fn graph_state(self) -> &'static str {
        match self {
            Reported::Level(ThreatLevel::Secured) => "secured",
            Reported::Level(ThreatLevel::Low) => "lowSeverity",
            Reported::Level(ThreatLevel::Medium) => "mediumSeverity",
            Reported::Level(ThreatLevel::High) => "highSeverity",
            Reported::Activated => "activated",
            Reported::Deactivated => "deactivated",
            Reported::Compromised => "compromised",
            Reported::Misconfigured => "misconfigured",
            Reported::Unresponsive => "unresponsive",
        }
    }

    pub fn from_graph_state(s: &str) -> Option<Self> {
        Some(match s {
            "secured" => Reported::Level(ThreatLevel::Secured),
            "lowSeverity" => Reported::Level(ThreatLevel::Low),
            "mediumSeverity" => Reported::Level(ThreatLevel::Medium),
            "highSeverity" => Reported::Level(ThreatLevel::High),
            "activated" => Reported::Activated,
            "deactivated" => Reported::Deactivated,
            "compromised" => Reported::Compromised,
            "misconfigured" => Reported::Misconfigured,
            "unresponsive" => Reported::Unresponsive,
            _ => return None,
        })
    }

    /// The level compliance compares, or None when the report carries no usable data
    /// (activated and deactivated say nothing of threats either).
    pub fn rank(self) -> Option<ThreatLevel> {
        match self {
            Reported::Level(l) => Some(l),
            Reported::Compromised => Some(ThreatLevel::High),
            _ => None,
        }
    }
}

/// Which platforms a connector takes data for (`androidEnabled` covers every Android family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlatformToggles {
    pub android: bool,
    pub ios: bool,
    pub mac: bool,
    pub windows: bool,
}

impl PlatformToggles {
    pub fn covers(&self, p: Platform) -> bool {
        match p {
            Platform::Ios => self.ios,
            Platform::MacOs => self.mac,
            Platform::Windows => self.windows,
            _ => self.android,
        }
    }
}

/// One item of a threat-report batch, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportItem {
    pub device_key: String,
    pub reported: Result<(Reported, DateTime<Utc>), (String, String)>,
}

/// A device a report names, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    pub device_id: String,
    pub platform: Platform,
    /// `reportedDateTime` of this connector's stored report for the device.
    pub stored_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Older than (or as old as) what is stored for the device and connector, or than a later
    /// report for it in the same batch: ignored, so that replays and reordering are harmless.
    /// The message says which, with that report's time.
    Stale {
        message: String,
    },
    Rejected {
        code: String,
        message: String,
    },
}

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub device_id: String,
    pub reported: Reported,
    pub reported_at: DateTime<Utc>,
}

/// A connector's stored report for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    pub connector_id: String,
    /// The `partnerReportedThreatState` member reported.
    pub state: String,
    pub reported_at: DateTime<Utc>,
}

/// A device's `partnerReportedThreatState`: its newest report (the earliest connector id first
/// among reports of the same time) from a connector that `counts` (it exists and is not
/// deprovisioned), else `unknown`.
pub fn reported_threat_state(reports: &[StoredReport], counts: impl Fn(&str) -> bool) -> &str {
    reports
        .iter()
        .filter(|r| counts(&r.connector_id))
        .min_by(|a, b| {
            b.reported_at
                .cmp(&a.reported_at)
                .then_with(|| a.connector_id.cmp(&b.connector_id))
        })
        .map_or("unknown", |r| r.state.as_str())
}

/// The outcome of a report not newer than the one stored for its device and connector
/// (`stored`, that report's `reportedDateTime`).
fn not_newer_than_stored(stored: DateTime<Utc>) -> Outcome {
    Outcome::Stale {
        message: format!(
            "Not newer than the report stored for this device (reportedDateTime {}): ignored.",
            crate::domain::time::rfc3339(stored)
        ),
    }
}

/// Turns the accepted items whose reports the store did not keep into stale ones: `kept`
/// maps such a device (by managed device id) to the `reportedDateTime` of the report stored
/// for it, as new or newer (stored before, or by another batch meanwhile). `targets` is what
/// `decide` was given.
pub fn stale_in_store(
    items: &[ReportItem],
    targets: &HashMap<String, ReportTarget>,
    outcomes: &mut [Outcome],
    kept: &HashMap<String, DateTime<Utc>>,
) {
    for (item, outcome) in items.iter().zip(outcomes.iter_mut()) {
        if *outcome != Outcome::Accepted {
            continue;
        }
        if let Some(stored) = targets.get(&item.device_key).and_then(|t| kept.get(&t.device_id)) {
            *outcome = not_newer_than_stored(*stored);
        }
    }
}

/// Decides each item of a batch: unknown devices and platforms the connector does not take are
/// rejected; reports not newer than the stored one (or than a newer one for the same device in
/// the same batch) are stale; the newest report per device is stored.
pub fn decide(
    items: &[ReportItem],
    targets: &HashMap<String, ReportTarget>,
    toggles: PlatformToggles,
) -> (Vec<Outcome>, Vec<Accepted>) {
    let reject = |code: &str, message: String| Outcome::Rejected {
        code: code.into(),
        message,
    };
    // The newest valid report per device within the batch.
    let mut newest: HashMap<&str, (usize, DateTime<Utc>)> = HashMap::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let outcome = match (&item.reported, targets.get(&item.device_key)) {
            (Err((code, message)), _) => reject(code, message.clone()),
            (Ok(_), None) => reject(
                "unknownDevice",
                format!("No managed device '{}' in the tenant.", item.device_key),
            ),
            (Ok(_), Some(t)) if !toggles.covers(t.platform) => reject(
                "platformNotEnabled",
                format!("The connector does not take data for {} devices.", t.platform.as_str()),
            ),
            (Ok((_, at)), Some(t)) if t.stored_at.is_some_and(|s| s >= *at) => {
                not_newer_than_stored(t.stored_at.unwrap_or(*at))
            }
            (Ok((_, at)), Some(t)) => {
                let superseded = |by: &DateTime<Utc>| {
                    Outcome::Stale {
                    message: format!(
                        "A report for this device later in the batch is as new or newer (reportedDateTime {}): ignored.",
                        crate::domain::time::rfc3339(*by)
                    ),
                }
                };
                match newest.get(t.device_id.as_str()) {
                    Some((_, best)) if best >= at => {
                        outcomes.push(Outcome::Stale {
                            message: format!(
                                "A report for this device earlier in the batch is as new or newer (reportedDateTime {}): ignored.",
                                crate::domain::time::rfc3339(*best)
                            ),
                        });
                        continue;
                    }
                    Some((j, _)) => outcomes[*j] = superseded(at),
                    None => {}
                }
                newest.insert(t.device_id.as_str(), (i, *at));
                Outcome::Accepted
            }
        };
        outcomes.push(outcome);
    }
    let mut accepted: Vec<Accepted> = newest
        .into_iter()
        .filter_map(|(device_id, (i, at))| match &items[i].reported {
            Ok((reported, _)) => Some(Accepted {
                device_id: device_id.to_string(),
                reported: *reported,
                reported_at: at,
            }),
            Err(_) => None,
        })
        .collect();
    accepted.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    (outcomes, accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> ConnectorStatus {
        ConnectorStatus {
            set_up: true,
            deprovisioned: false,
            error_code: 0,
            last_heartbeat_at: None,
            threshold_days: 3,
            any_toggle_on: false,
        }
    }

    #[test]
    fn the_reported_threat_state_is_the_newest_report_that_counts() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let report = |c: &str, state: &str, t: i64| StoredReport {
            connector_id: c.into(),
            state: state.into(),
            reported_at: at(t),
        };
        let all = |_: &str| true;
        assert_eq!(reported_threat_state(&[], all), "unknown");
        let reports = [
            report("b", "low", 10),
            report("a", "high", 5),
            report("c", "medium", 10),
        ];
        // The newest; of two equally new, the earlier connector id.
        assert_eq!(reported_threat_state(&reports, all), "low");
        // A connector that does not count (deprovisioned or gone) is passed over.
        assert_eq!(reported_threat_state(&reports, |c| c != "b"), "medium");
        assert_eq!(reported_threat_state(&reports, |c| c == "a"), "high");
        assert_eq!(reported_threat_state(&reports, |_| false), "unknown");
    }

    #[test]
    fn partner_state_follows_the_brief() {
        let now = Utc::now();
        let cases: &[(ConnectorStatus, &str)] = &[
            (
                ConnectorStatus {
                    set_up: false,
                    ..status()
                },
                "notSetUp",
            ),
            (
                ConnectorStatus {
                    deprovisioned: true,
                    ..status()
                },
                "unavailable",
            ),
            (
                ConnectorStatus {
                    deprovisioned: true,
                    set_up: false,
                    ..status()
                },
                "unavailable",
            ),
            (
                ConnectorStatus {
                    error_code: 7,
                    any_toggle_on: true,
                    ..status()
                },
                "error",
            ),
            (
                ConnectorStatus {
                    last_heartbeat_at: Some(now - Duration::days(4)),
                    any_toggle_on: true,
                    ..status()
                },
                "unresponsive",
            ),
            (
                ConnectorStatus {
                    last_heartbeat_at: Some(now - Duration::days(3)),
                    any_toggle_on: true,
                    ..status()
                },
                "enabled",
            ),
            (
                ConnectorStatus {
                    last_heartbeat_at: Some(now),
                    ..status()
                },
                "available",
            ),
        ];
        for (s, expected) in cases {
            assert_eq!(partner_state(s, now), *expected, "{s:?}");
        }
        let s = ConnectorStatus {
            last_heartbeat_at: Some(now),
            ..status()
        };
        assert_eq!(unresponsive_at(&s), Some(now + Duration::days(3)));
    }

    #[test]
    fn the_catalog_has_fixed_well_formed_ids() {
        for p in CATALOG {
            assert!(uuid::Uuid::try_parse(p.id).is_ok(), "{}", p.id);
            assert_eq!(p.id, p.id.to_ascii_lowercase());
        }
        assert_eq!(
            catalog_partner("2C7790DE-8B02-4814-85CF-E0C59380DEE8")
                .unwrap()
                .display_name,
            "Lookout for Work"
        );
        assert!(
            catalog_partner("4873197-ffec-4dfc-9816-db65f34c7cb9").is_none(),
            "the malformed Trellix id is not invented"
        );
    }

    #[test]
    fn levels_and_health_states_map_to_graph() {
        assert_eq!(Reported::parse_level("Medium").unwrap().graph_state(), "mediumSeverity");
        assert_eq!(
            Reported::parse_health("compromised").unwrap().rank(),
            Some(ThreatLevel::High)
        );
        assert_eq!(Reported::parse_health("misconfigured").unwrap().rank(), None);
        assert_eq!(Reported::from_graph_state("lowSeverity"), Reported::parse_level("low"));
        assert!(Reported::parse_level("critical").is_none());
        assert!(ThreatLevel::Secured < ThreatLevel::Low && ThreatLevel::Medium < ThreatLevel::High);
    }

    #[test]
    fn batches_keep_the_newest_report_per_device() {
        let t0 = Utc::now();
        let at = |m: i64| t0 + Duration::minutes(m);
        let item = |key: &str, level: &str, m: i64| ReportItem {
            device_key: key.into(),
            reported: Ok((Reported::parse_level(level).unwrap(), at(m))),
        };
        let mut targets = HashMap::new();
        targets.insert(
            "a".to_string(),
            ReportTarget {
                device_id: "A".into(),
                platform: Platform::Ios,
                stored_at: Some(at(5)),
            },
        );
        targets.insert(
            "a-entra".to_string(),
            ReportTarget {
                device_id: "A".into(),
                platform: Platform::Ios,
                stored_at: Some(at(5)),
            },
        );
        targets.insert(
            "w".to_string(),
            ReportTarget {
                device_id: "W".into(),
                platform: Platform::Windows,
                stored_at: None,
            },
        );
        let items = vec![
            item("a", "high", 3),       // older than stored: stale
            item("a", "low", 5),        // as old as stored: stale (a replay)
            item("a", "medium", 7),     // newer, but a later item is newer still
            item("a-entra", "high", 9), // the newest for A, named by its Entra id
            item("w", "low", 1),        // Windows is not enabled
            item("nope", "low", 1),     // unknown device
            ReportItem {
                device_key: "a".into(),
                reported: Err(("badValue".into(), "x".into())),
            },
        ];
        let toggles = PlatformToggles {
            ios: true,
            android: true,
            ..Default::default()
        };
        let (outcomes, accepted) = decide(&items, &targets, toggles);
        let stale = |o: &Outcome| match o {
            Outcome::Stale { message } => message.clone(),
            other => panic!("not stale: {other:?}"),
        };
        assert!(stale(&outcomes[0]).starts_with("Not newer than the report stored"));
        assert!(stale(&outcomes[0]).contains(&crate::domain::time::rfc3339(at(5))));
        assert!(stale(&outcomes[1]).starts_with("Not newer than the report stored"));
        assert!(stale(&outcomes[2]).contains("later in the batch"));
        assert!(stale(&outcomes[2]).contains(&crate::domain::time::rfc3339(at(9))));
        assert_eq!(outcomes[3], Outcome::Accepted);
        assert!(matches!(&outcomes[4], Outcome::Rejected { code, .. } if code == "platformNotEnabled"));
        assert!(matches!(&outcomes[5], Outcome::Rejected { code, .. } if code == "unknownDevice"));
        assert!(matches!(&outcomes[6], Outcome::Rejected { code, .. } if code == "badValue"));
        assert_eq!(
            accepted,
            vec![Accepted {
                device_id: "A".into(),
                reported: Reported::parse_level("high").unwrap(),
                reported_at: at(9)
            }]
        );
    }

    #[test]
    fn reports_the_store_kept_out_turn_stale_with_the_stored_time() {
        let t0 = Utc::now();
        let item = |key: &str| ReportItem {
            device_key: key.into(),
            reported: Ok((Reported::parse_level("low").unwrap(), t0)),
        };
        let target = |id: &str| ReportTarget {
            device_id: id.into(),
            platform: Platform::Ios,
            stored_at: None,
        };
        let targets: HashMap<String, ReportTarget> = [("a", "A"), ("b-entra", "B"), ("c", "C")]
            .into_iter()
            .map(|(k, id)| (k.to_string(), target(id)))
            .collect();
        let items = vec![item("a"), item("b-entra"), item("c"), item("nope")];
        let (mut outcomes, accepted) = decide(
            &items,
            &targets,
            PlatformToggles {
                ios: true,
                ..Default::default()
            },
        );
        assert_eq!(accepted.len(), 3);
        // B (named by its Entra id) has a newer report stored: its item turns stale; the others
        // keep their outcomes.
        let stored = t0 + Duration::minutes(1);
        let kept = HashMap::from([("B".to_string(), stored)]);
        stale_in_store(&items, &targets, &mut outcomes, &kept);
        assert_eq!(outcomes[0], Outcome::Accepted);
        assert_eq!(
            outcomes[1],
            Outcome::Stale {
                message: format!(
                    "Not newer than the report stored for this device (reportedDateTime {}): ignored.",
                    crate::domain::time::rfc3339(stored)
                )
            }
        );
        assert_eq!(outcomes[2], Outcome::Accepted);
        assert!(matches!(&outcomes[3], Outcome::Rejected { code, .. } if code == "unknownDevice"));
    }

    #[test]
    fn android_toggle_covers_every_android_family() {
        let t = PlatformToggles {
            android: true,
            ..Default::default()
        };
        assert!(
            t.covers(Platform::AndroidDeviceAdministrator)
                && t.covers(Platform::AndroidWorkProfile)
                && t.covers(Platform::AndroidDeviceOwner)
        );
        assert!(!t.covers(Platform::Ios));
    }
}
