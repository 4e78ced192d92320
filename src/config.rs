//! Every setting, read from the environment and validated in one place. A bad value is one
//! clear error naming the variable.

use crate::syslog::body::{self, Cef, FieldFilter, Leef, Patterns};
use crate::syslog::format::{valid_sd_id, Formatter, FromField, MessageFormat, SyslogFormat};
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
    /// How each log becomes a message: `SYSLOG_FORMAT`, `SYSLOG_MESSAGE_FORMAT`, the header
    /// fields and their `*_FIELD` sources, field selection, CEF/LEEF settings, SD-ID.
    pub formatter: Formatter,
    /// `SLS_PULL_COUNT`: log groups per PullLogs call at most, 1–1000, default 1000 (fewer
    /// when the groups are big: pulls aim at a few MiB).
    pub pull_count: u32,
    /// `SYSLOG_UDP_RATE`: UDP messages per second at most, 0 for no pacing; default
    /// [`DEFAULT_UDP_RATE`]. Unused on TCP and TLS.
    pub udp_rate: u32,
    /// The values these settings were made from, for per-trigger overrides.
    vars: Vars,
}

/// Raw variable values. `Debug` shows only the names: TLS keys can be among them.
#[derive(Clone, Default)]
struct Vars(std::collections::HashMap<&'static str, String>);

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&&str> = self.0.keys().collect();
        names.sort();
        f.debug_set().entries(names).finish()
    }
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
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let raw = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let get = |name: &str| {
            lookup(name)
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
            Some(p) => Protocol::parse(&p).ok_or_else(|| {
                err(
                    "SYSLOG_PROTOCOL",
                    format!("{p:?} is not one of: tcp, tls, udp"),
                )
            })?,
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
        let msgid = get("SYSLOG_MSGID").unwrap_or_else(|| "-".into());
        let format = match get("SYSLOG_FORMAT").map(|f| f.to_ascii_lowercase()) {
            None => SyslogFormat::Rfc5424,
            Some(f) if f == "rfc5424" => SyslogFormat::Rfc5424,
            Some(f) if f == "rfc3164" => SyslogFormat::Rfc3164,
            Some(f) => {
                return Err(err(
                    "SYSLOG_FORMAT",
                    format!("{f:?} is not one of: rfc5424, rfc3164"),
                ))
            }
        };
        let or = |var: &str, default: &str| get(var).unwrap_or_else(|| default.to_string());
        let body = match get("SYSLOG_MESSAGE_FORMAT").map(|f| f.to_ascii_lowercase()) {
            None => MessageFormat::Kv(kv_separator(&raw)),
            Some(f) if f == "kv" => MessageFormat::Kv(kv_separator(&raw)),
            Some(f) if f == "json" => MessageFormat::Json,
            Some(f) if f == "cef" => {
                let severity = or("SYSLOG_CEF_SEVERITY", "5");
                if !body::is_cef_severity(&severity) {
                    return Err(err(
                        "SYSLOG_CEF_SEVERITY",
                        format!(
                            "{severity:?} is not 0-10 or Unknown, Low, Medium, High, Very-High"
                        ),
                    ));
                }
                MessageFormat::Cef(Cef {
                    vendor: or("SYSLOG_CEF_VENDOR", "Alibaba Cloud"),
                    product: or("SYSLOG_CEF_PRODUCT", "SLS"),
                    version: or("SYSLOG_CEF_VERSION", "1.0"),
                    event_class: or("SYSLOG_CEF_EVENT_CLASS", "sls-log"),
                    event_class_field: get("SYSLOG_CEF_EVENT_CLASS_FIELD"),
                    name: or("SYSLOG_CEF_NAME", "SLS log"),
                    name_field: get("SYSLOG_CEF_NAME_FIELD"),
                    severity,
                    severity_field: get("SYSLOG_CEF_SEVERITY_FIELD"),
                })
            }
            Some(f) if f == "leef" => {
                // Not trimmed: a space or a tab is a valid delimiter.
                let d = raw("SYSLOG_LEEF_DELIMITER").unwrap_or_else(|| "^".into());
                let delimiter = body::parse_leef_delimiter(&d).ok_or_else(|| {
                    err(
                        "SYSLOG_LEEF_DELIMITER",
                        format!("{d:?} is not one character or its hex code (0x5E, x09); | = CR LF are not allowed"),
                    )
                })?;
                MessageFormat::Leef(Leef {
                    vendor: or("SYSLOG_LEEF_VENDOR", "Alibaba Cloud"),
                    product: or("SYSLOG_LEEF_PRODUCT", "SLS"),
                    version: or("SYSLOG_LEEF_VERSION", "1.0"),
                    event_id: or("SYSLOG_LEEF_EVENT_ID", "sls-log"),
                    event_id_field: get("SYSLOG_LEEF_EVENT_ID_FIELD"),
                    delimiter,
                })
            }
            Some(f) => {
                return Err(err(
                    "SYSLOG_MESSAGE_FORMAT",
                    format!("{f:?} is not one of: kv, json, cef, leef"),
                ))
            }
        };
        let sd_id = get("SYSLOG_SD_ID");
        if let Some(id) = &sd_id {
            if !valid_sd_id(id) {
                return Err(err(
                    "SYSLOG_SD_ID",
                    format!("{id:?} is not an SD-ID (1-32 printable ASCII characters without = ] \" or space, e.g. sls@32473)"),
                ));
            }
        }
        let formatter = Formatter {
            format,
            facility: FromField {
                constant: facility,
                field: get("SYSLOG_FACILITY_FIELD"),
            },
            severity: FromField {
                constant: severity,
                field: get("SYSLOG_SEVERITY_FIELD"),
            },
            hostname: FromField {
                constant: hostname,
                field: get("SYSLOG_HOSTNAME_FIELD"),
            },
            app_name: FromField {
                constant: app_name,
                field: get("SYSLOG_APP_NAME_FIELD"),
            },
            msgid: FromField {
                constant: msgid,
                field: get("SYSLOG_MSGID_FIELD"),
            },
            body,
            filter: FieldFilter {
                include: Patterns::parse(&or("SYSLOG_INCLUDE_FIELDS", "")),
                exclude: Patterns::parse(&or("SYSLOG_EXCLUDE_FIELDS", "")),
            },
            sd_id,
        };
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
        let udp_rate = match get("SYSLOG_UDP_RATE") {
            None => DEFAULT_UDP_RATE,
            Some(r) => r.parse::<u32>().ok().filter(|r| *r <= 10_000_000).ok_or_else(|| {
                err(
                    "SYSLOG_UDP_RATE",
                    format!("{r:?} is not a number of messages per second (0 for no pacing, at most 10000000)"),
                )
            })?,
        };
        let (default_max, limit) = match protocol {
            Protocol::Udp if format == SyslogFormat::Rfc3164 => (1024, 65_507),
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
            formatter,
            pull_count,
            udp_rate,
            vars: Vars(
                VARIABLES
                    .iter()
                    .filter_map(|v| lookup(v).map(|value| (*v, value)))
                    .collect(),
            ),
        })
    }
}

