//! The `postgres` data adapter: an organization's own PostgreSQL (e.g. its Supabase
//! project), reached with the connection string held in a credential.
//!
//! Entities map to tables in config ([`PgConfig`]). Records are the rows as JSON
//! (`to_jsonb`), with the id column's value as `"id"`. SQL is assembled only from fixed
//! fragments and identifiers that were checked at config parse time or read from the
//! catalog; every value, filter field name and id is a bind parameter. JSON values reach
//! typed columns through `jsonb_populate_record`, so the database does the conversions.

mod conninfo;
mod pool;
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_postgres::Row;

use conninfo::Target;
use pool::{Column, Failure, Pool, Sql, TableInfo};
use switchboard::egress::Egress;
use switchboard::error::Error;
use switchboard::ids::{EntityName, OrgId, RecordId};
use switchboard::index::{DerivedKey, Indexes, Normalize};
use switchboard::ports::{Condition, DataAdapter, DataError, Op, Page, QUERY_PAGE, StoreError};
use switchboard::secrets::{SecretValue, Secrets};
use switchboard::spec::PgConfig;
use switchboard::spec::postgres::{TableMap, quote};

/// The most records one batch call may write (one transaction).
const MAX_BATCH: usize = 1000;

/// Checks a credential's value for the postgres adapter when a config naming it is
/// written: a `connection_string` that parses, an allowed `sslmode`/`sslrootcert`, a TCP
/// host (no unix socket) that the egress guard does not refuse outright (a literal private
/// IP or `localhost`; names are checked when connecting) and, if present, a usable
/// `ca_cert`. Nothing is connected to. Messages are fixed: they never include the value.
pub fn check_secret(value: &SecretValue, egress: &Egress) -> Result<(), String> {
    let Some(conn) = value.field("connection_string") else {
        return Err("the credential has no 'connection_string' field".into());
    };
    let target = Target::parse(conn, value.field("ca_cert")).map_err(|r| r.text().to_owned())?;
    for ep in &target.endpoints {
        let refused = egress.check_host(&ep.name).is_err()
            || ep.addr.is_some_and(|ip| egress.check_ip(ip).is_err());
        if refused {
            return Err(pool::PRIVATE.to_owned());
        }
    }
    Ok(())
}

/// The connection pools of one container: one small pool per (organization, credential,
/// max_connections), replaced when the secret's value changes. Clones share the pools.
#[derive(Clone)]
pub struct PgPools {
    shared: Arc<Shared>,
}

struct Shared {
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    egress: Egress,
    max_idle: Duration,
}

/// (organization, credential reference, max_connections).
type PoolKey = (OrgId, String, usize);

impl PgPools {
    /// Pools connecting only where `egress` allows.
    pub fn new(egress: Egress) -> Self {
        Self::with_max_idle(egress, pool::MAX_IDLE)
    }

    /// As [`PgPools::new`], closing connections idle longer than `max_idle`.
    pub fn with_max_idle(egress: Egress, max_idle: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                pools: Mutex::default(),
                egress,
                max_idle,
            }),
        }
    }

    /// The pool for `key` if it was built from the same secret value. Sweeps every pool's
    /// idle connections on the way, and forgets pools nobody uses that hold no connection.
    fn get(&self, key: &PoolKey, fingerprint: &str) -> Option<Arc<Pool>> {
        let mut pools = self.shared.pools.lock().ok()?;
        pools.retain(|k, p| p.sweep() > 0 || Arc::strong_count(p) > 1 || k == key);
        pools
            .get(key)
            .filter(|p| p.fingerprint == fingerprint)
            .cloned()
    }

    /// Keeps `pool` for `key`, unless a concurrent call already keeps one for the same
    /// secret value: then that one is returned, so concurrent first calls share one pool.
    fn insert(&self, key: PoolKey, pool: Pool) -> Arc<Pool> {
        let Ok(mut pools) = self.shared.pools.lock() else {
            return Arc::new(pool);
        };
        match pools.get(&key) {
            Some(p) if p.fingerprint == pool.fingerprint => p.clone(),
            _ => {
                let pool = Arc::new(pool);
                pools.insert(key, pool.clone());
                pool
            }
        }
    }
}

pub struct PgData {
    pools: PgPools,
    config: Arc<PgConfig>,
    secrets: Arc<Secrets>,
    org: OrgId,
    indexes: Indexes,
}

/// What one call works on: the entity's table, the pool, and the table's columns.
struct Ctx<'a> {
    entity: &'a EntityName,
    map: &'a TableMap,
    pool: Arc<Pool>,
    secret: SecretValue,
    info: Arc<TableInfo>,
    indexes: &'a Indexes,
    /// The end of the call's time budget (`timeout_ms` from its start).
    deadline: Instant,
}

