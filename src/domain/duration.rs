//! ISO 8601 durations as the clock control accepts them (`P4D`, `PT36H`, `P1Y2M3DT4H5M6.5S`, `P2W`).
//! Years and months are calendar units, so a duration is applied to an instant rather than
//! turned into a fixed number of seconds.

use chrono::{DateTime, Duration, Months, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IsoDuration {
    pub months: u32,
    /// Everything below months, in microseconds.
    pub micros: i64,
}

impl IsoDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not an ISO 8601 duration such as 'P4D' or 'PT36H'.");
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        if rest.is_empty() || rest == "T" || rest.ends_with('T') {
            return Err(bad());
        }
        let mut out = IsoDuration::default();
        let mut in_time = false;
        let mut number = String::new();
        let mut last_rank = 0u8;
        for c in rest.chars() {
            match c {
                'T' if !in_time && number.is_empty() => {
                    in_time = true;
                    last_rank = 4;
                }
                '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
                unit => {
                    if number.is_empty() {
                        return Err(bad());
                    }
                    let (rank, fractional_ok) = match (in_time, unit) {
                        (false, 'Y') => (1, false),
                        (false, 'M') => (2, false),
                        (false, 'W') => (3, true),
                        (false, 'D') => (4, true),
                        (true, 'H') => (5, true),
                        (true, 'M') => (6, true),
                        (true, 'S') => (7, true),
                        _ => return Err(bad()),
                    };
                    if rank <= last_rank {
                        return Err(bad());
                    }
                    last_rank = rank;
                    if number.contains('.') && !fractional_ok {
                        return Err(format!("'{text}': years and months must be whole numbers."));
                    }
                    let value: f64 = number.parse().map_err(|_| bad())?;
                    number.clear();
                    let micros_per_unit: f64 = match rank {
                        1 => {
                            out.months = out
                                .months
                                .checked_add((value as u32).checked_mul(12).ok_or_else(bad)?)
                                .ok_or_else(bad)?;
                            continue;
                        }
                        2 => {
                            out.months = out.months.checked_add(value as u32).ok_or_else(bad)?;
                            continue;
                        }
                        3 => 7.0 * 86_400e6,
                        4 => 86_400e6,
                        5 => 3_600e6,
                        6 => 60e6,
                        _ => 1e6,
                    };
                    let add = (value * micros_per_unit).round();
                    // About 290,000 years: far beyond any test, well inside i64 microseconds.
                    if !add.is_finite() || add > 9.0e18 {
                        return Err(format!("'{text}' is too long a duration."));
                    }
                    out.micros = out.micros.checked_add(add as i64).ok_or_else(bad)?;
                }
            }
        }
        if !number.is_empty() {
            return Err(bad());
        }
        Ok(out)
    }

    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.micros == 0
    }

    /// The instant this duration after `from`, or None when it leaves chrono's range.
    pub fn after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        from.checked_add_months(Months::new(self.months))?
            .checked_add_signed(Duration::microseconds(self.micros))
    }
}

/// Formats a non-negative microsecond count as an ISO 8601 duration (`P4DT2H0.5S`), in days and
/// smaller units so that the value is exact.
pub fn format_micros(micros: i64) -> String {
    let negative = micros < 0;
    let mut rest = micros.unsigned_abs();
    let days = rest / 86_400_000_000;
    rest %= 86_400_000_000;
    let hours = rest / 3_600_000_000;
    rest %= 3_600_000_000;
    let minutes = rest / 60_000_000;
    rest %= 60_000_000;
    let seconds = rest / 1_000_000;
    let fraction = rest % 1_000_000;
    let mut out = String::from(if negative { "-P" } else { "P" });
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || fraction > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if fraction > 0 {
            let frac = format!("{fraction:06}");
            out.push_str(&format!("{seconds}.{}S", frac.trim_end_matches('0')));
        } else if seconds > 0 || (hours == 0 && minutes == 0) {
            out.push_str(&format!("{seconds}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_the_units_a_test_writes() {
        let day = 86_400_000_000i64;
        let cases: &[(&str, u32, i64)] = &[
            ("P4D", 0, 4 * day),
            ("PT36H", 0, 36 * 3_600_000_000),
            ("PT90M", 0, 90 * 60_000_000),
            ("PT0.5S", 0, 500_000),
            ("PT1,5S", 0, 1_500_000),
            ("P2W", 0, 14 * day),
            ("P1DT12H", 0, day + 12 * 3_600_000_000),
            ("P1Y", 12, 0),
            (
                "P1Y2M3DT4H5M6S",
                14,
                3 * day + 4 * 3_600_000_000 + 5 * 60_000_000 + 6_000_000,
            ),
            ("P0D", 0, 0),
            ("P1.5D", 0, day + day / 2),
        ];
        for (text, months, micros) in cases {
            assert_eq!(
                IsoDuration::parse(text),
                Ok(IsoDuration {
                    months: *months,
                    micros: *micros
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "", "P", "PT", "4D", "P4", "PD", "P1H", "PT1D", "P1D2D", "PT1S1M", "P-1D", "P1.5Y", "P4DT", "P1DX", "PT1HT",
        ] {
            assert!(IsoDuration::parse(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn months_are_calendar_months() {
        let jan31 = Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap();
        let d = IsoDuration::parse("P1M").unwrap();
        assert_eq!(
            d.after(jan31),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 10, 0, 0).unwrap())
        );
    }

    #[test]
    fn formats_offsets_exactly() {
        assert_eq!(format_micros(0), "PT0S");
        assert_eq!(format_micros(4 * 86_400_000_000), "P4D");
        assert_eq!(
            format_micros(86_400_000_000 + 2 * 3_600_000_000 + 500_000),
            "P1DT2H0.5S"
        );
        assert_eq!(format_micros(61_000_000), "PT1M1S");
        let d = 3 * 86_400_000_000 + 7 * 60_000_000 + 250;
        assert_eq!(IsoDuration::parse(&format_micros(d)).unwrap().micros, d);
    }
}