/// `SYSLOG_KV_SEPARATOR`, default `||`. Unlike other values it is not trimmed.
fn kv_separator(get: &dyn Fn(&str) -> Option<String>) -> String {
    get("SYSLOG_KV_SEPARATOR").unwrap_or_else(|| "||".into())
}

/// Every variable that configures the function: also the keys a trigger's
/// `functionParameter` may set to override them for its invocations.
pub const VARIABLES: &[&str] = &[
    "SYSLOG_HOST",
    "SYSLOG_PORT",
    "SYSLOG_PROTOCOL",
    "SYSLOG_FRAMING",
    "SYSLOG_FORMAT",
    "SYSLOG_MESSAGE_FORMAT",
    "SYSLOG_KV_SEPARATOR",
    "SYSLOG_FACILITY",
    "SYSLOG_FACILITY_FIELD",
    "SYSLOG_SEVERITY",
    "SYSLOG_SEVERITY_FIELD",
    "SYSLOG_HOSTNAME",
    "SYSLOG_HOSTNAME_FIELD",
    "SYSLOG_APP_NAME",
    "SYSLOG_APP_NAME_FIELD",
    "SYSLOG_MSGID",
    "SYSLOG_MSGID_FIELD",
    "SYSLOG_INCLUDE_FIELDS",
    "SYSLOG_EXCLUDE_FIELDS",
    "SYSLOG_SD_ID",
    "SYSLOG_MAX_MESSAGE_BYTES",
    "SYSLOG_CEF_VENDOR",
    "SYSLOG_CEF_PRODUCT",
    "SYSLOG_CEF_VERSION",
    "SYSLOG_CEF_EVENT_CLASS",
    "SYSLOG_CEF_EVENT_CLASS_FIELD",
    "SYSLOG_CEF_NAME",
    "SYSLOG_CEF_NAME_FIELD",
    "SYSLOG_CEF_SEVERITY",
    "SYSLOG_CEF_SEVERITY_FIELD",
    "SYSLOG_LEEF_VENDOR",
    "SYSLOG_LEEF_PRODUCT",
    "SYSLOG_LEEF_VERSION",
    "SYSLOG_LEEF_EVENT_ID",
    "SYSLOG_LEEF_EVENT_ID_FIELD",
    "SYSLOG_LEEF_DELIMITER",
    "SYSLOG_TLS_CA",
    "SYSLOG_TLS_CERT",
    "SYSLOG_TLS_KEY",
    "SYSLOG_TLS_SERVER_NAME",
    "SYSLOG_TLS_INSECURE",
    "SYSLOG_UDP_RATE",
    "SLS_PULL_COUNT",
];

