//! One small connection pool per credential per container, and the statement runner.
//!
//! Statements go through `query_typed` only: each is parsed, bound and run as the unnamed
//! statement in one round trip, with the parameter types given by us. Nothing is prepared
//! by name, so the adapter works unchanged through Supabase's transaction-mode pooler
//! (PgBouncer / Supavisor), where a named statement would be gone on the next call.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client, NoTls, Row};

use super::tls::{Roots, RustlsConnect, SslMode};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection idle longer than this is not reused: a frozen Lambda's sockets, or the
/// pooler's idle timeout, may have killed it without the client noticing.
const MAX_IDLE: Duration = Duration::from_secs(120);
/// Introspected columns are re-read after this (a migration may add columns).
const TABLE_TTL: Duration = Duration::from_secs(60);

/// A bind parameter. Every value from a record, a filter or an id travels as one of these.
#[derive(Debug, Clone)]
pub(super) enum Param {
    Text(String),
    Json(Value),
    Int(i64),
}

/// SQL text built from fixed fragments and quoted identifiers, plus its parameters.
#[derive(Debug, Clone, Default)]
pub(super) struct Sql {
    pub text: String,
    params: Vec<Param>,
}

impl Sql {
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    fn bind(&mut self, p: Param, cast: &str) -> String {
        self.params.push(p);
        format!("${}::{cast}", self.params.len())
    }
    /// A text parameter placeholder (`$n::text`).
    pub fn text(&mut self, v: impl Into<String>) -> String {
        self.bind(Param::Text(v.into()), "text")
    }
    pub fn json(&mut self, v: Value) -> String {
        self.bind(Param::Json(v), "jsonb")
    }
    pub fn int(&mut self, v: i64) -> String {
        self.bind(Param::Int(v), "int8")
    }
    fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|p| match p {
                Param::Text(s) => (s as &(dyn ToSql + Sync), Type::TEXT),
                Param::Json(v) => (v as &(dyn ToSql + Sync), Type::JSONB),
                Param::Int(n) => (n as &(dyn ToSql + Sync), Type::INT8),
            })
            .collect()
    }
}

/// Why a statement did not produce rows.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server or the connection reported an error; `index` is the statement of a batch.
    Db {
        index: Option<usize>,
        error: tokio_postgres::Error,
    },
    /// Could not connect (refused, DNS, TLS, authentication).
    Connect(tokio_postgres::Error),
    ConnectTimeout,
    /// Every connection of the pool stayed busy for the whole timeout.
    Busy,
    Timeout,
    /// A batch check refused a statement's result; the transaction was rolled back.
    Check(super::DataError),
}

/// A checked connection string, ready to connect with.
pub(super) struct Target {
    config: tokio_postgres::Config,
    tls: Option<RustlsConnect>,
    /// For scrubbing error texts; never shown.
    pub password: Option<String>,
}

impl Target {
    /// Parses a libpq URI or key=value string. `sslmode` and `sslrootcert` are taken out
    /// here (tokio-postgres knows neither `verify-ca`/`verify-full` nor root files).
    /// Messages never quote the string: it holds the password.
    pub fn parse(conn: &str, ca_pem: Option<&str>) -> Result<Self, String> {
        let (rest, sslmode, rootcert) = take_tls_options(conn)?;
        let mode = match sslmode.as_deref() {
            None => SslMode::Prefer,
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                "the connection string's sslmode must be disable, allow, prefer, require, verify-ca or verify-full".to_owned()
            })?,
        };
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
            format!("the connection string is not a valid PostgreSQL URI or key=value string ({e})")
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("switchboard");
        }
        let file;
        let roots = match (ca_pem, rootcert.as_deref()) {
            (Some(pem), _) => Roots::Pem(pem),
            (None, None | Some("system")) => Roots::System,
            (None, Some(path)) => {
                file = std::fs::read_to_string(path)
                    .map_err(|e| format!("sslrootcert could not be read: {e}"))?;
                Roots::Pem(&file)
            }
        };
        let tls = match mode {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            SslMode::Prefer => {
                config.ssl_mode(tokio_postgres::config::SslMode::Prefer);
                Some(RustlsConnect::new(mode, roots)?)
            }
            _ => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Some(RustlsConnect::new(mode, roots)?)
            }
        };
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Ok(Self {
            config,
            tls,
            password,
        })
    }
}