impl Ctx<'_> {
    fn table(&self) -> String {
        self.map.qualified()
    }

    /// The record of row `r` as jsonb: its columns, the extra column's fields, `"id"`.
    fn rec(&self) -> String {
        let mut e = "to_jsonb(r.*)".to_owned();
        if let Some(x) = &self.map.extra_column {
            // `x` passed the identifier check, so it is safe inside a string literal.
            let q = quote(x);
            e = format!(
                "(CASE WHEN jsonb_typeof(r.{q}) = 'object' THEN r.{q} ELSE '{{}}'::jsonb END || ({e} - '{x}'))"
            );
        }
        if self.map.id_column != "id" {
            e = format!(
                "({e} || jsonb_build_object('id', r.{}))",
                quote(&self.map.id_column)
            );
        }
        e
    }

    fn id_col(&self) -> String {
        quote(&self.map.id_column)
    }

    /// `r.id = <id converted to the column's type>`: the database converts the id text
    /// (`jsonb_populate_record`), so an index on the id is used whatever its type.
    fn id_match(&self, sql: &mut Sql, id: &str) -> String {
        self.id_compare(sql, id, "=")
    }

    fn id_compare(&self, sql: &mut Sql, id: &str, op: &str) -> String {
        let p = sql.json(json!({ self.map.id_column.as_str(): id }));
        let q = self.id_col();
        format!(
            "r.{q} {op} (jsonb_populate_record(NULL::{}, {p})).{q}",
            self.table()
        )
    }

    /// Whether `id` can be a value of the id column at all (an integer column cannot
    /// hold "abc": that record simply does not exist).
    fn id_possible(&self, id: &str) -> bool {
        let Some(col) = self.info.column(&self.map.id_column) else {
            return true;
        };
        match col.type_name.as_str() {
            "smallint" | "integer" | "bigint" => id.trim().parse::<i64>().is_ok(),
            _ if col.category == "N" => id.trim().parse::<f64>().is_ok_and(f64::is_finite),
            _ => true,
        }
    }

    fn no_field(&self, field: &str) -> DataError {
        DataError::Invalid(format!(
            "{} has no field '{field}': table {} has no such column",
            self.entity,
            self.map.display()
        ))
    }

    /// The conditions as one SQL boolean expression.
    fn conditions(&self, sql: &mut Sql, conditions: &[Condition]) -> Result<String, DataError> {
        let rec = self.rec();
        let matcher = self.indexes.matcher(self.entity, conditions);
        let mut parts = Vec::with_capacity(conditions.len());
        for c in matcher.conditions() {
            if let Some(key) = self.indexes.key(self.entity, &c.field) {
                parts.push(self.key_condition(sql, &rec, key, c)?);
                continue;
            }
            if c.field != "id"
                && self.info.column(&c.field).is_none()
                && self.map.extra_column.is_none()
            {
                return Err(self.no_field(&c.field));
            }
            let typed = self.column_condition(sql, c);
            parts.push(typed.unwrap_or_else(|| condition(sql, &rec, c)));
        }
        Ok(if parts.is_empty() {
            "true".to_owned()
        } else {
            parts.join(" AND ")
        })
    }

    /// `c` (its value normalised) on a derived key, computed in SQL as
    /// [`DerivedKey::apply`] computes it. Taken from the column itself when the pointer
    /// starts at a `jsonb` or text column, so that an index on the same expression
    /// ([`key_expression`]) answers it.
    fn key_condition(
        &self,
        sql: &mut Sql,
        rec: &str,
        key: &DerivedKey,
        c: &Condition,
    ) -> Result<String, DataError> {
        let path = key.path();
        let Some((first, rest)) = path.split_first() else {
            return Err(DataError::Invalid(format!(
                "index key {} has no field to read (from: {:?})",
                key.name, key.from
            )));
        };
        let column = self
            .info
            .column(first)
            .filter(|_| *first != "id" && self.map.extra_column.as_deref() != Some(*first));
        let source = match column {
            Some(col) if col.type_name == "jsonb" => {
                key_source(&format!("r.{}", quote(first)), rest)
            }
            Some(col)
                if rest.is_empty()
                    && (col.type_name == "text"
                        || col.type_name.starts_with("character varying")) =>
            {
                Some(format!("r.{}", quote(first)))
            }
            None if *first != "id" && self.map.extra_column.is_none() => {
                return Err(self.no_field(first));
            }
            _ => key_source(rec, &path),
        };
        let Some(source) = source else {
            return Err(DataError::Invalid(format!(
                "index key {} reads {:?}: only field names and array positions can be followed",
                key.name, key.from
            )));
        };
        let k = key_expression(key, &source);
        let cmp = comparison(c.op).unwrap_or("");
        // A normalised value is a string; anything else equals no key.
        Ok(match (c.op, &c.value) {
            (Op::Ne, Value::String(s)) => format!("{k} IS DISTINCT FROM {}", sql.text(s.clone())),
            (Op::Ne, _) => "true".to_owned(),
            (Op::BeginsWith, Value::String(s)) => {
                format!("starts_with({k}, {})", sql.text(s.clone()))
            }
            (Op::Contains, Value::String(s)) => format!("strpos({k}, {}) > 0", sql.text(s.clone())),
            (Op::BeginsWith | Op::Contains, _)
            | (
                _,
                Value::Null
                | Value::Bool(_)
                | Value::Array(_)
                | Value::Object(_)
                | Value::Number(_),
            ) => "false".to_owned(),
            (_, Value::String(s)) => format!("{k} COLLATE \"C\" {cmp} {}", sql.text(s.clone())),
        })
    }

    /// `c` on its own column, the value converted to the column's type by the database, so
    /// an index on the column answers it; `None` when only the jsonb form is exact (no such
    /// column, a value of another type, a prefix or containment test).
    fn column_condition(&self, sql: &mut Sql, c: &Condition) -> Option<String> {
        if c.field == "id" && self.map.id_column != "id" {
            return None;
        }
        let field = if c.field == "id" {
            self.map.id_column.as_str()
        } else {
            c.field.as_str()
        };
        let col = self.info.column(field)?;
        let cmp = comparison(c.op)?;
        // Only types whose conversion of the value is exact and whose comparison is the
        // jsonb form's: a rounding numeric(p,s), real, citext or char(n) would answer
        // differently, a value out of a type's range would fail instead of not matching, and
        // a float or numeric column's NaN and Infinity are numbers to SQL but strings in jsonb.
        let exact = match (&c.value, col.type_name.as_str()) {
            (Value::String(_), "text" | "character varying") => true,
            (Value::Number(n), "bigint") => n.as_i64().is_some(),
            (Value::Number(n), "integer") => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
            (Value::Number(n), "smallint") => n.as_i64().is_some_and(|v| i16::try_from(v).is_ok()),
            (Value::Bool(_), "boolean") => c.op == Op::Eq,
            _ => false,
        };
        if !exact {
            return None;
        }
        // Text in byte order, as the jsonb form and Rust compare strings; equality too, so
        // one index created `COLLATE "C"` answers exact and range lookups alike.
        let collate = if c.value.is_string() {
            " COLLATE \"C\""
        } else {
            ""
        };
        let q = quote(field);
        let p = sql.json(json!({ field: c.value }));
        Some(format!(
            "r.{q}{collate} {cmp} (jsonb_populate_record(NULL::{}, {p})).{q}",
            self.table()
        ))
    }

    /// The columns a record writes and the jsonb object holding their values. Fields that
    /// are no column go to the extra column if there is one, and are refused otherwise.
    fn payload(
        &self,
        record: Map<String, Value>,
        creating: bool,
    ) -> Result<(Vec<String>, Value), DataError> {
        let mut values = Map::new();
        let mut extra = Map::new();
        for (key, value) in record {
            let is_id = key == "id" || key == self.map.id_column;
            if is_id {
                // The id is never changed; on create a null id means "allocate one".
                if creating && !value.is_null() {
                    values.insert(self.map.id_column.clone(), id_value(self.entity, value)?);
                }
                continue;
            }
            if self.map.extra_column.as_deref() == Some(key.as_str()) {
                match value {
                    Value::Object(m) => extra.extend(m),
                    Value::Null => {}
                    _ => {
                        return Err(DataError::Invalid(format!(
                            "{}: field '{key}' holds the extra fields and must be an object",
                            self.entity
                        )));
                    }
                }
            } else if self.info.column(&key).is_some() {
                values.insert(key, value);
            } else if self.map.extra_column.is_some() {
                extra.insert(key, value);
            } else {
                return Err(self.no_field(&key));
            }
        }
        if let Some(x) = &self.map.extra_column
            && !extra.is_empty()
        {
            values.insert(x.clone(), Value::Object(extra));
        }
        // In table order, so the same fields give the same SQL text.
        let columns = self
            .info
            .columns
            .iter()
            .filter(|c| values.contains_key(&c.name))
            .map(|c| c.name.clone())
            .collect();
        Ok((columns, Value::Object(values)))
    }

    fn insert(&self, record: Value) -> Result<(Sql, Option<String>), DataError> {
        let record = as_object(self.entity, record)?;
        let explicit = explicit_id(self.entity, &record)?;
        let (columns, values) = self.payload(record, true)?;
        let table = self.table();
        let mut sql = Sql::default();
        if columns.is_empty() {
            sql.push(&format!(
                "INSERT INTO {table} AS r DEFAULT VALUES RETURNING {}",
                self.rec()
            ));
        } else {
            let p = sql.json(values);
            let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
            let from: Vec<String> = cols.iter().map(|c| format!("p.{c}")).collect();
            sql.push(&format!(
                "INSERT INTO {table} AS r ({}) SELECT {} FROM jsonb_populate_record(NULL::{table}, {p}) AS p RETURNING {}",
                cols.join(", "),
                from.join(", "),
                self.rec()
            ));
        }
        Ok((sql, explicit))
    }

    /// `UPDATE … WHERE id AND conditions RETURNING record`, without the surrounding query.
    fn update(
        &self,
        sql: &mut Sql,
        id_match: &str,
        patch: Value,
        expect: &[Condition],
    ) -> Result<String, DataError> {
        let patch = as_object(self.entity, patch)?;
        let (columns, values) = self.payload(patch, false)?;
        let table = self.table();
        let mut sets = Vec::with_capacity(columns.len());
        for c in &columns {
            let q = quote(c);
            if self.map.extra_column.as_deref() == Some(c.as_str()) {
                // Extra fields merge like the columns do: the patch's keys win.
                sets.push(format!(
                    "{q} = CASE WHEN jsonb_typeof(r.{q}) = 'object' THEN r.{q} ELSE '{{}}'::jsonb END || p.{q}"
                ));
            } else {
                sets.push(format!("{q} = p.{q}"));
            }
        }
        let from = if sets.is_empty() {
            // Nothing to change: still a write, so the row is locked and checked.
            sets.push(format!("{0} = r.{0}", self.id_col()));
            String::new()
        } else {
            let p = sql.json(values);
            format!(" FROM jsonb_populate_record(NULL::{table}, {p}) AS p")
        };
        let conds = self.conditions(sql, expect)?;
        Ok(format!(
            "UPDATE {table} AS r SET {}{from} WHERE {id_match} AND {conds} RETURNING {}",
            sets.join(", "),
            self.rec()
        ))
    }
}

