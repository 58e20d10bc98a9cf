//! Appointment handlers: availability, booking, rescheduling and cancelling.
//!
//! Double booking is refused twice: first from the day's Scheduled appointments (for a
//! precise message), then atomically by the slot claims of `claims`. Changes act only on
//! what was read: appointment updates are conditional writes, so a request that lost a race
//! changes nothing it does not own.

use std::collections::BTreeSet;

use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::{CallContext, Condition, DataAdapter, DataError, Error, Op as CmpOp, Speaker};

use crate::claims::{
    PENDING, claim, claim_ids, claim_records, own_claims, release, release_as_read,
    surely_not_written,
};
use crate::config::{BookingConfig, Practice};
use crate::patients::no_patient;
use crate::records::{
    APPOINTMENTS, Appointment, BROKEN, OPERATORIES, Operatory, PATIENTS, PROVIDERS, Provider,
    SCHEDULED, SLOT_CLAIMS, all_numbered, create_numbered, entity, get_numbered, int_field,
    parse_appointments, patient_name, record_id, str_field, with_number,
};
use crate::rules::{
    Interval, Now, check_booking, check_duration, check_horizon, closed_message, day_not_bookable,
    format_date, format_datetime, grid, parse_date, parse_datetime, speak_date, speak_when,
};

pub(crate) struct Call {
    pub practice: Practice,
    pub now: Now,
}

impl Call {
    fn new(ctx: &CallContext) -> Result<Self, Error> {
        let practice = ctx.config::<BookingConfig>()?.practice(ctx.speaker())?;
        let now = Now::new(&practice, ctx.now)?;
        Ok(Self { practice, now })
    }
}

