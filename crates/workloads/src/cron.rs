//! Cron schedules as upstream's CronJob controller reads them (robfig/cron's standard
//! parser): five fields — minute, hour, day of month, month, day of week — each `*` (or
//! `?`), a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of these;
//! month and weekday names (`JAN`, `mon`); weekday 7 is Sunday; and the macros `@yearly`
//! (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`. As in cron,
//! when both day fields are restricted a day matching either one matches.
//! Times are computed in an IANA time zone (jiff's bundled database).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// A parse error, worded like robfig/cron's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, CronError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>()
        .map_err(|_| CronError(format!("failed to parse int from {s}: invalid syntax")))
}

/// One field as a bitset; `Ok((bits, star))`.
fn field(
    spec: &str,
    min: u32,
    max: u32,
    names: &[&str],
    offset: u32,
) -> Result<(u64, bool), CronError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| {
                    CronError(format!("failed to parse int from {s}: invalid syntax"))
                })?;
                if step == 0 {
                    return Err(CronError(format!(
                        "step of range should be a positive number: {part}"
                    )));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            if step.is_none() {
                star = true;
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let v = value(range, names, offset)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min {
            return Err(CronError(format!(
                "beginning of range ({lo}) below minimum ({min}): {part}"
            )));
        }
        if hi > max {
            return Err(CronError(format!(
                "end of range ({hi}) above maximum ({max}): {part}"
            )));
        }
        if lo > hi {
            return Err(CronError(format!(
                "beginning of range ({lo}) beyond end of range ({hi}): {part}"
            )));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok((bits, star))
}

impl Schedule {
    /// Parses a standard 5-field spec or a macro.
    pub fn parse(spec: &str) -> Result<Schedule, CronError> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => {
                return Err(CronError(format!("unrecognized descriptor: {s}")));
            }
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(CronError(format!(
                "expected exactly 5 fields, found {}: {spec}",
                f.len()
            )));
        }
        let (minute, _) = field(f[0], 0, 59, &[], 0)?;
        let (hour, _) = field(f[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(f[2], 1, 31, &[], 0)?;
        let (month, _) = field(f[3], 1, 12, &MONTHS, 1)?;
        let (mut dow, dow_star) = field(f[4], 0, 7, &DAYS, 0)?;
        if dow & (1 << 7) != 0 {
            dow = (dow | 1) & !(1 << 7);
        }
        Ok(Schedule {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.dom & (1 << date.day()) != 0;
        let dow = self.dow & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `after`, in `tz`; `None` if there is none
    /// within five years (a schedule like `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        let (mut y, mut mo, mut d, mut h, mut mi) = (
            i32::from(local.year()),
            local.month() as u32,
            local.day() as u32,
            local.hour() as u32,
            local.minute() as u32 + 1,
        );
        let limit = y + 5;
        let days_in = |y: i32, m: u32| {
            Date::new(y as i16, m as i8, 1)
                .map(|d| d.days_in_month() as u32)
                .unwrap_or(28)
        };
        loop {
            // Normalise carries.
            if mi > 59 {
                mi = 0;
                h += 1;
            }
            if h > 23 {
                h = 0;
                d += 1;
            }
            if d > days_in(y, mo) {
                d = 1;
                mo += 1;
            }
            if mo > 12 {
                mo = 1;
                y += 1;
            }
            if y > limit {
                return None;
            }
            if self.month & (1 << mo) == 0 {
                mo += 1;
                (d, h, mi) = (1, 0, 0);
                if mo > 12 {
                    mo = 1;
                    y += 1;
                }
                continue;
            }
            let date = Date::new(y as i16, mo as i8, d as i8).ok()?;
            if !self.day_matches(date) {
                d += 1;
                (h, mi) = (0, 0);
                continue;
            }
            if self.hour & (1 << h) == 0 {
                h += 1;
                mi = 0;
                continue;
            }
            if self.minute & (1 << mi) == 0 {
                mi += 1;
                continue;
            }
            let dt = DateTime::new(y as i16, mo as i8, d as i8, h as i8, mi as i8, 0, 0).ok()?;
            let ts = tz.to_ambiguous_zoned(dt).compatible().ok()?.timestamp();
            if ts > after {
                return Some(ts);
            }
            mi += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_fields_ranges_steps_names_and_macros() {
        let s = Schedule::parse("*/15 9-17 * JAN-mar mon-fri").unwrap();
        assert_eq!(s.minute, (1 << 0) | (1 << 15) | (1 << 30) | (1 << 45));
        assert_eq!(s.month, 0b1110);
        assert_eq!(s.dow, 0b111110);
        assert_eq!(
            Schedule::parse("@daily").unwrap(),
            Schedule::parse("0 0 * * *").unwrap()
        );
        assert_eq!(Schedule::parse("0 0 * * 7").unwrap().dow, 1);
        assert_eq!(
            Schedule::parse("5/20 * * * *").unwrap().minute,
            (1 << 5) | (1 << 25) | (1 << 45)
        );
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("60 * * * *").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
        assert!(Schedule::parse("@fortnightly").is_err());
        assert!(Schedule::parse("5-1 * * * *").is_err());
        assert_eq!(
            Schedule::parse("x * * * *").unwrap_err().0,
            "failed to parse int from x: invalid syntax"
        );
    }

    #[test]
    fn next_times() {
        let utc = TimeZone::UTC;
        let every = Schedule::parse("* * * * *").unwrap();
        assert_eq!(
            every.next(ts("2026-03-01T10:00:30Z"), &utc),
            Some(ts("2026-03-01T10:01:00Z"))
        );
        assert_eq!(
            every.next(ts("2026-03-01T10:01:00Z"), &utc),
            Some(ts("2026-03-01T10:02:00Z"))
        );
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly.next(ts("2026-12-31T23:10:00Z"), &utc),
            Some(ts("2027-01-01T00:00:00Z"))
        );
        // 2026-03-02 is a Monday.
        let weekdays = Schedule::parse("30 8 * * 1-5").unwrap();
        assert_eq!(
            weekdays.next(ts("2026-02-28T12:00:00Z"), &utc),
            Some(ts("2026-03-02T08:30:00Z"))
        );
        // Both day fields restricted: either matches (the 1st, or any Friday).
        let either = Schedule::parse("0 0 1 * 5").unwrap();
        assert_eq!(
            either.next(ts("2026-03-01T00:00:00Z"), &utc),
            Some(ts("2026-03-06T00:00:00Z"))
        );
        assert_eq!(
            Schedule::parse("0 0 29 2 *")
                .unwrap()
                .next(ts("2026-01-01T00:00:00Z"), &utc),
            Some(ts("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next(ts("2026-01-01T00:00:00Z"), &utc),
            None
        );
    }

    #[test]
    fn time_zones() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let s = Schedule::parse("0 9 * * *").unwrap();
        // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
        assert_eq!(
            s.next(ts("2026-01-10T12:00:00Z"), &berlin),
            Some(ts("2026-01-11T08:00:00Z"))
        );
        assert_eq!(
            s.next(ts("2026-07-10T12:00:00Z"), &berlin),
            Some(ts("2026-07-11T07:00:00Z"))
        );
    }
}
