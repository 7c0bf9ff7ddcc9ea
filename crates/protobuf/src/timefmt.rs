//! The text forms upstream's JSON uses for `metav1.Time` (RFC 3339, seconds, UTC),
//! `metav1.MicroTime` (RFC 3339 with six fractional digits) and `metav1.Duration`
//! (Go's `time.Duration` string, `1h2m3.5s`), both ways.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the epoch of Go's zero `time.Time` (0001-01-01T00:00:00Z), which
/// upstream writes as `null`.
pub(crate) const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// `2006-01-02T15:04:05Z` for a Unix time, or `None` when out of the years 0–9999.
pub(crate) fn format_time(seconds: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    format_parts(t, None)
}

/// `2006-01-02T15:04:05.000000Z` (microseconds, truncated).
pub(crate) fn format_micro_time(seconds: i64, nanos: i64) -> Option<String> {
    // Go's time.Unix normalises nanoseconds outside [0, 1e9).
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let t = OffsetDateTime::from_unix_timestamp_nanos(total).ok()?;
    format_parts(t, Some(t.nanosecond() / 1000))
}

fn format_parts(t: OffsetDateTime, micros: Option<u32>) -> Option<String> {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut s = String::with_capacity(27);
    digits(&mut s, year as u32, 4);
    s.push('-');
    digits(&mut s, u8::from(t.month()).into(), 2);
    s.push('-');
    digits(&mut s, t.day().into(), 2);
    s.push('T');
    digits(&mut s, t.hour().into(), 2);
    s.push(':');
    digits(&mut s, t.minute().into(), 2);
    s.push(':');
    digits(&mut s, t.second().into(), 2);
    if let Some(us) = micros {
        s.push('.');
        digits(&mut s, us, 6);
    }
    s.push('Z');
    Some(s)
}

/// Appends `v` as exactly `width` decimal digits (zero-padded; `v` fits).
fn digits(s: &mut String, v: u32, width: u32) {
    for i in (0..width).rev() {
        let d = (v / 10u32.pow(i)) % 10;
        s.push(char::from(b'0' + d as u8));
    }
}

/// Parses an RFC 3339 timestamp (any offset, optional fraction) into (seconds, nanos).
pub(crate) fn parse_time(s: &str) -> Result<(i64, i32), String> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
    Ok((t.unix_timestamp(), t.nanosecond() as i32))
}

/// Go's `time.Duration.String()`.
pub(crate) fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: one unit with a fraction.
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("\u{b5}s", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fraction(u, scale));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let hours = secs / 3600;
        let minutes = (secs / 60) % 60;
        let s = secs % 60;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&fraction(s * 1_000_000_000 + frac, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / scale` with the fraction's trailing zeros dropped (`1.5`, `2`).
fn fraction(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let mut frac = v % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let mut digits = scale.ilog10() as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    format!("{whole}.{frac:0digits$}")
}

/// Go's `time.ParseDuration`: `[-+]` then one or more `<decimal><unit>` with units ns, us,
/// µs, μs, ms, s, m, h; `0` alone is allowed.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..n];
            rest = &r[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            let mut f: u128 = 0;
            let mut div: u128 = 1;
            for d in frac_part.bytes().take(30) {
                f = f * 10 + u128::from(d - b'0');
                div *= 10;
            }
            value += f * scale / div;
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(bad());
        }
    }
    let total = total as i128;
    Ok(if neg { -total } else { total } as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(GO_ZERO_UNIX).unwrap(), "0001-01-01T00:00:00Z");
        assert!(format_time(i64::MAX).is_none());
        assert_eq!(
            format_micro_time(1_700_000_000, 123_456_789).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            format_micro_time(1_700_000_000, 0).unwrap(),
            "2023-11-14T22:13:20.000000Z"
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            (1_700_000_000, 0)
        );
        assert_eq!(
            parse_time("2023-11-15T00:13:20.5+02:00").unwrap(),
            (1_700_000_000, 500_000_000)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn durations_like_go() {
        for (n, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5\u{b5}s"),
            (2_000_000, "2ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-5_000_000_000, "-5s"),
        ] {
            assert_eq!(format_duration(n), s, "{n}");
            assert_eq!(parse_duration(s).unwrap(), n, "{s}");
        }
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("2h45m").unwrap(), 9_900_000_000_000);
        assert_eq!(parse_duration(".5s").unwrap(), 500_000_000);
        for bad in ["", "5", "1x", "-", "s", "1.s.", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
