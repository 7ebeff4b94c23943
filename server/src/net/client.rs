//! The address of the client behind a request. Only a peer inside `SWITCHBOARD_TRUSTED_PROXIES`
//! is believed about who it forwards for; from it, the chain in `X-Forwarded-For` (or
//! `Forwarded`) is walked from the right, skipping trusted proxies, and the first address that is
//! not one is the client. Everything left of that was written by the client itself and proves
//! nothing. With no trusted proxies (the default) the TCP peer is the client, whatever the
//! headers say.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// Hops of a forwarding chain looked at, from the right; a longer chain is cut (the proxies
/// that matter are the last few).
const MAX_HOPS: usize = 32;

/// An address block, `10.0.0.0/8` or `fd00::/8`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u32::from(ip).into(), 32, self.prefix) == u32::from(net) as u128
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(ip), 128, self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `bits` (of a `width`-bit address) with everything past the first `prefix` cleared.
fn mask(bits: u128, width: u8, prefix: u8) -> u128 {
    let host = width - prefix.min(width);
    if host >= 128 {
        0
    } else {
        (bits >> host) << host
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an address or CIDR block"))?,
        );
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0-{width}"))?,
        };
        let bits = match network {
            IpAddr::V4(v4) => u32::from(v4) as u128,
            IpAddr::V6(v6) => u128::from(v6),
        };
        let masked = mask(bits, width, prefix);
        let network = match network {
            IpAddr::V4(_) => IpAddr::V4((masked as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(masked.into()),
        };
        Ok(Cidr { network, prefix })
    }
}

/// Which header the trusted proxies write the forwarding chain into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx's `$proxy_add_x_forwarded_for`).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The client of a request that came from `peer`.
pub(crate) fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    header: ClientIpHeader,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut nearest = canonical(peer);
    if !is_trusted(nearest) {
        return nearest;
    }
    let name = match header {
        ClientIpHeader::XForwardedFor => "x-forwarded-for",
        ClientIpHeader::Forwarded => "forwarded",
    };
    // Several headers of the name are one list, in order (RFC 9110 §5.3).
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let hops = values.iter().rev().flat_map(|v| v.rsplit(','));
    for hop in hops.take(MAX_HOPS) {
        let address = match header {
            ClientIpHeader::XForwardedFor => parse_hop(hop),
            ClientIpHeader::Forwarded => forwarded_for(hop).and_then(parse_hop),
        };
        // A hop a trusted proxy wrote but that is no address (`unknown`, an obfuscated name):
        // the last address known is as close to the client as can be proven.
        let Some(address) = address else {
            return nearest;
        };
        if !is_trusted(address) {
            return address;
        }
        nearest = address;
    }
    nearest
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// One hop's address: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(canonical)
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:1.2.3.4`) is that IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key limits count a client under: an IPv4 address, or an IPv6 address's /64, which is
/// what one host (or one subscriber line) is usually given, so rotating addresses within it
/// buys nothing.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(net.contains(ip("::ffff:10.1.0.1")));
        assert!(!net.contains(ip("10.2.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert_eq!("10.1.2.3/16".parse::<Cidr>(), "10.1.0.0/16".parse());
        for bad in ["10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_the_rightmost_untrusted_hop_is_the_client() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = ClientIpHeader::XForwardedFor;
        // Not from a proxy: the header is the client's own claim.
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted, xff), ip("9.9.9.9"));
        // From the proxy: a spoofed left part is skipped.
        let h = headers("x-forwarded-for", &["6.6.6.6, 2.2.2.2"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted, xff), ip("2.2.2.2"));
        // Two proxies, headers split across lines.
        let h = headers("x-forwarded-for", &["6.6.6.6, 3.3.3.3", "10.0.0.7"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted, xff), ip("3.3.3.3"));
        // No header from the proxy: the proxy itself.
        let h = HeaderMap::new();
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted, xff), ip("10.0.0.5"));
        // An unparsable hop stops the walk at the last address known.
        let h = headers("x-forwarded-for", &["2.2.2.2, garbage, 10.0.0.9"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted, xff), ip("10.0.0.9"));
        // Ports and brackets.
        let h = headers("x-forwarded-for", &["[2001:db8::7]:443"]);
        assert_eq!(
            client_ip(ip("10.0.0.5"), &h, &trusted, xff),
            ip("2001:db8::7")
        );
        // The other header is ignored: a proxy that sets one passes the other through as sent.
        let h = headers("forwarded", &["for=4.4.4.4"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted, xff), ip("10.0.0.5"));
    }

    #[test]
    fn forwarded_elements_are_read_by_their_for_parameter() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(
            "forwarded",
            &["for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.1.1.1;by=x"],
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &h, &trusted, ClientIpHeader::Forwarded),
            ip("2001:db8:cafe::17")
        );
        let h = headers("forwarded", &["for=_hidden"]);
        assert_eq!(
            client_ip(ip("10.0.0.5"), &h, &trusted, ClientIpHeader::Forwarded),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(client_key(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
