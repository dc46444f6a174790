//! Intune's throttling, as a tenant switches it on: the buckets of Microsoft's documented limits
//! (graph-reference 7.7), the global per-app limit, and the partner API's own limit, counted in
//! fixed windows of the tenant's clock; and what a request over a limit gets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An Intune throttling bucket: the resources whose requests count together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Bucket {
    /// Intune device enrollment: `mobileThreatDefenseConnectors` among others.
    DeviceEnrollment,
    /// Intune device configuration: compliance policies.
    DeviceConfiguration,
    /// Intune devices: `managedDevices`, `detectedApps`.
    Devices,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::DeviceEnrollment, Bucket::DeviceConfiguration, Bucket::Devices];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::DeviceEnrollment => "deviceEnrollment",
            Bucket::DeviceConfiguration => "deviceConfiguration",
            Bucket::Devices => "devices",
        }
    }

    /// The bucket of a Graph route (its path template, without the version), if any.
    pub fn of_route(template: &str) -> Option<Bucket> {
        let t = template.to_ascii_lowercase();
        if t.contains("/mobilethreatdefenseconnectors") {
            Some(Bucket::DeviceEnrollment)
        } else if t.contains("/devicecompliancepolicies") {
            Some(Bucket::DeviceConfiguration)
        } else if t.contains("/manageddevices") || t.contains("/detectedapps") {
            Some(Bucket::Devices)
        } else {
            None
        }
    }

    /// Microsoft's limits for the bucket, per 20 seconds.
    pub fn documented(self) -> BucketLimits {
        match self {
            Bucket::DeviceEnrollment | Bucket::DeviceConfiguration => BucketLimits {
                tenant_writes: 200,
                app_writes: 100,
                tenant_requests: 2000,
                app_requests: 1000,
            },
            Bucket::Devices => BucketLimits {
                tenant_writes: 400,
                app_writes: 200,
                tenant_requests: 4000,
                app_requests: 2000,
            },
        }
    }
}

/// A bucket's limits per window: writes (POST, PUT, PATCH, DELETE) and all requests, for the
/// tenant (all apps together) and for each app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketLimits {
    pub tenant_writes: i64,
    pub app_writes: i64,
    pub tenant_requests: i64,
    pub app_requests: i64,
}

/// Slowing down before refusing: once a counter reaches `from_percent` of its limit, each
/// request it counts is answered `delay_ms` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Slowdown {
    pub from_percent: u8,
    pub delay_ms: u32,
}

/// A tenant's throttling (`PUT /_emulator/tenants/{tid}/limits`). Every field has Microsoft's
/// documented value, or the emulator's where Microsoft documents none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// The window of the buckets, in seconds of the tenant's clock (Microsoft: 20).
    pub window_seconds: i64,
    /// Each bucket's limits (missing buckets: Microsoft's).
    pub buckets: BTreeMap<Bucket, BucketLimits>,
    /// Graph's global limit per app: requests per `global_window_seconds` (Microsoft: 130,000
    /// per 10 s).
    pub app_requests: i64,
    pub app_window_seconds: i64,
    /// The partner API's limit: requests per connector per `window_seconds` (none: unlimited).
    pub partner_requests: Option<i64>,
    /// Answer 429 without `Retry-After`, as Intune was seen doing.
    pub omit_retry_after: bool,
    pub slowdown: Option<Slowdown>,
    /// The response header naming the limit that refused a request (none: no header).
    pub rule_header: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window_seconds: 20,
            buckets: Bucket::ALL.iter().map(|b| (*b, b.documented())).collect(),
            app_requests: 130_000,
            app_window_seconds: 10,
            partner_requests: None,
            omit_retry_after: false,
            slowdown: None,
            rule_header: Some(DEFAULT_RULE_HEADER.to_string()),
        }
    }
}

pub const DEFAULT_RULE_HEADER: &str = "x-emulator-rule";

