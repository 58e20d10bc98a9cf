//! The `rest` data adapter: an external REST API configured per instance (base URL, entity →
//! path mapping, filter → query parameter templates, pagination, where the credential goes).
//! The defaults suit json-server 0.17 (`_page`/`_limit`, `{field}_gte`, …).
//!
//! A plain REST API has no transactions, so some of `TableData`'s guarantees become "best
//! effort" here, each documented on its method: an explicit-id `create` checks then writes
//! (another writer can slip in between), conditional writes read, check, then write (with
//! `If-Match` when the upstream gives a strong `ETag`), and batches compensate on failure
//! (delete what they created, restore what they patched) instead of being atomic.
//!
//! Every adapter call has one time budget (`timeout_ms`, 5 s by default, at most 8 s so the
//! 504 comes before the Lambda's 10 s timeout): all its requests, retries, backoff pauses and
//! pages (connect and whole bodies included) fit before one deadline; each attempt gets what
//! remains, and no retry starts with less than `MIN_ATTEMPT` (100 ms) left. Reads (GET) are
//! retried with jittered backoff on transport errors, timeouts and 502/503/504; writes only
//! when the connection was never made. A rejected credential is re-fetched at most once per
//! adapter call. Upstream failures become 502 `upstream_error`, timeouts 504
//! `upstream_timeout`; messages name the entity and status, never the credential or the
//! upstream's body (which may echo it).
//!
//! Every connection goes through the platform's egress guard (`switchboard::egress`): only
//! public addresses, after DNS and on literal IPs, unless private upstreams are allowed. A
//! redirect is never followed, so it cannot lead anywhere else.
//!
//! `client` holds the shared HTTP client, `transport` one call's requests (budget, retries,
//! credential refresh), `undo` a failed batch's compensation; this module maps the
//! `DataAdapter` operations onto them.

mod api;
mod client;
mod oauth2;
mod transport;
mod undo;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use switchboard::data::{as_object, merged, type_name};
use switchboard::error::Error;
use switchboard::ids::{EntityName, OrgId, RecordId};
use switchboard::index::Indexes;
use switchboard::ports::{
    Condition, DataAdapter, DataError, MAX_TRANSACT_ITEMS, Op, Page, StoreError,
};
use switchboard::secrets::Secrets;
use switchboard::spec::RestConfig;
use switchboard::spec::rest::Paths;

pub use api::VendorApi;
pub use client::RestClient;
pub use oauth2::Tokens;
use transport::{Ctx, Reply};

/// `query` reads at most this many records from the upstream before giving up.
const MAX_QUERY_RECORDS: usize = 10_000;

/// Ids and query values keep only unreserved characters; '.' is encoded too, so an id can
/// never become a `..` path segment.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// The `rest` adapter for one organization's instance.
pub struct RestData {
    client: RestClient,
    config: Arc<RestConfig>,
    secrets: Arc<Secrets>,
    org: OrgId,
    indexes: Indexes,
}

fn conflict(entity: &EntityName, id: &str) -> DataError {
    DataError::Conflict {
        entity: entity.to_string(),
        id: id.to_owned(),
    }
}

fn not_found(entity: &EntityName, id: &str) -> DataError {
    DataError::NotFound {
        entity: entity.to_string(),
        id: id.to_owned(),
    }
}

/// A refused or failed answer, by entity, method and status only: the body may echo secrets.
fn failed(call_entity: &EntityName, method: &Method, status: StatusCode) -> DataError {
    DataError::Upstream(format!(
        "the {call_entity} API answered {status} to {method}"
    ))
}

pub(crate) fn secret_error(e: Error) -> DataError {
    match e {
        Error::Validation { message, .. } => DataError::Invalid(message),
        Error::Unavailable(m) => DataError::Store(StoreError::Unavailable(m)),
        Error::Internal(cause) => DataError::Store(StoreError::Internal(cause)),
        other => DataError::Store(StoreError::Internal(other.to_string())),
    }
}