/// The SQL operator of an equality or range condition; `None` for the others.
fn comparison(op: Op) -> Option<&'static str> {
    match op {
        Op::Eq => Some("="),
        Op::Lt => Some("<"),
        Op::Lte => Some("<="),
        Op::Gt => Some(">"),
        Op::Gte => Some(">="),
        Op::Ne | Op::BeginsWith | Op::Contains => None,
    }
}

/// One condition with the same meaning as [`switchboard::data::matches`]: numbers compare
/// numerically, strings bytewise, a missing field matches only `ne`.
fn condition(sql: &mut Sql, rec: &str, c: &Condition) -> String {
    let f = sql.text(c.field.clone());
    let field = format!("({rec} -> {f})");
    let text = format!("({rec} ->> {f})");
    let cmp = comparison(c.op).unwrap_or("=");
    match (c.op, &c.value) {
        (Op::Eq, v) => format!("{field} = {}", sql.json(v.clone())),
        (Op::Ne, v) => format!("{field} IS DISTINCT FROM {}", sql.json(v.clone())),
        (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Value::Number(_)) => format!(
            "(jsonb_typeof({field}) = 'number' AND {field} {cmp} {})",
            sql.json(c.value.clone())
        ),
        // "C" collation: byte order, as Rust compares strings, whatever the database's.
        (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Value::String(s)) => format!(
            "(jsonb_typeof({field}) = 'string' AND {text} COLLATE \"C\" {cmp} {})",
            sql.text(s.clone())
        ),
        (Op::BeginsWith, Value::String(s)) => format!(
            "(jsonb_typeof({field}) = 'string' AND starts_with({text}, {}))",
            sql.text(s.clone())
        ),
        // CASE, not AND: jsonb_array_elements fails on a non-array, and AND may evaluate
        // either side first.
        (Op::Contains, v) => {
            let in_array = format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements({field}) AS e(v) WHERE e.v = {})",
                sql.json(v.clone())
            );
            let in_string = match v {
                Value::String(s) => format!("strpos({text}, {}) > 0", sql.text(s.clone())),
                _ => "false".to_owned(),
            };
            format!(
                "(CASE jsonb_typeof({field}) WHEN 'array' THEN {in_array} WHEN 'string' THEN {in_string} ELSE false END)"
            )
        }
        _ => "false".to_owned(),
    }
}

