//! One small connection pool per credential per container, and the statement runner.
//!
//! Statements go through `query_typed` only: each is parsed, bound and run as the unnamed
//! statement in one round trip, with the parameter types given by us. Nothing is prepared
//! by name, so the adapter works unchanged through Supabase's transaction-mode pooler
//! (PgBouncer / Supavisor), where a named statement would be gone on the next call.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_postgres::config::Host;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client, NoTls, Row};

use super::tls::{Roots, RustlsConnect, SslMode};

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

/// Why a connection string is refused. Messages are fixed: they never quote the string,
/// which holds the password, nor text the driver derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Any parse failure, whatever the cause.
    Unparsable,
    Other(&'static str),
}

impl Refusal {
    /// The message for calls: names the credential, never its value.
    pub fn message(self, reference: &str) -> String {
        match self {
            Self::Unparsable => {
                format!("the connection string in credential '{reference}' cannot be parsed")
            }
            Self::Other(m) => format!("credential '{reference}': {m}"),
        }
    }

    /// The message without the credential's name (a detail of a config write).
    pub fn text(self) -> &'static str {
        match self {
            Self::Unparsable => "the connection string cannot be parsed",
            Self::Other(m) => m,
        }
    }
}

const BAD_SSLMODE: Refusal = Refusal::Other(
    "the connection string's sslmode must be disable, allow, prefer, require, verify-ca or verify-full",
);
const BAD_ROOTCERT: Refusal = Refusal::Other(
    "the connection string's sslrootcert may only be 'system'; put the server's CA certificate (PEM) in the credential's 'ca_cert' field",
);
const UNIX_SOCKET: Refusal =
    Refusal::Other("the connection string names a unix socket; only TCP hosts can be reached");
const NO_HOST: Refusal = Refusal::Other("the connection string names no host");
const PRIVATE: &str = "the database host is a loopback, private, link-local or unspecified address, which this deployment does not connect to";

/// Where to connect: one host of the connection string.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The host name (or IP text): resolved when `addr` is not given, and the TLS name.
    name: String,
    /// `hostaddr`: connect here without resolving `name`.
    addr: Option<IpAddr>,
    port: u16,
}

/// The server end of an open connection, for its cancel request.
#[derive(Debug, Clone)]
struct Peer {
    addr: SocketAddr,
    name: String,
}

/// A checked connection string, ready to connect with.
pub(super) struct Target {
    config: tokio_postgres::Config,
    tls: Option<RustlsConnect>,
    endpoints: Vec<Endpoint>,
    /// For scrubbing error texts; never shown.
    pub password: Option<String>,
}

impl Target {
    /// Parses a libpq URI or key=value string. `sslmode` and `sslrootcert` are taken out
    /// here (tokio-postgres knows neither `verify-ca`/`verify-full` nor root files).
    /// `sslmode` defaults to `require` (Supabase refuses plaintext anyway); `sslrootcert`
    /// may only be `system`: trusted roots come from the secret's `ca_cert` (PEM) or the
    /// system store, never from a file the tenant names. Unix-socket hosts are refused.
    /// Nothing here touches the network or the file system (system roots aside).
    pub fn parse(conn: &str, ca_pem: Option<&str>) -> Result<Self, Refusal> {
        let (rest, sslmode, rootcert) = take_tls_options(conn).map_err(|()| Refusal::Unparsable)?;
        let mode = match sslmode.as_deref() {
            None => SslMode::Require,
            Some(m) => SslMode::parse(m).ok_or(BAD_SSLMODE)?,
        };
        match rootcert.as_deref() {
            None | Some("system") => {}
            Some(_) => return Err(BAD_ROOTCERT),
        }
        let mut config =
            tokio_postgres::Config::from_str(&rest).map_err(|_| Refusal::Unparsable)?;
        if config.get_application_name().is_none() {
            config.application_name("switchboard");
        }
        let endpoints = endpoints(&config)?;
        let roots = match ca_pem {
            Some(pem) => Roots::Pem(pem),
            None => Roots::System,
        };
        let tls = match mode {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            SslMode::Prefer => {
                config.ssl_mode(tokio_postgres::config::SslMode::Prefer);
                Some(RustlsConnect::new(mode, roots).map_err(Refusal::Other)?)
            }
            _ => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Some(RustlsConnect::new(mode, roots).map_err(Refusal::Other)?)
            }
        };
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Ok(Self {
            config,
            tls,
            endpoints,
            password,
        })
    }
}

/// The hosts to try, in order (libpq's pairing of `host`, `hostaddr` and `port`).
fn endpoints(config: &tokio_postgres::Config) -> Result<Vec<Endpoint>, Refusal> {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    let ports = config.get_ports();
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(Refusal::Unparsable);
    }
    let n = hosts.len().max(addrs.len());
    if n == 0 {
        return Err(NO_HOST);
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(Refusal::Unparsable);
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let addr = addrs.get(i).copied();
        let name = match hosts.get(i) {
            Some(Host::Tcp(h)) if !h.is_empty() => h.clone(),
            Some(Host::Tcp(_)) => return Err(NO_HOST),
            #[cfg(unix)]
            Some(Host::Unix(_)) => return Err(UNIX_SOCKET),
            None => match addr {
                Some(a) => a.to_string(),
                None => return Err(NO_HOST),
            },
        };
        let port = ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432);
        out.push(Endpoint { name, addr, port });
    }
    Ok(out)
}

