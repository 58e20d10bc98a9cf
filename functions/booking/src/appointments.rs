//! Appointment handlers: availability, booking, rescheduling and cancelling.
//!
//! Double booking is refused twice: first from the day's Scheduled appointments (for a
//! precise message), then atomically by claiming every slot unit of the provider and the
//! operatory in `slot_claims` with one all-or-nothing `batch_create`.

use std::collections::BTreeSet;

use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::{CallContext, Condition, DataAdapter, DataError, Error, Op as CmpOp};

use crate::config::{BookingConfig, Practice};
use crate::patients::no_patient;
use crate::records::{
    APPOINTMENTS, Appointment, BROKEN, OPERATORIES, Operatory, PATIENTS, PROVIDERS, Provider,
    SCHEDULED, SLOT_CLAIMS, all_numbered, create_numbered, entity, get_numbered, int_field,
    parse_appointments, patient_name, record_id, str_field, with_number,
};
use crate::rules::{
    Interval, Now, check_booking, check_duration, closed_message, day_not_bookable, format_date,
    format_datetime, grid, parse_date, parse_datetime, speak_date, speak_time,
};

/// A claim younger than this is never treated as orphaned: its request may still be running.
const ORPHAN_AFTER_SECS: i64 = 300;
const ANOTHER_TIME: &str = "Offer another time; GetAvailableSlots lists open times.";

struct Call {
    practice: Practice,
    now: Now,
}

impl Call {
    fn new(ctx: &CallContext) -> Result<Self, Error> {
        let practice = ctx.config::<BookingConfig>()?.practice()?;
        let now = Now::new(&practice, ctx.now)?;
        Ok(Self { practice, now })
    }
}

fn when(i: &Interval) -> String {
    format!("{} on {}", speak_time(i.start), speak_date(i.start.date()))
}

