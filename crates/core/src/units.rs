//! Sizes as Docker prints them (go-units `HumanSize`: decimal units, four significant digits), and
//! sizes as users type them (`20GB`, `500MiB`, parsed by `bytesize`: `kB`/`MB`/`GB` are powers of
//! 1000, `KiB`/`MiB`/`GiB` powers of 1024, a bare number is bytes).

/// A cache limit as people read it: as buildx prints BuildKit's GC policy (`Max Used Space: 2GiB`,
/// go-units `BytesSize`: powers of 1024, four significant digits), or "BuildKit's default".
pub fn cache_limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "BuildKit's default".to_string(), binary_size)
}

/// A size in powers of 1024 with four significant digits, as go-units `BytesSize` prints it
/// (`3GiB`, `18.63GiB`, `500MiB`).
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let whole_digits = if value < 1.0 { 1 } else { value.log10().floor() as usize + 1 };
    let decimals = 4usize.saturating_sub(whole_digits);
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// A size that does not parse, as typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a size; give a number and a unit, such as 20GB or 500MiB")]
pub struct SizeError(pub String);

/// A size the user typed, in bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let trimmed = text.trim();
    let invalid = || SizeError(text.to_string());
    // bytesize accepts a leading "." and an empty number as zero; a size needs a digit first.
    if !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid());
    }
    trimmed.parse::<bytesize::ByteSize>().map(|size| size.as_u64()).map_err(|_| invalid())
}

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
    use super::*;

    #[test]
    fn cache_limits_read_as_buildx_prints_them() {
        assert_eq!(cache_limit_text(Some(3 << 30)), "3GiB");
        assert_eq!(cache_limit_text(Some(20_000_000_000)), "18.63GiB");
        assert_eq!(cache_limit_text(Some(500 << 20)), "500MiB");
        assert_eq!(cache_limit_text(Some(1536)), "1.5KiB");
        assert_eq!(cache_limit_text(Some(512)), "512B");
        assert_eq!(cache_limit_text(Some(1023 << 20)), "1023MiB");
        assert_eq!(cache_limit_text(None), "BuildKit's default");
    }

    #[test]
    fn typed_sizes_follow_their_units() {
        assert_eq!(parse_size("20GB").ok(), Some(20_000_000_000));
        assert_eq!(parse_size("500MiB").ok(), Some(500 * 1024 * 1024));
        assert_eq!(parse_size(" 1.5 GiB ").ok(), Some(1_610_612_736));
        assert_eq!(parse_size("4096").ok(), Some(4096));
        assert_eq!(parse_size("10kb").ok(), Some(10_000));
        for bad in ["", "GB", "-5GB", "20 parsecs", ".5GB", "abc"] {
            let error = parse_size(bad).expect_err(bad);
            assert!(matches!(&error, SizeError(v) if v == bad), "{error:?}");
            assert!(error.to_string().ends_with("give a number and a unit, such as 20GB or 500MiB"), "{error}");
        }
    }

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
