//! Which addresses an `image_url` may reach: resolves a URL's host once and keeps only public addresses
//! (unless private ones are allowed), so the request is pinned to what was checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use super::ImageError;

/// Whether `ip` is an ordinary public unicast address: not private, loopback, link-local, CGNAT (100.64/10),
/// multicast, broadcast, unspecified, documentation, benchmarking or reserved, nor an IPv6 unique-local,
/// site-local, IPv4-mapped/-compatible, or a NAT64 / 6to4 form of a refused IPv4 address.
pub fn address_is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => v6_is_public(v6),
    }
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18/15
        || a >= 240; // reserved
    !refused
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    // IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96: refused outright, no public host needs them.
    if seg[..5] == [0; 5] && (seg[5] == 0xffff || seg[5] == 0) {
        return false;
    }
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // NAT64 64:ff9b::/96 and 6to4 2002::/16 carry an IPv4 address that must itself be public.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4] {
        return v4_is_public(embedded(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return v4_is_public(embedded(seg[1], seg[2]));
    }
    let refused = (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0xdb8) // documentation
        || (seg[0] == 0x2001 && seg[1] == 0) // Teredo
        || seg[0] == 0x100 && seg[1..4] == [0; 3]; // discard-only 100::/64
    !refused
}

/// Addresses refused even when private ones are allowed: nothing legitimate listens there, and connecting to
/// 0.0.0.0 or `::` reaches the local host on Linux.
fn never_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    }
}

/// Whether the policy lets a request reach `ip`.
pub(super) fn allowed(ip: IpAddr, allow_private: bool) -> bool {
    address_is_public(ip) || (allow_private && !never_allowed(ip))
}

/// The socket addresses to connect to for `url`: its IP literal, or every address its host resolves to,
/// minus those refused by the policy (see [`allowed`]).
///
/// # Errors
/// [`ImageError::PrivateAddress`] when nothing acceptable is left; [`ImageError::Unresolvable`].
pub(super) async fn checked_addrs(
    url: &Url,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, ImageError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let (shown, candidates): (String, Vec<SocketAddr>) = match url.host() {
        Some(Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(Host::Domain(name)) => {
            let resolved = tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| ImageError::Unresolvable(name.chars().take(100).collect()))?;
            (name.chars().take(100).collect(), resolved.collect())
        }
        None => return Err(ImageError::BadUrl("no host".into())),
    };
    if candidates.is_empty() {
        return Err(ImageError::Unresolvable(shown));
    }
    let allowed: Vec<SocketAddr> = candidates
        .iter()
        .copied()
        .filter(|a| allowed(a.ip(), allow_private))
        .collect();
    if allowed.is_empty() {
        return Err(ImageError::PrivateAddress(shown));
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        address_is_public(s.parse().unwrap())
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(!public(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip} should pass");
        }
    }

    #[tokio::test]
    async fn loopback_urls_are_refused_unless_allowed() {
        let url = Url::parse("http://localhost:8080/a.png").unwrap();
        let err = checked_addrs(&url, false).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "image_url points to a private address (localhost)"
        );
        let addrs = checked_addrs(&url, true).await.unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        let url = Url::parse("http://[::ffff:10.0.0.1]/").unwrap();
        assert!(checked_addrs(&url, false).await.is_err());
        let url = Url::parse("http://0.0.0.0:8080/").unwrap();
        assert!(checked_addrs(&url, true).await.is_err());
        assert!(!allowed("224.0.0.1".parse().unwrap(), true));
        assert!(allowed("10.0.0.1".parse().unwrap(), true));
    }
}
