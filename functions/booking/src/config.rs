//! The instance configuration: parsed from the effective config on every call, then checked
//! into a [`Practice`] the rules can use without further failure paths.

use std::collections::BTreeMap;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use serde::Deserialize;
use switchboard::{Detail, Error, Speaker};

/// The config as written in `config_schema` (camelCase keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingConfig {
    #[serde(default)]
    pub practice_name: String,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default = "default_office_hours")]
    pub office_hours: BTreeMap<String, Option<HoursConfig>>,
    #[serde(default = "default_slot_minutes")]
    pub slot_minutes: i64,
    #[serde(default = "default_slot_minutes")]
    pub default_appointment_minutes: i64,
    #[serde(default = "yes")]
    pub allow_same_day_booking: bool,
    #[serde(default)]
    pub require_patient_consent: bool,
    #[serde(default = "default_max_days_ahead")]
    pub max_days_ahead: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    pub open: String,
    pub close: String,
}

fn default_time_zone() -> String {
    "America/New_York".to_owned()
}

fn default_slot_minutes() -> i64 {
    30
}

fn default_max_days_ahead() -> i64 {
    365
}

fn yes() -> bool {
    true
}

fn default_office_hours() -> BTreeMap<String, Option<HoursConfig>> {
    DAY_KEYS
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let hours = (i < 5).then(|| HoursConfig {
                open: "08:00".to_owned(),
                close: "17:00".to_owned(),
            });
            ((*k).to_owned(), hours)
        })
        .collect()
}

/// Config keys of the days, Monday first (jiff's monday-zero offset).
pub const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Longest appointment the rules accept, in minutes: its claims (two per 5-minute unit,
/// one more unit when not aligned) must fit one all-or-nothing batch.
pub const MAX_APPOINTMENT_MINUTES: i64 = 240;

/// Slot claims cover fixed absolute units of this many minutes, whatever the slot grid.
pub const UNIT_MINUTES: i64 = 5;

const _: () = assert!(
    2 * (MAX_APPOINTMENT_MINUTES / UNIT_MINUTES + 1)
        <= switchboard::ports::MAX_TRANSACT_ITEMS as i64
);

/// Longest booking horizon a config may set, in days.
pub const MAX_DAYS_AHEAD: i64 = 730;

/// One day's opening hours as minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub open: i64,
    pub close: i64,
}

/// The checked config.
#[derive(Debug, Clone)]
pub struct Practice {
    pub name: String,
    pub tz: TimeZone,
    pub tz_name: String,
    hours: [Option<Hours>; 7],
    pub slot_minutes: i64,
    pub default_minutes: i64,
    pub allow_same_day: bool,
    pub require_consent: bool,
    /// How many days after today can still be booked.
    pub max_days_ahead: i64,
    /// The call's messages in its language.
    pub speaker: Speaker,
}

fn invalid(path: &str, message: String) -> Error {
    Error::Validation {
        code: "invalid_config",
        message: format!("the booking instance's config is invalid: {message}"),
        details: vec![Detail::new(path, message)],
    }
}