/// The string at `path` inside the jsonb `doc`, NULL when it is not a string; `None` when a
/// segment is more than a field name or an array position (so it is safe in a literal).
fn key_source(doc: &str, path: &[&str]) -> Option<String> {
    if !path
        .iter()
        .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return None;
    }
    // Each element quoted: unquoted, an element `null` would be SQL NULL.
    let elements: Vec<String> = path.iter().map(|s| format!("\"{s}\"")).collect();
    let p = format!("'{{{}}}'", elements.join(","));
    Some(format!(
        "CASE WHEN jsonb_typeof({doc} #> {p}) = 'string' THEN {doc} #>> {p} END"
    ))
}

/// The SQL expression of `key` over the text expression `source`: NULL where the record
/// has no key. Only immutable functions, so an expression index can hold it, e.g.
/// `CREATE INDEX ON tickets ((<expression>) COLLATE "C")`.
pub fn key_expression(key: &DerivedKey, source: &str) -> String {
    let normalised = match key.normalize {
        Normalize::Digits => {
            let digits = format!("regexp_replace({source}, '[^0-9]', '', 'g')");
            match key.last {
                Some(n) => format!("right({digits}, {n})"),
                None => digits,
            }
        }
        // The characters `char::is_ascii_whitespace` trims, and ASCII letters only.
        Normalize::Lowercase => format!(
            "translate(btrim({source}, E' \\t\\n\\f\\r'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
        ),
    };
    format!("NULLIF({normalised}, '')")
}

fn as_object(entity: &EntityName, v: Value) -> Result<Map<String, Value>, DataError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(DataError::Invalid(format!(
            "a {entity} record must be a JSON object"
        ))),
    }
}

fn id_value(entity: &EntityName, v: Value) -> Result<Value, DataError> {
    match v {
        Value::String(s) => RecordId::parse(s.clone())
            .map(|_| Value::String(s))
            .map_err(|e| DataError::Invalid(e.to_string())),
        Value::Number(n) => Ok(Value::Number(n)),
        _ => Err(DataError::Invalid(format!(
            "a {entity} id must be a string or a number"
        ))),
    }
}

fn explicit_id(
    entity: &EntityName,
    record: &Map<String, Value>,
) -> Result<Option<String>, DataError> {
    Ok(match record.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => match id_value(entity, v.clone())? {
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        },
    })
}

fn record(row: &Row) -> Result<Value, DataError> {
    row.try_get::<_, Value>(0)
        .map_err(|e| DataError::Store(StoreError::Internal(format!("postgres row: {e}"))))
}

fn internal(e: tokio_postgres::Error) -> DataError {
    DataError::Store(StoreError::Internal(format!("postgres row: {e}")))
}