impl Limits {
    /// Fills the buckets a client left out and checks the numbers.
    pub fn validated(mut self) -> Result<Self, String> {
        for b in Bucket::ALL {
            self.buckets.entry(b).or_insert_with(|| b.documented());
        }
        let positive = |name: &str, v: i64| {
            if v > 0 {
                Ok(())
            } else {
                Err(format!("'{name}' must be a positive number."))
            }
        };
        positive("windowSeconds", self.window_seconds)?;
        positive("appRequests", self.app_requests)?;
        positive("appWindowSeconds", self.app_window_seconds)?;
        if let Some(p) = self.partner_requests {
            positive("partnerRequests", p)?;
        }
        for (b, l) in &self.buckets {
            for (name, v) in [
                ("tenantWrites", l.tenant_writes),
                ("appWrites", l.app_writes),
                ("tenantRequests", l.tenant_requests),
                ("appRequests", l.app_requests),
            ] {
                positive(&format!("buckets.{}.{name}", b.as_str()), v)?;
            }
        }
        if let Some(s) = self.slowdown {
            if s.from_percent == 0 || s.from_percent > 100 {
                return Err("'slowdown.fromPercent' must be between 1 and 100.".into());
            }
            if s.delay_ms > 10_000 {
                return Err("'slowdown.delayMs' must be at most 10000.".into());
            }
        }
        if let Some(h) = &self.rule_header {
            if h.is_empty() || !h.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                return Err("'ruleHeader' must be a header name (letters, digits and '-').".into());
            }
        }
        Ok(self)
    }
}

/// A counter a request counts toward: its key (unique per tenant), the start of its window
/// (seconds of the tenant's clock), its limit, and how the refusal names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    pub window_start: i64,
    pub window_seconds: i64,
    pub limit: i64,
    /// Names the limit: `devices.app.requests`, `global.app`, `partner`.
    pub rule: String,
}

fn window(now: DateTime<Utc>, seconds: i64) -> i64 {
    now.timestamp().div_euclid(seconds) * seconds
}

/// What a Graph request counts toward: its bucket's four counters (writes only for writes) and
/// the app's global counter.
pub fn graph_counters(
    limits: &Limits,
    bucket: Option<Bucket>,
    app_id: &str,
    write: bool,
    now: DateTime<Utc>,
) -> Vec<Counter> {
    let mut out = Vec::with_capacity(5);
    if let Some(b) = bucket {
        let l = limits.buckets.get(&b).copied().unwrap_or_else(|| b.documented());
        let w = window(now, limits.window_seconds);
        let name = b.as_str();
        let mut add = |key: String, limit: i64, rule: String| {
            out.push(Counter {
                key,
                window_start: w,
                window_seconds: limits.window_seconds,
                limit,
                rule,
            })
        };
        add(
            format!("{name}|requests"),
            l.tenant_requests,
            format!("{name}.tenant.requests"),
        );
        add(
            format!("{name}|requests|{app_id}"),
            l.app_requests,
            format!("{name}.app.requests"),
        );
        if write {
            add(
                format!("{name}|writes"),
                l.tenant_writes,
                format!("{name}.tenant.writes"),
            );
            add(
                format!("{name}|writes|{app_id}"),
                l.app_writes,
                format!("{name}.app.writes"),
            );
        }
    }
    out.push(Counter {
        key: format!("global|{app_id}"),
        window_start: window(now, limits.app_window_seconds),
        window_seconds: limits.app_window_seconds,
        limit: limits.app_requests,
        rule: "global.app.requests".into(),
    });
    out
}

/// What a partner API request counts toward: its connector's counter, when the tenant limits
/// the partner API.
pub fn partner_counters(limits: &Limits, connector_id: &str, now: DateTime<Utc>) -> Vec<Counter> {
    limits
        .partner_requests
        .map(|limit| Counter {
            key: format!("partner|{connector_id}"),
            window_start: window(now, limits.window_seconds),
            window_seconds: limits.window_seconds,
            limit,
            rule: "partner.requests".into(),
        })
        .into_iter()
        .collect()
}

/// What happens to a request once its counters are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Serve,
    /// Served after a delay (the slowdown before refusing).
    Slow {
        delay_ms: u32,
        rule: String,
    },
    /// 429: the limit `rule` is spent until its window ends, `retry_after` seconds from now.
    Refuse {
        rule: String,
        retry_after: u32,
        limit: i64,
    },
}