/// Splits `sslmode` and `sslrootcert` off a connection string (URI query or key=value).
fn take_tls_options(conn: &str) -> Result<(String, Option<String>, Option<String>), String> {
    let mut mode = None;
    let mut root = None;
    let conn = conn.trim();
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Some((base, query)) = conn.split_once('?') else {
            return Ok((conn.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => mode = Some(percent_decode(v)?),
                "sslrootcert" => root = Some(percent_decode(v)?),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    // key=value: keys are words, values bare or single-quoted with backslash escapes.
    let b = conn.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &conn[start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if key.is_empty() && i >= b.len() {
            break;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(
                "the connection string is not a valid PostgreSQL URI or key=value string".into(),
            );
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let vstart = i;
        let mut value = String::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("the connection string has an unterminated quote".into()),
                    Some(b'\\') => {
                        if let Some(c) = conn[i + 1..].chars().next() {
                            value.push(c);
                            i += 1 + c.len_utf8();
                        } else {
                            i += 1;
                        }
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        if let Some(c) = conn[i..].chars().next() {
                            value.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            value.push_str(&conn[vstart..i]);
        }
        match key {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => {
                out.push_str(&conn[start..i]);
                out.push(' ');
            }
        }
    }
    Ok((out.trim_end().to_owned(), mode, root))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("the connection string has a bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the connection string has a bad %-escape".to_owned())
}

/// One column as the catalog describes it.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub name: String,
    /// `format_type`, e.g. `bigint`, `text`, `jsonb`.
    pub type_name: String,
    /// `pg_type.typcategory`: `N` numeric, `S` string, `B` boolean, `D` date/time, `A` array…
    pub category: String,
    pub not_null: bool,
    pub has_default: bool,
}

#[derive(Debug)]
pub(super) struct TableInfo {
    pub columns: Vec<Column>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// (schema, table).
type TableKey = (String, String);

struct Idle {
    client: Client,
    since: Instant,
}

pub(super) struct Pool {
    target: Target,
    /// Identifies the secret value this pool was built from (rotation makes a new pool).
    pub fingerprint: String,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    tables: Mutex<HashMap<TableKey, (Instant, Arc<TableInfo>)>>,
    timeout: Duration,
}

/// A checked-out connection; it goes back to the pool only if its work finished cleanly.
struct Conn {
    client: Option<Client>,
    pool: Arc<Pool>,
    reused: bool,
    clean: bool,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client, Failure> {
        self.client.as_mut().ok_or(Failure::Busy)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && self.clean
            && !client.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(Idle {
                client,
                since: Instant::now(),
            });
        }
    }
}

impl Pool {
    pub fn new(target: Target, fingerprint: String, max: usize, timeout: Duration) -> Self {
        Self {
            target,
            fingerprint,
            idle: Mutex::default(),
            permits: Arc::new(Semaphore::new(max.max(1))),
            tables: Mutex::default(),
            timeout,
        }
    }

    pub fn password(&self) -> Option<&str> {
        self.target.password.as_deref()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn checkout(self: &Arc<Self>, fresh: bool) -> Result<Conn, Failure> {
        let permit = tokio::time::timeout(self.timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Failure::Busy)?
            .map_err(|_| Failure::Busy)?;
        if !fresh {
            while let Some(idle) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
                if !idle.client.is_closed() && idle.since.elapsed() < MAX_IDLE {
                    return Ok(Conn {
                        client: Some(idle.client),
                        pool: self.clone(),
                        reused: true,
                        clean: false,
                        _permit: permit,
                    });
                }
            }
        }
        let client = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| Failure::ConnectTimeout)?
            .map_err(Failure::Connect)?;
        Ok(Conn {
            client: Some(client),
            pool: self.clone(),
            reused: false,
            clean: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let config = &self.target.config;
        let client = match &self.target.tls {
            None => {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(watch(connection));
                client
            }
            Some(tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                tokio::spawn(watch(connection));
                client
            }
        };
        Ok(client)
    }

    /// Asks the server to stop a statement that ran out of time (best effort, in the
    /// background; the connection itself is dropped).
    fn cancel(&self, token: CancelToken) {
        let tls = self.target.tls.clone();
        tokio::spawn(async move {
            let sent = match tls {
                None => token.cancel_query(NoTls).await,
                Some(tls) => token.cancel_query(tls).await,
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "could not cancel a timed-out postgres statement");
            }
        });
    }

    /// Runs one statement. `retry` (idempotent reads only) retries once on a fresh
    /// connection when a reused one turns out to be dead.
    pub async fn query(self: &Arc<Self>, sql: &Sql, retry: bool) -> Result<Vec<Row>, Failure> {
        match self.query_once(sql, false).await {
            Err((Failure::Db { error, .. }, true)) if retry && error.is_closed() => {
                self.query_once(sql, true).await.map_err(|(f, _)| f)
            }
            other => other.map_err(|(f, _)| f),
        }
    }

    async fn query_once(
        self: &Arc<Self>,
        sql: &Sql,
        fresh: bool,
    ) -> Result<Vec<Row>, (Failure, bool)> {
        let mut conn = self.checkout(fresh).await.map_err(|f| (f, false))?;
        let reused = conn.reused;
        let client = conn.client().map_err(|f| (f, reused))?;
        let token = client.cancel_token();
        let params = sql.typed();
        match tokio::time::timeout(self.timeout, client.query_typed(&sql.text, &params)).await {
            Err(_) => {
                self.cancel(token);
                Err((Failure::Timeout, reused))
            }
            Ok(Err(error)) => {
                // A server-side error leaves the connection usable.
                conn.clean = error.as_db_error().is_some();
                Err((Failure::Db { index: None, error }, reused))
            }
            Ok(Ok(rows)) => {
                conn.clean = true;
                Ok(rows)
            }
        }
    }

    /// Runs the statements in one transaction, pipelined (sent together, answered in
    /// order). `check` sees each statement's rows; an error from it rolls everything back.
    pub async fn transaction(
        self: &Arc<Self>,
        statements: &[Sql],
        check: impl Fn(usize, &[Row]) -> Result<(), super::DataError>,
    ) -> Result<Vec<Vec<Row>>, Failure> {
        let mut conn = self.checkout(false).await?;
        let client = conn.client()?;
        let token = client.cancel_token();
        let work = async {
            let tx = client
                .transaction()
                .await
                .map_err(|error| Failure::Db { index: None, error })?;
            let params: Vec<_> = statements.iter().map(Sql::typed).collect();
            let results = join_all(
                statements
                    .iter()
                    .zip(&params)
                    .map(|(s, p)| tx.query_typed(&s.text, p)),
            )
            .await;
            let mut out = Vec::with_capacity(results.len());
            let mut failure = None;
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    // The statements after a failure only report the aborted transaction.
                    Err(error) if failure.is_none() => {
                        failure = Some(Failure::Db {
                            index: Some(i),
                            error,
                        })
                    }
                    Err(_) => {}
                    Ok(rows) if failure.is_none() => {
                        if let Err(e) = check(i, &rows) {
                            failure = Some(Failure::Check(e));
                        }
                        out.push(rows);
                    }
                    Ok(_) => {}
                }
            }
            if let Some(f) = failure {
                tx.rollback()
                    .await
                    .map_err(|error| Failure::Db { index: None, error })?;
                return Err(f);
            }
            tx.commit()
                .await
                .map_err(|error| Failure::Db { index: None, error })?;
            Ok(out)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Err(_) => {
                self.cancel(token);
                Err(Failure::Timeout)
            }
            Ok(r) => {
                conn.clean = match &r {
                    Ok(_) | Err(Failure::Check(_)) => true,
                    Err(Failure::Db { error, .. }) => error.as_db_error().is_some(),
                    Err(_) => false,
                };
                r
            }
        }
    }

    pub fn cached_table(&self, schema: &str, table: &str) -> Option<Arc<TableInfo>> {
        let tables = self.tables.lock().ok()?;
        let (at, info) = tables.get(&(schema.to_owned(), table.to_owned()))?;
        (at.elapsed() < TABLE_TTL).then(|| info.clone())
    }

    pub fn cache_table(&self, schema: &str, table: &str, info: Arc<TableInfo>) {
        if let Ok(mut t) = self.tables.lock() {
            t.insert(
                (schema.to_owned(), table.to_owned()),
                (Instant::now(), info),
            );
        }
    }

    pub fn forget_table(&self, schema: &str, table: &str) {
        if let Ok(mut t) = self.tables.lock() {
            t.remove(&(schema.to_owned(), table.to_owned()));
        }
    }
}

async fn watch<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "postgres connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_from_uris() {
        let (rest, mode, root) = take_tls_options(
            "postgresql://u:p%40ss@db.example.co:6543/postgres?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@db.example.co:6543/postgres?application_name=x"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        let (rest, mode, _) = take_tls_options("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("postgres://u@h/db", Some("require"))
        );
    }

    #[test]
    fn tls_options_are_taken_from_key_values() {
        let (rest, mode, root) = take_tls_options(
            "host=h port=5432 sslmode = verify-ca password='a b\\'c' sslrootcert='/x y.pem' dbname=d",
        )
        .unwrap();
        assert_eq!(rest, "host=h port=5432 password='a b\\'c' dbname=d");
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/x y.pem"));
        assert!(take_tls_options("host=h password='open").is_err());
    }

    #[test]
    fn parse_errors_never_quote_the_string() {
        for bad in [
            "postgres://u:s3cret@h/db?sslmode=sometimes",
            "host=h password=s3cret bogus",
            "host=h password=s3cret port=x",
        ] {
            let e = Target::parse(bad, None).err().unwrap();
            assert!(!e.contains("s3cret"), "{e}");
        }
        let t = Target::parse("postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable", None).unwrap();
        assert_eq!(t.password.as_deref(), Some("s3cret"));
    }
}
