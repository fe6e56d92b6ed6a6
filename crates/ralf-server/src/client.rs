//! Who is on the other end of a request: the peer's address, or, when the peer is one of the
//! configured trusted proxies (`trusted_proxies`), the client its `X-Forwarded-For` names and
//! whether its `X-Forwarded-Proto` says the client came over HTTPS. From anyone else those
//! headers are ignored, so a client cannot pick the address its failed logins are counted
//! against.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::error::ApiError;
use crate::state::AppState;

/// The client of a request, as far as the server can trust what it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The client reached a trusted proxy over HTTPS.
    pub https: bool,
}

impl Client {
    /// Resolves the client of a request that arrived from `peer` with `headers`.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Client {
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(&peer) {
            return Client {
                ip: peer,
                https: false,
            };
        }
        // Each proxy appends the address it heard from: the rightmost address that is not a
        // trusted proxy is the client; anything left of it may be made up by the client.
        let forwarded: Vec<Option<IpAddr>> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|part| part.trim().parse::<IpAddr>().ok())
            .collect();
        let mut ip = peer;
        for hop in forwarded.iter().rev() {
            match hop {
                // What is left of an unreadable entry cannot be trusted either.
                None => break,
                Some(hop) => {
                    ip = *hop;
                    if !is_trusted(hop) {
                        break;
                    }
                }
            }
        }
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Client { ip, https }
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no peer address")))?;
        Ok(Client::resolve(
            peer,
            &parts.headers,
            &state.settings.trusted_proxies,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let via_proxy = Client::resolve(proxy, &h, &trusted);
        assert_eq!(via_proxy.ip, "198.51.100.4".parse::<IpAddr>().unwrap());
        assert!(via_proxy.https);

        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        let direct = Client::resolve(stranger, &h, &trusted);
        assert_eq!(direct.ip, stranger);
        assert!(!direct.https);
        assert_eq!(Client::resolve(proxy, &h, &[]).ip, proxy);
    }

    #[test]
    fn proxies_in_the_chain_are_skipped() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "198.51.100.4, 10.1.1.1")]);
        let client = Client::resolve("10.0.0.2".parse().unwrap(), &h, &trusted);
        assert_eq!(client.ip, "198.51.100.4".parse::<IpAddr>().unwrap());
    }
}
