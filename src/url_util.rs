//! Checks of a URL's host shared by the settings that hold URLs (`GRAPH_ENDPOINT`,
//! `STORAGE_ACCOUNT_URL`, a connection string's `BlobEndpoint`), and the escaping of query
//! values shared by the sources' dialects.
//!
//! A leaf module (it uses no other module of this crate).

use std::net::IpAddr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use url::Url;

/// Characters escaped in a query value: everything but unreserved characters.
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// True when a URL's host is an IP address or a DNS name (labels of letters, digits, `-` and `_`).
/// The URL parser also takes `;` and `=` in a host name, which no real host has and a pasted
/// credential may.
pub fn plain_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }),
        Some(_) => true,
        None => false,
    }
}

/// True for `http` URLs whose host is a loopback address, the only place plain http is allowed.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn loopback_is_localhost_or_a_loopback_address() {
        for loopback in [
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://127.0.0.1:10000/devstoreaccount1",
            "http://127.1.2.3",
            "http://[::1]:8080",
        ] {
            assert!(is_loopback(&url(loopback)), "{loopback}");
        }
        for remote in ["http://10.0.0.1", "http://graph.example.com", "file:///tmp"] {
            assert!(!is_loopback(&url(remote)), "{remote}");
        }
    }

    #[test]
    fn plain_hosts_are_addresses_or_dns_names() {
        for plain in [
            "https://logs.blob.core.windows.net",
            "https://my_host.example",
            "http://127.0.0.1:10000",
            "http://[::1]",
        ] {
            assert!(plain_host(&url(plain)), "{plain}");
        }
        for odd in [
            "https://proxy.example;sig=x/",
            "https://a..b",
            "file:///tmp",
        ] {
            assert!(!plain_host(&url(odd)), "{odd}");
        }
    }
}
