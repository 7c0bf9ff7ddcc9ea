//! Ages and durations as upstream prints them (`duration.HumanDuration` and the printers'
//! `translateTimestampSince`), and reading `metav1.Time` / `metav1.MicroTime` fields.

use rkube_api::meta::parse_rfc3339;
use serde_json::Value;

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`), which `metav1.Time.IsZero` reports as
/// unset.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Upstream's `HumanDuration` of a number of seconds: `45s`, `2m5s`, `179m`, `3h1m`,
/// `47h`, `2d2h`, `8d`, `2y1d`, `9y`; `0s` for one second in the future (clock skew) and
/// `<invalid>` further ahead.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// A timestamp field, in seconds since the epoch; `None` when unset, unparsable or Go's
/// zero time.
pub fn timestamp(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(parse_rfc3339)
        .filter(|&t| t != GO_ZERO_TIME)
}

/// Whether a timestamp has a non-zero fraction of a second (`metav1.MicroTime`).
fn has_fraction(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| s.get(19..))
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|frac| {
            frac.chars()
                .take_while(char::is_ascii_digit)
                .any(|c| c != '0')
        })
}

/// Whole seconds from a timestamp field to `now`, truncated toward zero as Go's
/// `int(d.Seconds())` does (a fraction makes the elapsed time a little shorter).
pub fn elapsed(v: &Value, now: i64) -> Option<i64> {
    let t = timestamp(v)?;
    let d = now - t;
    Some(if has_fraction(v) && d >= 1 { d - 1 } else { d })
}

/// The time since a timestamp field (`translateTimestampSince`): `<unknown>` when unset.
pub fn since(v: &Value, now: i64) -> String {
    match elapsed(v, now) {
        Some(d) => human_duration(d),
        None => "<unknown>".into(),
    }
}

/// The age of an RFC 3339 timestamp as of `now`: `<unknown>` when absent or unparsable.
pub fn age(timestamp: Option<&str>, now: i64) -> String {
    match timestamp.and_then(parse_rfc3339) {
        Some(t) if t != GO_ZERO_TIME => human_duration(now - t),
        _ => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_durations_match_upstream() {
        for (s, want) in [
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (2 * 365 * 86400 - 1, "729d"),
            (2 * 365 * 86400, "2y"),
            (2 * 365 * 86400 + 86400, "2y1d"),
            (8 * 365 * 86400 - 1, "7y364d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn timestamps() {
        let now = parse_rfc3339("2025-06-01T12:00:00Z").unwrap();
        assert_eq!(since(&json!("2025-06-01T11:59:00Z"), now), "60s");
        assert_eq!(since(&json!("2025-06-01T13:59:00+02:00"), now), "60s");
        assert_eq!(since(&json!("2025-06-01T11:59:00.999999Z"), now), "59s");
        assert_eq!(since(&json!("2025-06-01T11:59:00.000000Z"), now), "60s");
        assert_eq!(since(&json!("2025-06-01T11:59:59.5Z"), now), "0s");
        assert_eq!(since(&json!("2025-06-01T12:00:00.5Z"), now), "0s");
        assert_eq!(since(&json!(null), now), "<unknown>");
        assert_eq!(since(&json!("garbage"), now), "<unknown>");
        assert_eq!(since(&json!("0001-01-01T00:00:00Z"), now), "<unknown>");
        assert_eq!(since(&json!("2025-06-01T12:00:05Z"), now), "<invalid>");
        assert_eq!(age(Some("2025-05-31T12:00:00Z"), now), "24h");
        assert_eq!(age(None, now), "<unknown>");
    }
}
