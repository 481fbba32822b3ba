//! Unit tests of the parent module.

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
