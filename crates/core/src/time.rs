//! Time as we read and write it, every form in one place, each named for where it is documented:
//!
//! - instants are nanoseconds since 1970 (UTC) as `i64` (years 1678 to 2262), read from the engine
//!   ([`parse_rfc3339`]), from BuildKit ([`timestamp_nanos`]) or from the clock ([`now_nanos`]);
//! - [`rfc3339_nano`]: Go's `RFC3339Nano`, the fraction's trailing zeros dropped (buildx's JSON:
//!   `builds --format json`'s `created_at`);
//! - [`rfc3339_nano_fixed`]: Go's `RFC3339NanoFixed`, exactly nine fraction digits (the engine's
//!   `docker logs -t` stamps, which the log viewer shows; `--progress rawjson`'s times), and
//!   [`parse_rfc3339_nano_fixed`], which reads only that form back;
//! - [`ago`]: "5 minutes ago", as `docker buildx du` and `history ls` word a past instant (the CLI's
//!   tables and the Builds window);
//! - [`uptime`]: "3h 12m", how long the backend has run (the panel), with when the words change
//!   ([`UptimeWhenSent`] words it as it is sent);
//! - [`seconds_text`]: a duration, "0.8s", "12s", "3m5s" (builds and steps);
//! - [`parse_go_duration`]: a Go duration as buildx takes it (`until=24h`).
//!
//! The windows show the text made here; they never format or parse a time themselves.
use std::time::Duration;

use bollard_buildkit_proto::google::protobuf::Timestamp;
use serde::Serialize;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Now, in nanoseconds since 1970 (0 when the clock is before it).
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Now, in whole seconds since 1970.
pub fn now_seconds() -> i64 {
    now_nanos().div_euclid(NANOS_PER_SECOND)
}

/// A protobuf timestamp (BuildKit's) in nanoseconds since 1970, saturating at the ends of `i64`.
pub fn timestamp_nanos(time: &Timestamp) -> i64 {
    time.seconds.saturating_mul(NANOS_PER_SECOND).saturating_add(i64::from(time.nanos))
}

/// A protobuf timestamp in seconds since 1970, with its fraction: for durations between two.
pub fn timestamp_seconds(time: &Timestamp) -> f64 {
    time.seconds as f64 + f64::from(time.nanos) / 1e9
}

/// RFC 3339 in UTC as Go's `RFC3339Nano` writes it: the fraction without its trailing zeros, none
/// for a whole second (`2026-11-29T15:05:39.586Z`, `2026-11-29T15:05:00Z`). buildx's JSON times.
pub fn rfc3339_nano(nanos: i64) -> String {
    let (date_time, fraction) = date_time(nanos);
    if fraction == 0 {
        return format!("{date_time}Z");
    }
    let digits = format!("{fraction:09}");
    format!("{date_time}.{}Z", digits.trim_end_matches('0'))
}

/// RFC 3339 in UTC as Go's `RFC3339NanoFixed` writes it: exactly nine fraction digits
/// (`2026-11-29T17:00:00.123456780Z`), as the engine stamps log lines (`docker logs -t`).
pub fn rfc3339_nano_fixed(nanos: i64) -> String {
    let (date_time, fraction) = date_time(nanos);
    format!("{date_time}.{fraction:09}Z")
}