impl PgData {
    /// `indexes`: the plugin's declared indexes. Queries are refused unless one answers
    /// them, as on every adapter; the operator creates the matching database indexes.
    pub fn new(
        pools: PgPools,
        config: Arc<PgConfig>,
        secrets: Arc<Secrets>,
        org: OrgId,
        indexes: Indexes,
    ) -> Self {
        Self {
            pools,
            config,
            secrets,
            org,
            indexes,
        }
    }

    /// One page of the records matching `filter`, in id order after `cursor` (an id).
    async fn page(
        &self,
        entity: &EntityName,
        filter: &[Condition],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        let bad_cursor = || {
            DataError::Invalid(
                "the cursor is not one this API returned; start again without it".into(),
            )
        };
        if cursor.is_some_and(|c| RecordId::parse(c).is_err()) {
            return Err(bad_cursor());
        }
        let ctx = self.ctx(entity).await?;
        if cursor.is_some_and(|c| !ctx.id_possible(c)) {
            return Err(bad_cursor());
        }
        let limit = limit.clamp(1, 1000);
        let sql = Self::select_page(&ctx, filter, limit, cursor)?;
        let rows = self.query_rows(&ctx, &sql, true, "").await.map_err(|e| {
            if cursor.is_some() && is_bad_text(&e) {
                bad_cursor()
            } else {
                e
            }
        })?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit.min(rows.len()));
        let mut last = None;
        for row in rows.iter().take(limit) {
            items.push(record(row)?);
            last = Some(row.try_get::<_, String>(1).map_err(internal)?);
        }
        Ok(Page {
            items,
            next: if more { last } else { None },
        })
    }

    /// The SQL of one page of [`DataAdapter::list`] or [`DataAdapter::query_page`], with its
    /// parameters bound.
    fn select_page(
        ctx: &Ctx<'_>,
        filter: &[Condition],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Sql, DataError> {
        let mut sql = Sql::default();
        let mut conds = ctx.conditions(&mut sql, filter)?;
        if let Some(c) = cursor {
            conds = format!("{conds} AND {}", ctx.id_compare(&mut sql, c, ">"));
        }
        let n = sql.int(limit as i64 + 1);
        let q = ctx.id_col();
        sql.push(&format!(
            "SELECT {}, r.{q}::text FROM {} AS r WHERE {conds} ORDER BY r.{q} LIMIT {n}",
            ctx.rec(),
            ctx.table()
        ));
        Ok(sql)
    }

    /// The plan PostgreSQL chooses for the first page of `query_page(entity, filter)`
    /// (`EXPLAIN` output, one line per row): how an operator checks that an index is used.
    pub async fn explain(
        &self,
        entity: &EntityName,
        filter: &[Condition],
    ) -> Result<String, DataError> {
        self.indexes.lookup(entity, filter)?;
        let ctx = self.ctx(entity).await?;
        let mut sql = Self::select_page(&ctx, filter, QUERY_PAGE, None)?;
        sql.text.insert_str(0, "EXPLAIN ");
        let rows = self.query_rows(&ctx, &sql, true, "").await?;
        let lines: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(internal))
            .collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }

    fn map(&self, entity: &EntityName) -> Result<&TableMap, DataError> {
        self.config.entities.get(entity).ok_or_else(|| {
            let known: Vec<&str> = self.config.entities.keys().map(|e| e.as_str()).collect();
            DataError::Invalid(format!(
                "entity '{entity}' is not mapped to a table in the postgres data adapter config (mapped: {})",
                known.join(", ")
            ))
        })
    }

    /// The credential's current value and the pool for it.
    async fn pool(&self) -> Result<(Arc<Pool>, SecretValue), DataError> {
        let secret = self
            .secrets
            .resolve(&self.org, self.config.credential())
            .await
            .map_err(|e| match e {
                Error::Validation { message, .. } => DataError::Invalid(message),
                Error::Unavailable(m) => DataError::Store(StoreError::Unavailable(m)),
                other => DataError::Upstream(other.to_string()),
            })?;
        Ok((self.pool_for(&secret)?, secret))
    }

    /// The pool for one value of the credential, built on first use.
    fn pool_for(&self, secret: &SecretValue) -> Result<Arc<Pool>, DataError> {
        let reference = self.config.credential();
        let Some(conn) = secret.field("connection_string") else {
            return Err(DataError::Invalid(format!(
                "credential '{reference}' has no 'connection_string' field"
            )));
        };
        let ca = secret.field("ca_cert");
        let mut h = Sha256::new();
        h.update(conn.as_bytes());
        h.update([0]);
        h.update(ca.unwrap_or("").as_bytes());
        let fingerprint: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let key = (
            self.org.clone(),
            reference.as_str().to_owned(),
            self.config.max_connections,
        );
        if let Some(p) = self.pools.get(&key, &fingerprint) {
            return Ok(p);
        }
        let target = Target::parse(conn, ca)
            .map_err(|r| DataError::Invalid(r.message(reference.as_str())))?;
        let shared = &self.pools.shared;
        Ok(self.pools.insert(
            key,
            Pool::new(
                target,
                fingerprint,
                self.config.max_connections,
                shared.egress.clone(),
                shared.max_idle,
            ),
        ))
    }

    /// Runs `run` on `pool`. When the database refuses the credential (SQLSTATE 28P01 or
    /// 28000), the secret is re-fetched once (rotation); if it changed, `run` runs again on
    /// the new value's pool. Authentication fails before any statement ran, so running any
    /// statement again is safe. On failure, the pool that failed is returned with it.
    async fn rotating<T, F, Fut>(
        &self,
        pool: &Arc<Pool>,
        secret: &SecretValue,
        run: F,
    ) -> Result<(T, Arc<Pool>, SecretValue), (Failure, Arc<Pool>)>
    where
        F: Fn(Arc<Pool>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        match run(pool.clone()).await {
            Ok(v) => Ok((v, pool.clone(), secret.clone())),
            Err(Failure::Connect(e)) if is_auth(&e) => {
                let fresh = match self
                    .secrets
                    .refresh(&self.org, self.config.credential(), secret)
                    .await
                {
                    Ok(v) => v,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not re-read the postgres credential");
                        None
                    }
                };
                let Some(fresh) = fresh else {
                    return Err((Failure::Connect(e), pool.clone()));
                };
                tracing::info!(credential = %self.config.credential(), "postgres credential rotated; retrying with its new value");
                let next = self
                    .pool_for(&fresh)
                    .map_err(|d| (Failure::Check(d), pool.clone()))?;
                match run(next.clone()).await {
                    Ok(v) => Ok((v, next, fresh)),
                    Err(f) => Err((f, next)),
                }
            }
            Err(f) => Err((f, pool.clone())),
        }
    }

    async fn ctx<'a>(&'a self, entity: &'a EntityName) -> Result<Ctx<'a>, DataError> {
        let deadline = Instant::now() + self.config.timeout;
        let map = self.map(entity)?;
        let (pool, secret) = self.pool().await?;
        let (pool, secret, info) = match pool.cached_table(&map.schema, &map.table) {
            Some(info) => (pool, secret, info),
            None => {
                let sql = &introspection(map);
                let (rows, pool, secret) = match self
                    .rotating(&pool, &secret, |p| async move {
                        p.query(sql, true, deadline).await
                    })
                    .await
                {
                    Ok(r) => r,
                    Err((f, p)) => return Err(self.failure(entity, map, &p, f, "").await),
                };
                let info = Arc::new(table_info(entity, map, rows)?);
                pool.cache_table(&map.schema, &map.table, info.clone());
                (pool, secret, info)
            }
        };
        Ok(Ctx {
            entity,
            map,
            pool,
            secret,
            info,
            indexes: &self.indexes,
            deadline,
        })
    }

    async fn query_rows(
        &self,
        ctx: &Ctx<'_>,
        sql: &Sql,
        retry: bool,
        id: &str,
    ) -> Result<Vec<Row>, DataError> {
        let deadline = ctx.deadline;
        match self
            .rotating(&ctx.pool, &ctx.secret, |p| async move {
                p.query(sql, retry, deadline).await
            })
            .await
        {
            Ok((rows, _, _)) => Ok(rows),
            Err((f, p)) => Err(self.failure(ctx.entity, ctx.map, &p, f, id).await),
        }
    }

    /// Maps a failure onto the error contract. Messages name the entity and table, never
    /// the connection string; the password is scrubbed from anything the driver says.
    async fn failure(
        &self,
        entity: &EntityName,
        map: &TableMap,
        pool: &Pool,
        f: Failure,
        id: &str,
    ) -> DataError {
        let scrub = |s: String| match pool.password() {
            Some(pw) => s.replace(pw, "***"),
            None => s,
        };
        let table = map.display();
        let secs = self.config.timeout.as_secs_f64();
        let credential = self.config.credential();
        let conflict = || DataError::Conflict {
            entity: entity.to_string(),
            id: id.to_owned(),
        };
        match f {
            Failure::Check(e) => e,
            Failure::Busy => DataError::UpstreamTimeout(format!(
                "every connection to the {entity} database stayed busy for the call's {secs} s budget; retry shortly"
            )),
            Failure::Timeout => DataError::UpstreamTimeout(format!(
                "the {entity} database (table {table}) did not answer within the call's {secs} s budget"
            )),
            Failure::ConnectTimeout(d) => DataError::UpstreamTimeout(format!(
                "could not connect to the {entity} database within {} s",
                d.as_secs_f64()
            )),
            Failure::Refused(m) => DataError::Invalid(format!("credential '{credential}': {m}")),
            Failure::Unreachable(m) => {
                DataError::Upstream(format!("could not connect to the {entity} database: {m}"))
            }
            Failure::Connect(e) => {
                if is_auth(&e) {
                    return DataError::Upstream(format!(
                        "the {entity} database refused the user or password of credential '{credential}'"
                    ));
                }
                DataError::Upstream(scrub(format!(
                    "could not connect to the {entity} database: {}",
                    describe(&e)
                )))
            }
            Failure::Db { error, .. } => {
                let Some(db) = error.as_db_error() else {
                    return DataError::Upstream(scrub(format!(
                        "the connection to the {entity} database failed: {}",
                        describe(&error)
                    )));
                };
                let code = db.code().code();
                let msg = scrub(format!("{entity} (table {table}): {}", db.message()));
                match code {
                    "23505" | "40001" | "40P01" => conflict(),
                    "42703" | "42P01" | "3F000" => {
                        // The table changed under the cached columns.
                        pool.forget_table(&map.schema, &map.table);
                        DataError::Invalid(msg)
                    }
                    "57014" => DataError::UpstreamTimeout(msg),
                    c if c.starts_with("22") || c.starts_with("23") || c == "428C9" => {
                        DataError::Invalid(msg)
                    }
                    _ => DataError::Upstream(format!("{msg} (SQLSTATE {code})")),
                }
            }
        }
    }

    async fn transaction(
        &self,
        ctx: &Ctx<'_>,
        statements: &[Sql],
        ids: &[Option<String>],
        check: impl Fn(usize, &[Row]) -> Result<(), DataError>,
    ) -> Result<Vec<Vec<Row>>, DataError> {
        let deadline = ctx.deadline;
        let check = &check;
        match self
            .rotating(&ctx.pool, &ctx.secret, |p| async move {
                p.transaction(statements, check, deadline).await
            })
            .await
        {
            Ok((rows, _, _)) => Ok(rows),
            Err((f, p)) => {
                let id = match &f {
                    Failure::Db { index: Some(i), .. } => {
                        ids.get(*i).cloned().flatten().unwrap_or_default()
                    }
                    _ => String::new(),
                };
                Err(self.failure(ctx.entity, ctx.map, &p, f, &id).await)
            }
        }
    }
}