/// UDP messages per second when `SYSLOG_UDP_RATE` is not set: what a default rsyslog `imudp`
/// on a 2-core machine received in full (docs/troubleshooting.md, "UDP").
pub const DEFAULT_UDP_RATE: u32 = 20_000;

impl Settings {
    /// The settings for one invocation whose trigger passed `parameter` (its
    /// `functionParameter`): each key is a variable name whose value replaces the one these
    /// settings were made from. An unknown key, or a value that is not a string, number or boolean, is
    /// an error naming it.
    pub fn with_overrides(
        &self,
        parameter: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Settings, ConfigError> {
        let mut values = std::collections::HashMap::new();
        for (key, value) in parameter {
            let Some(var) = VARIABLES.iter().find(|v| **v == key.as_str()) else {
                return Err(ConfigError {
                    var: "parameter",
                    reason: format!(
                        "the trigger parameter {key:?} is not a setting (expected one of the SYSLOG_* variables or SLS_PULL_COUNT)"
                    ),
                });
            };
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ConfigError {
                        var,
                        reason: "in the trigger parameter must be a string, number or boolean"
                            .into(),
                    })
                }
            };
            values.insert(*var, text);
        }
        Settings::from_lookup(|k| values.get(k).or_else(|| self.vars.0.get(k)).cloned())
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
        let f = &s.formatter;
        assert_eq!((f.facility.constant, f.severity.constant), (1, 6));
        assert_eq!(f.app_name.constant, "-");
        assert_eq!(f.format, SyslogFormat::Rfc5424);
        assert_eq!(f.body, MessageFormat::Kv("||".into()));
        assert_eq!(s.pull_count, 1000);
        assert_eq!(s.udp_rate, DEFAULT_UDP_RATE);
        assert_eq!(s.max_message_bytes, 65_536);
        assert!(!s.formatter.hostname.constant.is_empty());
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
            ("SYSLOG_UDP_RATE", "5000"),
        ])
        .unwrap();
        assert_eq!(s.udp_rate, 5000);
        assert_eq!(s.port, 6000);
        assert_eq!(s.protocol, Protocol::Udp);
        assert_eq!(s.framing, Framing::OctetCounting);
        let f = &s.formatter;
        assert_eq!((f.facility.constant, f.severity.constant), (20, 4));
        assert_eq!(f.hostname.constant, "aliyun.example.com");
        assert_eq!(f.app_name.constant, "sls");
        assert_eq!(s.pull_count, 10);
        assert_eq!(s.max_message_bytes, 2048, "the UDP default");
    }

    #[test]
    fn formats_and_their_settings() {
        let s = settings(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_PROTOCOL", "udp"),
            ("SYSLOG_FORMAT", "RFC3164"),
            ("SYSLOG_MESSAGE_FORMAT", "kv"),
            ("SYSLOG_KV_SEPARATOR", " "),
            ("SYSLOG_SEVERITY_FIELD", "level"),
            ("SYSLOG_EXCLUDE_FIELDS", "__tag__:*"),
        ])
        .unwrap();
        assert_eq!(s.formatter.format, SyslogFormat::Rfc3164);
        assert_eq!(s.max_message_bytes, 1024, "RFC 3164 over UDP");
        assert_eq!(s.formatter.body, MessageFormat::Kv(" ".into()));
        assert_eq!(s.formatter.severity.field.as_deref(), Some("level"));
        assert!(!s.formatter.filter.keeps("__tag__:x"));
        let s = settings(&[("SYSLOG_HOST", "h"), ("SYSLOG_MESSAGE_FORMAT", "cef")]).unwrap();
        assert!(
            matches!(s.formatter.body, MessageFormat::Cef(ref c) if c.vendor == "Alibaba Cloud" && c.severity == "5")
        );
        let s = settings(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_MESSAGE_FORMAT", "leef"),
            ("SYSLOG_LEEF_DELIMITER", "x09"),
        ])
        .unwrap();
        assert!(matches!(s.formatter.body, MessageFormat::Leef(ref l) if l.delimiter == '\t'));
        let s = settings(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_MESSAGE_FORMAT", "leef"),
            ("SYSLOG_LEEF_DELIMITER", "\t"),
        ])
        .unwrap();
        assert!(matches!(s.formatter.body, MessageFormat::Leef(ref l) if l.delimiter == '\t'));
        for (var, value) in [
            ("SYSLOG_CEF_SEVERITY", "11"),
            ("SYSLOG_LEEF_DELIMITER", "|"),
        ] {
            let format = if var.contains("CEF") { "cef" } else { "leef" };
            let e = settings(&[
                ("SYSLOG_HOST", "h"),
                ("SYSLOG_MESSAGE_FORMAT", format),
                (var, value),
            ])
            .unwrap_err();
            assert_eq!(e.var, var);
        }
    }

    #[test]
    fn trigger_parameters_override_the_environment() {
        let base = settings(&[
            ("SYSLOG_HOST", "env-host"),
            ("SYSLOG_PORT", "514"),
            ("SYSLOG_TLS_KEY", "-----BEGIN PRIVATE KEY-----x"),
        ])
        .unwrap();
        assert!(!format!("{base:?}").contains("BEGIN PRIVATE"), "{base:?}");
        let params = serde_json::json!({"SYSLOG_PORT": 6000, "SYSLOG_MESSAGE_FORMAT": "json"});
        let s = base.with_overrides(params.as_object().unwrap()).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("env-host", 6000));
        assert_eq!(s.formatter.body, MessageFormat::Json);
        let params = serde_json::json!({"SYSLOG_PROT": "tcp"});
        let e = base
            .with_overrides(params.as_object().unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("\"SYSLOG_PROT\" is not a setting"),
            "{e}"
        );
        let params = serde_json::json!({"SYSLOG_PORT": [1]});
        assert_eq!(
            base.with_overrides(params.as_object().unwrap())
                .unwrap_err()
                .var,
            "SYSLOG_PORT"
        );
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
            ("SYSLOG_SD_ID", "a b"),
            ("SLS_PULL_COUNT", "1001"),
            ("SYSLOG_MAX_MESSAGE_BYTES", "479"),
            ("SYSLOG_MAX_MESSAGE_BYTES", "16777217"),
            ("SYSLOG_UDP_RATE", "-5"),
            ("SYSLOG_UDP_RATE", "fast"),
        ] {
            let e = settings(&[base, (var, value)]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(
                e.to_string()
                    .starts_with(&format!("configuration: {var}: ")),
                "{e}"
            );
        }
        let e = settings(&[base, ("SYSLOG_PROTOCOL", "smtp")]).unwrap_err();
        assert!(e.reason.contains("tcp, tls, udp"), "{e}");
        assert_eq!(settings(&[]).unwrap_err().var, "SYSLOG_HOST");
        assert_eq!(
            settings(&[("SYSLOG_HOST", "  ")]).unwrap_err().var,
            "SYSLOG_HOST"
        );
    }
}
