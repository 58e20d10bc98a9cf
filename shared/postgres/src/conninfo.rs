//! Connection strings (a libpq URI or key=value string, from the credential) parsed and
//! checked without touching the network: TLS options, hosts, no unix sockets. Nothing here
//! ever quotes the string, which holds the password.

use std::net::IpAddr;
use std::str::FromStr;

use tokio_postgres::config::Host;

use super::tls::{Roots, RustlsConnect, SslMode};

/// Why a connection string is refused. Messages are fixed: they never quote the string,
/// which holds the password, nor text the driver derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
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
/// Where to connect: one host of the connection string.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The host name (or IP text): resolved when `addr` is not given, and the TLS name.
    pub name: String,
    /// `hostaddr`: connect here without resolving `name`.
    pub addr: Option<IpAddr>,
    pub port: u16,
}

/// A checked connection string, ready to connect with.
pub(crate) struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Option<RustlsConnect>,
    pub endpoints: Vec<Endpoint>,
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
}