/// The catalog query for a table's columns.
fn introspection(map: &TableMap) -> Sql {
    let mut sql = Sql::default();
    let schema = sql.text(map.schema.clone());
    let table = sql.text(map.table.clone());
    sql.push(&format!(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typcategory::text, \
         a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         WHERE n.nspname = {schema} AND c.relname = {table} \
         AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum"
    ));
    sql
}

/// The table's columns from the catalog query's rows, checked against the mapping.
fn table_info(entity: &EntityName, map: &TableMap, rows: Vec<Row>) -> Result<TableInfo, DataError> {
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        columns.push(Column {
            name: row.try_get(0).map_err(internal)?,
            type_name: row.try_get(1).map_err(internal)?,
            category: row.try_get(2).map_err(internal)?,
            not_null: row.try_get(3).map_err(internal)?,
            has_default: row.try_get(4).map_err(internal)?,
        });
    }
    let info = TableInfo { columns };
    let bad = |m: String| {
        DataError::Invalid(format!(
            "the postgres data adapter maps {entity} to table {}, which {m}",
            map.display()
        ))
    };
    if info.columns.is_empty() {
        return Err(bad("does not exist or which this role cannot see".into()));
    }
    if info.column(&map.id_column).is_none() {
        return Err(bad(format!(
            "has no id column '{}' (set id_column)",
            map.id_column
        )));
    }
    if let Some(x) = &map.extra_column
        && info.column(x).is_none_or(|c| c.type_name != "jsonb")
    {
        return Err(bad(format!("has no jsonb column '{x}' (extra_column)")));
    }
    Ok(info)
}

