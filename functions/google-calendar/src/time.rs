//! The instance's calendar settings, office hours, the slot grid and instants. Local times are
//! in the configured time zone; every interval is also in unix seconds, so overlaps stay
//! right across daylight-saving changes. Pure functions of the config, tested without a server.

use std::collections::BTreeMap;
use std::time::SystemTime;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use serde::Deserialize;
use switchboard::{CallContext, Error, Speaker};

/// An interval in unix seconds, end excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The config as written in `config_schema` (the default config fills every key).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    calendar_id: String,
    time_zone: String,
    slot_minutes: i64,
    event_title: String,
    #[serde(default)]
    office_hours: BTreeMap<String, Vec<String>>,
}

/// The instance's calendar, with its time zone resolved.
pub struct Calendar {
    pub id: String,
    pub zone_name: String,
    pub title: String,
    tz: TimeZone,
    slot: i64,
    hours: BTreeMap<String, Vec<String>>,
    /// The call's messages in its language.
    pub speaker: Speaker,
}

fn day_key(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

pub fn unix(t: SystemTime) -> Result<i64, Error> {
    Timestamp::try_from(t)
        .map(|ts| ts.as_second())
        .map_err(|e| Error::internal(format!("the clock is out of range: {e}")))
}

fn timestamp(ts: i64) -> Result<Timestamp, Error> {
    Timestamp::from_second(ts).map_err(|_| Error::unprocessable("the time is out of range"))
}

/// UTC RFC 3339, as the Calendar API takes it ("2027-06-01T14:00:00Z").
pub fn rfc3339(ts: i64) -> Result<String, Error> {
    timestamp(ts).map(|t| t.to_string())
}

/// An RFC 3339 instant from the Calendar API.
pub fn parse_instant(s: &str) -> Option<i64> {
    s.parse::<Timestamp>().ok().map(|t| t.as_second())
}

pub fn parse_date(speaker: &Speaker, s: &str, at: &str) -> Result<Date, Error> {
    s.parse::<Date>()
        .map_err(|_| Error::invalid_field(at, speaker.say("not-a-date", &[("given", s.into())])))
}

fn parse_local(speaker: &Speaker, s: &str, at: &str) -> Result<DateTime, Error> {
    DateTime::strptime("%Y-%m-%d %H:%M", s.replacen('T', " ", 1)).map_err(|_| {
        Error::invalid_field(at, speaker.say("not-a-local-time", &[("given", s.into())]))
    })
}

fn hhmm(s: &str) -> Option<(i8, i8)> {
    let (h, m) = s.split_once(':')?;
    let (h, m) = (h.parse::<i8>().ok()?, m.parse::<i8>().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m) && (h < 24 || m == 0)).then_some((h, m))
}

impl Calendar {
    pub fn from_context(ctx: &CallContext) -> Result<Self, Error> {
        let c: Config = ctx.config()?;
        let tz = TimeZone::get(&c.time_zone).map_err(|_| {
            Error::invalid_config(
                "/config/timeZone",
                format!(
                    "'{}' is not an IANA time zone, e.g. America/New_York",
                    c.time_zone
                ),
            )
        })?;
        Ok(Self {
            id: c.calendar_id,
            zone_name: c.time_zone,
            title: c.event_title,
            tz,
            slot: c.slot_minutes * 60,
            hours: c.office_hours,
            speaker: ctx.speaker(),
        })
    }

    /// The instant of a local time; `None` in a daylight-saving gap.
    fn instant(&self, dt: DateTime) -> Result<Option<i64>, Error> {
        let amb = self.tz.to_ambiguous_timestamp(dt);
        if matches!(amb.offset(), AmbiguousOffset::Gap { .. }) {
            return Ok(None);
        }
        amb.compatible()
            .map(|t| Some(t.as_second()))
            .map_err(|_| Error::unprocessable(self.speaker.say("out-of-range", &[])))
    }

    /// The instant of a local time; a time the clocks skip is read as the same time after
    /// the change (02:30 on a spring-forward night is 03:30), a repeated one as its later
    /// occurrence.
    fn at_or_after(&self, dt: DateTime) -> Result<i64, Error> {
        self.tz
            .to_ambiguous_timestamp(dt)
            .later()
            .map(|t| t.as_second())
            .map_err(|_| Error::unprocessable(self.speaker.say("out-of-range", &[])))
    }

