//! The one egress guard: every outbound connection to a host a tenant's config names (the
//! `rest` and `postgres` data adapters, vendor APIs) asks it where it may connect.
//!
//! A tenant must not reach the platform's own network through its config: the instance
//! metadata service (169.254.169.254, fd00:ec2::254), loopback, the VPC's private ranges.
//! So only public unicast addresses are allowed, checked on what DNS answered (the
//! connection then goes to exactly those addresses, so a name that re-resolves elsewhere
//! changes nothing) and on literal IPs. IPv6 forms that embed an IPv4 address (mapped,
//! compatible, NAT64, 6to4) are judged by that address. One setting,
//! `SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1`, allows private upstreams (local development,
//! tests, upstreams inside the VPC).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why a connection was refused. Messages never name more than the host the config gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("'{host}' is a loopback, private, link-local or otherwise non-public address")]
    NotPublic { host: String },
    #[error("'{host}' resolves to a loopback, private, link-local or otherwise non-public address")]
    ResolvesNotPublic { host: String },
    #[error("'{host}' resolves to no address")]
    NoAddress { host: String },
    #[error("'{host}' could not be resolved: {cause}")]
    Lookup { host: String, cause: String },
}

impl Refused {
    /// Whether the refusal is the guard's (as opposed to a failed DNS lookup).
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            Self::NotPublic { .. } | Self::ResolvesNotPublic { .. }
        )
    }
}

/// The guard, built once per container from the settings and shared by every client.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow_private: bool,
    /// Names answered before DNS, as `/etc/hosts` would (tests name private hosts with it).
    hosts: Option<Arc<HashMap<String, Vec<IpAddr>>>>,
}

impl Egress {
    /// Only public addresses.
    pub fn public_only() -> Self {
        Self::default()
    }

    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            hosts: None,
        }
    }

    /// Answers these names without DNS.
    pub fn with_hosts(mut self, hosts: HashMap<String, Vec<IpAddr>>) -> Self {
        self.hosts = Some(Arc::new(hosts));
        self
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Refuses a non-public address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(Refused::NotPublic {
                host: ip.to_string(),
            })
        }
    }

    /// What can be refused without DNS, when a config is written: `localhost` names and
    /// literal non-public IPs (`[::1]` as well as `127.0.0.1`).
    pub fn check_host(&self, host: &str) -> Result<(), Refused> {
        if self.allow_private {
            return Ok(());
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            return Err(Refused::NotPublic { host });
        }
        match literal_ip(&host) {
            Some(ip) => self.check_ip(ip),
            None => Ok(()),
        }
    }

    /// Resolves `host` and returns the addresses to connect to: every one must be allowed,
    /// so a name with one private answer among public ones is refused as a whole.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        if let Some(ip) = literal_ip(host) {
            self.check_ip(ip).map_err(|_| Refused::NotPublic {
                host: host.to_owned(),
            })?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        self.check_host(host)?;
        let known = self.hosts.as_ref().and_then(|h| h.get(host));
        let found: Vec<SocketAddr> = match known {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Refused::Lookup {
                    host: host.to_owned(),
                    cause: e.to_string(),
                })?
                .collect(),
        };
        self.admit(host, found)
    }

    /// Checks what a resolver answered for `host` (the HTTP client's own resolver).
    pub fn admit(&self, host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
        if found.is_empty() {
            return Err(Refused::NoAddress {
                host: host.to_owned(),
            });
        }
        if !self.allow_private && found.iter().any(|a| !is_public(a.ip())) {
            return Err(Refused::ResolvesNotPublic {
                host: host.to_owned(),
            });
        }
        Ok(found)
    }
}

