//! Time rules: parsing, office hours, the slot grid, past and same-day checks. Pure
//! functions of the config and `now`, so they are tested without a store.
//!
//! Civil times are practice-local; every interval is also turned into absolute seconds
//! (through the practice time zone) so overlaps and slot claims stay right across DST.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::AmbiguousOffset;
use switchboard::{Error, Speaker};

use crate::config::{
    Hours, MAX_APPOINTMENT_MINUTES, Practice, UNIT_MINUTES, day_name, days_name, hhmm,
};

/// Where "now" falls in the practice.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub ts: i64,
    pub local: DateTime,
}

impl Now {
    pub fn new(practice: &Practice, now: std::time::SystemTime) -> Result<Self, Error> {
        let ts = Timestamp::try_from(now)
            .map_err(|e| Error::internal(format!("clock out of range: {e}")))?;
        Ok(Self {
            ts: ts.as_second(),
            local: practice.tz.to_datetime(ts),
        })
    }

    pub fn today(&self) -> Date {
        self.local.date()
    }
}

/// A booked or requested interval: civil start plus absolute bounds in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: DateTime,
    pub start_ts: i64,
    pub end_ts: i64,
}

impl Interval {
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start_ts < other.end_ts && other.start_ts < self.end_ts
    }

    pub fn minutes(&self) -> i64 {
        (self.end_ts - self.start_ts) / 60
    }

    /// The absolute 5-minute units the interval touches, as the unix minute each starts at
    /// (a multiple of [`UNIT_MINUTES`]). Independent of the slot grid and opening times, so
    /// bookings made under any config collide; absolute, so they stay right across DST.
    pub fn units(&self) -> Vec<i64> {
        let unit = UNIT_MINUTES * 60;
        let first = self.start_ts.div_euclid(unit);
        // Rounded outwards: an interval off the unit grid still claims every unit it touches.
        let last = (self.end_ts + unit - 1).div_euclid(unit);
        (first..last).map(|u| u * UNIT_MINUTES).collect()
    }
}

fn two(b: &[u8]) -> Option<i8> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(((a - b'0') * 10 + (c - b'0')) as i8)
        }
        _ => None,
    }
}

fn ymd(b: &[u8]) -> Option<Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = b[..4]
        .iter()
        .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'));
    Date::new(year, two(&b[5..7])?, two(&b[8..10])?).ok()
}

/// "YYYY-MM-DD" as a real calendar date; `path` is the parameter's JSON pointer.
pub fn parse_date(sp: &Speaker, path: &str, s: &str) -> Result<Date, Error> {
    ymd(s.as_bytes())
        .ok_or_else(|| Error::invalid_field(path, sp.say("not-a-date", &[("given", s.into())])))
}

/// "YYYY-MM-DD HH:MM[:SS]" (or with a "T") as a real practice-local date and time.
pub fn parse_datetime(sp: &Speaker, path: &str, s: &str) -> Result<DateTime, Error> {
    let bad = || Error::invalid_field(path, sp.say("not-a-datetime", &[("given", s.into())]));
    let b = s.as_bytes();
    if !(b.len() == 16 || b.len() == 19) || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' {
        return Err(bad());
    }
    let date = ymd(&b[..10]).ok_or_else(bad)?;
    let second = if b.len() == 19 {
        if b[16] != b':' {
            return Err(bad());
        }
        two(&b[17..19]).ok_or_else(bad)?
    } else {
        0
    };
    let time = Time::new(
        two(&b[11..13]).ok_or_else(bad)?,
        two(&b[14..16]).ok_or_else(bad)?,
        second,
        0,
    )
    .map_err(|_| bad())?;
    Ok(date.to_datetime(time))
}