/// A record id as text: strings as they are, numbers printed (json-server's ids are numbers).
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn explicit_id(
    entity: &EntityName,
    record: &Map<String, Value>,
) -> Result<Option<RecordId>, DataError> {
    match record.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ (Value::String(_) | Value::Number(_))) => {
            RecordId::parse(id_text(v).unwrap_or_default())
                .map(Some)
                .map_err(|e| DataError::Invalid(e.to_string()))
        }
        Some(other) => Err(DataError::Invalid(format!(
            "a {entity} id must be a string or a number, not {}",
            type_name(other)
        ))),
    }
}

/// The record with `"id"` filled in when the upstream left it out.
fn with_id(record: Map<String, Value>, id: &str) -> Value {
    let mut record = record;
    if !record.contains_key("id") {
        record.insert("id".into(), Value::String(id.to_owned()));
    }
    Value::Object(record)
}

/// Whether a condition may go to the upstream as a query parameter without making it drop
/// a record that the condition (checked here again) would keep.
fn pushable(c: &Condition) -> bool {
    match &c.value {
        Value::Bool(_) => true,
        // json-server compares `String(value)`: "1.0" would miss a stored 1.
        Value::Number(n) => n.is_i64() || n.is_u64() || !matches!(c.op, Op::Eq | Op::Ne),
        // `_like` is a regular expression upstream: only plain text is safe to send.
        Value::String(s) => {
            c.op != Op::Contains || !s.contains(|ch: char| "\\^$.|?*+()[]{}".contains(ch))
        }
        _ => false,
    }
}

/// A `list` cursor: the offset of the next record.
fn cursor_at(offset: u64) -> String {
    format!("o{offset}")
}