/// Decides from the counts (`counts[i]` is `counters[i]`'s count including this request).
pub fn admit(limits: &Limits, counters: &[Counter], counts: &[i64], now: DateTime<Utc>) -> Admission {
    let over = counters.iter().zip(counts).find(|(c, n)| **n > c.limit);
    if let Some((c, _)) = over {
        let end = c.window_start.saturating_add(c.window_seconds);
        let left = (end - now.timestamp()).max(1);
        return Admission::Refuse {
            rule: c.rule.clone(),
            retry_after: left.min(u32::MAX as i64) as u32,
            limit: c.limit,
        };
    }
    if let Some(s) = limits.slowdown {
        let near = counters
            .iter()
            .zip(counts)
            .find(|(c, n)| i128::from(**n) * 100 >= i128::from(c.limit) * i128::from(s.from_percent));
        if let Some((c, _)) = near {
            return Admission::Slow {
                delay_ms: s.delay_ms,
                rule: c.rule.clone(),
            };
        }
    }
    Admission::Serve
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_defaults_are_microsofts_and_routes_fall_in_their_buckets() {
        let l = Limits::default().validated().unwrap();
        assert_eq!(l.buckets[&Bucket::Devices].app_requests, 2000);
        assert_eq!(l.buckets[&Bucket::Devices].tenant_requests, 4000);
        assert_eq!(l.buckets[&Bucket::DeviceEnrollment].app_writes, 100);
        assert_eq!(
            (l.app_requests, l.app_window_seconds, l.window_seconds),
            (130_000, 10, 20)
        );
        assert_eq!(
            Bucket::of_route("/deviceManagement/managedDevices/{managedDeviceId}"),
            Some(Bucket::Devices)
        );
        assert_eq!(
            Bucket::of_route("/deviceManagement/mobileThreatDefenseConnectors"),
            Some(Bucket::DeviceEnrollment)
        );
        assert_eq!(
            Bucket::of_route("/deviceManagement/deviceCompliancePolicies/{id}/assign"),
            Some(Bucket::DeviceConfiguration)
        );
        assert_eq!(Bucket::of_route("/users"), None);
        let bad: Result<Limits, _> =
            serde_json::from_value(serde_json::json!({ "buckets": { "devices": { "appRequests": 1 } } }));
        assert!(bad.is_err(), "a bucket gives its four limits");
        let zero = Limits {
            window_seconds: 0,
            ..Limits::default()
        };
        assert!(zero.validated().is_err());
    }

    #[test]
    fn a_request_over_any_limit_is_refused_until_its_window_ends() {
        let l = Limits::default();
        let now = at("2026-01-01T00:00:07Z");
        let read = graph_counters(&l, Some(Bucket::Devices), "app1", false, now);
        assert_eq!(read.len(), 3, "two bucket counters and the global one");
        assert_eq!(read[0].window_start % 20, 0);
        let write = graph_counters(&l, Some(Bucket::Devices), "app1", true, now);
        assert_eq!(write.len(), 5);
        assert_eq!(admit(&l, &read, &[4000, 2000, 1], now), Admission::Serve);
        match admit(&l, &read, &[3000, 2001, 1], now) {
            Admission::Refuse {
                rule,
                retry_after,
                limit,
            } => {
                assert_eq!(rule, "devices.app.requests");
                assert_eq!(retry_after, 13, "the window started at :00 and ends at :20");
                assert_eq!(limit, 2000);
            }
            other => panic!("{other:?}"),
        }
        let slow = Limits {
            slowdown: Some(Slowdown {
                from_percent: 90,
                delay_ms: 50,
            }),
            ..Limits::default()
        };
        assert_eq!(admit(&slow, &read, &[10, 1799, 1], now), Admission::Serve);
        assert!(matches!(
            admit(&slow, &read, &[10, 1800, 1], now),
            Admission::Slow { delay_ms: 50, .. }
        ));
        assert!(
            partner_counters(&l, "c1", now).is_empty(),
            "the partner API is not limited by default"
        );
    }
}