/// `YYYY-MM-DDTHH:MM:SS` and the nanoseconds past that second.
fn date_time(nanos: i64) -> (String, i64) {
    let (seconds, fraction) = (nanos.div_euclid(NANOS_PER_SECOND), nanos.rem_euclid(NANOS_PER_SECOND));
    let (days, time) = (seconds.div_euclid(SECONDS_PER_DAY), seconds.rem_euclid(SECONDS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let text = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", time / 3600, time / 60 % 60, time % 60);
    (text, fraction)
}

/// Reads a time written exactly as [`rfc3339_nano_fixed`] writes it, so that writing it again
/// gives the same text; `None` for any other text (the log store keeps such a stamp as text).
pub fn parse_rfc3339_nano_fixed(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    // 2026-11-29T17:00:00.123456789Z: the only shape that comes back the same.
    if b.len() != 30 || b[19] != b'.' || b[29] != b'Z' {
        return None;
    }
    parse_rfc3339(text)
}

/// Reads an RFC 3339 time as the engine writes them (`2026-11-22T06:55:29.1Z`: up to nine fraction
/// digits, trailing zeros dropped; an offset such as `+02:00` in place of `Z` is taken too), in
/// nanoseconds since 1970. `None` for anything else, or a time outside `i64`'s nanoseconds (the
/// engine's "never", `0001-01-01T00:00:00Z`).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || separators.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut fraction = 0;
    if b[at] == b'.' {
        let count = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&count) {
            return None;
        }
        fraction = digits(at + 1..at + 1 + count)? * 10_i64.pow(9 - count as u32);
        at += 1 + count;
    }
    let offset_seconds = match &b[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(NANOS_PER_SECOND)?.checked_add(fraction)
}

/// How long ago `seconds` was at `now` (both seconds since 1970), as `docker buildx du` words it:
/// "less than a minute ago", "1 minute ago", "2 hours ago", "3 days ago", "4 months ago".
pub fn ago(seconds: i64, now: i64) -> String {
    let elapsed = (now - seconds).max(0);
    let (value, unit) = match elapsed {
        0..=59 => return "less than a minute ago".into(),
        60..=3599 => (elapsed / 60, "minute"),
        3600..=86_399 => (elapsed / 3600, "hour"),
        86_400..=2_591_999 => (elapsed / 86_400, "day"),
        _ => (elapsed / 2_592_000, "month"),
    };
    let plural = if value == 1 { "" } else { "s" };
    format!("{value} {unit}{plural} ago")
}

/// Seconds from `now` until the words [`ago`] gives for `seconds` change (at least 1).
pub fn ago_changes_in(seconds: i64, now: i64) -> i64 {
    if now < seconds {
        return seconds - now + 60;
    }
    let elapsed = now - seconds;
    let unit = match elapsed {
        0..=3599 => 60,
        3600..=86_399 => 3600,
        86_400..=2_591_999 => 86_400,
        _ => 2_592_000,
    };
    unit - elapsed % unit
}

/// How long the backend has run, as the panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uptime {
    /// "2d 3h 4m", "3h 12m", "5m", "less than a minute": whole minutes, so the words change once
    /// a minute (a label that changed every second would repaint the window every second).
    pub text: String,
    /// Milliseconds until the words change: when the window asks again.
    pub next_change_ms: u64,
}

/// The uptime of something that started at `started` (nanoseconds since 1970), at `now`. A start
/// after `now` (another machine's clock) reads as "less than a minute".
pub fn uptime(started: i64, now: i64) -> Uptime {
    const MINUTE_MS: i64 = 60_000;
    let elapsed_ms = now.saturating_sub(started).div_euclid(1_000_000);
    let next_change_ms = if elapsed_ms < 0 { MINUTE_MS - elapsed_ms } else { MINUTE_MS - elapsed_ms % MINUTE_MS };
    let minutes = elapsed_ms.max(0) / MINUTE_MS;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let text = if days > 0 {
        format!("{days}d {hours}h {minutes}m")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        "less than a minute".to_string()
    };
    Uptime { text, next_change_ms: u64::try_from(next_change_ms).unwrap_or(u64::MAX) }
}

/// The [`uptime`] of something that started at an RFC 3339 time (the engine's), worded when it is
/// sent (serialized) rather than when it was read: a snapshot kept a while never shows an old
/// figure. Serializes as an [`Uptime`], or `null` when the start is unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UptimeWhenSent {
    started: Option<i64>,
}

