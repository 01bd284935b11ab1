//! The syntaxes settings are written in (durations, sizes, container names), and how
//! `config check` writes durations and sizes so that they read back the same.

use std::time::Duration;

/// Parses a duration written as a whole number and a unit: `90s`, `15m`, `2h`, `7d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(unit_secs).map(Duration::from_secs)
}

/// Writes a duration in the largest unit that divides it (`7d`, `90s`).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// Writes a duration for a problem message, in seconds with up to three decimals (`67.5s`).
pub(super) fn seconds(duration: Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Parses a size: a number of bytes, or a number and a unit (`512KiB`, `4MiB`, `8MB`; IEC units
/// are powers of 1024, SI units powers of 1000).
pub fn parse_size(text: &str) -> Option<u64> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .ok()
        .map(|size| size.as_u64())
}

/// Writes a size so that [`parse_size`] reads it back exactly: the largest IEC unit that divides
/// it (`4MiB`, `300KiB`), else bytes.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes != 0 && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Checks a container name against Azure's rules: 3 to 63 characters, lowercase letters,
/// digits and single hyphens, starting and ending with a letter or digit.
pub fn container_name_problem(name: &str) -> Option<&'static str> {
    if !(3..=63).contains(&name.len()) {
        return Some("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may contain only lowercase letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must start and end with a letter or digit");
    }
    if name.contains("--") {
        return Some("must not contain consecutive hyphens");
    }
    if name.starts_with("azure-webjobs-") || name.starts_with("$") {
        return Some("is reserved for the Functions host");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_iec_and_si_units() {
        assert_eq!(parse_size("4MiB"), Some(4 * 1024 * 1024));
        assert_eq!(parse_size("512 KiB"), Some(512 * 1024));
        assert_eq!(parse_size("8MB"), Some(8_000_000));
        assert_eq!(parse_size("1048576"), Some(1_048_576));
        for bad in ["", "MiB", "4 parsecs", "-1MiB"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        for bad in [
            "",
            "7",
            "d",
            "1.5h",
            "-1m",
            "7days",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(604_800)), "7d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn sizes_print_so_that_they_read_back() {
        assert_eq!(format_size(4 << 20), "4MiB");
        assert_eq!(parse_size(&format_size(300 << 10)), Some(300 << 10));
        assert_eq!(parse_size(&format_size(1_000_001)), Some(1_000_001));
    }

    #[test]
    fn container_names_follow_azures_rules() {
        assert_eq!(container_name_problem("logs-audit"), None);
        for bad in ["ab", "Logs", "a_b", "-ab", "ab-", "a--b", "azure-webjobs-x"] {
            assert!(container_name_problem(bad).is_some(), "{bad}");
        }
    }
}