/// The stored form: "YYYY-MM-DD HH:MM:SS".
pub fn format_datetime(dt: DateTime) -> String {
    format!(
        "{} {:02}:{:02}:{:02}",
        format_date(dt.date()),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// A date as a receptionist says it: "Tuesday 2 December".
pub fn speak_date(sp: &Speaker, d: Date) -> String {
    let month = sp.say(&format!("month-{}", d.month()), &[]);
    sp.say(
        "speak-date",
        &[
            ("weekday", (&day_name(sp, d.weekday())).into()),
            ("day", i64::from(d.day()).into()),
            ("month", (&month).into()),
        ],
    )
}

/// A time on a date as a receptionist says it: "10:30 on Tuesday 2 December".
pub fn speak_when(sp: &Speaker, dt: DateTime) -> String {
    sp.say(
        "when",
        &[
            ("time", (&speak_time(dt)).into()),
            ("date", (&speak_date(sp, dt.date())).into()),
        ],
    )
}

pub fn speak_time(dt: DateTime) -> String {
    format!("{:02}:{:02}", dt.hour(), dt.minute())
}

pub fn minute_of_day(dt: DateTime) -> i64 {
    i64::from(dt.hour()) * 60 + i64::from(dt.minute())
}

fn at_minute(date: Date, minute: i64) -> Option<DateTime> {
    let h = i8::try_from(minute / 60).ok()?;
    let m = i8::try_from(minute % 60).ok()?;
    Time::new(h, m, 0, 0).ok().map(|t| date.to_datetime(t))
}

/// Resolves a practice-local time to unix seconds; `None` when the clocks skip it (DST gap).
/// In a fold (clocks go back) the earlier instant is used.
pub fn local_to_ts(practice: &Practice, dt: DateTime) -> Option<i64> {
    let amb = practice.tz.to_ambiguous_timestamp(dt);
    if matches!(amb.offset(), AmbiguousOffset::Gap { .. }) {
        return None;
    }
    amb.compatible().ok().map(Timestamp::as_second)
}

/// The interval of a stored appointment (no rule checks; used for conflicts).
pub fn stored_interval(practice: &Practice, start: DateTime, minutes: i64) -> Interval {
    // A stored time in a DST gap is read as the instant after the gap.
    let start_ts = local_to_ts(practice, start).unwrap_or_else(|| {
        practice
            .tz
            .to_ambiguous_timestamp(start)
            .compatible()
            .map(Timestamp::as_second)
            .unwrap_or(0)
    });
    Interval {
        start,
        start_ts,
        end_ts: start_ts.saturating_add(minutes.clamp(0, 24 * 60) * 60),
    }
}

/// A duration in minutes must be a positive multiple of the slot, at most 4 hours.
pub fn check_duration(practice: &Practice, minutes: i64) -> Result<(), Error> {
    let slot = practice.slot_minutes;
    if minutes <= 0 || minutes % slot != 0 || minutes > MAX_APPOINTMENT_MINUTES {
        return Err(Error::invalid_field(
            "/durationMinutes",
            practice.speaker.say(
                "bad-duration",
                &[
                    ("slot", slot.into()),
                    ("max", MAX_APPOINTMENT_MINUTES.into()),
                    ("minutes", minutes.into()),
                ],
            ),
        ));
    }
    Ok(())
}

/// Whether a date can still be booked at all: not past, not today when same-day booking is off.
/// Returns the message to read out when it cannot.
pub fn day_not_bookable(practice: &Practice, now: &Now, date: Date) -> Option<String> {
    let sp = &practice.speaker;
    let today = now.today();
    if date < today {
        return Some(sp.say(
            "day-passed",
            &[
                ("date", (&speak_date(sp, date)).into()),
                ("today", (&speak_date(sp, today)).into()),
            ],
        ));
    }
    if date == today && !practice.allow_same_day {
        let tomorrow = today
            .tomorrow()
            .map(|d| speak_date(sp, d))
            .unwrap_or_else(|_| sp.say("tomorrow", &[]));
        return Some(sp.say("no-same-day", &[("tomorrow", (&tomorrow).into())]));
    }
    None
}

/// Refuses dates beyond the booking horizon (`maxDaysAhead` after today). Checked before
/// any time arithmetic, so far-off dates (up to year 9999) are a 422, never an overflow.
pub fn check_horizon(practice: &Practice, now: &Now, path: &str, date: Date) -> Result<(), Error> {
    let n = practice.max_days_ahead;
    // Past the end of the calendar there is nothing further to refuse.
    let Ok(last) = now.today().checked_add(jiff::Span::new().days(n)) else {
        return Ok(());
    };
    if date > last {
        let sp = &practice.speaker;
        return Err(Error::invalid_field(
            path,
            sp.say(
                "beyond-horizon",
                &[
                    ("days", n.into()),
                    ("last", (&speak_date(sp, last)).into()),
                    ("year", (&last.year().to_string()).into()),
                ],
            ),
        ));
    }
    Ok(())
}

pub fn closed_message(practice: &Practice, date: Date) -> String {
    let sp = &practice.speaker;
    sp.say(
        "closed",
        &[
            ("days", (&days_name(sp, date.weekday())).into()),
            ("date", (&speak_date(sp, date)).into()),
            ("hours", (&practice.hours_summary()).into()),
        ],
    )
}

/// Checks a requested start and duration against every time rule and returns its interval.
/// `path` names the date-time parameter for 422 details.
pub fn check_booking(
    practice: &Practice,
    now: &Now,
    path: &str,
    start: DateTime,
    minutes: i64,
) -> Result<Interval, Error> {
    check_duration(practice, minutes)?;
    let sp = &practice.speaker;
    let date = start.date();
    // Said only when refused: the grid checks every slot of a day through here.
    let when = || speak_when(sp, start);
    // At the start of a sentence (Spanish capitalises its article there).
    let when_start = || {
        sp.say(
            "when-start",
            &[
                ("time", (&speak_time(start)).into()),
                ("date", (&speak_date(sp, date)).into()),
            ],
        )
    };
    if let Some(msg) = day_not_bookable(practice, now, date) {
        return Err(Error::invalid_field(path, msg));
    }
    check_horizon(practice, now, path, date)?;
    let Some(hours) = practice.hours(date.weekday()) else {
        return Err(Error::invalid_field(path, closed_message(practice, date)));
    };
    let m = minute_of_day(start);
    let Hours { open, close } = hours;
    let latest = close - minutes;
    let within = || {
        sp.say(
            "within",
            &[
                ("days", (&days_name(sp, date.weekday())).into()),
                ("open", (&hhmm(open)).into()),
                ("close", (&hhmm(close)).into()),
                ("minutes", minutes.into()),
                ("first", (&hhmm(open)).into()),
                ("latest", (&hhmm(latest.max(open))).into()),
            ],
        )
    };
    if m < open || m > latest {
        return Err(Error::invalid_field(
            path,
            sp.say(
                "outside-hours",
                &[
                    ("when", (&when_start()).into()),
                    ("within", (&within()).into()),
                ],
            ),
        ));
    }
    let slot = practice.slot_minutes;
    if start.second() != 0 || start.subsec_nanosecond() != 0 || (m - open) % slot != 0 {
        let before = open + (m - open) / slot * slot;
        let after = before + slot;
        let options = if after <= latest {
            sp.say(
                "either",
                &[("a", (&hhmm(before)).into()), ("b", (&hhmm(after)).into())],
            )
        } else {
            hhmm(before)
        };
        return Err(Error::invalid_field(
            path,
            sp.say(
                "off-grid",
                &[
                    ("slot", slot.into()),
                    ("open", (&hhmm(open)).into()),
                    ("start", (&speak_time(start)).into()),
                    ("options", (&options).into()),
                ],
            ),
        ));
    }
    let amb = practice.tz.to_ambiguous_timestamp(start);
    if matches!(amb.offset(), AmbiguousOffset::Gap { .. }) {
        return Err(Error::invalid_field(
            path,
            sp.say("clocks-forward", &[("when", (&when_start()).into())]),
        ));
    }
    // Fails only past the end of the calendar (year 9999): bad input, so a 422.
    let too_far =
        || Error::invalid_field(path, sp.say("too-far", &[("when", (&when_start()).into())]));
    let start_ts = amb.compatible().map_err(|_| too_far())?.as_second();
    if start_ts <= now.ts {
        return Err(Error::invalid_field(
            path,
            sp.say(
                "in-past",
                &[
                    ("when", (&when_start()).into()),
                    ("time", (&speak_time(now.local)).into()),
                    ("today", (&speak_date(sp, now.today())).into()),
                ],
            ),
        ));
    }
    let end_ts = start_ts + minutes * 60;
    let end = Timestamp::from_second(end_ts).map_err(|_| too_far())?;
    let end_local = practice.tz.to_datetime(end);
    // Minutes after the start day's midnight, so a close of 24:00 can be reached.
    let end_minute = if end_local.date() == date {
        minute_of_day(end_local)
    } else if date.tomorrow().ok() == Some(end_local.date()) {
        24 * 60 + minute_of_day(end_local)
    } else {
        i64::MAX
    };
    if end_minute > close {
        return Err(Error::invalid_field(
            path,
            sp.say(
                "ends-after-closing",
                &[
                    ("minutes", minutes.into()),
                    ("when", (&when()).into()),
                    ("within", (&within()).into()),
                ],
            ),
        ));
    }
    Ok(Interval {
        start,
        start_ts,
        end_ts,
    })
}

/// Every grid start of `date` whose whole `minutes` fit in office hours and that is still
/// in the future; empty on closed days.
pub fn grid(practice: &Practice, now: &Now, date: Date, minutes: i64) -> Vec<Interval> {
    let Some(Hours { open, close }) = practice.hours(date.weekday()) else {
        return Vec::new();
    };
    let step = usize::try_from(practice.slot_minutes).unwrap_or(30);
    (open..=close - minutes)
        .step_by(step)
        .filter_map(|m| {
            let start = at_minute(date, m)?;
            check_booking(practice, now, "/date", start, minutes).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BookingConfig;
    use jiff::civil::date;
    use serde_json::json;

    fn practice(v: serde_json::Value) -> Practice {
        serde_json::from_value::<BookingConfig>(v)
            .unwrap()
            .practice(crate::speaker("en"))
            .unwrap()
    }

    fn now_at(p: &Practice, dt: DateTime) -> Now {
        let ts = p.tz.to_timestamp(dt).unwrap();
        Now {
            ts: ts.as_second(),
            local: dt,
        }
    }

    fn message(e: Error) -> (String, Vec<String>) {
        match e {
            Error::Validation {
                message, details, ..
            } => (message, details.into_iter().map(|d| d.path).collect()),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn parses_only_real_dates_and_times() {
        assert_eq!(
            parse_datetime(&crate::speaker("en"), "/x", "2026-03-14 10:30").unwrap(),
            date(2026, 3, 14).at(10, 30, 0, 0)
        );
        assert_eq!(
            parse_datetime(&crate::speaker("en"), "/x", "2026-03-14T10:30:15").unwrap(),
            date(2026, 3, 14).at(10, 30, 15, 0)
        );
        for bad in [
            "2026-02-30 10:00",
            "tomorrow",
            "2026-03-14",
            "2026-03-14 25:00",
            "2026-03-14 10:30:",
            "2026-3-14 10:30",
            "2026-03-14 10:30Z",
            "",
        ] {
            let (_, paths) =
                message(parse_datetime(&crate::speaker("en"), "/AptDateTime", bad).unwrap_err());
            assert_eq!(paths, vec!["/AptDateTime"], "{bad}");
        }
        assert!(parse_date(&crate::speaker("en"), "/date", "2028-02-29").is_ok());
        assert!(parse_date(&crate::speaker("en"), "/date", "2027-02-29").is_err());
        assert!(parse_date(&crate::speaker("en"), "/date", "+2027-02-2").is_err());
    }

    #[test]
    fn speaks_dates() {
        assert_eq!(
            speak_date(&crate::speaker("en"), date(2025, 12, 2)),
            "Tuesday 2 December"
        );
        let es = &crate::speaker("es-US");
        assert_eq!(speak_date(es, date(2025, 12, 2)), "martes 2 de diciembre");
        assert_eq!(
            speak_when(es, date(2025, 12, 2).at(10, 30, 0, 0)),
            "el martes 2 de diciembre a las 10:30"
        );
        assert_eq!(
            format_datetime(date(2025, 12, 2).at(9, 5, 0, 0)),
            "2025-12-02 09:05:00"
        );
    }

    #[test]
    fn office_hours_and_grid() {
        let p = practice(json!({}));
        let now = now_at(&p, date(2025, 12, 1).at(9, 0, 0, 0));
        let ok = check_booking(&p, &now, "/t", date(2025, 12, 2).at(16, 30, 0, 0), 30).unwrap();
        assert_eq!(ok.minutes(), 30);

        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 2).at(16, 30, 0, 0), 60).unwrap_err(),
        );
        assert!(msg.contains("can start from 08:00 to 16:00"), "{msg}");
        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 2).at(7, 30, 0, 0), 30).unwrap_err(),
        );
        assert!(msg.contains("outside office hours"), "{msg}");
        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 2).at(10, 15, 0, 0), 30).unwrap_err(),
        );
        assert!(msg.contains("nearest are 10:00 or 10:30"), "{msg}");
        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 6).at(10, 0, 0, 0), 30).unwrap_err(),
        );
        assert!(
            msg.contains("closed on Saturdays") && msg.contains("Monday to Friday 08:00 to 17:00"),
            "{msg}"
        );
        let (_, paths) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 2).at(10, 0, 0, 0), 45).unwrap_err(),
        );
        assert_eq!(paths, vec!["/durationMinutes"]);
        assert!(check_booking(&p, &now, "/t", date(2025, 12, 2).at(10, 0, 0, 0), 270).is_err());
    }

    #[test]
    fn past_and_same_day() {
        let p = practice(json!({}));
        let now = now_at(&p, date(2025, 12, 2).at(11, 10, 0, 0));
        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 2).at(11, 0, 0, 0), 30).unwrap_err(),
        );
        assert!(msg.contains("in the past"), "{msg}");
        assert!(check_booking(&p, &now, "/t", date(2025, 12, 2).at(11, 30, 0, 0), 30).is_ok());
        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(2025, 12, 1).at(11, 30, 0, 0), 30).unwrap_err(),
        );
        assert!(msg.contains("already passed"), "{msg}");

        let strict = practice(json!({"allowSameDayBooking": false}));
        let (msg, _) = message(
            check_booking(&strict, &now, "/t", date(2025, 12, 2).at(15, 0, 0, 0), 30).unwrap_err(),
        );
        assert!(
            msg.contains("earliest bookable day is tomorrow, Wednesday 3 December"),
            "{msg}"
        );
        assert!(check_booking(&strict, &now, "/t", date(2025, 12, 3).at(8, 0, 0, 0), 30).is_ok());
    }

    #[test]
    fn dst_spring_forward_skips_missing_times() {
        // 2026-03-08: New York clocks jump from 02:00 to 03:00.
        let p = practice(json!({"officeHours": {"sun": {"open": "00:00", "close": "04:00"}}}));
        let now = now_at(&p, date(2026, 3, 1).at(9, 0, 0, 0));
        let day = date(2026, 3, 8);
        let starts: Vec<String> = grid(&p, &now, day, 60)
            .iter()
            .map(|i| speak_time(i.start))
            .collect();
        assert_eq!(starts, ["00:00", "00:30", "01:00", "01:30", "03:00"]);
        let (msg, _) = message(check_booking(&p, &now, "/t", day.at(2, 30, 0, 0), 30).unwrap_err());
        assert!(msg.contains("clocks go forward"), "{msg}");
        // 01:30 for an hour really lasts an hour and covers the 03:00 unit.
        let i = check_booking(&p, &now, "/t", day.at(1, 30, 0, 0), 60).unwrap();
        assert_eq!(i.minutes(), 60);
        let three = check_booking(&p, &now, "/t", day.at(3, 0, 0, 0), 30).unwrap();
        assert!(i.overlaps(&three));
        // ...and claims the same absolute 5-minute units as 03:00 (12 real units in all).
        let units = i.units();
        assert_eq!(units.len(), 12);
        assert!(units.windows(2).all(|w| w[1] - w[0] == 5));
        assert_eq!(units[6], three.units()[0]);
    }

    #[test]
    fn dst_fall_back_keeps_intervals_absolute() {
        // 2026-11-01: New York clocks go back from 02:00 to 01:00; 01:xx means the first one.
        let p = practice(json!({"officeHours": {"sun": {"open": "00:00", "close": "04:00"}}}));
        let now = now_at(&p, date(2026, 10, 30).at(9, 0, 0, 0));
        let slots = grid(&p, &now, date(2026, 11, 1), 30);
        assert_eq!(slots.len(), 8);
        assert!(slots.iter().all(|s| s.minutes() == 30));
        assert!(slots.windows(2).all(|w| !w[0].overlaps(&w[1])));
        let first_half = slots[3];
        assert_eq!(speak_time(first_half.start), "01:30");
        // 01:30 EDT is 05:30 UTC.
        assert_eq!(first_half.start_ts % 86_400, 5 * 3600 + 1800);
    }

    #[test]
    fn an_office_open_until_midnight_can_book_the_last_slot() {
        let p = practice(json!({"officeHours": {"fri": {"open": "18:00", "close": "24:00"}}}));
        let now = now_at(&p, date(2025, 12, 1).at(9, 0, 0, 0));
        let last = check_booking(&p, &now, "/t", date(2025, 12, 5).at(23, 30, 0, 0), 30);
        assert_eq!(last.unwrap().minutes(), 30);
        assert!(check_booking(&p, &now, "/t", date(2025, 12, 5).at(23, 30, 0, 0), 60).is_err());
        assert_eq!(grid(&p, &now, date(2025, 12, 5), 30).len(), 12);
    }

    #[test]
    fn units_are_absolute_five_minute_unix_minutes() {
        let i = Interval {
            start: date(2025, 12, 2).at(10, 0, 0, 0),
            start_ts: 600,
            end_ts: 600 + 1800,
        };
        assert_eq!(i.units(), vec![10, 15, 20, 25, 30, 35]);
        // Off the grid: every touched unit is claimed.
        let odd = Interval {
            start_ts: 660,
            end_ts: 660 + 600,
            ..i
        };
        assert_eq!(odd.units(), vec![10, 15, 20]);
        let longest = Interval {
            start_ts: 0,
            end_ts: MAX_APPOINTMENT_MINUTES * 60,
            ..i
        };
        assert_eq!(longest.units().len(), 48);
    }

    #[test]
    fn the_horizon_refuses_far_dates_without_overflow() {
        let p = practice(json!({"maxDaysAhead": 30}));
        let now = now_at(&p, date(2025, 12, 1).at(9, 0, 0, 0));
        assert!(check_booking(&p, &now, "/t", date(2025, 12, 31).at(10, 0, 0, 0), 30).is_ok());
        let (msg, paths) = message(
            check_booking(&p, &now, "/t", date(2026, 1, 2).at(10, 0, 0, 0), 30).unwrap_err(),
        );
        assert!(
            msg.starts_with("We can only book up to 30 days ahead"),
            "{msg}"
        );
        assert_eq!(paths, ["/t"]);
        // The last day of the calendar, in a zone behind UTC and one ahead of it.
        for tz in ["America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"] {
            let p = practice(
                json!({"timeZone": tz, "officeHours": {"fri": {"open": "00:00", "close": "24:00"}}}),
            );
            let now = now_at(&p, date(2025, 12, 1).at(9, 0, 0, 0));
            let end = date(9999, 12, 31).at(23, 30, 0, 0);
            message(check_booking(&p, &now, "/t", end, 30).unwrap_err());
            assert!(check_horizon(&p, &now, "/t", date(9999, 12, 31)).is_err());
            assert!(grid(&p, &now, date(9999, 12, 31), 30).is_empty());
        }
        // A clock at the end of the calendar: no horizon left to apply, still a 422.
        let p = practice(json!({"timeZone": "Etc/GMT+12", "maxDaysAhead": 730,
            "officeHours": {"thu": {"open": "00:00", "close": "24:00"}}}));
        let now = now_at(&p, date(9999, 12, 29).at(9, 0, 0, 0));
        let (msg, _) = message(
            check_booking(&p, &now, "/t", date(9999, 12, 30).at(23, 30, 0, 0), 30).unwrap_err(),
        );
        assert!(msg.contains("too far ahead"), "{msg}");
    }
}
