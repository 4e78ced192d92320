//! Every setting, read from the environment and validated in one place. A bad value is one
//! clear error naming the variable.

use crate::syslog::tls::{self, TlsOptions};
use crate::syslog::{self, Framing, Protocol, Tls};

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SYSLOG_HOST` (required).
    pub host: String,
    /// `SYSLOG_PORT`, default 514.
    pub port: u16,
    /// `SYSLOG_PROTOCOL`: `tcp` (default), `tls` or `udp`.
    pub protocol: Protocol,
    /// `SYSLOG_FRAMING`: `lf` (default for tcp) or `octet-counting` (default for tls);
    /// unused on UDP.
    pub framing: Framing,
    /// The TLS client configuration, for `tls` (`SYSLOG_TLS_*`).
    pub tls: Option<Tls>,
    /// `SYSLOG_MAX_MESSAGE_BYTES`: longer messages are cut (on a UTF-8 boundary) and counted
    /// as truncated. Default 2048 on UDP, 65536 on TCP and TLS.
    pub max_message_bytes: usize,
    /// `SYSLOG_FACILITY`: name or 0–23, default `user`.
    pub facility: u8,
    /// `SYSLOG_SEVERITY`: name or 0–7, default `info`.
    pub severity: u8,
    /// `SYSLOG_HOSTNAME`, default the machine's host name.
    pub hostname: String,
    /// `SYSLOG_APP_NAME`, default `-`.
    pub app_name: String,
    /// `SLS_PULL_COUNT`: log groups per PullLogs call, 1–1000, default 1000.
    pub pull_count: u32,
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests). Empty values count
    /// as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let err = |var: &'static str, reason: String| ConfigError { var, reason };

        let host = get("SYSLOG_HOST").ok_or_else(|| {
            err(
                "SYSLOG_HOST",
                "is required: the syslog receiver's host name or IP address".into(),
            )
        })?;
        let protocol = match get("SYSLOG_PROTOCOL") {
            None => Protocol::Tcp,
            Some(p) => Protocol::parse(&p)
                .ok_or_else(|| err("SYSLOG_PROTOCOL", format!("{p:?} is not one of: tcp, udp")))?,
        };
        let port = match get("SYSLOG_PORT") {
            None => protocol.default_port(),
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                err(
                    "SYSLOG_PORT",
                    format!("{p:?} is not a port number (1-65535)"),
                )
            })?,
        };
        let framing = match get("SYSLOG_FRAMING") {
            None if protocol == Protocol::Tls => Framing::OctetCounting,
            None => Framing::Lf,
            Some(f) => Framing::parse(&f).ok_or_else(|| {
                err(
                    "SYSLOG_FRAMING",
                    format!("{f:?} is not one of: lf, octet-counting"),
                )
            })?,
        };
        if let Some(f) = get("SYSLOG_FORMAT") {
            if !f.eq_ignore_ascii_case("rfc5424") {
                return Err(err(
                    "SYSLOG_FORMAT",
                    format!("{f:?} is not supported; this version writes rfc5424"),
                ));
            }
        }
        if let Some(f) = get("SYSLOG_MESSAGE_FORMAT") {
            if !f.eq_ignore_ascii_case("kv") {
                return Err(err(
                    "SYSLOG_MESSAGE_FORMAT",
                    format!("{f:?} is not supported; this version writes kv"),
                ));
            }
        }
        let facility = match get("SYSLOG_FACILITY") {
            None => 1,
            Some(f) => syslog::parse_facility(&f).ok_or_else(|| {
                err(
                    "SYSLOG_FACILITY",
                    format!("{f:?} is not a facility name (user, local0..local7, …) or 0-23"),
                )
            })?,
        };
        let severity = match get("SYSLOG_SEVERITY") {
            None => 6,
            Some(s) => syslog::parse_severity(&s).ok_or_else(|| {
                err(
                    "SYSLOG_SEVERITY",
                    format!("{s:?} is not a severity name (emerg … debug) or 0-7"),
                )
            })?,
        };
        let hostname = get("SYSLOG_HOSTNAME").unwrap_or_else(machine_hostname);
        let app_name = get("SYSLOG_APP_NAME").unwrap_or_else(|| "-".into());
        let pull_count = match get("SLS_PULL_COUNT") {
            None => 1000,
            Some(c) => c
                .parse::<u32>()
                .ok()
                .filter(|c| (1..=1000).contains(c))
                .ok_or_else(|| {
                    err(
                        "SLS_PULL_COUNT",
                        format!("{c:?} is not a number from 1 to 1000"),
                    )
                })?,
        };
        let (default_max, limit) = match protocol {
            Protocol::Udp => (2048, 65_507),
            Protocol::Tcp | Protocol::Tls => (65_536, 16 * 1024 * 1024),
        };
        let max_message_bytes = match get("SYSLOG_MAX_MESSAGE_BYTES") {
            None => default_max,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (480..=limit).contains(n))
                .ok_or_else(|| {
                    err(
                        "SYSLOG_MAX_MESSAGE_BYTES",
                        format!(
                            "{v:?} is not a number from 480 to {limit} for {}",
                            protocol.as_str()
                        ),
                    )
                })?,
        };
        let insecure = match get("SYSLOG_TLS_INSECURE").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => false,
            Some(v) => {
                return Err(err(
                    "SYSLOG_TLS_INSECURE",
                    format!("{v:?} is not true or false"),
                ))
            }
        };
        let tls = if protocol == Protocol::Tls {
            let ca = get("SYSLOG_TLS_CA");
            let cert = get("SYSLOG_TLS_CERT");
            let key = get("SYSLOG_TLS_KEY");
            let server_name = get("SYSLOG_TLS_SERVER_NAME").unwrap_or_else(|| host.clone());
            let loaded = tls::load(&TlsOptions {
                ca: ca.as_deref(),
                cert: cert.as_deref(),
                key: key.as_deref(),
                server_name: &server_name,
                insecure,
            })
            .map_err(|e| err(e.var, e.reason))?;
            Some(loaded)
        } else {
            None
        };
        Ok(Settings {
            host,
            port,
            protocol,
            framing,
            tls,
            max_message_bytes,
            facility,
            severity,
            hostname,
            app_name,
            pull_count,
        })
    }
}

/// The machine's host name, `-` when it cannot be read.
pub fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[("SYSLOG_HOST", "siem.example.com")]).unwrap();
        assert_eq!(s.port, 514);
        assert_eq!(s.protocol, Protocol::Tcp);
        assert_eq!(s.framing, Framing::Lf);
        assert_eq!((s.facility, s.severity), (1, 6));
        assert_eq!(s.app_name, "-");
        assert_eq!(s.pull_count, 1000);
        assert_eq!(s.max_message_bytes, 65_536);
        assert!(!s.hostname.is_empty());
    }

    #[test]
    fn reads_every_variable() {
        let s = settings(&[
            ("SYSLOG_HOST", "10.1.2.3"),
            ("SYSLOG_PORT", "6000"),
            ("SYSLOG_PROTOCOL", "UDP"),
            ("SYSLOG_FRAMING", "octet-counting"),
            ("SYSLOG_FACILITY", "local4"),
            ("SYSLOG_SEVERITY", "warning"),
            ("SYSLOG_HOSTNAME", "aliyun.example.com"),
            ("SYSLOG_APP_NAME", "sls"),
            ("SYSLOG_FORMAT", "rfc5424"),
            ("SLS_PULL_COUNT", "10"),
        ])
        .unwrap();
        assert_eq!(s.port, 6000);
        assert_eq!(s.protocol, Protocol::Udp);
        assert_eq!(s.framing, Framing::OctetCounting);
        assert_eq!((s.facility, s.severity), (20, 4));
        assert_eq!(s.hostname, "aliyun.example.com");
        assert_eq!(s.app_name, "sls");
        assert_eq!(s.pull_count, 10);
        assert_eq!(s.max_message_bytes, 2048, "the UDP default");
    }

    #[test]
    fn tls_defaults_to_6514_and_octet_counting() {
        let s = settings(&[
            ("SYSLOG_HOST", "10.0.0.5"),
            ("SYSLOG_PROTOCOL", "tls"),
            ("SYSLOG_TLS_INSECURE", "true"),
        ])
        .unwrap();
        assert_eq!(s.port, 6514);
        assert_eq!(s.framing, Framing::OctetCounting);
        let tls = s.tls.unwrap();
        assert!(tls.insecure);
        let e = settings(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_PROTOCOL", "tls"),
            ("SYSLOG_TLS_CA", "/no/such/ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "SYSLOG_TLS_CA");
        let e = settings(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_PROTOCOL", "tls"),
            ("SYSLOG_TLS_INSECURE", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "SYSLOG_TLS_INSECURE");
        assert!(settings(&[("SYSLOG_HOST", "h")]).unwrap().tls.is_none());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let base = ("SYSLOG_HOST", "h");
        for (var, value) in [
            ("SYSLOG_PORT", "0"),
            ("SYSLOG_PORT", "70000"),
            ("SYSLOG_PROTOCOL", "sctp"),
            ("SYSLOG_FRAMING", "crlf"),
            ("SYSLOG_FACILITY", "local8"),
            ("SYSLOG_SEVERITY", "loud"),
            ("SYSLOG_FORMAT", "rfc3164x"),
            ("SYSLOG_MESSAGE_FORMAT", "xml"),
            ("SLS_PULL_COUNT", "1001"),
            ("SYSLOG_MAX_MESSAGE_BYTES", "479"),
            ("SYSLOG_MAX_MESSAGE_BYTES", "16777217"),
        ] {
            let e = settings(&[base, (var, value)]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(
                e.to_string()
                    .starts_with(&format!("configuration: {var}: ")),
                "{e}"
            );
        }
        assert_eq!(settings(&[]).unwrap_err().var, "SYSLOG_HOST");
        assert_eq!(
            settings(&[("SYSLOG_HOST", "  ")]).unwrap_err().var,
            "SYSLOG_HOST"
        );
    }
}
