//! Durations as people write them: `250ms`, `2s`, `90m`, `1h`, `7d`.

use flowstate_store::text::shown;
use std::time::Duration;

/// The longest duration text read; anything longer is refused unread.
pub const MAX_DURATION_TEXT: usize = 64;
/// The longest duration: ten years.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses `<number><unit>` with unit ms, s, m, h or d (a bare number is seconds).
///
/// The number is read exactly (decimal, no floating point). Zero is accepted
/// (callers decide what it means); any other duration must be at least 1ms
/// and at most ten years. Every message echoes the text through [`shown`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.len() > MAX_DURATION_TEXT {
        return Err(format!(
            "bad duration '{}'; a duration is at most {MAX_DURATION_TEXT} characters, such as 250ms, 2s, 90m, 1h or 7d",
            shown(text)
        ));
    }
    let bad = || {
        format!(
            "bad duration '{}'; use a number with a unit: 250ms, 2s, 90m, 1h or 7d",
            shown(text)
        )
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit_ns: u128 = match unit.trim() {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return Err(bad()),
    };
    let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return Err(bad());
    }
    let too_long = || {
        format!(
            "bad duration '{}'; the longest is 3650d (10 years)",
            shown(text)
        )
    };
    // `whole` and `fraction` are ASCII digits only, at most 64 of them.
    let mut ns: u128 = 0;
    for d in whole.bytes() {
        ns = ns
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(d - b'0')))
            .ok_or_else(too_long)?;
    }
    ns = ns.checked_mul(unit_ns).ok_or_else(too_long)?;
    // Nanoseconds of the fraction; digits past the 20th cannot add one.
    let mut scale: u128 = 1;
    let mut part: u128 = 0;
    for d in fraction.bytes().take(20) {
        part = part * 10 + u128::from(d - b'0');
        scale *= 10;
    }
    ns = ns
        .checked_add(part * unit_ns / scale)
        .ok_or_else(too_long)?;
    if ns > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let non_zero = num.bytes().any(|d| matches!(d, b'1'..=b'9'));
    if non_zero && ns < 1_000_000 {
        return Err(format!(
            "duration '{}' is under 1ms; the smallest duration is 1ms",
            shown(text)
        ));
    }
    Ok(Duration::from_nanos(ns as u64))
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(86_400_000) && ms > 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "2x", "-1s", "1e9d", "two"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn exact_bounds() {
        assert_eq!(parse_duration("1ms").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_duration("0.001s").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration(" 5 s ").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.1m").unwrap(), Duration::from_secs(6));
        for zero in ["0", "0s", "0ms", "0.000d", "00"] {
            assert_eq!(parse_duration(zero).unwrap(), Duration::ZERO, "{zero}");
        }
        for tiny in ["0.5ms", "0.0001s", "0.0000000000001d", "0.999ms"] {
            let e = parse_duration(tiny).unwrap_err();
            assert_eq!(
                e,
                format!("duration '{tiny}' is under 1ms; the smallest duration is 1ms")
            );
        }
        assert_eq!(parse_duration("3650d").unwrap(), MAX_DURATION);
        for long in ["3650.001d", "3651d", "87601h", &"9".repeat(60)] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("the longest is 3650d"), "{long}: {e}");
        }
        for bad in [".", "1..2s", "1.2.3", "..s", "5 5s", "+1s", "1_000s", "１s"] {
            assert!(
                parse_duration(bad).unwrap_err().starts_with("bad duration"),
                "{bad}"
            );
        }
    }

    #[test]
    fn messages_are_short_and_escaped() {
        let long = "1".repeat(100_000);
        let e = parse_duration(&long).unwrap_err();
        assert!(e.len() < 400 && e.contains("(100000 characters)"), "{e}");
        assert!(e.contains("at most 64 characters"), "{e}");
        let e = parse_duration("\u{1b}[31m").unwrap_err();
        assert!(!e.chars().any(char::is_control), "{e}");
        let e = parse_duration("5\u{7}s").unwrap_err();
        assert!(e.contains("'5\\u{7}s'"), "{e}");
    }
}