    /// The day's opening windows in order; none when closed.
    pub fn windows(&self, date: Date) -> Result<Vec<Span>, Error> {
        let key = day_key(date.weekday());
        let at = format!("/config/officeHours/{key}");
        let mut out = Vec::new();
        for w in self.hours.get(key).into_iter().flatten() {
            let bad = || {
                Error::invalid_config(
                    &at,
                    format!("'{w}' is not an opening window like 09:00-17:00"),
                )
            };
            let (open, close) = w.split_once('-').ok_or_else(bad)?;
            let ((oh, om), (ch, cm)) = (hhmm(open).ok_or_else(bad)?, hhmm(close).ok_or_else(bad)?);
            if (oh, om) >= (ch, cm) || oh == 24 {
                return Err(bad());
            }
            let start = self.at_or_after(date.at(oh, om, 0, 0))?;
            let end = if ch == 24 {
                let next = date.tomorrow().map_err(|_| {
                    Error::unprocessable(self.speaker.say("date-out-of-range", &[]))
                })?;
                self.at_or_after(next.at(0, 0, 0, 0))?
            } else {
                self.at_or_after(date.at(ch, cm, 0, 0))?
            };
            out.push(Span { start, end });
        }
        out.sort_by_key(|s| s.start);
        // Overlapping windows would put two grids, and two slots, on one time.
        if out.windows(2).any(|w| w[1].start < w[0].end) {
            return Err(Error::invalid_config(
                &at,
                "the opening windows overlap; list each time once, e.g. [\"09:00-12:00\", \"13:00-17:00\"]",
            ));
        }
        Ok(out)
    }

    /// The whole local day.
    pub fn day(&self, date: Date) -> Result<(i64, i64), Error> {
        let next = date
            .tomorrow()
            .map_err(|_| Error::unprocessable(self.speaker.say("date-out-of-range", &[])))?;
        Ok((
            self.at_or_after(date.at(0, 0, 0, 0))?,
            self.at_or_after(next.at(0, 0, 0, 0))?,
        ))
    }

    /// Every slot of the windows: from each window's start, one slot length apart.
    pub fn slots(&self, windows: &[Span]) -> Vec<Span> {
        let mut out = Vec::new();
        for w in windows {
            let mut t = w.start;
            while t + self.slot <= w.end {
                out.push(Span {
                    start: t,
                    end: t + self.slot,
                });
                t += self.slot;
            }
        }
        out
    }

    /// The slot a requested local start names, if the rules allow booking it: in the
    /// future, within office hours, on the grid.
    pub fn bookable(&self, start: &str, at: &str, now: i64) -> Result<Span, Error> {
        let dt = parse_local(&self.speaker, start, at)?;
        let Some(ts) = self.instant(dt)? else {
            return Err(Error::invalid_field(
                at,
                self.speaker.say(
                    "clocks-forward",
                    &[("start", start.into()), ("zone", (&self.zone_name).into())],
                ),
            ));
        };
        if ts <= now {
            return Err(Error::invalid_field(
                at,
                self.speaker.say("has-passed", &[("start", start.into())]),
            ));
        }
        let slot = Span {
            start: ts,
            end: ts + self.slot,
        };
        if self.slots(&self.windows(dt.date())?).contains(&slot) {
            return Ok(slot);
        }
        let day = day_key(dt.date().weekday());
        let hours = match self.hours.get(day).filter(|h| !h.is_empty()) {
            Some(h) => h.join(", "),
            None => self.speaker.say("closed", &[]),
        };
        Err(Error::invalid_field(
            at,
            self.speaker.say(
                "not-bookable",
                &[
                    ("start", start.into()),
                    ("minutes", (self.slot / 60).into()),
                    ("day", day.into()),
                    ("hours", (&hours).into()),
                ],
            ),
        ))
    }

    /// `ts` as an instant, or a 422 in the call's language past the calendar's end.
    fn timestamp(&self, ts: i64) -> Result<Timestamp, Error> {
        Timestamp::from_second(ts)
            .map_err(|_| Error::unprocessable(self.speaker.say("out-of-range", &[])))
    }

