//! Cron schedules: crontab parsing and translation for the `cron` crate, IANA time zones,
//! and the next tick in local time with the DST rules of the contract.
//!
//! Users write standard crontab: 5 fields (`m h dom mon dow`, dow 0 or 7 = Sunday,
//! 1 = Monday), 6 fields with seconds first, or `@hourly`-style shorthands. Every field is
//! parsed and range-checked here (messages name the field, the value and the valid range)
//! into a set of values; a Sunday ending a weekday range is 7 (`MON-SUN` is every day), and
//! other ranges that wrap around are rejected with how to write them. The `cron` crate
//! wants seconds first and counts weekdays Quartz-style (1 = Sunday), ANDs day-of-month with
//! day-of-week, and skips local times that do not exist. So it is handed the value lists
//! (weekdays as names), day-of-month/day-of-week are ORed as crontab does when both are
//! restricted (only a field starting with `*` is unrestricted, as in Vixie cron: `1-7`
//! still ORs), an expression whose days never occur (`0 0 31 2 *`) is rejected, and ticks
//! are computed on naive local time and then placed in the zone:
//! a local time inside a DST gap fires at the first instant after the gap, a repeated local
//! time fires once (its first occurrence).

use std::str::FromStr;

use chrono::{DateTime, Duration as ChronoDuration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::error::Error;

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const DAY_FULL: [&str; 7] = [
    "SUNDAY",
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const MONTH_FULL: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];
/// The most days each month can have (February 29 in leap years), January first.
const MONTH_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A parsed, validated cron expression.
#[derive(Debug, Clone)]
pub(crate) struct Cron {
    /// Schedules whose next ticks are merged (two when dom and dow are both restricted).
    parts: Vec<cron::Schedule>,
}

/// One crontab field: its name, its values and how to name them.
struct Field {
    name: &'static str,
    lo: u32,
    hi: u32,
    /// What a user may write, for the messages.
    valid: &'static str,
    /// Names for `lo..`, abbreviated and in full (`JAN`/`JANUARY`, `SUN`/`SUNDAY`).
    names: Option<(&'static [&'static str], &'static [&'static str])>,
}

const SECOND: Field = Field {
    name: "second",
    lo: 0,
    hi: 59,
    valid: "0-59",
    names: None,
};
const MINUTE: Field = Field {
    name: "minute",
    lo: 0,
    hi: 59,
    valid: "0-59",
    names: None,
};
const HOUR: Field = Field {
    name: "hour",
    lo: 0,
    hi: 23,
    valid: "0-23",
    names: None,
};
const DOM: Field = Field {
    name: "day of month",
    lo: 1,
    hi: 31,
    valid: "1-31",
    names: None,
};
const MONTH: Field = Field {
    name: "month",
    lo: 1,
    hi: 12,
    valid: "1-12 or JAN-DEC",
    names: Some((&MONTH_NAMES, &MONTH_FULL)),
};
/// 0-7, 0 and 7 both Sunday; sets are folded to bits 0-6 (bit 0 = Sunday).
const DOW: Field = Field {
    name: "day of week",
    lo: 0,
    hi: 7,
    valid: "0-7 (0 and 7 are Sunday) or SUN-SAT",
    names: Some((&DAY_NAMES, &DAY_FULL)),
};

const FIELDS: [&Field; 6] = [&SECOND, &MINUTE, &HOUR, &DOM, &MONTH, &DOW];

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

fn invalid(expr: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidCron(format!("{expr:?}: {msg}"))
}

