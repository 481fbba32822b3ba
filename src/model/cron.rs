//! Cron schedules: crontab parsing and translation for the `cron` crate, IANA time zones,
//! and the next tick in local time with the DST rules of the contract.
//!
//! Users write standard crontab: 5 fields (`m h dom mon dow`, dow 0 or 7 = Sunday,
//! 1 = Monday), 6 fields with seconds first, or `@hourly`-style shorthands. The `cron` crate
//! wants seconds first and counts weekdays Quartz-style (1 = Sunday), ANDs day-of-month with
//! day-of-week, and skips local times that do not exist. So the day-of-week field is
//! expanded to day names here, day-of-month/day-of-week are ORed as crontab does when both
//! are restricted, and ticks are computed on naive local time and then placed in the zone:
//! a local time inside a DST gap fires at the first instant after the gap, a repeated local
//! time fires once (its first occurrence).

use std::str::FromStr;

use chrono::{DateTime, Duration as ChronoDuration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::error::Error;

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed, validated cron expression.
#[derive(Debug, Clone)]
pub(crate) struct Cron {
    /// Schedules whose next ticks are merged (two when dom and dow are both restricted).
    parts: Vec<cron::Schedule>,
}

fn field_name(i: usize) -> &'static str {
    [
        "second",
        "minute",
        "hour",
        "day of month",
        "month",
        "day of week",
    ][i]
}

fn shorthand(expr: &str) -> Option<&'static str> {
    Some(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return None,
    })
}

fn day_number(tok: &str, expr: &str) -> Result<u32, Error> {
    if let Ok(n) = tok.parse::<u32>() {
        if n <= 7 {
            return Ok(n % 7);
        }
        return Err(Error::InvalidCron(format!(
            "{expr:?}: day of week {tok:?} is out of range; use 0-7 (0 and 7 are Sunday) or SUN-SAT"
        )));
    }
    let up = tok.to_ascii_uppercase();
    let name = up.get(..3).unwrap_or("");
    DAY_NAMES
        .iter()
        .position(|d| *d == name && up.len() <= 9)
        .map(|p| p as u32)
        .ok_or_else(|| {
            Error::InvalidCron(format!(
                "{expr:?}: {tok:?} is not a day of week; use 0-7 or SUN-SAT"
            ))
        })
}

/// Expands a crontab day-of-week field into a set of days (bit 0 = Sunday).
fn parse_dow(field: &str, expr: &str) -> Result<u8, Error> {
    let mut set = 0u8;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 =
                    s.parse()
                        .ok()
                        .filter(|s| (1..=7).contains(s))
                        .ok_or_else(|| {
                            Error::InvalidCron(format!(
                                "{expr:?}: day-of-week step {s:?} must be 1-7"
                            ))
                        })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (
                day_number(a, expr)?,
                b.parse::<u32>().map_or_else(
                    |_| day_number(b, expr),
                    |n| {
                        if n <= 7 {
                            Ok(n)
                        } else {
                            day_number(b, expr)
                        }
                    },
                )?,
            );
            // `5-7` means Friday to Sunday: 7 stays 7 as the end of a range.
            if b < a {
                return Err(Error::InvalidCron(format!(
                    "{expr:?}: day-of-week range {range:?} runs backwards"
                )));
            }
            (a, b)
        } else {
            let a = day_number(range, expr)?;
            (a, if step > 1 { 6 } else { a })
        };
        let mut d = lo;
        while d <= hi {
            set |= 1 << (d % 7);
            d += step;
        }
    }
    Ok(set)
}

fn dow_names(set: u8) -> String {
    if set == 0x7f {
        return "*".into();
    }
    (0..7)
        .filter(|d| set & (1 << d) != 0)
        .map(|d| DAY_NAMES[d])
        .collect::<Vec<_>>()
        .join(",")
}

fn unrestricted(f: &str) -> bool {
    f == "*" || f == "?"
}

