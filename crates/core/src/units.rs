//! Sizes as Docker prints them (go-units `HumanSize`: decimal units, four significant digits).

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
    let decimals = if value >= 1000.0 { 0 } else if value >= 100.0 { 1 } else if value >= 10.0 { 2 } else { 3 };
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