    pub fn local(&self, ts: i64) -> Result<String, Error> {
        Ok(self
            .tz
            .to_datetime(self.timestamp(ts)?)
            .strftime("%Y-%m-%d %H:%M")
            .to_string())
    }

    pub fn local_hhmm(&self, ts: i64) -> Result<String, Error> {
        Ok(self
            .tz
            .to_datetime(self.timestamp(ts)?)
            .strftime("%H:%M")
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cal(hours: &[(&str, &[&str])]) -> Calendar {
        Calendar {
            id: "primary".into(),
            zone_name: "America/New_York".into(),
            title: "Appointment".into(),
            tz: TimeZone::get("America/New_York").unwrap(),
            slot: 30 * 60,
            hours: hours
                .iter()
                .map(|(d, h)| ((*d).to_owned(), h.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            speaker: Speaker::new(
                Some(std::sync::Arc::new(
                    switchboard::i18n::Messages::new(crate::LOCALES).unwrap(),
                )),
                "en",
            ),
        }
    }

    #[test]
    fn slots_follow_each_window_in_local_time_across_dst() {
        let c = cal(&[
            ("tue", &["09:00-10:00", "13:00-14:00"]),
            ("sun", &["01:00-04:00"]),
        ]);
        // Tuesday 1 June 2027, New York on EDT (UTC-4).
        let w = c.windows(date(2027, 6, 1)).unwrap();
        let slots: Vec<String> = c
            .slots(&w)
            .iter()
            .map(|s| c.local_hhmm(s.start).unwrap())
            .collect();
        assert_eq!(slots, ["09:00", "09:30", "13:00", "13:30"]);
        assert_eq!(rfc3339(w[0].start).unwrap(), "2027-06-01T13:00:00Z");
        // 14 March 2027: 02:00-03:00 does not exist; the window is two hours long.
        let w = c.windows(date(2027, 3, 14)).unwrap();
        assert_eq!(w[0].end - w[0].start, 2 * 3600);
        assert!(c.windows(date(2027, 6, 2)).unwrap().is_empty());
    }

    #[test]
    fn only_future_starts_on_the_grid_within_hours_are_bookable() {
        let c = cal(&[("tue", &["09:00-17:00"])]);
        let now = parse_instant("2027-06-01T12:00:00Z").unwrap(); // 08:00 local
        let ok = c.bookable("2027-06-01 10:00", "/start", now).unwrap();
        assert_eq!(
            (ok.end - ok.start, c.local(ok.start).unwrap()),
            (1800, "2027-06-01 10:00".into())
        );
        assert!(c.bookable("2027-06-01T16:30", "/start", now).is_ok());
        for bad in [
            "2027-06-01 10:15",
            "2027-06-01 17:00",
            "2027-06-02 10:00",
            "2027-06-01 25:00",
            "tomorrow",
        ] {
            let e = c.bookable(bad, "/start", now).unwrap_err();
            assert_eq!(
                (
                    e.status(),
                    e.to_body()["error"]["details"][0]["path"].as_str()
                ),
                (422, Some("/start")),
                "{bad}"
            );
        }
        let later = parse_instant("2027-06-01T15:00:00Z").unwrap(); // 11:00 local
        assert!(
            c.bookable("2027-06-01 10:00", "/start", later)
                .unwrap_err()
                .to_string()
                .contains("has passed")
        );
    }

    #[test]
    fn a_malformed_window_names_its_setting() {
        let c = cal(&[("tue", &["17:00-09:00"])]);
        let e = c.windows(date(2027, 6, 1)).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "invalid_config"));
        assert_eq!(
            e.to_body()["error"]["details"][0]["path"],
            "/config/officeHours/tue"
        );
        let c = cal(&[("tue", &["20:00-24:00"])]);
        let w = c.windows(date(2027, 6, 1)).unwrap();
        assert_eq!(w[0].end - w[0].start, 4 * 3600);
        let c = cal(&[("tue", &["09:00-12:00", "10:15-13:00"])]);
        let e = c.windows(date(2027, 6, 1)).unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
    }
}
