//! How the product writes instants: RFC 3339 in UTC with milliseconds, as Graph does.

use chrono::{DateTime, Utc};

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_utc() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2026-12-01T08:00:00.123Z");
    }
}