impl UptimeWhenSent {
    /// Since `started_at` (RFC 3339); unknown when there is none or it cannot be read.
    pub fn since(started_at: Option<&str>) -> Self {
        Self { started: started_at.and_then(parse_rfc3339) }
    }

    /// The uptime at `now` (nanoseconds since 1970).
    pub fn at(&self, now: i64) -> Option<Uptime> {
        self.started.map(|started| uptime(started, now))
    }
}

impl Serialize for UptimeWhenSent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.at(now_nanos()).serialize(serializer)
    }
}

/// A duration in seconds as builds and steps show it: "0.8s", "12s", "3m5s".
pub fn seconds_text(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1}s")
    } else if seconds < 60.0 {
        format!("{seconds:.0}s")
    } else {
        format!("{}m{}s", (seconds / 60.0).floor(), (seconds % 60.0).round())
    }
}

/// A Go duration as buildx takes it: `24h`, `90m`, `1h30m`, `45s`, `1.5h`, `250ms`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS_2026_11_29_17H: i64 = 1_795_971_600_000_000_000;

    #[test]
    fn buildx_json_times_drop_the_fraction_s_trailing_zeros() {
        let at = |seconds: i64, nanos: i32| timestamp_nanos(&Timestamp { seconds, nanos });
        assert_eq!(rfc3339_nano(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(at(1_795_964_739, 586_000_000)), "2026-11-29T15:05:39.586Z");
        assert_eq!(rfc3339_nano(at(951_782_400, 1)), "2000-02-29T00:00:00.000000001Z");
    }

    #[test]
    fn docker_log_stamps_have_nine_digits_and_come_back_as_docker_wrote_them() {
        // As `docker logs -t` prints them (checked on this machine's engine: 200 lines, all 30 bytes).
        let cases = [
            ("2026-11-29T17:00:00.123456789Z", 1_795_971_600_123_456_789),
            ("2026-11-29T17:00:00.123456780Z", 1_795_971_600_123_456_780),
            ("2026-11-29T17:00:00.000000000Z", NANOS_2026_11_29_17H),
            ("1970-01-01T00:00:00.000000000Z", 0),
            ("2024-02-29T23:59:59.000000001Z", 1_709_251_199_000_000_001),
            ("1969-12-31T23:59:59.500000000Z", -500_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_rfc3339_nano_fixed(text), Some(nanos), "{text}");
            assert_eq!(rfc3339_nano_fixed(nanos), text);
        }
        // Every day from 1901 to 2243 (a week apart), with a fraction: written, then read, gives it back.
        for day in (-25_000_i64..100_000).step_by(7) {
            let nanos = day * 86_400_000_000_000 + 45_296_123_456_000;
            assert_eq!(
                parse_rfc3339_nano_fixed(&rfc3339_nano_fixed(nanos)),
                Some(nanos),
                "{}",
                rfc3339_nano_fixed(nanos)
            );
            assert_eq!(parse_rfc3339(&rfc3339_nano(nanos)), Some(nanos), "{}", rfc3339_nano(nanos));
        }
        // Not Go's fixed form: refused, or read but written otherwise (so the store keeps the text).
        let others = [
            "2026-13-01T00:00:00.000000000Z",
            "2026-02-29T00:00:00.000000000Z",
            "2026-11-31T00:00:00.000000000Z",
            "2026-11-29 17:00:00.000000000Z",
            "2026-11-29T17:00:00Z",
            "2026-11-29T17:00:00.5Z",
            "2026-11-29T17:00:00.00000000xZ",
            "2026-11-29T17:00:00.000000000+00:00",
        ];
        for text in others {
            assert_eq!(parse_rfc3339_nano_fixed(text), None, "{text}");
        }
    }

    #[test]
    fn the_engine_s_times_are_read_with_any_fraction_and_offset() {
        assert_eq!(parse_rfc3339("2026-11-29T17:00:00Z"), Some(NANOS_2026_11_29_17H));
        assert_eq!(parse_rfc3339("2026-11-29T17:00:00.5Z"), Some(NANOS_2026_11_29_17H + 500_000_000));
        assert_eq!(parse_rfc3339("2026-11-29T19:00:00.5+02:00"), Some(NANOS_2026_11_29_17H + 500_000_000));
        assert_eq!(parse_rfc3339("2026-11-29T16:30:00-00:30"), Some(NANOS_2026_11_29_17H));
        for bad in [
            "",
            "2026-11-29T17:00:00",
            "2026-11-29T17:00:00.Z",
            "2026-11-29T17:00:00.1234567891Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T17:00:00+2:00",
            "2026-11-29T17:00:00Zjunk",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_read_like_docker() {
        assert_eq!(ago(100, 130), "less than a minute ago");
        assert_eq!(ago(0, 60), "1 minute ago");
        assert_eq!(ago(0, 7200), "2 hours ago");
        assert_eq!(ago(0, 86_400 * 3), "3 days ago");
        assert_eq!(ago(500, 100), "less than a minute ago", "a time ahead of the clock");
        // The words change exactly when `ago` says something else.
        for elapsed in [0, 1, 59, 60, 61, 3599, 3600, 7199, 86_399, 86_400, 2_591_999, 2_592_000, 9_999_999] {
            let wait = ago_changes_in(0, elapsed);
            assert!(wait >= 1);
            assert_eq!(ago(0, elapsed + wait - 1), ago(0, elapsed), "{elapsed}");
            assert_ne!(ago(0, elapsed + wait), ago(0, elapsed), "{elapsed}");
        }
        assert_eq!(ago_changes_in(500, 100), 460);
    }

    #[test]
    fn uptime_is_in_whole_minutes_and_says_when_the_next_begins() {
        const SECOND: i64 = NANOS_PER_SECOND;
        let start = NANOS_2026_11_29_17H;
        let at = |seconds: i64| uptime(start, start + seconds * SECOND);
        assert_eq!(at(0), Uptime { text: "less than a minute".into(), next_change_ms: 60_000 });
        assert_eq!(at(59), Uptime { text: "less than a minute".into(), next_change_ms: 1000 });
        assert_eq!(at(60).text, "1m");
        assert_eq!(at(3600 + 12 * 60 + 30), Uptime { text: "1h 12m".into(), next_change_ms: 30_000 });
        assert_eq!(at(2 * 86_400 + 3 * 3600 + 4 * 60).text, "2d 3h 4m");
        assert_eq!(at(86_400).text, "1d 0h 0m");
        assert_eq!(
            uptime(start, start - 5 * SECOND),
            Uptime { text: "less than a minute".into(), next_change_ms: 65_000 }
        );
    }

    #[test]
    fn an_uptime_is_worded_when_it_is_sent() {
        let since = UptimeWhenSent::since(Some("2026-11-29T17:00:00.5Z"));
        assert_eq!(since.at(NANOS_2026_11_29_17H + 3_600_500_000_000).map(|u| u.text), Some("1h 0m".into()));
        assert_eq!(UptimeWhenSent::since(Some("0001-01-01T00:00:00Z")).at(0), None, "the engine's never");
        assert_eq!(serde_json::to_value(UptimeWhenSent::since(None)).ok(), Some(serde_json::Value::Null));
        let sent =
            serde_json::to_value(UptimeWhenSent::since(Some(&rfc3339_nano(now_nanos() - 61 * NANOS_PER_SECOND))));
        assert_eq!(sent.ok().and_then(|v| v["text"].as_str().map(str::to_string)).as_deref(), Some("1m"));
    }

    #[test]
    fn durations_read_as_builds_show_them() {
        assert_eq!(seconds_text(0.84), "0.8s");
        assert_eq!(seconds_text(12.3), "12s");
        assert_eq!(seconds_text(185.0), "3m5s");
    }

    #[test]
    fn go_durations_as_buildx_takes_them() {
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "24", "1d", "h", "1h30", "-1h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