impl Call {
    /// The plugin's message `id` in the call's language.
    pub(crate) fn say(&self, id: &str, args: &[(&str, switchboard::i18n::Arg<'_>)]) -> String {
        self.practice.speaker.say(id, args)
    }

    /// "Offer another time; …", said after a time that cannot be booked.
    pub(crate) fn another_time(&self) -> String {
        self.say("another-time", &[])
    }
}

pub(crate) fn when(sp: &Speaker, i: &Interval) -> String {
    speak_when(sp, i.start)
}

async fn provider(sp: &Speaker, data: &dyn DataAdapter, n: i64) -> Result<Provider, Error> {
    let r = get_numbered(data, PROVIDERS, "ProvNum", n, || {
        sp.say("no-provider", &[("n", n.into())])
    })
    .await?;
    Provider::from_record(&r).ok_or_else(|| Error::internal(format!("provider {n} is unreadable")))
}

async fn providers(data: &dyn DataAdapter) -> Result<Vec<Provider>, Error> {
    Ok(all_numbered(data, PROVIDERS, "ProvNum")
        .await?
        .iter()
        .filter_map(Provider::from_record)
        .collect())
}

async fn operatories(data: &dyn DataAdapter) -> Result<Vec<Operatory>, Error> {
    Ok(all_numbered(data, OPERATORIES, "OperatoryNum")
        .await?
        .iter()
        .filter_map(Operatory::from_record)
        .collect())
}

fn no_operatory(sp: &Speaker, n: i64) -> Error {
    Error::not_found(sp.say("no-operatory", &[("n", n.into())]))
}

async fn patient(sp: &Speaker, data: &dyn DataAdapter, n: i64) -> Result<Value, Error> {
    get_numbered(data, PATIENTS, "PatNum", n, || no_patient(sp, n)).await
}

fn no_appointment(sp: &Speaker, n: i64) -> String {
    sp.say("no-appointment", &[("n", n.into())])
}

async fn appointment(call: &Call, data: &dyn DataAdapter, n: i64) -> Result<Appointment, Error> {
    let sp = &call.practice.speaker;
    let r = get_numbered(data, APPOINTMENTS, "AptNum", n, || no_appointment(sp, n)).await?;
    Appointment::from_record(&call.practice, r)
        .ok_or_else(|| Error::internal(format!("appointment {n} is unreadable")))
}

/// The Scheduled appointments of one practice-local date.
async fn day_scheduled(
    call: &Call,
    data: &dyn DataAdapter,
    date: Date,
) -> Result<Vec<Appointment>, Error> {
    let records = data
        .query(
            &entity(APPOINTMENTS)?,
            &[Condition::eq("AptDate", format_date(date))],
        )
        .await?;
    Ok(parse_appointments(&call.practice, records)
        .into_iter()
        .filter(Appointment::is_scheduled)
        .collect())
}

fn consent_given(call: &Call, consent: Option<bool>) -> Result<(), Error> {
    if call.practice.require_consent && consent != Some(true) {
        return Err(Error::invalid_field(
            "/patientConsent",
            call.say("consent-needed", &[]),
        ));
    }
    Ok(())
}

/// What is being placed on the schedule.
struct Placement<'a> {
    patient: i64,
    patient_name: &'a str,
    provider: &'a Provider,
    op: Option<&'a Operatory>,
    /// Tried first when no op is requested (a rescheduled appointment keeps its room).
    prefer_op: Option<i64>,
    interval: Interval,
    /// The appointment being moved, ignored in conflicts.
    exclude: Option<i64>,
}

/// Checks provider, patient and operatory conflicts and returns the operatory to use.
fn place(
    call: &Call,
    booked: &[Appointment],
    ops: &[Operatory],
    p: &Placement,
) -> Result<i64, Error> {
    let sp = &call.practice.speaker;
    let at = when(sp, &p.interval);
    let clashes = |a: &&Appointment| {
        Some(a.num) != p.exclude && a.interval(&call.practice).overlaps(&p.interval)
    };
    let others: Vec<&Appointment> = booked.iter().filter(clashes).collect();
    if others.iter().any(|a| a.prov == p.provider.num) {
        return Err(Error::conflict(call.say(
            "provider-busy",
            &[
                ("provider", (&p.provider.label(sp)).into()),
                ("at", (&at).into()),
                ("another", (&call.another_time()).into()),
            ],
        )));
    }
    if let Some(a) = others.iter().find(|a| a.pat == p.patient) {
        return Err(Error::conflict(call.say(
            "patient-overlap",
            &[
                ("patient", p.patient_name.into()),
                ("other", (&when(sp, &a.interval(&call.practice))).into()),
                ("n", a.num.into()),
                ("at", (&at).into()),
            ],
        )));
    }
    let busy = |op: i64| others.iter().any(|a| a.op == op);
    if let Some(op) = p.op {
        if busy(op.num) {
            return Err(Error::conflict(call.say(
                "room-busy",
                &[("room", (&op.label(sp)).into()), ("at", (&at).into())],
            )));
        }
        return Ok(op.num);
    }
    if ops.is_empty() {
        return Err(Error::unprocessable(call.say("no-rooms", &[])));
    }
    let preferred = p.prefer_op.filter(|n| ops.iter().any(|o| o.num == *n));
    preferred
        .into_iter()
        .chain(ops.iter().map(|o| o.num))
        .find(|n| !busy(*n))
        .ok_or_else(|| {
            Error::conflict(call.say(
                "no-free-room",
                &[
                    ("minutes", p.interval.minutes().into()),
                    ("at", (&at).into()),
                    ("another", (&call.another_time()).into()),
                ],
            ))
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetAvailableSlots {
    pub date: String,
    #[serde(rename = "ProvNum", default)]
    pub prov_num: Option<i64>,
    #[serde(rename = "durationMinutes", default)]
    pub duration_minutes: Option<i64>,
}

pub async fn get_available_slots(ctx: CallContext, p: GetAvailableSlots) -> Result<Value, Error> {
    let call = Call::new(&ctx)?;
    let data = ctx.data.as_ref();
    let sp = &call.practice.speaker;
    let date = parse_date(sp, "/date", &p.date)?;
    check_horizon(&call.practice, &call.now, "/date", date)?;
    let minutes = p.duration_minutes.unwrap_or(call.practice.default_minutes);
    check_duration(&call.practice, minutes)?;
    let provs = match p.prov_num {
        Some(n) => vec![provider(sp, data, n).await?],
        None => providers(data).await?,
    };
    let mut out = Map::new();
    out.insert("date".into(), json!(format_date(date)));
    out.insert("timeZone".into(), json!(call.practice.tz_name));
    let mut slots = Vec::new();
    let message = if let Some(msg) = day_not_bookable(&call.practice, &call.now, date) {
        Some(msg)
    } else if call.practice.hours(date.weekday()).is_none() {
        Some(closed_message(&call.practice, date))
    } else {
        let ops = operatories(data).await?;
        let booked = day_scheduled(&call, data, date).await?;
        for interval in grid(&call.practice, &call.now, date, minutes) {
            let busy: Vec<&Appointment> = booked
                .iter()
                .filter(|a| a.interval(&call.practice).overlaps(&interval))
                .collect();
            for prov in &provs {
                if busy.iter().any(|a| a.prov == prov.num) {
                    continue;
                }
                if let Some(op) = ops.iter().find(|o| !busy.iter().any(|a| a.op == o.num)) {
                    slots.push(json!({
                        "AptDateTime": format_datetime(interval.start),
                        "ProvNum": prov.num,
                        "Op": op.num,
                    }));
                }
            }
        }
        slots.is_empty().then(|| {
            let on = speak_date(sp, date);
            match provs.as_slice() {
                [one] if p.prov_num.is_some() => call.say(
                    "no-open-times-with",
                    &[
                        ("minutes", minutes.into()),
                        ("provider", (&one.label(sp)).into()),
                        ("date", (&on).into()),
                    ],
                ),
                _ => call.say(
                    "no-open-times",
                    &[("minutes", minutes.into()), ("date", (&on).into())],
                ),
            }
        })
    };
    out.insert("slots".into(), Value::Array(slots));
    if let Some(m) = message {
        out.insert("message".into(), json!(m));
    }
    Ok(Value::Object(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAppointment {
    #[serde(rename = "PatNum")]
    pub pat_num: i64,
    #[serde(rename = "AptDateTime")]
    pub apt_date_time: String,
    #[serde(rename = "ProvNum")]
    pub prov_num: i64,
    #[serde(rename = "Op", default)]
    pub op: Option<i64>,
    #[serde(rename = "durationMinutes", default)]
    pub duration_minutes: Option<i64>,
    #[serde(rename = "Note", default)]
    pub note: Option<String>,
    #[serde(rename = "ProcDescript", default)]
    pub proc_descript: Option<String>,
    #[serde(rename = "patientConsent", default)]
    pub patient_consent: Option<bool>,
}

pub async fn create_appointment(ctx: CallContext, p: CreateAppointment) -> Result<Value, Error> {
    let call = Call::new(&ctx)?;
    let data = ctx.data.as_ref();
    consent_given(&call, p.patient_consent)?;
    let sp = &call.practice.speaker;
    let start = parse_datetime(sp, "/AptDateTime", &p.apt_date_time)?;
    let minutes = p.duration_minutes.unwrap_or(call.practice.default_minutes);
    let interval = check_booking(&call.practice, &call.now, "/AptDateTime", start, minutes)?;
    let date = start.date();
    // Independent reads, at once; errors are then reported in a fixed order.
    let (pat, prov, ops, booked) = tokio::join!(
        patient(sp, data, p.pat_num),
        provider(sp, data, p.prov_num),
        operatories(data),
        day_scheduled(&call, data, date),
    );
    let (pat, prov, ops) = (pat?, prov?, ops?);
    let op = match p.op {
        Some(n) => Some(
            ops.iter()
                .find(|o| o.num == n)
                .ok_or_else(|| no_operatory(sp, n))?,
        ),
        None => None,
    };
    let booked = booked?;
    let pat_name = patient_name(&pat);
    let op_num = place(
        &call,
        &booked,
        &ops,
        &Placement {
            patient: p.pat_num,
            patient_name: &pat_name,
            provider: &prov,
            op,
            prefer_op: None,
            interval,
            exclude: None,
        },
    )?;

    let ids = claim_ids(prov.num, op_num, &interval);
    let pending = json!(PENDING);
    claim(
        &call,
        &ctx.data,
        date,
        claim_records(&call, &ids, &pending, prov.num, op_num, date),
    )
    .await?;

    let mut record = Map::new();
    record.insert("PatNum".into(), json!(p.pat_num));
    record.insert("ProvNum".into(), json!(prov.num));
    record.insert("Op".into(), json!(op_num));
    record.insert("AptDateTime".into(), json!(format_datetime(start)));
    record.insert("AptDate".into(), json!(format_date(date)));
    record.insert("durationMinutes".into(), json!(minutes));
    record.insert("AptStatus".into(), json!(SCHEDULED));
    record.insert("Note".into(), json!(p.note.unwrap_or_default()));
    record.insert(
        "ProcDescript".into(),
        json!(p.proc_descript.unwrap_or_default()),
    );
    let created = match create_numbered(data, APPOINTMENTS, "AptNum", record).await {
        Ok(r) => r,
        Err(e) => {
            if surely_not_written(&e) {
                release(&ctx.data, &ids, &own_claims(pending, &call)).await;
            } else {
                // The appointment may exist: its pending claims stay (they are not orphans
                // while a Scheduled appointment holds them).
                tracing::warn!(error = ?e, "booking failed with an unknown outcome; its claims are kept");
            }
            return Err(e);
        }
    };
    if let Some(n) = int_field(&created, "AptNum") {
        tag_claims(data, &ids, n).await;
    }
    Ok(created)
}

/// Marks fresh claims with their appointment's number. Best effort: a claim left
/// "pending" still protects its Scheduled appointment and is released once it is not.
async fn tag_claims(data: &dyn DataAdapter, ids: &[String], apt: i64) {
    let tagged = async {
        let patches = ids
            .iter()
            .map(|id| Ok((record_id(id)?, json!({"AptNum": apt}))))
            .collect::<Result<Vec<_>, Error>>()?;
        data.batch_update(&entity(SLOT_CLAIMS)?, patches).await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = tagged.await {
        tracing::warn!(apt, error = ?e, "could not tag slot claims with their AptNum");
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetAppointments {
    #[serde(rename = "PatNum", default)]
    pub pat_num: Option<i64>,
    #[serde(rename = "startDate", default)]
    pub start_date: Option<String>,
    #[serde(rename = "endDate", default)]
    pub end_date: Option<String>,
    #[serde(rename = "includeCancelled", default)]
    pub include_cancelled: bool,
}

/// Up to this many days, GetAppointments for one patient reads the days, not the patient.
const DATE_SPAN_DAYS: i32 = 31;

pub async fn get_appointments(ctx: CallContext, p: GetAppointments) -> Result<Value, Error> {
    let sp = &ctx.speaker();
    let data = ctx.data.as_ref();
    let mut filter = Vec::new();
    let mut days = None;
    match (&p.start_date, &p.end_date) {
        (Some(s), Some(e)) => {
            let start = parse_date(sp, "/startDate", s)?;
            let end = parse_date(sp, "/endDate", e)?;
            if end < start {
                return Err(Error::invalid_field(
                    "/endDate",
                    sp.say(
                        "end-before-start",
                        &[
                            ("end", (&format_date(end)).into()),
                            ("start", (&format_date(start)).into()),
                        ],
                    ),
                ));
            }
            filter.push(Condition::new("AptDate", CmpOp::Gte, format_date(start)));
            filter.push(Condition::new("AptDate", CmpOp::Lte, format_date(end)));
            days = Some((end - start).get_days());
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(Error::invalid_field(
                "/endDate",
                sp.say("end-needs-start", &[]),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::invalid_field(
                "/startDate",
                sp.say("start-needs-end", &[]),
            ));
        }
    }
    // The adapter reads through the first condition an index answers: over a short span of
    // days the date index reads less than the patient's whole history, so the dates go
    // first; over a long one the patient does.
    if let Some(n) = p.pat_num {
        patient(sp, data, n).await?;
        let by_date = days.is_some_and(|d| d <= DATE_SPAN_DAYS);
        filter.insert(
            if by_date { filter.len() } else { 0 },
            Condition::eq("PatNum", n),
        );
    }
    if filter.is_empty() {
        return Err(Error::unprocessable(sp.say("list-needs", &[])));
    }
    let mut apts: Vec<Value> = data
        .query(&entity(APPOINTMENTS)?, &filter)
        .await?
        .into_iter()
        .map(|r| with_number(r, "AptNum"))
        .filter(|r| p.include_cancelled || str_field(r, "AptStatus") != BROKEN)
        .collect();
    apts.sort_by(|a, b| {
        str_field(a, "AptDateTime")
            .cmp(str_field(b, "AptDateTime"))
            .then(int_field(a, "AptNum").cmp(&int_field(b, "AptNum")))
    });
    Ok(json!({ "appointments": apts }))
}

/// Refuses changes to cancelled or past appointments.
fn changeable(call: &Call, apt: &Appointment, verb: &str) -> Result<(), Error> {
    if apt.status == BROKEN {
        let id = if verb == "reschedule" {
            "already-cancelled-rebook"
        } else {
            "already-cancelled"
        };
        return Err(Error::conflict(call.say(id, &[("n", apt.num.into())])));
    }
    if !apt.is_scheduled() {
        return Err(Error::conflict(call.say(
            "odd-status",
            &[
                ("n", apt.num.into()),
                ("status", (&apt.status).into()),
                ("verb", verb.into()),
            ],
        )));
    }
    let i = apt.interval(&call.practice);
    if i.start_ts <= call.now.ts {
        return Err(Error::unprocessable(call.say(
            "already-past",
            &[
                ("n", apt.num.into()),
                ("when", (&when(&call.practice.speaker, &i)).into()),
                ("verb", verb.into()),
            ],
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleAppointment {
    #[serde(rename = "AptNum")]
    pub apt_num: i64,
    #[serde(rename = "AptDateTime")]
    pub apt_date_time: String,
    #[serde(rename = "ProvNum", default)]
    pub prov_num: Option<i64>,
    #[serde(rename = "Op", default)]
    pub op: Option<i64>,
    #[serde(rename = "durationMinutes", default)]
    pub duration_minutes: Option<i64>,
    #[serde(rename = "patientConsent", default)]
    pub patient_consent: Option<bool>,
}

pub async fn reschedule_appointment(
    ctx: CallContext,
    p: RescheduleAppointment,
) -> Result<Value, Error> {
    let call = Call::new(&ctx)?;
    let data = ctx.data.as_ref();
    consent_given(&call, p.patient_consent)?;
    let sp = &call.practice.speaker;
    let start = parse_datetime(sp, "/AptDateTime", &p.apt_date_time)?;
    let apt = appointment(&call, data, p.apt_num).await?;
    changeable(&call, &apt, "reschedule")?;
    let minutes = p.duration_minutes.unwrap_or(apt.minutes);
    let interval = check_booking(&call.practice, &call.now, "/AptDateTime", start, minutes)?;
    let date = start.date();
    let claims = entity(SLOT_CLAIMS)?;
    let old_day = [Condition::eq("AptDate", format_date(apt.start.date()))];
    // The old day's claims are read now so the old time is later released exactly as read.
    let (prov, ops, booked, pat, old_claims) = tokio::join!(
        provider(sp, data, p.prov_num.unwrap_or(apt.prov)),
        operatories(data),
        day_scheduled(&call, data, date),
        patient(sp, data, apt.pat),
        data.query(&claims, &old_day),
    );
    let (prov, ops) = (prov?, ops?);
    let op = match p.op {
        Some(n) => Some(
            ops.iter()
                .find(|o| o.num == n)
                .ok_or_else(|| no_operatory(sp, n))?,
        ),
        None => None,
    };
    let booked = booked?;
    let pat_name = match pat {
        Ok(r) => patient_name(&r),
        Err(_) => call.say("patient-n", &[("n", apt.pat.into())]),
    };
    let op_num = place(
        &call,
        &booked,
        &ops,
        &Placement {
            patient: apt.pat,
            patient_name: &pat_name,
            provider: &prov,
            op,
            prefer_op: Some(apt.op),
            interval,
            exclude: Some(apt.num),
        },
    )?;

    let held: BTreeSet<String> = claim_ids(apt.prov, apt.op, &apt.interval(&call.practice))
        .into_iter()
        .collect();
    let wanted: BTreeSet<String> = claim_ids(prov.num, op_num, &interval).into_iter().collect();
    let new: Vec<String> = wanted.difference(&held).cloned().collect();
    let stale: Vec<String> = held.difference(&wanted).cloned().collect();
    let owner = json!(apt.num);
    claim(
        &call,
        &ctx.data,
        date,
        claim_records(&call, &new, &owner, prov.num, op_num, date),
    )
    .await?;
    let patch = json!({
        "ProvNum": prov.num,
        "Op": op_num,
        "AptDateTime": format_datetime(start),
        "AptDate": format_date(date),
        "durationMinutes": minutes,
    });
    let updated = match update_unchanged(&call, data, &apt, patch).await {
        Ok(r) => r,
        Err(e) => {
            if surely_not_written(&e) {
                release(&ctx.data, &new, &own_claims(owner, &call)).await;
            } else {
                tracing::warn!(apt = apt.num, error = ?e, "reschedule failed with an unknown outcome; its new claims are kept");
            }
            return Err(e);
        }
    };
    // Only now is the old time certainly given up.
    match old_claims {
        Ok(read) => release_as_read(&ctx.data, &stale, &read, apt.num).await,
        Err(e) => {
            tracing::warn!(apt = apt.num, error = ?e, "could not read the old claims; releasing them by owner");
            release(&ctx.data, &stale, &[Condition::eq("AptNum", owner)]).await;
        }
    }
    Ok(with_number(updated, "AptNum"))
}

/// What must still hold of a stored appointment for a change based on reading it `apt`:
/// Scheduled, at the same time, with the same provider, room and length.
fn unchanged(apt: &Appointment) -> Vec<Condition> {
    let mut expect = vec![Condition::eq("AptStatus", SCHEDULED)];
    for field in ["AptDateTime", "ProvNum", "Op", "durationMinutes"] {
        // As stored (string or number), so the comparison is exact.
        if let Some(v) = apt.record.get(field) {
            expect.push(Condition::eq(field, v.clone()));
        }
    }
    expect
}

/// Applies `patch` only if the appointment is still as read; a lost race is a 409.
async fn update_unchanged(
    call: &Call,
    data: &dyn DataAdapter,
    apt: &Appointment,
    patch: Value,
) -> Result<Value, Error> {
    let id = record_id(apt.num)?;
    match data
        .update_where(&entity(APPOINTMENTS)?, &id, patch, &unchanged(apt))
        .await
    {
        Ok(r) => Ok(r),
        Err(DataError::Conflict { .. }) => Err(Error::conflict(call.say("just-changed", &[]))),
        Err(DataError::NotFound { .. }) => Err(Error::not_found(no_appointment(
            &call.practice.speaker,
            apt.num,
        ))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelAppointment {
    #[serde(rename = "AptNum")]
    pub apt_num: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

pub async fn cancel_appointment(ctx: CallContext, p: CancelAppointment) -> Result<Value, Error> {
    let call = Call::new(&ctx)?;
    let data = ctx.data.as_ref();
    let apt = appointment(&call, data, p.apt_num).await?;
    changeable(&call, &apt, "cancel")?;
    let mut patch = Map::new();
    patch.insert("AptStatus".into(), json!(BROKEN));
    if let Some(reason) = p.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        patch.insert("CancelReason".into(), json!(reason));
    }
    let updated = update_unchanged(&call, data, &apt, Value::Object(patch)).await?;
    let ids = claim_ids(apt.prov, apt.op, &apt.interval(&call.practice));
    release(&ctx.data, &ids, &[Condition::eq("AptNum", apt.num)]).await;
    Ok(with_number(updated, "AptNum"))
}
