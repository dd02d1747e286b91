//! Sizes as Docker prints them (go-units `HumanSize`: decimal units, four significant digits).

/// `bytes` as docker prints a size (`3.65GB`); below zero is `0B`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes.max(0) as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", four_significant(size), UNITS[unit])
}

/// Go's `%.4g`: four significant digits, trailing zeros dropped.
fn four_significant(value: f64) -> String {
    let decimals = if value >= 1000.0 {
        0
    } else if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn matches_docker_output() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(3_650_000_000), "3.65GB");
        assert_eq!(human_size(12_345_678), "12.35MB");
        assert_eq!(human_size(-5), "0B");
    }
}

/// "5 minutes ago", as `docker buildx du` shows last use.
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

#[cfg(test)]
mod ago_tests {
    use super::ago;

    #[test]
    fn ages_read_like_docker() {
        assert_eq!(ago(100, 130), "less than a minute ago");
        assert_eq!(ago(0, 60), "1 minute ago");
        assert_eq!(ago(0, 7200), "2 hours ago");
        assert_eq!(ago(0, 86_400 * 3), "3 days ago");
    }
}