/// Quartz's `L` (last), `W` (nearest weekday) and their forms: `L`, `LW`, `15W`, `5L`.
fn is_quartz(tok: &str) -> bool {
    let up = tok.to_ascii_uppercase();
    up == "L"
        || up == "LW"
        || up
            .strip_suffix(['L', 'W'])
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Field {
    /// One value: a number in range or a name.
    fn value(&self, tok: &str, expr: &str) -> Result<u32, Error> {
        if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
            return match tok.parse::<u32>() {
                Ok(n) if (self.lo..=self.hi).contains(&n) => Ok(n),
                _ => Err(invalid(
                    expr,
                    format_args!("{} {} is out of range; use {}", self.name, tok, self.valid),
                )),
            };
        }
        if let Some((short, full)) = self.names {
            let up = tok.to_ascii_uppercase();
            if let Some(i) = short.iter().chain(full).position(|n| *n == up) {
                return Ok(self.lo + (i % short.len()) as u32);
            }
        }
        if is_quartz(tok) {
            return Err(invalid(
                expr,
                format_args!(
                    "the {} field uses Quartz-only syntax ({tok:?}: L, W, #), which crontab does not have",
                    self.name
                ),
            ));
        }
        Err(invalid(
            expr,
            format_args!(
                "{} {tok:?} is not a {} value; use {}",
                self.name, self.name, self.valid
            ),
        ))
    }

    /// Writes value `v` the way `like` was written (a name or a number).
    fn show(&self, v: u32, like: &str) -> String {
        match self.names {
            Some((short, _)) if !like.bytes().all(|b| b.is_ascii_digit()) => {
                short[((v - self.lo) as usize) % short.len()].to_owned()
            }
            _ => v.to_string(),
        }
    }

    /// Parses the field into a set of values (bit `v` for value `v`; day of week folded to
    /// 0-6, Sunday 0). `*`, `?` (day fields), values, `a-b` ranges and `/step` after any.
    fn parse(&self, field: &str, expr: &str) -> Result<u64, Error> {
        let is_dow = self.name == DOW.name;
        // The top of a `*` or an open `a/step`: 6 for day of week (7 would be Sunday again).
        let top = if is_dow { 6 } else { self.hi };
        let mut set = 0u64;
        for item in field.split(',') {
            if item.contains('#') {
                return Err(invalid(
                    expr,
                    format_args!(
                        "the {} field uses Quartz-only syntax ({item:?}: L, W, #), which crontab does not have",
                        self.name
                    ),
                ));
            }
            let (range, step) = match item.split_once('/') {
                Some((r, st)) => {
                    let span = top - self.lo + 1;
                    let step = st
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=span).contains(n))
                        .ok_or_else(|| {
                            invalid(
                                expr,
                                format_args!("{} step {st:?} must be 1-{span}", self.name),
                            )
                        })?;
                    (r, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" || (range == "?" && (is_dow || self.name == DOM.name)) {
                (self.lo, top)
            } else if range.is_empty() {
                return Err(invalid(
                    expr,
                    format_args!("the {} field {field:?} has an empty item", self.name),
                ));
            } else if let Some((a_tok, b_tok)) = range.split_once('-') {
                let a = self.value(a_tok, expr)?;
                let mut b = self.value(b_tok, expr)?;
                if is_dow && b == 0 && a > 0 {
                    // `MON-SUN`, `5-0`: Sunday ends a range as 7 (1-7, every day).
                    b = 7;
                }
                if b < a {
                    let msg = if is_dow {
                        let second = if b == 1 {
                            b_tok.to_owned()
                        } else {
                            format!("{}-{b_tok}", self.show(1, b_tok))
                        };
                        format!(
                            "day-of-week range {range:?} wraps around the week, which crontab \
                             ranges do not; write it as {a_tok}-{},{second}",
                            self.show(7, a_tok)
                        )
                    } else {
                        format!(
                            "{} range {range:?} runs backwards; write it as {a_tok}-{},{}-{b_tok}",
                            self.name,
                            self.show(self.hi, a_tok),
                            self.show(self.lo, b_tok)
                        )
                    };
                    return Err(invalid(expr, msg));
                }
                (a, b)
            } else {
                let a = self.value(range, expr)?;
                (a, if step.is_some() { top.max(a) } else { a })
            };
            let mut v = lo;
            while v <= hi {
                set |= 1 << if is_dow { v % 7 } else { v };
                v += step.unwrap_or(1);
            }
        }
        Ok(set)
    }

    /// The field as the `cron` crate reads it: `*` for every value, else a list.
    fn render(&self, set: u64) -> String {
        let top = if self.name == DOW.name { 6 } else { self.hi };
        let all = (self.lo..=top).fold(0u64, |m, v| m | 1 << v);
        if set == all {
            return "*".into();
        }
        (self.lo..=top)
            .filter(|v| set & (1 << v) != 0)
            .map(|v| {
                if self.name == DOW.name {
                    // Names: the crate counts weekday numbers Quartz-style (1 = Sunday).
                    DAY_NAMES[v as usize].to_owned()
                } else {
                    v.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Crontab's rule: only a day field starting with `*` (or Quartz's `?`) is unrestricted.
fn unrestricted(f: &str) -> bool {
    f.starts_with('*') || f == "?"
}

/// Whether some date has a day of month in `doms` within a month in `months` (all
/// weekdays occur on every such date over the years, so this is exact for a day-of-week
/// set ANDed with it).
fn some_date(doms: u64, months: u64) -> bool {
    (1..=12u32)
        .filter(|m| months & (1 << m) != 0)
        .any(|m| (1..=MONTH_DAYS[m as usize - 1]).any(|d| doms & (1 << d) != 0))
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
        // Our own validation, so messages name the field, the value and the valid range.
        let mut sets = [0u64; 6];
        for (i, f) in FIELDS.iter().enumerate() {
            sets[i] = f.parse(fields[i], expr)?;
        }
        let [_, _, _, doms, months, dows] = sets;
        let dom_restricted = !unrestricted(fields[3]);
        let dow_restricted = !unrestricted(fields[5]);
        let build = |dom: &str, dow: &str| -> Result<cron::Schedule, Error> {
            let s = format!(
                "{} {} {} {} {} {}",
                SECOND.render(sets[0]),
                MINUTE.render(sets[1]),
                HOUR.render(sets[2]),
                dom,
                MONTH.render(months),
                dow
            );
            cron::Schedule::from_str(&s).map_err(|e| {
                let detail = e.to_string();
                let detail = detail.lines().last().unwrap_or_default().trim().to_owned();
                invalid(expr, detail)
            })
        };
        let mut parts = Vec::new();
        if dom_restricted && dow_restricted {
            // crontab: when both are restricted, a day matching either fires. Every month
            // has every weekday, so the day-of-week part always fires; the day-of-month
            // part only if one of its days exists in one of its months.
            if some_date(doms, months) {
                parts.push(build(&DOM.render(doms), "*")?);
            }
            parts.push(build("*", &DOW.render(dows))?);
        } else if some_date(doms, months) {
            parts.push(build(&DOM.render(doms), &DOW.render(dows))?);
        } else {
            return Err(invalid(
                expr,
                "never fires: none of its days of month occurs in any of its months",
            ));
        }
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

    fn err(expr: &str) -> String {
        let e = Cron::parse(expr).expect_err(expr);
        assert_eq!(e.code(), "INVALID_CRON", "{expr}");
        e.to_string()
    }

    #[test]
    fn cron_that_never_fires_is_rejected() {
        for expr in [
            "0 0 31 2 *",
            "0 0 30 2 *",
            "0 0 30,31 FEB *",
            "0 0 31 4,6,9,11 *",
            "0 0 31 APR-APR *",
            "0 0 0 31 2 *", // 6 fields
            "0 0 31 2 */1", // a weekday field starting with `*` is unrestricted: AND
        ] {
            let e = err(expr);
            assert!(e.contains("never fires"), "{expr}: {e}");
        }
        // What can fire is never rejected, however rarely it fires.
        let now = "2026-11-28T12:00:30Z";
        for (expr, want) in [
            ("0 0 29 2 *", "2028-02-29T00:00:00.000Z"),
            ("0 0 31 1-2 *", "2027-01-31T00:00:00.000Z"),
            ("0 0 30,31 2,3 *", "2027-03-30T00:00:00.000Z"),
            // crontab ORs a restricted dom with a restricted dow: the Mondays of February.
            ("0 0 31 2 MON", "2027-02-01T00:00:00.000Z"),
            // February 29th that is a Sunday (dow `*/7` starts with `*`: ANDed).
            ("0 0 29 2 */7", "2032-02-29T00:00:00.000Z"),
        ] {
            assert_eq!(next(expr, "UTC", now), want, "{expr}");
        }
    }

    #[test]
    fn weekday_range_across_sunday_is_read_as_crontab_does() {
        // 2026-11-28 is a Saturday; 7 and SUN at the end of a range are Sunday (7).
        let now = "2026-11-28T12:00:30Z";
        for (expr, want) in [
            ("0 12 15 * MON-SUN", "2026-11-29T12:00:00.000Z"), // every day
            ("0 12 * * MON-SUN", "2026-11-29T12:00:00.000Z"),
            ("0 9 * * FRI-SUN", "2026-11-29T09:00:00.000Z"),
            ("0 9 * * SAT-SUN", "2026-11-29T09:00:00.000Z"),
            ("0 9 * * 5-0", "2026-11-29T09:00:00.000Z"),
            ("0 9 * * SUN-SUN", "2026-11-29T09:00:00.000Z"),
            ("0 9 * * 0-0", "2026-11-29T09:00:00.000Z"),
            ("0 9 * * MON-SUN/2", "2026-11-29T09:00:00.000Z"), // Mon, Wed, Fri, Sun
            ("0 13 * * MON-SUN/2", "2026-11-29T13:00:00.000Z"),
        ] {
            assert_eq!(next(expr, "UTC", now), want, "{expr}");
        }
        // 13:00 on a Saturday is not in MON-SUN/2 (Mon, Wed, Fri, Sun).
        assert_eq!(
            next("0 13 * * MON-SUN/2", "UTC", "2026-11-28T12:00:00Z"),
            "2026-11-29T13:00:00.000Z"
        );
        // Other ranges that wrap around the week are rejected with how to write them.
        for (expr, hint) in [
            ("0 9 * * FRI-MON", "FRI-SUN,MON"),
            ("0 9 * * SAT-TUE", "SAT-SUN,MON-TUE"),
            ("0 9 * * 5-1", "5-7,1"),
            ("0 9 * * 6-3", "6-7,1-3"),
        ] {
            let e = err(expr);
            assert!(
                e.contains("wraps around") && e.contains(hint),
                "{expr}: {e}"
            );
        }
    }

    #[test]
    fn weekday_field_covering_the_whole_week_still_ors_with_day_of_month() {
        // Only a field starting with `*` is unrestricted; dom 15 OR (every weekday) = every day.
        for dow in [
            "1-7",
            "0-6",
            "0-7",
            "SUN-SAT",
            "MON-SUN",
            "0,1,2,3,4,5,6",
            "SUN-SAT/1",
        ] {
            let expr = format!("0 12 15 * {dow}");
            assert_eq!(
                next(&expr, "UTC", "2026-11-28T12:00:30Z"),
                "2026-11-29T12:00:00.000Z",
                "{expr}"
            );
            assert_eq!(
                next(&expr, "UTC", "2026-11-29T12:00:00Z"),
                "2026-11-30T12:00:00.000Z",
                "{expr}"
            );
        }
        let now = "2026-11-28T12:00:30Z";
        for (expr, want) in [
            ("0 12 15 * *", "2026-12-15T12:00:00.000Z"),
            ("0 12 15 * ?", "2026-12-15T12:00:00.000Z"),
            // Starts with `*`: unrestricted, so ANDed (the 15th only).
            ("0 12 15 * */1", "2026-12-15T12:00:00.000Z"),
            // dom `*/2` starts with `*`: ANDed with Monday (odd days that are Mondays).
            ("0 0 */2 * 1", "2026-12-07T00:00:00.000Z"),
            // A dom covering the month, ORed with Monday: every day.
            ("0 0 1-31 * 1", "2026-11-29T00:00:00.000Z"),
        ] {
            assert_eq!(next(expr, "UTC", now), want, "{expr}");
        }
    }

    #[test]
    fn out_of_range_fields_name_the_field_the_value_and_the_range() {
        for ok in [
            "59 * * * *",
            "0 * * * *",
            "* 23 * * *",
            "* 0 * * *",
            "* * 1 * *",
            "* * 31 * *",
            "* * * 1 *",
            "* * * 12 *",
            "* * * JAN-DEC *",
            "* * * jul *", // month names are case-insensitive
            "* * * JUL *", // and JUL is a month, not Quartz's L
            "* * * * 0",
            "* * * * 7",
            "* * * * SUN-SAT",
            "59 * * * * *",
            "0 0-59/15 0-23 1-31 1-12 0-7",
        ] {
            assert!(Cron::parse(ok).is_ok(), "{ok}: {:?}", Cron::parse(ok).err());
        }
        for (expr, want) in [
            ("60 * * * *", "minute 60 is out of range; use 0-59"),
            ("0-60 * * * *", "minute 60 is out of range; use 0-59"),
            ("* 24 * * *", "hour 24 is out of range; use 0-23"),
            ("* * 0 * *", "day of month 0 is out of range; use 1-31"),
            ("* * 32 * *", "day of month 32 is out of range; use 1-31"),
            ("* * * 0 *", "month 0 is out of range; use 1-12 or JAN-DEC"),
            (
                "* * * 13 *",
                "month 13 is out of range; use 1-12 or JAN-DEC",
            ),
            (
                "* * * * 8",
                "day of week 8 is out of range; use 0-7 (0 and 7 are Sunday) or SUN-SAT",
            ),
            ("60 * * * * *", "second 60 is out of range; use 0-59"),
            ("0 60 * * * *", "minute 60 is out of range; use 0-59"),
            ("* * * FOO *", "month \"FOO\" is not"),
            ("* * * * FOO", "day of week \"FOO\" is not"),
            ("x * * * *", "minute \"x\" is not"),
            ("*/0 * * * *", "minute step \"0\""),
            ("5-3 * * * *", "minute range \"5-3\" runs backwards"),
            ("1,,2 * * * *", "minute"),
        ] {
            let e = err(expr);
            assert!(e.contains(want), "{expr}: {e}");
            assert!(!e.contains("less than"), "{expr}: {e}");
        }
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
            ("* * 15W * *", "Quartz"),
            ("* * LW * *", "Quartz"),
            ("0 9 * * 5L", "Quartz"),
            ("* * * hello *", "month \"hello\" is not a month value"),
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