impl Cron {
    /// Parses a 5-field crontab, a 6-field (seconds first) expression or a shorthand.
    pub fn parse(expr: &str) -> Result<Cron, Error> {
        let trimmed = expr.trim();
        if trimmed.len() > 256 {
            return Err(Error::InvalidCron(
                "expression is longer than 256 characters".into(),
            ));
        }
        let expanded = shorthand(trimmed).unwrap_or(trimmed);
        let mut fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.len() {
            5 => fields.insert(0, "0"),
            6 => {}
            n => {
                return Err(Error::InvalidCron(format!(
                    "{expr:?} has {n} fields; use 5 (minute hour day-of-month month day-of-week), \
                     6 (with seconds first) or a shorthand like @daily"
                )))
            }
        }
        for (i, f) in fields.iter().enumerate() {
            if f.contains(['L', 'W', '#']) && i != 5
                || f.contains('#')
                || (i == 5 && f.contains('L'))
            {
                return Err(Error::InvalidCron(format!(
                    "{expr:?}: the {} field {f:?} uses Quartz-only syntax (L, W, #), which crontab does not have",
                    field_name(i)
                )));
            }
        }
        let dow = dow_names(parse_dow(fields[5], expr)?);
        let dom_restricted = !unrestricted(fields[3]);
        let dow_restricted = !unrestricted(fields[5]) && dow != "*";
        let build = |dom: &str, dow: &str| -> Result<cron::Schedule, Error> {
            let s = format!(
                "{} {} {} {} {} {}",
                fields[0], fields[1], fields[2], dom, fields[4], dow
            );
            cron::Schedule::from_str(&s).map_err(|e| {
                let bad = (0..5)
                    .find(|&i| {
                        let mut probe = ["0", "0", "0", "*", "*", "*"];
                        probe[i] = fields[i];
                        cron::Schedule::from_str(&probe.join(" ")).is_err()
                    })
                    .map(|i| format!("the {} field {:?} is invalid: ", field_name(i), fields[i]))
                    .unwrap_or_default();
                let detail = e.to_string();
                let detail = detail.lines().last().unwrap_or_default().trim();
                Error::InvalidCron(format!("{expr:?}: {bad}{detail}"))
            })
        };
        let parts = if dom_restricted && dow_restricted {
            // crontab: when both are restricted, a day matching either fires.
            vec![build(fields[3], "*")?, build("*", &dow)?]
        } else {
            vec![build(fields[3], &dow)?]
        };
        Ok(Cron { parts })
    }

    /// The next naive local time strictly after `after` that the expression matches.
    fn next_naive(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = Utc.from_utc_datetime(&after);
        self.parts
            .iter()
            .filter_map(|s| s.after(&as_utc).next())
            .min()
            .map(|t| t.naive_utc())
    }

    /// The next tick strictly after `now` in zone `tz`.
    pub fn next_after(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let mut cursor = now.with_timezone(&tz).naive_local();
        // Bounded: each round moves the cursor to a later matching local time.
        for _ in 0..10_000 {
            let local = self.next_naive(cursor)?;
            let at = match tz.from_local_datetime(&local) {
                LocalResult::Single(t) => t,
                // A repeated local time: its first occurrence only.
                LocalResult::Ambiguous(first, _) => first,
                // In a DST gap: the first instant after it.
                LocalResult::None => gap_end(tz, local)?,
            }
            .with_timezone(&Utc);
            if at > now {
                return Some(at);
            }
            cursor = local;
        }
        None
    }
}

/// The first valid instant after the nonexistent local time `local`.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    (1..=24 * 60).find_map(|m| {
        match tz.from_local_datetime(&(local + ChronoDuration::minutes(m))) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                // Back to the exact minute the clocks jumped to.
                let t0 = t.with_timezone(&Utc);
                let back = (0..m)
                    .rev()
                    .map(|k| t0 - ChronoDuration::minutes(m - k))
                    .find(|c| c.with_timezone(&tz).naive_local() >= local);
                Some(back.map_or(t, |c| c.with_timezone(&tz)))
            }
            LocalResult::None => None,
        }
    })
}

