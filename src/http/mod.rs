//! HTTP plumbing shared by every route: the client's address, security headers, the origin
//! check on POSTs, request logs and HTML error pages.

pub mod assets;
pub mod compression;
pub mod errors;
pub mod forms;
pub mod middleware;
pub mod page_cache;
pub mod pieces;
pub mod response;

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

/// The network a flood limit counts by: the address itself for IPv4, its /64 for IPv6 (one
/// customer usually holds a whole /64).
pub fn ip_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let net = IpNet::new(IpAddr::V6(v6), 64).map(|n| n.trunc());
                net.map_or_else(|_| v6.to_string(), |n| n.to_string())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        assert_eq!(
            ip_network("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(ip_network("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(ip_network("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