/// The offset in a cursor this adapter returned (canonical digits, below 2^32).
fn parse_cursor(cursor: &str) -> Option<u64> {
    let n = cursor.strip_prefix('o')?.parse::<u64>().ok()?;
    (n < 1 << 32 && cursor_at(n) == cursor).then_some(n)
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

impl RestData {
    pub fn new(
        client: RestClient,
        config: Arc<RestConfig>,
        secrets: Arc<Secrets>,
        org: OrgId,
        indexes: Indexes,
    ) -> Self {
        Self {
            client,
            config,
            secrets,
            org,
            indexes,
        }
    }

    fn paths(&self, entity: &EntityName) -> Result<&Paths, DataError> {
        self.config.entities.get(entity).ok_or_else(|| {
            DataError::Invalid(format!(
                "entity '{entity}' is not mapped in the rest data adapter; add it under data_adapter.entities (mapped: {})",
                self.config
                    .entities
                    .keys()
                    .map(EntityName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn item_url(&self, paths: &Paths, id: &str) -> String {
        format!(
            "{}{}",
            self.config.base_url,
            paths.item.replace("{id}", &encode(id))
        )
    }

    fn collection_url(&self, paths: &Paths, query: &[(String, String)]) -> String {
        let mut url = format!("{}{}", self.config.base_url, paths.collection);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    fn json(entity: &EntityName, reply: &Reply) -> Result<Option<Value>, DataError> {
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&reply.body).map(Some).map_err(|_| {
            DataError::Upstream(format!(
                "the {entity} API answered {} with a body that is not JSON",
                reply.status
            ))
        })
    }

    /// The records of a list answer (at `records_at` when set).
    fn records(&self, entity: &EntityName, reply: &Reply) -> Result<Vec<Value>, DataError> {
        let body = Self::json(entity, reply)?.unwrap_or(Value::Array(Vec::new()));
        let list = match &self.config.records_at {
            Some(at) => body.pointer(at).cloned(),
            None => Some(body),
        };
        match list {
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => Ok(items),
            _ => Err(DataError::Upstream(format!(
                "the {entity} API answered {} to a list request without a list of records{}",
                reply.status,
                self.config
                    .records_at
                    .as_ref()
                    .map(|at| format!(" at records_at '{at}'"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// The record and its strong ETag, or `None` on 404.
    async fn read(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &str,
    ) -> Result<Option<(Value, Option<HeaderValue>)>, DataError> {
        let r = self
            .call(
                cx,
                entity,
                Method::GET,
                self.item_url(paths, id),
                None,
                None,
            )
            .await?;
        match r.status {
            s if s.is_success() => match Self::json(entity, &r)? {
                Some(Value::Object(m)) => Ok(Some((with_id(m, id), r.etag))),
                _ => Err(DataError::Upstream(format!(
                    "the {entity} API answered {} to a read of '{id}' without a record",
                    r.status
                ))),
            },
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            s => Err(failed(entity, &Method::GET, s)),
        }
    }

    /// One page of the collection with `query` parameters, and the total when the
    /// upstream reports it (`X-Total-Count`).
    async fn fetch(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        query: &[(String, String)],
    ) -> Result<(Vec<Value>, Option<u64>), DataError> {
        let r = self
            .call(
                cx,
                entity,
                Method::GET,
                self.collection_url(paths, query),
                None,
                None,
            )
            .await?;
        if !r.status.is_success() {
            return Err(failed(entity, &Method::GET, r.status));
        }
        Ok((self.records(entity, &r)?, r.total))
    }

    /// POSTs a record; `id` is the one it names, if any.
    async fn post(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        record: Map<String, Value>,
        id: Option<&RecordId>,
    ) -> Result<Value, DataError> {
        let body = Value::Object(record);
        let r = self
            .call(
                cx,
                entity,
                Method::POST,
                self.collection_url(paths, &[]),
                Some(&body),
                None,
            )
            .await?;
        let id_text = id.map(RecordId::as_str).unwrap_or_default();
        match r.status {
            s if s.is_success() => match (Self::json(entity, &r)?, id) {
                (Some(Value::Object(m)), _) => Ok(match id {
                    Some(id) => with_id(m, id.as_str()),
                    None => Value::Object(m),
                }),
                (_, Some(_)) => Ok(body),
                (_, None) => Err(DataError::Upstream(format!(
                    "the {entity} API answered {} to a POST without the created record, so its id is unknown",
                    r.status
                ))),
            },
            StatusCode::CONFLICT => Err(conflict(entity, id_text)),
            s => Err(failed(entity, &Method::POST, s)),
        }
    }

    /// PATCHes one record; `read` (the current record and its strong ETag, when read first)
    /// guards the write and fills in an empty answer.
    async fn patch(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &RecordId,
        mut patch: Map<String, Value>,
        read: Option<(Value, Option<HeaderValue>)>,
    ) -> Result<Value, DataError> {
        let (current, etag) = match read {
            Some((current, etag)) => (Some(current), etag),
            None => (None, None),
        };
        // As in TableData, the id is never changed.
        patch.remove("id");
        let url = self.item_url(paths, id.as_str());
        let r = self
            .call(
                cx,
                entity,
                Method::PATCH,
                url,
                Some(&Value::Object(patch.clone())),
                etag,
            )
            .await?;
        match r.status {
            s if s.is_success() => match (Self::json(entity, &r)?, current) {
                (Some(Value::Object(m)), _) => Ok(with_id(m, id.as_str())),
                (_, Some(c)) => Ok(merged(as_object(entity, c)?, patch)),
                (_, None) => match self.read(cx, entity, paths, id.as_str()).await? {
                    Some((v, _)) => Ok(v),
                    None => Err(not_found(entity, id.as_str())),
                },
            },
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(not_found(entity, id.as_str())),
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => {
                Err(conflict(entity, id.as_str()))
            }
            s => Err(failed(entity, &Method::PATCH, s)),
        }
    }

    /// DELETE; `false` when it was already gone.
    async fn remove(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &str,
        etag: Option<HeaderValue>,
    ) -> Result<bool, DataError> {
        let r = self
            .call(
                cx,
                entity,
                Method::DELETE,
                self.item_url(paths, id),
                None,
                etag,
            )
            .await?;
        match r.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(false),
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => Err(conflict(entity, id)),
            s => Err(failed(entity, &Method::DELETE, s)),
        }
    }

    /// The stored record when it exists and satisfies `expect`.
    async fn checked(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<Option<(Value, Option<HeaderValue>)>, DataError> {
        let Some((current, etag)) = self.read(cx, entity, paths, id.as_str()).await? else {
            return Ok(None);
        };
        if self.indexes.matcher(entity, expect).matches(&current) {
            Ok(Some((current, etag)))
        } else {
            Err(conflict(entity, id.as_str()))
        }
    }
}

#[async_trait]
impl DataAdapter for RestData {
    /// The cursor is the offset of the next record (`o<offset>`), so a caller may change
    /// `limit` between pages. With pagination, an offset that is not a multiple of `limit`
    /// reads the two upstream pages (of `limit` records) that hold the window.
    async fn list(
        &self,
        entity: &EntityName,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        let limit = limit.clamp(1, 1000) as u64;
        let offset = match cursor {
            None => 0,
            Some(c) => parse_cursor(c).ok_or_else(|| {
                DataError::Invalid(
                    "the cursor is not one this API returned; start again without it".into(),
                )
            })?,
        };
        let Some(pg) = &self.config.pagination else {
            let (all, _) = self.fetch(cx, entity, paths, &[]).await?;
            let len = all.len() as u64;
            let end = offset.saturating_add(limit).min(len);
            let items = all
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(end.saturating_sub(offset)).unwrap_or(0))
                .collect();
            return Ok(Page {
                items,
                next: (end < len).then(|| cursor_at(end)),
            });
        };
        let index = offset / limit;
        let skip = offset % limit;
        let mut items = Vec::new();
        let mut total = None;
        // Whether records may follow the last one returned.
        let mut more = false;
        for page in [index, index + 1] {
            if page > index && (skip == 0 || !more) {
                break;
            }
            let query = [
                (pg.page.clone(), (pg.first + page).to_string()),
                (pg.limit.clone(), limit.to_string()),
            ];
            let (got, t) = self.fetch(cx, entity, paths, &query).await?;
            total = t.or(total);
            let full = got.len() as u64 >= limit;
            let upstream_more = full && total.is_none_or(|t| (page + 1) * limit < t);
            let (from, take) = if page == index {
                (skip, limit - skip)
            } else {
                (0, skip)
            };
            let available = (got.len() as u64).saturating_sub(from);
            more = upstream_more || available > take;
            items.extend(
                got.into_iter()
                    .skip(usize::try_from(from).unwrap_or(usize::MAX))
                    .take(usize::try_from(take).unwrap_or(0)),
            );
        }
        let end = offset + items.len() as u64;
        let more = match total {
            Some(t) => end < t,
            None => more,
        };
        Ok(Page {
            items,
            next: more.then(|| cursor_at(end)),
        })
    }

    async fn get(&self, entity: &EntityName, id: &RecordId) -> Result<Option<Value>, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        Ok(self
            .read(cx, entity, paths, id.as_str())
            .await?
            .map(|(v, _)| v))
    }

    /// With an `"id"`, checks that it is free and then POSTs: not atomic against another
    /// writer creating the same id in between (the upstream's own answer decides then).
    /// Without one, the upstream assigns it (json-server: the next number).
    async fn create(&self, entity: &EntityName, record: Value) -> Result<Value, DataError> {
        let cx = &self.begin();
        let record = as_object(entity, record)?;
        let id = explicit_id(entity, &record)?;
        let paths = self.paths(entity)?;
        if let Some(id) = &id
            && self.read(cx, entity, paths, id.as_str()).await?.is_some()
        {
            return Err(conflict(entity, id.as_str()));
        }
        self.post(cx, entity, paths, record, id.as_ref()).await
    }

    /// Reads, checks `expect`, then PATCHes (with `If-Match` when the read gave a strong
    /// ETag). Without an ETag a write between the read and the PATCH goes unnoticed.
    async fn update_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
        expect: &[Condition],
    ) -> Result<Value, DataError> {
        let cx = &self.begin();
        let patch = as_object(entity, patch)?;
        let paths = self.paths(entity)?;
        if expect.is_empty() {
            return self.patch(cx, entity, paths, id, patch, None).await;
        }
        let Some((current, etag)) = self.checked(cx, entity, paths, id, expect).await? else {
            return Err(not_found(entity, id.as_str()));
        };
        self.patch(cx, entity, paths, id, patch, Some((current, etag)))
            .await
    }

    /// Like `update_where`: read, check, DELETE; not atomic without a strong ETag.
    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        if expect.is_empty() {
            return self.remove(cx, entity, paths, id.as_str(), None).await;
        }
        match self.checked(cx, entity, paths, id, expect).await? {
            Some((_, etag)) => self.remove(cx, entity, paths, id.as_str(), etag).await,
            None => Ok(false),
        }
    }

    /// Conditions with a query parameter template go to the upstream; every condition is
    /// checked again here, so a permissive upstream never returns a wrong record.
    /// The upstream pages on its own terms (the config's `pagination`), so every match
    /// comes back as one page.
    async fn query_page(
        &self,
        entity: &EntityName,
        filter: &[Condition],
        _limit: usize,
        _cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        Ok(Page {
            items: self.query(entity, filter).await?,
            next: None,
        })
    }

    async fn query(
        &self,
        entity: &EntityName,
        filter: &[Condition],
    ) -> Result<Vec<Value>, DataError> {
        // The same contract as every adapter, though the upstream may well scan.
        self.indexes.lookup(entity, filter)?;
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        let mut params: Vec<(String, String)> = Vec::new();
        for c in filter.iter().filter(|c| pushable(c)) {
            // A derived key is no field upstream. Of a top-level field, an exact match is sent
            // as that field's, as given, so the upstream narrows by its own matching (exact on
            // json-server) rather than returning the collection; the key is tested on what
            // comes back either way.
            let field = match self.indexes.key(entity, &c.field) {
                None => c.field.as_str(),
                Some(k) => match k.path().as_slice() {
                    [source]
                        if c.op == Op::Eq && !source.starts_with(|c: char| c.is_ascii_digit()) =>
                    {
                        source
                    }
                    _ => continue,
                },
            };
            if let Some((_, template)) = self.config.filters.iter().find(|(op, _)| *op == c.op) {
                let value = match &c.value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                params.push((template.replace("{field}", field), value));
            }
        }
        let mut all = Vec::new();
        match &self.config.pagination {
            None => all = self.fetch(cx, entity, paths, &params).await?.0,
            Some(pg) => {
                let mut page = pg.first;
                loop {
                    let mut query = params.clone();
                    query.push((pg.page.clone(), page.to_string()));
                    query.push((pg.limit.clone(), pg.size.to_string()));
                    let (items, total) = self.fetch(cx, entity, paths, &query).await?;
                    let got = items.len() as u64;
                    all.extend(items);
                    if all.len() > MAX_QUERY_RECORDS {
                        return Err(DataError::Upstream(format!(
                            "the {entity} API holds more than {MAX_QUERY_RECORDS} records for this query; narrow the filter"
                        )));
                    }
                    let read = (page - pg.first + 1) * pg.size;
                    if got < pg.size || total.is_some_and(|t| read >= t) {
                        break;
                    }
                    page += 1;
                }
            }
        }
        let matcher = self.indexes.matcher(entity, filter);
        all.retain(|r| matcher.matches(r));
        Ok(all)
    }

    /// Checks every explicit id first, then creates one by one; on a failure deletes what it
    /// created and returns the error. Not atomic: others may see the partial batch meanwhile.
    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError> {
        let cx = &self.begin();
        switchboard::ports::check_batch_len(records.len(), MAX_TRANSACT_ITEMS)?;
        let paths = self.paths(entity)?;
        let mut prepared = Vec::with_capacity(records.len());
        let mut ids = HashSet::new();
        for r in records {
            let r = as_object(entity, r)?;
            let id = explicit_id(entity, &r)?;
            if let Some(id) = &id
                && !ids.insert(id.clone())
            {
                return Err(DataError::Invalid(format!(
                    "the batch names {entity} '{id}' twice"
                )));
            }
            prepared.push((id, r));
        }
        for id in &ids {
            if self.read(cx, entity, paths, id.as_str()).await?.is_some() {
                return Err(conflict(entity, id.as_str()));
            }
        }
        let mut made = Vec::with_capacity(prepared.len());
        for (id, r) in prepared {
            match self.post(cx, entity, paths, r, id.as_ref()).await {
                Ok(v) => made.push(v),
                Err(e) => {
                    self.undo_creates(&cx.for_undo(), entity, paths, &made)
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// Reads every record first (a missing one fails the batch before any write), then
    /// PATCHes one by one; on a failure PUTs the previous versions back and returns the error.
    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        let cx = &self.begin();
        switchboard::ports::check_batch_len(patches.len(), MAX_TRANSACT_ITEMS)?;
        let paths = self.paths(entity)?;
        let mut planned = Vec::with_capacity(patches.len());
        for (id, patch) in patches {
            let patch = as_object(entity, patch)?;
            let Some((current, etag)) = self.read(cx, entity, paths, id.as_str()).await? else {
                return Err(not_found(entity, id.as_str()));
            };
            planned.push((id, patch, current, etag));
        }
        let mut done = Vec::with_capacity(planned.len());
        let mut out = Vec::with_capacity(planned.len());
        for (id, patch, current, etag) in planned {
            match self
                .patch(cx, entity, paths, &id, patch, Some((current.clone(), etag)))
                .await
            {
                Ok(v) => {
                    out.push(v);
                    done.push((id, current));
                }
                Err(e) => {
                    self.undo_updates(&cx.for_undo(), entity, paths, &done)
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Describes the fields seen on the first records (a REST API has no schema to ask).
    async fn get_schema(&self, entity: &EntityName) -> Result<Value, DataError> {
        let page = self.list(entity, 50, None).await?;
        Ok(switchboard::data::describe(entity, page.items))
    }

    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        Ok(self.config.entities.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::backoff;

    #[test]
    fn ids_cannot_escape_their_segment() {
        assert_eq!(encode("../a b/%"), "%2E%2E%2Fa%20b%2F%25");
        assert_eq!(encode("2025-01-02_op-1~x"), "2025-01-02_op-1~x");
    }

    #[test]
    fn only_safe_conditions_are_sent_upstream() {
        assert!(pushable(&Condition::eq("a", "x")));
        assert!(pushable(&Condition::eq("a", 3)));
        assert!(!pushable(&Condition::eq("a", 1.5)));
        assert!(pushable(&Condition::new("a", Op::Gte, 1.5)));
        assert!(!pushable(&Condition::eq("a", Value::Null)));
        assert!(pushable(&Condition::new("a", Op::Contains, "lee")));
        assert!(!pushable(&Condition::new("a", Op::Contains, "a(b")));
    }

    #[test]
    fn cursors_are_canonical_offsets() {
        assert_eq!(parse_cursor(&cursor_at(0)), Some(0));
        assert_eq!(parse_cursor("o42"), Some(42));
        for bad in ["42", "o", "o+1", "o01", "o-1", "o4294967296", "O1", "o1 "] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 1..6 {
            let d = backoff(attempt).as_millis() as u64;
            let step = 100u64 << attempt;
            assert!((step / 2..=step).contains(&d), "{attempt}: {d}");
        }
    }
}