/// Parses an IANA zone name.
pub(crate) fn parse_tz(name: &str) -> Result<Tz, Error> {
    name.parse::<Tz>().map_err(|_| {
        Error::InvalidTimezone(format!(
            "{name:?} is not an IANA time zone; use a name like \"UTC\" or \"Europe/Berlin\""
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, tz: &str, now: &str) -> String {
        let c = Cron::parse(expr).unwrap();
        crate::model::clock::rfc3339_ms(c.next_after(utc(now), parse_tz(tz).unwrap()).unwrap())
    }

    // 2026-11-28 is a Saturday.
    #[test]
    fn crontab_table() {
        let now = "2026-11-28T12:00:30Z";
        let table = [
            ("* * * * *", "2026-11-28T12:01:00.000Z"),
            ("*/15 * * * *", "2026-11-28T12:15:00.000Z"),
            ("0 3 * * *", "2026-11-29T03:00:00.000Z"),
            ("0 9 * * 1", "2026-11-30T09:00:00.000Z"), // 1 = Monday
            ("0 9 * * 0", "2026-11-29T09:00:00.000Z"), // 0 = Sunday
            ("0 9 * * 7", "2026-11-29T09:00:00.000Z"), // 7 = Sunday
            ("0 9 * * MON-FRI", "2026-11-30T09:00:00.000Z"),
            ("0 9 * * 1-5", "2026-11-30T09:00:00.000Z"),
            ("0 9 * * 5-7", "2026-11-29T09:00:00.000Z"), // Fri-Sun
            ("0 13 * * 6", "2026-11-28T13:00:00.000Z"),  // 6 = Saturday
            ("0 0 1 JAN *", "2027-01-01T00:00:00.000Z"),
            ("0 0 1 1 *", "2027-01-01T00:00:00.000Z"),
            ("30 8 1,15 * *", "2026-12-01T08:30:00.000Z"),
            ("0 0 13 * 5", "2026-12-04T00:00:00.000Z"), // the 13th OR a Friday
            ("0 12 * * */2", "2026-11-29T12:00:00.000Z"), // Sun, Tue, Thu, Sat
            ("15 * * * * *", "2026-11-28T12:01:15.000Z"), // 6 fields: seconds first
            ("0 0 9 * * 1", "2026-11-30T09:00:00.000Z"),
            ("@hourly", "2026-11-28T13:00:00.000Z"),
            ("@daily", "2026-11-29T00:00:00.000Z"),
            ("@weekly", "2026-11-29T00:00:00.000Z"),
            ("@monthly", "2026-12-01T00:00:00.000Z"),
            ("@yearly", "2027-01-01T00:00:00.000Z"),
        ];
        for (expr, want) in table {
            assert_eq!(next(expr, "UTC", now), want, "{expr}");
        }
    }

    #[test]
    fn timezone_is_applied() {
        // 03:00 in Berlin (CET, UTC+1 in November) is 02:00 UTC.
        assert_eq!(
            next("0 3 * * *", "Europe/Berlin", "2026-11-28T20:00:00Z"),
            "2026-11-29T02:00:00.000Z"
        );
    }

    #[test]
    fn spring_forward_gap_fires_once_after_the_gap() {
        // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist.
        let c = Cron::parse("30 2 * * *").unwrap();
        let tz = parse_tz("Europe/Berlin").unwrap();
        let t1 = c.next_after(utc("2026-03-27T12:00:00Z"), tz).unwrap();
        assert_eq!(
            crate::model::clock::rfc3339_ms(t1),
            "2026-03-28T01:30:00.000Z"
        ); // 02:30 CET, the day before the change
        let t2 = c.next_after(t1, tz).unwrap();
        assert_eq!(
            crate::model::clock::rfc3339_ms(t2),
            "2026-03-29T01:00:00.000Z"
        ); // 03:00 CEST, first instant after the gap
        let t3 = c.next_after(t2, tz).unwrap();
        assert_eq!(
            crate::model::clock::rfc3339_ms(t3),
            "2026-03-30T00:30:00.000Z"
        ); // 02:30 CEST
    }

    #[test]
    fn fall_back_repeated_time_fires_once() {
        // 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
        let c = Cron::parse("30 2 * * *").unwrap();
        let tz = parse_tz("Europe/Berlin").unwrap();
        let t1 = c.next_after(utc("2026-10-23T12:00:00Z"), tz).unwrap();
        let t2 = c.next_after(t1, tz).unwrap();
        assert_eq!(
            crate::model::clock::rfc3339_ms(t2),
            "2026-10-25T00:30:00.000Z"
        ); // first 02:30 (CEST)
        let t3 = c.next_after(t2, tz).unwrap();
        assert_eq!(
            crate::model::clock::rfc3339_ms(t3),
            "2026-10-26T01:30:00.000Z"
        ); // next day, not 01:30Z
           // Even from inside the repeated hour (second pass), it does not fire again that day.
        let t4 = c.next_after(utc("2026-10-25T01:10:00Z"), tz).unwrap();
        assert_eq!(
            crate::model::clock::rfc3339_ms(t4),
            "2026-10-26T01:30:00.000Z"
        );
    }

    #[test]
    fn bad_expressions_point_at_the_bad_part() {
        for (expr, part) in [
            ("* * *", "3 fields"),
            ("61 * * * *", "minute"),
            ("* 25 * * *", "hour"),
            ("* * * * 8", "day of week"),
            ("* * * FOO *", "month"),
            ("* * L * *", "Quartz"),
            ("0 9 * * MON#2", "Quartz"),
        ] {
            let e = Cron::parse(expr).unwrap_err();
            assert_eq!(e.code(), "INVALID_CRON", "{expr}");
            assert!(e.to_string().contains(part), "{expr}: {e}");
        }
        assert_eq!(
            parse_tz("Mars/Olympus").unwrap_err().code(),
            "INVALID_TIMEZONE"
        );
    }
}
