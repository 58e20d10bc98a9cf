//! The slot-claim protocol that makes double booking impossible under races: an
//! appointment holds one claim per absolute 5-minute unit of its provider and of its
//! operatory in `slot_claims`, all taken with one all-or-nothing `batch_create`; a taken unit
//! is a 409. Claims are released only as they were read (owner and claim time), and claims a
//! failed request left behind are released as orphans once no Scheduled appointment holds
//! them and they are old enough that their request cannot still be running.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use jiff::civil::Date;
use serde_json::{Value, json};
use switchboard::{Condition, DataAdapter, DataError, Error};
use tokio::task::JoinSet;

use crate::appointments::Call;
use crate::records::{
    APPOINTMENTS, Appointment, SLOT_CLAIMS, entity, int_field, parse_appointments, record_id,
    str_field,
};
use crate::rules::{Interval, format_date};

/// A claim younger than this is never treated as orphaned: its request may still be running.
const ORPHAN_AFTER_SECS: i64 = 300;
/// The owner of claims whose appointment is not created yet.
pub(crate) const PENDING: &str = "pending";

/// Ids of the slot claims an appointment holds: one per absolute 5-minute unit for the
/// provider and one for the room.
pub(crate) fn claim_ids(prov: i64, op: i64, interval: &Interval) -> Vec<String> {
    let units = interval.units();
    units
        .iter()
        .map(|u| format!("prov-{prov}-{u}"))
        .chain(units.iter().map(|u| format!("op-{op}-{u}")))
        .collect()
}

/// Every claim id the appointments hold while Scheduled.
pub(crate) fn held_by(call: &Call, apts: &[Appointment]) -> HashSet<String> {
    apts.iter()
        .filter(|a| a.is_scheduled())
        .flat_map(|a| claim_ids(a.prov, a.op, &a.interval(&call.practice)))
        .collect()
}

pub(crate) fn claim_records(
    call: &Call,
    ids: &[String],
    owner: &Value,
    prov: i64,
    op: i64,
    date: Date,
) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            json!({
                "id": id, "AptNum": owner, "ProvNum": prov, "Op": op,
                "AptDate": format_date(date), "claimedAt": call.now.ts,
            })
        })
        .collect()
}

/// The conditions under which this request may delete claims it wrote itself.
pub(crate) fn own_claims(owner: Value, call: &Call) -> [Condition; 2] {
    [
        Condition::eq("AptNum", owner),
        Condition::eq("claimedAt", call.now.ts),
    ]
}

pub(crate) fn just_taken(call: &Call) -> Error {
    Error::conflict(call.say("just-taken", &[("another", (&call.another_time()).into())]))
}

/// Runs the futures at once on spawned tasks (one store call each instead of one after
/// another); results in input order, `None` for a task that did not finish.
pub(crate) async fn all_at_once<O, F>(futures: Vec<F>) -> Vec<Option<O>>
where
    O: Send + 'static,
    F: Future<Output = O> + Send + 'static,
{
    let mut out: Vec<Option<O>> = std::iter::repeat_with(|| None)
        .take(futures.len())
        .collect();
    let mut set = JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, o)) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(o);
                }
            }
            Err(e) => tracing::error!(error = ?e, "a concurrent store call did not finish"),
        }
    }
    out
}

