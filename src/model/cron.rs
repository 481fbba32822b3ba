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
mod tests;