/// Parses "HH:MM" (24-hour) into minutes after midnight; "24:00" is allowed as a close time.
pub fn parse_hhmm(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let digits = [b[0], b[1], b[3], b[4]];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let h = i64::from(digits[0] - b'0') * 10 + i64::from(digits[1] - b'0');
    let m = i64::from(digits[2] - b'0') * 10 + i64::from(digits[3] - b'0');
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Minutes after midnight as "HH:MM".
pub fn hhmm(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// "Tuesday" in the call's language (`day-2`).
pub fn day_name(sp: &Speaker, day: Weekday) -> String {
    sp.say(&format!("day-{}", day_index(day) + 1), &[])
}

/// "Tuesdays" (`days-2`): "closed on Tuesdays".
pub fn days_name(sp: &Speaker, day: Weekday) -> String {
    sp.say(&format!("days-{}", day_index(day) + 1), &[])
}

fn day_index(day: Weekday) -> usize {
    // to_monday_zero_offset is 0..=6.
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

impl BookingConfig {
    /// Checks the time zone, hours and durations; any problem is a 422 `invalid_config`.
    /// The practice's messages are said by `speaker` (the call's language).
    pub fn practice(self, speaker: Speaker) -> Result<Practice, Error> {
        let tz = TimeZone::get(&self.time_zone).map_err(|e| {
            invalid(
                "/timeZone",
                format!("'{}' is not a known IANA time zone ({e})", self.time_zone),
            )
        })?;
        let mut hours = [None; 7];
        for (key, value) in &self.office_hours {
            let Some(i) = DAY_KEYS.iter().position(|k| k == key) else {
                return Err(invalid(
                    &format!("/officeHours/{key}"),
                    format!("'{key}' is not a day; use mon, tue, wed, thu, fri, sat or sun"),
                ));
            };
            let Some(h) = value else { continue };
            let at = |field: &str| format!("/officeHours/{key}/{field}");
            let open = parse_hhmm(&h.open)
                .filter(|m| *m < 24 * 60)
                .ok_or_else(|| {
                    invalid(
                        &at("open"),
                        format!("'{}' is not a time in HH:MM form", h.open),
                    )
                })?;
            let close = parse_hhmm(&h.close).ok_or_else(|| {
                invalid(
                    &at("close"),
                    format!("'{}' is not a time in HH:MM form", h.close),
                )
            })?;
            // Starts must fall on the claim units, whatever the slot length.
            for (field, value, m) in [("open", &h.open, open), ("close", &h.close, close)] {
                if m % UNIT_MINUTES != 0 {
                    return Err(invalid(
                        &at(field),
                        format!("'{value}' is not on a {UNIT_MINUTES}-minute boundary"),
                    ));
                }
            }
            if close <= open {
                return Err(invalid(
                    &at("close"),
                    format!(
                        "closing time {} is not after opening time {}",
                        h.close, h.open
                    ),
                ));
            }
            hours[i] = Some(Hours { open, close });
        }
        if !(5..=120).contains(&self.slot_minutes) || self.slot_minutes % UNIT_MINUTES != 0 {
            return Err(invalid(
                "/slotMinutes",
                format!(
                    "slotMinutes must be a multiple of {UNIT_MINUTES} from 5 to 120, not {}",
                    self.slot_minutes
                ),
            ));
        }
        if !(1..=MAX_DAYS_AHEAD).contains(&self.max_days_ahead) {
            return Err(invalid(
                "/maxDaysAhead",
                format!(
                    "maxDaysAhead must be 1 to {MAX_DAYS_AHEAD}, not {}",
                    self.max_days_ahead
                ),
            ));
        }
        let d = self.default_appointment_minutes;
        if d <= 0 || d % self.slot_minutes != 0 || d > MAX_APPOINTMENT_MINUTES {
            return Err(invalid(
                "/defaultAppointmentMinutes",
                format!(
                    "defaultAppointmentMinutes must be a multiple of slotMinutes ({}) up to {MAX_APPOINTMENT_MINUTES}, not {d}",
                    self.slot_minutes
                ),
            ));
        }
        Ok(Practice {
            name: self.practice_name,
            tz,
            tz_name: self.time_zone,
            hours,
            slot_minutes: self.slot_minutes,
            default_minutes: d,
            allow_same_day: self.allow_same_day_booking,
            require_consent: self.require_patient_consent,
            max_days_ahead: self.max_days_ahead,
            speaker,
        })
    }
}

impl Practice {
    pub fn hours(&self, day: Weekday) -> Option<Hours> {
        self.hours[day_index(day)]
    }

    /// The week's hours for reading aloud, grouping equal consecutive days:
    /// "Monday to Friday 08:00 to 17:00".
    pub fn hours_summary(&self) -> String {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < 7 {
            let Some(h) = self.hours[i] else {
                i += 1;
                continue;
            };
            let mut j = i;
            while j + 1 < 7 && self.hours[j + 1] == Some(h) {
                j += 1;
            }
            let sp = &self.speaker;
            let name = |k: usize| sp.say(&format!("day-{}", k + 1), &[]);
            let days = if i == j {
                name(i)
            } else {
                sp.say(
                    "day-range",
                    &[("first", (&name(i)).into()), ("last", (&name(j)).into())],
                )
            };
            parts.push(sp.say(
                "hours-span",
                &[
                    ("days", (&days).into()),
                    ("open", (&hhmm(h.open)).into()),
                    ("close", (&hhmm(h.close)).into()),
                ],
            ));
            i = j + 1;
        }
        if parts.is_empty() {
            self.speaker.say("no-hours", &[])
        } else {
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn practice(v: serde_json::Value) -> Result<Practice, Error> {
        serde_json::from_value::<BookingConfig>(v)
            .unwrap()
            .practice(crate::speaker("en"))
    }

    #[test]
    fn defaults_are_weekdays_eight_to_five() {
        let p = practice(json!({})).unwrap();
        assert_eq!(p.hours_summary(), "Monday to Friday 08:00 to 17:00");
        let es = serde_json::from_value::<BookingConfig>(json!({"officeHours": {
            "mon": {"open": "08:00", "close": "17:00"}, "tue": {"open": "08:00", "close": "17:00"},
            "sat": {"open": "09:00", "close": "13:00"}}}))
        .unwrap()
        .practice(crate::speaker("es-US"))
        .unwrap();
        assert_eq!(
            es.hours_summary(),
            "de lunes a martes de 08:00 a 17:00; sábado de 09:00 a 13:00"
        );
        assert_eq!(p.hours(Weekday::Saturday), None);
        assert_eq!(p.slot_minutes, 30);
        assert_eq!(p.tz_name, "America/New_York");
        assert_eq!(p.max_days_ahead, 365);
    }

    #[test]
    fn hhmm_parsing_is_strict() {
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        for bad in ["8:30", "08:60", "25:00", "08-30", "0830", "08:3a", "٠٨:٣٠"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }

    fn config_error(v: serde_json::Value) -> (String, String) {
        match practice(v) {
            Err(Error::Validation { code, details, .. }) => {
                (code.to_owned(), details[0].path.clone())
            }
            other => panic!("expected invalid_config, got {other:?}"),
        }
    }

    #[test]
    fn bad_config_is_invalid_config() {
        assert_eq!(
            config_error(json!({"timeZone": "Mars/Olympus"})),
            ("invalid_config".into(), "/timeZone".into())
        );
        assert_eq!(
            config_error(json!({"officeHours": {"mon": {"open": "9am", "close": "17:00"}}})).1,
            "/officeHours/mon/open"
        );
        assert_eq!(
            config_error(json!({"officeHours": {"tue": {"open": "17:00", "close": "09:00"}}})).1,
            "/officeHours/tue/close"
        );
        assert_eq!(
            config_error(json!({"officeHours": {"monday": null}})).1,
            "/officeHours/monday"
        );
        assert_eq!(config_error(json!({"slotMinutes": 3})).1, "/slotMinutes");
        assert_eq!(config_error(json!({"slotMinutes": 12})).1, "/slotMinutes");
        assert_eq!(
            config_error(json!({"officeHours": {"mon": {"open": "08:03", "close": "17:00"}}})).1,
            "/officeHours/mon/open"
        );
        assert_eq!(
            config_error(json!({"officeHours": {"mon": {"open": "08:00", "close": "16:58"}}})).1,
            "/officeHours/mon/close"
        );
        assert_eq!(config_error(json!({"maxDaysAhead": 0})).1, "/maxDaysAhead");
        assert_eq!(
            config_error(json!({"maxDaysAhead": 731})).1,
            "/maxDaysAhead"
        );
        assert_eq!(
            config_error(json!({"slotMinutes": 20, "defaultAppointmentMinutes": 30})).1,
            "/defaultAppointmentMinutes"
        );
    }
}