/// Claims every id or none; a taken id is a 409. If taken claims turn out to be orphans
/// (see [`release_orphans`]) they are released and the claim is retried once.
pub(crate) async fn claim(
    call: &Call,
    data: &Arc<dyn DataAdapter>,
    date: Date,
    records: Vec<Value>,
) -> Result<(), Error> {
    if records.is_empty() {
        return Ok(());
    }
    let ent = entity(SLOT_CLAIMS)?;
    match data.batch_create(&ent, records.clone()).await {
        Ok(_) => return Ok(()),
        Err(DataError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let ids: HashSet<String> = records
        .iter()
        .map(|r| str_field(r, "id").to_owned())
        .collect();
    if !release_orphans(call, data, date, &ids).await? {
        return Err(just_taken(call));
    }
    match data.batch_create(&ent, records).await {
        Ok(_) => Ok(()),
        Err(DataError::Conflict { .. }) => Err(just_taken(call)),
        Err(e) => Err(e.into()),
    }
}

/// Gets claims one by one, all at once; the fallback for claims a day query cannot find.
pub(crate) async fn get_claims(
    data: &Arc<dyn DataAdapter>,
    ids: &HashSet<String>,
) -> Result<Vec<Value>, Error> {
    let ent = entity(SLOT_CLAIMS)?;
    let gets = ids
        .iter()
        .map(|id| {
            let (data, ent, id) = (data.clone(), ent.clone(), id.clone());
            async move { Ok::<_, Error>(data.get(&ent, &record_id(&id)?).await?) }
        })
        .collect();
    let mut out = Vec::new();
    for got in all_at_once(gets).await {
        match got {
            Some(Ok(Some(c))) => out.push(c),
            Some(Ok(None)) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(Error::internal("a slot claim lookup did not finish")),
        }
    }
    Ok(out)
}

/// Releases the taken claims among `ids` that are orphans: older than [`ORPHAN_AFTER_SECS`]
/// (younger ones may belong to a request still running) and held by no Scheduled
/// appointment (left by a failed request, or by one that stopped before letting go).
/// Each delete holds only while the claim is exactly as read, so a claim someone has just
/// taken is never deleted. Returns whether a retry can succeed.
pub(crate) async fn release_orphans(
    call: &Call,
    data: &Arc<dyn DataAdapter>,
    date: Date,
    ids: &HashSet<String>,
) -> Result<bool, Error> {
    let ent = entity(SLOT_CLAIMS)?;
    let day = [Condition::eq("AptDate", format_date(date))];
    // One query for the day's claims rather than one get per claim.
    let mut taken: Vec<Value> = data
        .query(&ent, &day)
        .await?
        .into_iter()
        .filter(|c| ids.contains(str_field(c, "id")))
        .collect();
    if taken.is_empty() {
        // Written without this date (by hand or under another time zone): look them up.
        taken = get_claims(data, ids).await?;
    }
    if taken.is_empty() {
        // Whoever held them has let go since.
        return Ok(true);
    }
    let old: Vec<Value> = taken
        .into_iter()
        // One without a claim time is looked at too, so it is at least reported below.
        .filter(|c| int_field(c, "claimedAt").is_none_or(|t| call.now.ts - t > ORPHAN_AFTER_SECS))
        .collect();
    if old.is_empty() {
        return Ok(false);
    }

    let mut apts = parse_appointments(
        &call.practice,
        data.query(&entity(APPOINTMENTS)?, &day).await?,
    );
    // Owners no longer on this day (moved, or dated differently): fetch them, at once.
    let elsewhere: BTreeSet<i64> = old
        .iter()
        .filter_map(|c| int_field(c, "AptNum"))
        .filter(|n| !apts.iter().any(|a| a.num == *n))
        .collect();
    let apt_ent = entity(APPOINTMENTS)?;
    let gets = elsewhere
        .into_iter()
        .map(|n| {
            let (data, ent) = (data.clone(), apt_ent.clone());
            async move { Ok::<_, Error>(data.get(&ent, &record_id(n)?).await?) }
        })
        .collect();
    for got in all_at_once(gets).await {
        match got {
            Some(Ok(Some(r))) => apts.extend(parse_appointments(&call.practice, vec![r])),
            Some(Ok(None)) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(Error::internal("an appointment lookup did not finish")),
        }
    }
    let held = held_by(call, &apts);

    let mut deletes = Vec::new();
    let mut names = Vec::new();
    for c in old {
        let id = str_field(&c, "id").to_owned();
        if held.contains(&id) {
            continue;
        }
        let (Some(owner), Some(at)) = (c.get("AptNum"), c.get("claimedAt")) else {
            // Without both, a delete could not tell this claim from a fresh one.
            tracing::warn!(claim = %id, "an orphaned slot claim lacks AptNum or claimedAt; release it by hand");
            continue;
        };
        tracing::warn!(claim = %id, "releasing an orphaned slot claim");
        let expect = [
            Condition::eq("AptNum", owner.clone()),
            Condition::eq("claimedAt", at.clone()),
        ];
        let (data, ent) = (data.clone(), ent.clone());
        let rid = record_id(&id)?;
        names.push(id);
        deletes.push(async move { data.delete_where(&ent, &rid, &expect).await });
    }
    let mut freed = false;
    let mut failure = None;
    for (id, result) in names.iter().zip(all_at_once(deletes).await) {
        match result {
            // Deleted, or already gone: either way the unit is free now.
            Some(Ok(_)) => freed = true,
            // Someone else holds it now.
            Some(Err(DataError::Conflict { .. })) => {}
            Some(Err(e)) => {
                tracing::warn!(claim = %id, error = ?e, "could not release an orphaned slot claim");
                failure = Some(Error::from(e));
            }
            None => failure = Some(Error::internal("an orphan release did not finish")),
        }
    }
    match failure {
        Some(e) if !freed => Err(e),
        _ => Ok(freed),
    }
}

/// Deletes claims at once, each only while `expect` holds, so a claim someone else has
/// taken since is left alone. Failures are logged: a leftover claim that its appointment
/// does not hold is released later as an orphan.
pub(crate) async fn release(data: &Arc<dyn DataAdapter>, ids: &[String], expect: &[Condition]) {
    let each = ids.iter().map(|id| (id.clone(), expect.to_vec())).collect();
    release_each(data, each).await;
}

/// Releases the appointment's claims among `ids` as they were read in `read`: each only if
/// it is still that claim (same owner and claim time). Without the claim time, a claim that
/// was released as an orphan and taken afresh for the same appointment (a quick move back)
/// could be deleted from under the request that took it.
pub(crate) async fn release_as_read(
    data: &Arc<dyn DataAdapter>,
    ids: &[String],
    read: &[Value],
    apt: i64,
) {
    let each = ids
        .iter()
        .filter_map(|id| {
            let expect = match read.iter().find(|c| str_field(c, "id") == id) {
                // Not ours (any more): leave it.
                Some(c) if int_field(c, "AptNum") != Some(apt) => return None,
                // Compared as stored (number or numeric string).
                Some(c) => [
                    ("AptNum", c.get("AptNum")),
                    ("claimedAt", c.get("claimedAt")),
                ]
                .into_iter()
                .filter_map(|(f, v)| v.map(|v| Condition::eq(f, v.clone())))
                .collect(),
                // Not found by its date: released only if it is still this appointment's.
                None => vec![Condition::eq("AptNum", apt)],
            };
            Some((id.clone(), expect))
        })
        .collect();
    release_each(data, each).await;
}

pub(crate) async fn release_each(data: &Arc<dyn DataAdapter>, each: Vec<(String, Vec<Condition>)>) {
    let ent = match entity(SLOT_CLAIMS) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot release slot claims");
            return;
        }
    };
    let ids: Vec<String> = each.iter().map(|(id, _)| id.clone()).collect();
    let deletes = each
        .into_iter()
        .map(|(id, expect)| {
            let (data, ent) = (data.clone(), ent.clone());
            async move {
                match data.delete_where(&ent, &record_id(&id)?, &expect).await {
                    // Conflict: someone else owns it now, so it is not ours to delete.
                    Ok(_) | Err(DataError::Conflict { .. }) => Ok(()),
                    Err(e) => Err(Error::from(e)),
                }
            }
        })
        .collect();
    for (id, result) in ids.iter().zip(all_at_once(deletes).await) {
        match result {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(claim = %id, error = ?e, "could not release a slot claim")
            }
            None => tracing::warn!(claim = %id, "a slot claim release did not finish"),
        }
    }
}

/// Whether a failed write certainly did not happen (else its outcome is unknown, e.g. a
/// timeout, and claims are left for the orphan release rather than risk a double booking).
pub(crate) fn surely_not_written(e: &Error) -> bool {
    matches!(
        e,
        Error::Conflict { .. } | Error::NotFound { .. } | Error::Validation { .. }
    )
}