/// Whether `ip` is an address a tenant's database must not have unless private upstreams
/// are allowed: loopback, private (RFC 1918, unique-local, shared 100.64/10),
/// link-local (169.254/16 holds the instance metadata service), unspecified, broadcast,
/// multicast, `0/8`; IPv4-mapped and NAT64 IPv6 addresses by their IPv4 address.
pub(super) fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = a.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., hi, lo] = s;
                let v4 = std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
                return is_private(IpAddr::V4(v4));
            }
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Splits `sslmode` and `sslrootcert` off a connection string (URI query or key=value).
fn take_tls_options(conn: &str) -> Result<(String, Option<String>, Option<String>), ()> {
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
            return Err(());
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
                    None => return Err(()),
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

fn percent_decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
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
    allow_private: bool,
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
        allow_private: bool,
        max_idle: Duration,
    ) -> Self {
        Self {
            target,
            fingerprint,
            idle: Mutex::default(),
            permits: Arc::new(Semaphore::new(max.max(1))),
            tables: Mutex::default(),
            allow_private,
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
            let addrs: Vec<SocketAddr> = match ep.addr {
                Some(ip) => vec![SocketAddr::new(ip, ep.port)],
                None => match tokio::net::lookup_host((ep.name.as_str(), ep.port)).await {
                    Ok(a) => a.collect(),
                    Err(e) => {
                        tracing::debug!(error = %e, "postgres host name did not resolve");
                        last = Failure::Unreachable("the database host name does not resolve");
                        continue;
                    }
                },
            };
            if addrs.is_empty() {
                last = Failure::Unreachable("the database host name does not resolve");
                continue;
            }
            if !self.allow_private && addrs.iter().any(|a| is_private(a.ip())) {
                return Err(Failure::Refused(PRIVATE));
            }
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
            "host=h password=pa s3cret=x",
            "host=h password='s3cret",
            "postgres://u:s3cret@h:99999/db",
        ] {
            let e = Target::parse(bad, None).err().expect(bad);
            assert!(!e.message("c").contains("s3cret"), "{bad}: {e:?}");
            assert!(!e.text().contains("s3cret"), "{bad}: {e:?}");
        }
        assert_eq!(
            Target::parse("host=h password=pa s3cret=x", None).err(),
            Some(Refusal::Unparsable),
            "the driver's 'unknown option' is not passed on"
        );
        let t = Target::parse("postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable", None).unwrap();
        assert_eq!(t.password.as_deref(), Some("s3cret"));
    }

    #[test]
    fn root_files_and_unix_sockets_are_refused() {
        for bad in [
            "postgres://u:p@h/db?sslrootcert=%2Fdev%2Fzero",
            "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=/etc/passwd",
            "host=h sslrootcert=/nonexistent/x.pem",
            "host=h sslrootcert=''",
        ] {
            assert_eq!(Target::parse(bad, None).err(), Some(BAD_ROOTCERT), "{bad}");
        }
        assert!(Target::parse("postgres://u:p@h/db?sslrootcert=system", None).is_ok());
        for bad in [
            "host=/var/run/postgresql dbname=x",
            "postgres://u:p@%2Ftmp/db",
            "host=h,/tmp dbname=x",
        ] {
            assert_eq!(Target::parse(bad, None).err(), Some(UNIX_SOCKET), "{bad}");
        }
        assert_eq!(Target::parse("dbname=x", None).err(), Some(NO_HOST));
    }

    #[test]
    fn sslmode_defaults_to_require() {
        let t = Target::parse("postgres://u:p@h/db", None).unwrap();
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(t.tls.is_some());
        let t = Target::parse("postgres://u:p@h/db?sslmode=prefer", None).unwrap();
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
    }

    #[test]
    fn endpoints_pair_hosts_addresses_and_ports() {
        let t = Target::parse("host=a,b hostaddr=10.0.0.1,10.0.0.2 port=1,2", None).unwrap();
        let e: Vec<_> = t
            .endpoints
            .iter()
            .map(|e| (e.name.as_str(), e.addr.map(|a| a.to_string()), e.port))
            .collect();
        assert_eq!(
            e,
            [
                ("a", Some("10.0.0.1".to_owned()), 1),
                ("b", Some("10.0.0.2".to_owned()), 2)
            ]
        );
        let t = Target::parse("hostaddr=169.254.169.254", None).unwrap();
        assert_eq!(t.endpoints[0].name, "169.254.169.254");
        assert_eq!(t.endpoints[0].port, 5432);
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "52.1.2.3", "2600:1f18::1", "::ffff:8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
