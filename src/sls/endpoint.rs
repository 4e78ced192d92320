//! SLS endpoints as the trigger event or a user gives them.
//!
//! The project is conveyed only by the `Host` header (`{project}.{endpoint}`). A regional
//! endpoint is reached at `{project}.{endpoint}` itself; an IP address or `localhost` (a local
//! test server, a private link) is connected to directly while the `Host` header still names
//! the project, as the official Python SDK does.

use std::fmt;
use std::net::IpAddr;

use super::http::Origin;

/// `http` (the default, as in every SDK) or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed endpoint: scheme, host and optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host name or IP address, without brackets for IPv6.
    pub host: String,
    pub port: Option<u16>,
}

/// Why an endpoint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SLS endpoint {input:?}: {reason}")]
pub struct EndpointError {
    input: String,
    reason: &'static str,
}

impl Endpoint {
    /// Parses `cn-hangzhou.log.aliyuncs.com`, `http://cn-hangzhou-intranet.log.aliyuncs.com`,
    /// `https://host:8443`, `127.0.0.1:9100`, `[::1]:9100`, `localhost`; a trailing `/` is allowed.
    pub fn parse(input: &str) -> Result<Endpoint, EndpointError> {
        let err = |reason| EndpointError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(s, "http://") {
            (Scheme::Http, r)
        } else if let Some(r) = strip_prefix_ci(s, "https://") {
            (Scheme::Https, r)
        } else if s.contains("://") {
            return Err(err("only http:// and https:// are supported"));
        } else {
            (Scheme::Http, s)
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(err("expected host[:port] without a path"));
        }
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner
                .split_once(']')
                .ok_or_else(|| err("unclosed '[' in IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    parse_port(p.strip_prefix(':').ok_or_else(|| err("junk after ']'"))?)
                        .ok_or_else(|| err("invalid port"))?,
                ),
            };
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(err("invalid IPv6 address"));
            }
            (h.to_string(), port)
        } else if rest.parse::<std::net::Ipv6Addr>().is_ok() {
            (rest.to_string(), None)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    Some(parse_port(p).ok_or_else(|| err("invalid port"))?),
                ),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        {
            return Err(err("host has characters a host name cannot have"));
        }
        Ok(Endpoint { scheme, host, port })
    }

    /// True when requests go to the configured address itself rather than to
    /// `{project}.{host}`: an IP address or `localhost`.
    pub fn is_direct(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok() || self.host.eq_ignore_ascii_case("localhost")
    }

    /// The `Host` header for `project`: always `{project}.{host}` (no port, like the Python SDK).
    pub fn host_header(&self, project: &str) -> String {
        format!("{project}.{}", self.host)
    }

    /// Where requests for `project` go: `{project}.{host}`, or the host itself when direct;
    /// the port, else the scheme's.
    pub fn origin(&self, project: &str) -> Origin {
        let https = self.scheme == Scheme::Https;
        Origin {
            https,
            host: if self.is_direct() {
                self.host.clone()
            } else {
                format!("{project}.{}", self.host)
            },
            port: self.port.unwrap_or(if https { 443 } else { 80 }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{}://{host}:{p}", self.scheme.as_str()),
            None => write!(f, "{}://{host}", self.scheme.as_str()),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // Compared as bytes: slicing the str could split a character.
    let head = s.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap()
    }

    #[test]
    fn regional_endpoint_without_scheme_defaults_to_http_and_prefixes_project() {
        let e = ep("cn-hangzhou.log.aliyuncs.com");
        assert_eq!(e.scheme, Scheme::Http);
        assert!(!e.is_direct());
        assert_eq!(
            e.origin("my-project").to_string(),
            "http://my-project.cn-hangzhou.log.aliyuncs.com:80"
        );
        assert_eq!(
            e.host_header("my-project"),
            "my-project.cn-hangzhou.log.aliyuncs.com"
        );
    }

    #[test]
    fn trigger_endpoint_with_scheme() {
        let e = ep("http://cn-shanghai-intranet.log.aliyuncs.com");
        assert_eq!(
            e.origin("p").to_string(),
            "http://p.cn-shanghai-intranet.log.aliyuncs.com:80"
        );
        let e = ep("HTTPS://cn-shanghai.log.aliyuncs.com/");
        assert_eq!(e.scheme, Scheme::Https);
        assert_eq!(
            e.origin("p").to_string(),
            "https://p.cn-shanghai.log.aliyuncs.com:443"
        );
    }

    #[test]
    fn port_is_kept_in_the_url_but_not_the_host_header() {
        let e = ep("https://cn-hangzhou.log.aliyuncs.com:8443");
        assert_eq!(e.port, Some(8443));
        assert_eq!(
            e.origin("p").to_string(),
            "https://p.cn-hangzhou.log.aliyuncs.com:8443"
        );
        assert_eq!(e.host_header("p"), "p.cn-hangzhou.log.aliyuncs.com");
    }

    #[test]
    fn ip_and_localhost_connect_directly_with_project_host_header() {
        let e = ep("127.0.0.1:9100");
        assert!(e.is_direct());
        assert_eq!(e.origin("proj").to_string(), "http://127.0.0.1:9100");
        assert_eq!(e.host_header("proj"), "proj.127.0.0.1");
        let e = ep("http://localhost:9100");
        assert_eq!(e.origin("proj").to_string(), "http://localhost:9100");
        assert_eq!(e.host_header("proj"), "proj.localhost");
        let e = ep("[::1]:9100");
        assert_eq!(e.host, "::1");
        assert_eq!(e.origin("proj").to_string(), "http://[::1]:9100");
        assert_eq!(e.host_header("proj"), "proj.::1");
        let e = ep("::1");
        assert_eq!(e.port, None);
        assert!(e.is_direct());
    }

    #[test]
    fn refuses_what_is_not_an_endpoint() {
        for bad in [
            "",
            "ftp://x",
            "http://",
            "host:0",
            "host:99999",
            "host:abc",
            "host/path",
            "user@host",
            "[::1",
            "ho st",
            "abcdefé",
            "httpsé://x",
            "éééé",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