/// The IP a host names literally: `127.0.0.1`, `::1` or `[::1]`.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network", incl. 0.0.0.0
        || a == 10
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || a == 127
        || (a == 169 && b == 254) // link-local: the instance metadata service
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address are as public as that address.
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        // NAT64 local-use prefix (RFC 8215): the IPv4 address sits at a prefix length the
        // network chooses, so it cannot be read back; refused whole.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // IPv4-translated (SIIT, ::ffff:0:a.b.c.d): refused whole.
        || s[..6] == [0, 0, 0, 0, 0xffff, 0]
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 is EC2's metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || s[..4] == [0x100, 0, 0, 0] // discard-only
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments, incl. Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || s[0] == 0x3fff; // documentation (RFC 9637)
    !refused
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), well-known NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // `::` and `::1` are IPv6's own unspecified and loopback, not IPv4-compatible forms.
    if s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1) {
        return Some(tail());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // The whole address table runs in the cross-adapter suite (tests/src/egress.rs, used by
    // tests/tests/suite/egress.rs); these are its edges.
    const REFUSED: &[&str] = &[
        "0.0.0.0",
        "10.0.0.1",
        "100.64.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "172.31.255.255",
        "192.0.0.1",
        "192.168.0.1",
        "198.19.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
    ];

    const ALLOWED: &[&str] = &[
        "1.1.1.1",
        "100.128.0.1",
        "172.32.0.1",
        "2600:1f18::1",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:0808:0808::1",
    ];

    #[test]
    fn the_address_table() {
        let guard = Egress::public_only();
        for a in REFUSED {
            let ip: IpAddr = a.parse().unwrap();
            assert!(!is_public(ip), "{a} must be refused");
            assert!(guard.check_ip(ip).is_err(), "{a}");
            assert!(guard.check_host(a).is_err(), "{a} as a host");
            if ip.is_ipv6() {
                assert!(guard.check_host(&format!("[{a}]")).is_err(), "[{a}]");
            }
        }
        for a in ALLOWED {
            assert!(is_public(a.parse().unwrap()), "{a} must be allowed");
            assert!(guard.check_host(a).is_ok(), "{a} as a host");
        }
    }

    #[test]
    fn one_setting_allows_private_upstreams() {
        let open = Egress::new(true);
        for a in REFUSED {
            assert!(open.check_ip(a.parse().unwrap()).is_ok(), "{a}");
        }
        assert!(open.check_host("localhost").is_ok());
    }

    #[test]
    fn localhost_names_are_refused_without_dns() {
        for h in ["localhost", "LOCALHOST.", "api.localhost", "[::1]"] {
            assert!(Egress::public_only().check_host(h).is_err(), "{h}");
        }
        assert!(Egress::public_only().check_host("api.example.com").is_ok());
    }

    #[test]
    fn one_private_answer_refuses_the_name() {
        let mixed = vec![
            SocketAddr::from(([93, 184, 216, 34], 443)),
            SocketAddr::from(([169, 254, 169, 254], 443)),
        ];
        let e = Egress::public_only()
            .admit("evil.example", mixed)
            .unwrap_err();
        assert!(e.is_policy(), "{e}");
        assert!(
            Egress::public_only()
                .admit("empty.example", Vec::new())
                .is_err()
        );
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        let hosts: HashMap<String, Vec<IpAddr>> = REFUSED
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("h{i}.example"), vec![a.parse().unwrap()]))
            .chain([(
                "public.example".to_owned(),
                vec!["1.1.1.1".parse().unwrap()],
            )])
            .collect();
        let guard = Egress::public_only().with_hosts(hosts.clone());
        for (i, address) in REFUSED.iter().enumerate() {
            let e = guard
                .resolve(&format!("h{i}.example"), 80)
                .await
                .unwrap_err();
            assert!(e.is_policy(), "{address}: {e}");
        }
        let ok = guard.resolve("public.example", 443).await.unwrap();
        assert_eq!(ok, vec![SocketAddr::from(([1, 1, 1, 1], 443))]);
        assert!(
            Egress::new(true)
                .with_hosts(hosts)
                .resolve("h0.example", 80)
                .await
                .is_ok()
        );
        // `localhost` resolves through the system resolver without a network.
        let e = Egress::public_only()
            .resolve("127.0.0.1", 80)
            .await
            .unwrap_err();
        assert!(e.is_policy(), "{e}");
        let ok = Egress::new(true).resolve("localhost", 80).await.unwrap();
        assert!(ok.iter().all(|a| a.ip().is_loopback()), "{ok:?}");
    }
}
