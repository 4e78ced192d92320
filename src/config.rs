//! Every setting, read from the environment and validated in one place. A bad value is one
//! clear error naming the variable.

use crate::syslog::{self, Framing, Protocol};

/// Where and how to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `SYSLOG_HOST` (required).
    pub host: String,
    /// `SYSLOG_PORT`, default 514.
    pub port: u16,
    /// `SYSLOG_PROTOCOL`: `tcp` (default) or `udp`.
    pub protocol: Protocol,
    /// `SYSLOG_FRAMING`: `lf` (default for tcp) or `octet-counting`; unused on UDP.
    pub framing: Framing,
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
        Ok(Settings {
            host,
            port,
            protocol,
            framing,
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