async fn provider(data: &dyn DataAdapter, n: i64) -> Result<Provider, Error> {
    let r = get_numbered(data, PROVIDERS, "ProvNum", n, || {
        format!("No provider with ProvNum {n}. Use GetProviders to list the practice's providers.")
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

fn no_operatory(n: i64) -> Error {
    Error::not_found(format!(
        "No operatory with Op {n}. Leave Op out and a free treatment room is picked automatically."
    ))
}

async fn patient(data: &dyn DataAdapter, n: i64) -> Result<Value, Error> {
    get_numbered(data, PATIENTS, "PatNum", n, || no_patient(n)).await
}

async fn appointment(call: &Call, data: &dyn DataAdapter, n: i64) -> Result<Appointment, Error> {
    let r = get_numbered(data, APPOINTMENTS, "AptNum", n, || {
        format!(
            "No appointment with AptNum {n}. Use GetAppointments with the patient's PatNum to find it."
        )
    })
    .await?;
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
            "Read the appointment details back to the patient and ask them to confirm; then call again with patientConsent set to true.",
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
    let at = when(&p.interval);
    let clashes = |a: &&Appointment| {
        Some(a.num) != p.exclude && a.interval(&call.practice).overlaps(&p.interval)
    };
    let others: Vec<&Appointment> = booked.iter().filter(clashes).collect();
    if others.iter().any(|a| a.prov == p.provider.num) {
        return Err(Error::conflict(format!(
            "{} is already booked at {at}. {ANOTHER_TIME}",
            p.provider.name
        )));
    }
    if let Some(a) = others.iter().find(|a| a.pat == p.patient) {
        return Err(Error::conflict(format!(
            "{} already has an appointment at {} (AptNum {}), which overlaps {at}. Use RescheduleAppointment to move it, or offer another time.",
            p.patient_name,
            when(&a.interval(&call.practice)),
            a.num
        )));
    }
    let busy = |op: i64| others.iter().any(|a| a.op == op);
    if let Some(op) = p.op {
        if busy(op.num) {
            return Err(Error::conflict(format!(
                "{} is already in use at {at}. Leave Op out to use any free room, or offer another time.",
                op.name
            )));
        }
        return Ok(op.num);
    }
    if ops.is_empty() {
        return Err(Error::unprocessable(
            "The practice has no operatories (treatment rooms) set up, so nothing can be booked yet.",
        ));
    }
    let preferred = p.prefer_op.filter(|n| ops.iter().any(|o| o.num == *n));
    preferred
        .into_iter()
        .chain(ops.iter().map(|o| o.num))
        .find(|n| !busy(*n))
        .ok_or_else(|| {
            Error::conflict(format!(
                "No treatment room is free for {} minutes at {at}. {ANOTHER_TIME}",
                p.interval.minutes()
            ))
        })
}

/// Ids of the slot claims an appointment holds: one per slot unit for the provider and the room.
fn claim_ids(call: &Call, prov: i64, op: i64, interval: &Interval) -> Vec<String> {
    let units = interval.unit_starts(call.practice.slot_minutes);
    units
        .iter()
        .map(|u| format!("prov-{prov}-{u}"))
        .chain(units.iter().map(|u| format!("op-{op}-{u}")))
        .collect()
}

fn claim_records(
    call: &Call,
    ids: &[String],
    apt: Option<i64>,
    prov: i64,
    op: i64,
    date: Date,
) -> Vec<Value> {
    let apt = apt.map_or_else(|| json!("pending"), |n| json!(n));
    ids.iter()
        .map(|id| {
            json!({
                "id": id, "AptNum": apt, "ProvNum": prov, "Op": op,
                "AptDate": format_date(date), "claimedAt": call.now.ts,
            })
        })
        .collect()
}

fn just_taken() -> Error {
    Error::conflict(format!(
        "That time was just taken by another booking. {ANOTHER_TIME}"
    ))
}

/// Claims every id or none; a taken id is a 409. Orphaned claims (left by a failed request
/// and older than [`ORPHAN_AFTER_SECS`]) are released and the claim retried once.
async fn claim(call: &Call, data: &dyn DataAdapter, records: Vec<Value>) -> Result<(), Error> {
    if records.is_empty() {
        return Ok(());
    }
    let ent = entity(SLOT_CLAIMS)?;
    match data.batch_create(&ent, records.clone()).await {
        Ok(_) => return Ok(()),
        Err(DataError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let ids: Vec<&str> = records.iter().map(|r| str_field(r, "id")).collect();
    if !release_orphans(call, data, &ids).await? {
        return Err(just_taken());
    }
    match data.batch_create(&ent, records).await {
        Ok(_) => Ok(()),
        Err(DataError::Conflict { .. }) => Err(just_taken()),
        Err(e) => Err(e.into()),
    }
}

async fn release_orphans(call: &Call, data: &dyn DataAdapter, ids: &[&str]) -> Result<bool, Error> {
    let ent = entity(SLOT_CLAIMS)?;
    let mut freed = false;
    for id in ids {
        let rid = record_id(id)?;
        let Some(c) = data.get(&ent, &rid).await? else {
            continue;
        };
        let old = int_field(&c, "claimedAt").is_none_or(|t| call.now.ts - t > ORPHAN_AFTER_SECS);
        if !old {
            continue;
        }
        let orphan = match int_field(&c, "AptNum") {
            None => true,
            Some(n) => match data.get(&entity(APPOINTMENTS)?, &record_id(n)?).await? {
                None => true,
                Some(r) => Appointment::from_record(&call.practice, r).is_some_and(|a| {
                    !a.is_scheduled()
                        || !claim_ids(call, a.prov, a.op, &a.interval(&call.practice))
                            .iter()
                            .any(|x| x == id)
                }),
            },
        };
        if orphan {
            tracing::warn!(claim = %id, "releasing an orphaned slot claim");
            data.delete(&ent, &rid).await?;
            freed = true;
        }
    }
    Ok(freed)
}

/// Deletes claims; failures are logged (a leftover claim is released later as an orphan).
async fn release(data: &dyn DataAdapter, ids: &[String]) {
    let ent = match entity(SLOT_CLAIMS) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "cannot release slot claims");
            return;
        }
    };
    for id in ids {
        let result = match record_id(id) {
            Ok(rid) => data.delete(&ent, &rid).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(claim = %id, error = %e, "could not release a slot claim");
        }
    }
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
    let date = parse_date("/date", &p.date)?;
    let minutes = p.duration_minutes.unwrap_or(call.practice.default_minutes);
    check_duration(&call.practice, minutes)?;
    let provs = match p.prov_num {
        Some(n) => vec![provider(data, n).await?],
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
            let with = match provs.as_slice() {
                [one] if p.prov_num.is_some() => format!(" with {}", one.name),
                _ => String::new(),
            };
            format!(
                "There are no open {minutes}-minute times{with} on {}. Try another day.",
                speak_date(date)
            )
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
    let start = parse_datetime("/AptDateTime", &p.apt_date_time)?;
    let minutes = p.duration_minutes.unwrap_or(call.practice.default_minutes);
    let interval = check_booking(&call.practice, &call.now, "/AptDateTime", start, minutes)?;
    let pat = patient(data, p.pat_num).await?;
    let prov = provider(data, p.prov_num).await?;
    let ops = operatories(data).await?;
    let op = match p.op {
        Some(n) => Some(
            ops.iter()
                .find(|o| o.num == n)
                .ok_or_else(|| no_operatory(n))?,
        ),
        None => None,
    };
    let date = start.date();
    let booked = day_scheduled(&call, data, date).await?;
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

    let ids = claim_ids(&call, prov.num, op_num, &interval);
    claim(
        &call,
        data,
        claim_records(&call, &ids, None, prov.num, op_num, date),
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
            release(data, &ids).await;
            return Err(e);
        }
    };
    if let Some(n) = int_field(&created, "AptNum") {
        let patches = ids
            .iter()
            .map(|id| Ok((record_id(id)?, json!({"AptNum": n}))))
            .collect::<Result<Vec<_>, Error>>()?;
        if let Err(e) = data.batch_update(&entity(SLOT_CLAIMS)?, patches).await {
            tracing::warn!(apt = n, error = %e, "could not tag slot claims with their AptNum");
        }
    }
    Ok(created)
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

pub async fn get_appointments(ctx: CallContext, p: GetAppointments) -> Result<Value, Error> {
    let data = ctx.data.as_ref();
    let mut filter = Vec::new();
    match (&p.start_date, &p.end_date) {
        (Some(s), Some(e)) => {
            let start = parse_date("/startDate", s)?;
            let end = parse_date("/endDate", e)?;
            if end < start {
                return Err(Error::invalid_field(
                    "/endDate",
                    format!(
                        "endDate {} is before startDate {}.",
                        format_date(end),
                        format_date(start)
                    ),
                ));
            }
            filter.push(Condition::new("AptDate", CmpOp::Gte, format_date(start)));
            filter.push(Condition::new("AptDate", CmpOp::Lte, format_date(end)));
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(Error::invalid_field(
                "/endDate",
                "Give endDate together with startDate.",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::invalid_field(
                "/startDate",
                "Give startDate together with endDate.",
            ));
        }
    }
    if let Some(n) = p.pat_num {
        patient(data, n).await?;
        filter.push(Condition::eq("PatNum", n));
    }
    if filter.is_empty() {
        return Err(Error::unprocessable(
            "Give the patient's PatNum, or a startDate and endDate (YYYY-MM-DD), to list appointments.",
        ));
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
        return Err(Error::conflict(format!(
            "Appointment {} was already cancelled.{}",
            apt.num,
            if verb == "reschedule" {
                " Book a new one with CreateAppointment."
            } else {
                ""
            }
        )));
    }
    if !apt.is_scheduled() {
        return Err(Error::conflict(format!(
            "Appointment {} has status {}, so it cannot be {verb}d by phone.",
            apt.num, apt.status
        )));
    }
    let i = apt.interval(&call.practice);
    if i.start_ts <= call.now.ts {
        return Err(Error::unprocessable(format!(
            "Appointment {} at {} has already started or passed, so it cannot be {verb}d.",
            apt.num,
            when(&i)
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
    let start = parse_datetime("/AptDateTime", &p.apt_date_time)?;
    let apt = appointment(&call, data, p.apt_num).await?;
    changeable(&call, &apt, "reschedule")?;
    let minutes = p.duration_minutes.unwrap_or(apt.minutes);
    let interval = check_booking(&call.practice, &call.now, "/AptDateTime", start, minutes)?;
    let prov = provider(data, p.prov_num.unwrap_or(apt.prov)).await?;
    let ops = operatories(data).await?;
    let op = match p.op {
        Some(n) => Some(
            ops.iter()
                .find(|o| o.num == n)
                .ok_or_else(|| no_operatory(n))?,
        ),
        None => None,
    };
    let date = start.date();
    let booked = day_scheduled(&call, data, date).await?;
    let pat_name = match patient(data, apt.pat).await {
        Ok(r) => patient_name(&r),
        Err(_) => format!("Patient {}", apt.pat),
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

    let held: BTreeSet<String> = claim_ids(&call, apt.prov, apt.op, &apt.interval(&call.practice))
        .into_iter()
        .collect();
    let wanted: BTreeSet<String> = claim_ids(&call, prov.num, op_num, &interval)
        .into_iter()
        .collect();
    let new: Vec<String> = wanted.difference(&held).cloned().collect();
    let stale: Vec<String> = held.difference(&wanted).cloned().collect();
    claim(
        &call,
        data,
        claim_records(&call, &new, Some(apt.num), prov.num, op_num, date),
    )
    .await?;
    let patch = json!({
        "ProvNum": prov.num,
        "Op": op_num,
        "AptDateTime": format_datetime(start),
        "AptDate": format_date(date),
        "durationMinutes": minutes,
    });
    let updated = match data
        .update(&entity(APPOINTMENTS)?, &record_id(apt.num)?, patch)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            release(data, &new).await;
            return Err(e.into());
        }
    };
    release(data, &stale).await;
    Ok(with_number(updated, "AptNum"))
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
    let updated = data
        .update(
            &entity(APPOINTMENTS)?,
            &record_id(apt.num)?,
            Value::Object(patch),
        )
        .await?;
    let ids = claim_ids(&call, apt.prov, apt.op, &apt.interval(&call.practice));
    release(data, &ids).await;
    Ok(with_number(updated, "AptNum"))
}