/// The server refused the user or password (perhaps rotated).
fn is_auth(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| matches!(db.code().code(), "28P01" | "28000"))
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(cause) = src {
                s.push_str(&format!(": {cause}"));
                src = cause.source();
            }
            s
        }
    }
}

fn is_bad_text(e: &DataError) -> bool {
    matches!(e, DataError::Invalid(m) if m.contains("invalid input syntax") || m.contains("out of range"))
}

fn json_type(c: &Column) -> Value {
    let t = match (c.category.as_str(), c.type_name.as_str()) {
        (_, "smallint" | "integer" | "bigint") => "integer",
        ("N", _) => "number",
        ("B", _) => "boolean",
        ("A", _) => "array",
        (_, "json" | "jsonb") => return json!({"x-postgres-type": c.type_name}),
        _ => "string",
    };
    if c.not_null {
        json!({"type": t, "x-postgres-type": c.type_name})
    } else {
        json!({"type": [t, "null"], "x-postgres-type": c.type_name})
    }
}

#[async_trait]
impl DataAdapter for PgData {
    async fn list(
        &self,
        entity: &EntityName,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        self.page(entity, &[], limit, cursor).await
    }

    async fn get(&self, entity: &EntityName, id: &RecordId) -> Result<Option<Value>, DataError> {
        let ctx = self.ctx(entity).await?;
        if !ctx.id_possible(id.as_str()) {
            return Ok(None);
        }
        let mut sql = Sql::default();
        let m = ctx.id_match(&mut sql, id.as_str());
        sql.push(&format!(
            "SELECT {} FROM {} AS r WHERE {m}",
            ctx.rec(),
            ctx.table()
        ));
        match self.query_rows(&ctx, &sql, true, id.as_str()).await {
            Ok(rows) => rows.first().map(record).transpose(),
            Err(e) if is_bad_text(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, entity: &EntityName, record_: Value) -> Result<Value, DataError> {
        let ctx = self.ctx(entity).await?;
        let (sql, id) = ctx.insert(record_)?;
        let rows = self
            .query_rows(&ctx, &sql, false, id.as_deref().unwrap_or(""))
            .await?;
        match rows.first() {
            Some(row) => record(row),
            None => Err(DataError::Store(StoreError::Internal(
                "postgres INSERT returned no row".into(),
            ))),
        }
    }

    async fn update_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
        expect: &[Condition],
    ) -> Result<Value, DataError> {
        let ctx = self.ctx(entity).await?;
        let not_found = || DataError::NotFound {
            entity: entity.to_string(),
            id: id.to_string(),
        };
        if !ctx.id_possible(id.as_str()) {
            return Err(not_found());
        }
        let mut sql = Sql::default();
        let m = ctx.id_match(&mut sql, id.as_str());
        let update = ctx.update(&mut sql, &m, patch, expect)?;
        // One statement: the conditional update, and whether the row exists at all, to
        // tell "not found" from "changed since read".
        let text = format!(
            "WITH u AS ({update} AS v) SELECT (SELECT v FROM u) AS v, EXISTS (SELECT 1 FROM {} AS r WHERE {m}) AS found",
            ctx.table()
        );
        sql.text = text;
        let rows = self.query_rows(&ctx, &sql, false, id.as_str()).await?;
        let row = rows.first().ok_or_else(not_found)?;
        let updated: Option<Value> = row.try_get(0).map_err(internal)?;
        let found: bool = row.try_get(1).map_err(internal)?;
        match (updated, found) {
            (Some(v), _) => Ok(v),
            (None, true) => Err(DataError::Conflict {
                entity: entity.to_string(),
                id: id.to_string(),
            }),
            (None, false) => Err(not_found()),
        }
    }

    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        let ctx = self.ctx(entity).await?;
        if !ctx.id_possible(id.as_str()) {
            return Ok(false);
        }
        let mut sql = Sql::default();
        let m = ctx.id_match(&mut sql, id.as_str());
        let conds = ctx.conditions(&mut sql, expect)?;
        let table = ctx.table();
        sql.push(&format!(
            "WITH d AS (DELETE FROM {table} AS r WHERE {m} AND {conds} RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM d), EXISTS (SELECT 1 FROM {table} AS r WHERE {m})"
        ));
        let rows = self.query_rows(&ctx, &sql, false, id.as_str()).await?;
        let Some(row) = rows.first() else {
            return Ok(false);
        };
        let deleted: bool = row.try_get(0).map_err(internal)?;
        let found: bool = row.try_get(1).map_err(internal)?;
        if !deleted && found && !expect.is_empty() {
            return Err(DataError::Conflict {
                entity: entity.to_string(),
                id: id.to_string(),
            });
        }
        Ok(deleted)
    }

