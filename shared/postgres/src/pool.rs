//! One small connection pool per credential per container, and the statement runner.
//!
//! Statements go through `query_typed` only: each is parsed, bound and run as the unnamed
//! statement in one round trip, with the parameter types given by us. Nothing is prepared
//! by name, so the adapter works unchanged through Supabase's transaction-mode pooler
//! (PgBouncer / Supavisor), where a named statement would be gone on the next call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use switchboard::egress::Egress;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client, NoTls, Row};

use super::conninfo::Target;

/// Connecting never takes longer than this, even when the call's budget is larger.
const CONNECT_CAP: Duration = Duration::from_secs(5);
/// A connection idle longer than this is closed: a frozen Lambda's sockets, or the
/// pooler's idle timeout, may have killed it without the client noticing.
pub(super) const MAX_IDLE: Duration = Duration::from_secs(120);
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

pub(crate) const PRIVATE: &str = "the database host is a loopback, private, link-local or otherwise non-public address, which this deployment does not connect to";

/// Why a statement did not produce rows.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server or the connection reported an error; `index` is the statement of a batch.
    Db {
        index: Option<usize>,
        error: tokio_postgres::Error,
    },
    /// The server refused the connection's startup (authentication, unknown database, TLS).
    Connect(tokio_postgres::Error),
    /// No TCP connection: refused, unreachable, or the name does not resolve. Fixed text.
    Unreachable(&'static str),
    /// The connection string points where this container may not connect (fixed text).
    Refused(&'static str),
    /// Connecting did not finish within this (the rest of the budget, at most 5 s).
    ConnectTimeout(Duration),
    /// Every connection of the pool stayed busy for the whole budget.
    Busy,
    Timeout,
    /// An error decided here (a batch check refused a statement's result, which rolled the
    /// transaction back; or a rotated credential that cannot be used).
    Check(super::DataError),
}

/// The server end of an open connection, for its cancel request.
#[derive(Debug, Clone)]
struct Peer {
    addr: SocketAddr,
    name: String,
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
    peer: Peer,
    since: Instant,
}

pub(super) struct Pool {
    target: Target,
    /// Identifies the secret value this pool was built from (rotation makes a new pool).
    pub fingerprint: String,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    tables: Mutex<HashMap<TableKey, (Instant, Arc<TableInfo>)>>,
    /// Whether loopback, private and link-local database addresses may be connected to.
    egress: Egress,
    /// A connection idle longer than this is closed, not reused.
    max_idle: Duration,
}

/// A checked-out connection; it goes back to the pool only if its work finished cleanly.
struct Conn {
    client: Option<Client>,
    peer: Peer,
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
        self.pool.sweep();
        if let Some(client) = self.client.take()
            && self.clean
            && !client.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(Idle {
                client,
                peer: self.peer.clone(),
                since: Instant::now(),
            });
        }
    }
}

impl Pool {
    pub fn new(
        target: Target,
        fingerprint: String,
        max: usize,
        egress: Egress,
        max_idle: Duration,
    ) -> Self {
        Self {
            target,
            fingerprint,
            idle: Mutex::default(),
            permits: Arc::new(Semaphore::new(max.max(1))),
            tables: Mutex::default(),
            egress,
            max_idle,
        }
    }

    pub fn password(&self) -> Option<&str> {
        self.target.password.as_deref()
    }

    /// Closes the idle connections that are older than the idle limit or already closed.
    /// Returns how many stay open.
    pub fn sweep(&self) -> usize {
        match self.idle.lock() {
            Ok(mut idle) => {
                idle.retain(|i| !i.client.is_closed() && i.since.elapsed() < self.max_idle);
                idle.len()
            }
            Err(_) => 0,
        }
    }

