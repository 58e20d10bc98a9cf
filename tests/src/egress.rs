//! The address table of the egress guard: every range a tenant-configured upstream must not
//! reach, with addresses from its edges, and public neighbours that must stay reachable. One
//! table for the guard and for every adapter that connects through it.

/// Refused: "this network", RFC 1918, shared (CGNAT), loopback, link-local (the instance
/// metadata service), IETF assignments, benchmarking, multicast, reserved, broadcast; IPv6
/// unspecified, loopback, unique-local (EC2's fd00:ec2::254), link-local, site-local,
/// multicast, documentation and IETF ranges; and IPv6 forms embedding a private IPv4
/// (mapped, compatible, NAT64, 6to4), and the forms whose IPv4 cannot be read back reliably
/// (the local-use NAT64 prefix `64:ff9b:1::/48`, SIIT's `::ffff:0:0/96`), whole.
pub const REFUSED: &[&str] = &[
    "0.0.0.0",
    "0.255.255.255",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.255",
    "169.254.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.0.255",
    "192.168.0.1",
    "192.168.255.255",
    "198.18.0.1",
    "198.19.255.255",
    "224.0.0.1",
    "239.255.255.255",
    "240.0.0.1",
    "255.255.255.254",
    "255.255.255.255",
    "::",
    "::1",
    "fc00::1",
    "fd00:ec2::254",
    "fdff:ffff::1",
    "fe80::1",
    "febf::1",
    "fec0::1",
    "feff::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.1.2.3",
    "::127.0.0.1",
    "::10.0.0.1",
    "64:ff9b::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::10.0.0.1",
    "64:ff9b:1:a9fe:a9:fe00:808:808",
    "::ffff:0:a9fe:a9fe",
    "::ffff:0:8.8.8.8",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "2002:c0a8:101::1",
    "2001:db8::1",
    "2001::1",
];

/// Allowed: public neighbours of the refused ranges, and IPv6 forms of a public IPv4.
pub const ALLOWED: &[&str] = &[
    "1.1.1.1",
    "8.8.8.8",
    "100.63.255.255",
    "100.128.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "192.0.1.1",
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.255",
    "2600:1f18::1",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:0808:0808::1",
];

/// An address as a URL or connection-string host: IPv6 in brackets.
pub fn host(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_owned()
    }
}

/// A host name per refused address (`refused-<i>.test`), for a guard's host table: names
/// that resolve to each of them.
pub fn names() -> std::collections::HashMap<String, Vec<std::net::IpAddr>> {
    REFUSED
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ip = a
                .parse()
                .unwrap_or_else(|e| panic!("{a} is not an address: {e}"));
            (format!("refused-{i}.test"), vec![ip])
        })
        .collect()
}