    async fn query_page(
        &self,
        entity: &EntityName,
        filter: &[Condition],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        self.indexes.lookup(entity, filter)?;
        self.page(entity, filter, limit, cursor).await
    }

    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError> {
        switchboard::ports::check_batch_len(records.len(), MAX_BATCH)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = self.ctx(entity).await?;
        let mut statements = Vec::with_capacity(records.len());
        let mut ids = Vec::with_capacity(records.len());
        for r in records {
            let (sql, id) = ctx.insert(r)?;
            if let Some(id) = &id
                && ids.contains(&Some(id.clone()))
            {
                return Err(DataError::Invalid(format!(
                    "the batch names {entity} '{id}' twice"
                )));
            }
            statements.push(sql);
            ids.push(id);
        }
        let rows = self
            .transaction(&ctx, &statements, &ids, |_, _| Ok(()))
            .await?;
        rows.iter()
            .map(|r| {
                r.first().map(record).unwrap_or_else(|| {
                    Err(DataError::Store(StoreError::Internal(
                        "postgres INSERT returned no row".into(),
                    )))
                })
            })
            .collect()
    }

    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        switchboard::ports::check_batch_len(patches.len(), MAX_BATCH)?;
        if patches.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = self.ctx(entity).await?;
        let not_found = |id: &RecordId| DataError::NotFound {
            entity: entity.to_string(),
            id: id.to_string(),
        };
        let mut statements = Vec::with_capacity(patches.len());
        let mut ids = Vec::with_capacity(patches.len());
        for (id, patch) in patches {
            if !ctx.id_possible(id.as_str()) {
                return Err(not_found(&id));
            }
            let mut sql = Sql::default();
            let m = ctx.id_match(&mut sql, id.as_str());
            let text = ctx.update(&mut sql, &m, patch, &[])?;
            sql.push(&text);
            statements.push(sql);
            ids.push(id);
        }
        let id_strings: Vec<Option<String>> = ids.iter().map(|i| Some(i.to_string())).collect();
        let rows = self
            .transaction(&ctx, &statements, &id_strings, |i, rows| {
                if rows.is_empty() {
                    Err(ids.get(i).map_or_else(
                        || DataError::Invalid("batch index out of range".into()),
                        not_found,
                    ))
                } else {
                    Ok(())
                }
            })
            .await?;
        rows.iter()
            .map(|r| {
                r.first().map(record).unwrap_or_else(|| {
                    Err(DataError::Store(StoreError::Internal(
                        "postgres UPDATE returned no row".into(),
                    )))
                })
            })
            .collect()
    }

    async fn get_schema(&self, entity: &EntityName) -> Result<Value, DataError> {
        let ctx = self.ctx(entity).await?;
        let mut props = Map::new();
        let mut required = Vec::new();
        for c in &ctx.info.columns {
            if ctx.map.extra_column.as_deref() == Some(c.name.as_str()) {
                continue;
            }
            props.insert(c.name.clone(), json_type(c));
            if c.not_null && !c.has_default {
                required.push(json!(c.name));
            }
        }
        if ctx.map.id_column != "id" {
            props.insert(
                "id".into(),
                json!({"description": format!("the value of {}", ctx.map.id_column)}),
            );
        }
        Ok(json!({
            "title": entity,
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": ctx.map.extra_column.is_some(),
            "x-postgres-table": ctx.map.display(),
        }))
    }

    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        Ok(self.config.entities.keys().cloned().collect())
    }
}