    /// A connection within the deadline: a permit (pool wait), then an idle connection or a
    /// new one (connect time: the rest of the budget, at most [`CONNECT_CAP`]).
    async fn checkout(self: &Arc<Self>, fresh: bool, deadline: Instant) -> Result<Conn, Failure> {
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Failure::Busy)?
            .map_err(|_| Failure::Busy)?;
        if !fresh {
            self.sweep();
            if let Some(idle) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
                return Ok(Conn {
                    client: Some(idle.client),
                    peer: idle.peer,
                    pool: self.clone(),
                    reused: true,
                    clean: false,
                    _permit: permit,
                });
            }
        }
        let now = Instant::now();
        let cap = deadline.min(now + CONNECT_CAP);
        let (client, peer) = tokio::time::timeout_at(cap, self.connect())
            .await
            .map_err(|_| Failure::ConnectTimeout(cap.saturating_duration_since(now)))??;
        Ok(Conn {
            client: Some(client),
            peer,
            pool: self.clone(),
            reused: false,
            clean: false,
            _permit: permit,
        })
    }

    /// Connects to the first host that answers. Each host's addresses are resolved here
    /// and checked before any connection attempt; the connection goes to the checked
    /// address (no second resolution a DNS answer could change).
    async fn connect(&self) -> Result<(Client, Peer), Failure> {
        let mut last = Failure::Unreachable("the connection string names no host");
        for ep in &self.target.endpoints {
            let resolved = match ep.addr {
                Some(ip) => self
                    .egress
                    .check_ip(ip)
                    .map(|()| vec![SocketAddr::new(ip, ep.port)]),
                None => self.egress.resolve(&ep.name, ep.port).await,
            };
            let addrs: Vec<SocketAddr> = match resolved {
                Ok(a) => a,
                Err(r) if r.is_policy() => return Err(Failure::Refused(PRIVATE)),
                Err(e) => {
                    tracing::debug!(error = %e, "postgres host name did not resolve");
                    last = Failure::Unreachable("the database host name does not resolve");
                    continue;
                }
            };
            for addr in addrs {
                let stream = match TcpStream::connect(addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "postgres TCP connect failed");
                        last = Failure::Unreachable(
                            "the database host refused the connection or cannot be reached",
                        );
                        continue;
                    }
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
                let peer = Peer {
                    addr,
                    name: ep.name.clone(),
                };
                let config = &self.target.config;
                let client = match &self.target.tls {
                    None => {
                        let (client, connection) = config
                            .connect_raw(stream, NoTls)
                            .await
                            .map_err(Failure::Connect)?;
                        tokio::spawn(watch(connection));
                        client
                    }
                    Some(tls) => {
                        let connector = tls.connector(&ep.name).ok_or(Failure::Refused(
                            "the database host is not a valid TLS server name",
                        ))?;
                        let (client, connection) = config
                            .connect_raw(stream, connector)
                            .await
                            .map_err(Failure::Connect)?;
                        tokio::spawn(watch(connection));
                        client
                    }
                };
                return Ok((client, peer));
            }
        }
        Err(last)
    }

    /// Asks the server to stop a statement that ran out of time (best effort, in the
    /// background; the connection itself is dropped). The request goes to the address
    /// the connection was made to.
    fn cancel(&self, token: CancelToken, peer: Peer) {
        let tls = self
            .target
            .tls
            .as_ref()
            .and_then(|t| t.connector(&peer.name));
        tokio::spawn(async move {
            let sent = match tokio::time::timeout(CONNECT_CAP, TcpStream::connect(peer.addr)).await
            {
                Ok(Ok(stream)) => match tls {
                    None => token.cancel_query_raw(stream, NoTls).await,
                    Some(tls) => token.cancel_query_raw(stream, tls).await,
                },
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "could not reach the server to cancel a statement");
                    return;
                }
                Err(_) => {
                    tracing::debug!("timed out reaching the server to cancel a statement");
                    return;
                }
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "could not cancel a timed-out postgres statement");
            }
        });
    }

    /// Runs one statement within the deadline. `retry` (idempotent reads only) retries
    /// once on a fresh connection when a reused one turns out to be dead.
    pub async fn query(
        self: &Arc<Self>,
        sql: &Sql,
        retry: bool,
        deadline: Instant,
    ) -> Result<Vec<Row>, Failure> {
        match self.query_once(sql, false, deadline).await {
            Err((Failure::Db { error, .. }, true)) if retry && error.is_closed() => self
                .query_once(sql, true, deadline)
                .await
                .map_err(|(f, _)| f),
            other => other.map_err(|(f, _)| f),
        }
    }

    async fn query_once(
        self: &Arc<Self>,
        sql: &Sql,
        fresh: bool,
        deadline: Instant,
    ) -> Result<Vec<Row>, (Failure, bool)> {
        let mut conn = self
            .checkout(fresh, deadline)
            .await
            .map_err(|f| (f, false))?;
        let reused = conn.reused;
        let peer = conn.peer.clone();
        let client = conn.client().map_err(|f| (f, reused))?;
        let token = client.cancel_token();
        let params = sql.typed();
        match tokio::time::timeout_at(deadline, client.query_typed(&sql.text, &params)).await {
            Err(_) => {
                self.cancel(token, peer);
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
    /// order), within the deadline. `check` sees each statement's rows; an error from it
    /// rolls everything back.
    pub async fn transaction(
        self: &Arc<Self>,
        statements: &[Sql],
        check: impl Fn(usize, &[Row]) -> Result<(), super::DataError>,
        deadline: Instant,
    ) -> Result<Vec<Vec<Row>>, Failure> {
        let mut conn = self.checkout(false, deadline).await?;
        let peer = conn.peer.clone();
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
        match tokio::time::timeout_at(deadline, work).await {
            Err(_) => {
                self.cancel(token, peer);
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
