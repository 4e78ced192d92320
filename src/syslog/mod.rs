//! Syslog on the wire: the message ([`header`] + [`body`]), its [`frame`] on a stream, and the
//! [`transport`] that carries it, over [`tls`] where asked.

pub mod body;
pub mod fill;
pub mod format;
pub mod frame;
pub mod header;
pub mod pool;
pub mod tls;
pub mod transport;

pub use format::Formatter;
pub use frame::{Batch, Framing};
pub use pool::Pool;
pub use tls::Tls;
pub use transport::{Protocol, SendError, Sender};

/// Facility names of RFC 5424 table 1, by code.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Severity names by code, RFC 5424 table 2.
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A facility name (`local4`, `security` = 4, `clock` = 9 is also accepted) or number 0–23.
pub fn parse_facility(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return (n < 24).then_some(n);
    }
    let alias = match s.as_str() {
        "security" => Some(4),
        "logaudit" | "log_audit" => Some(13),
        "logalert" | "log_alert" => Some(14),
        "cron2" | "clock2" => Some(15),
        _ => None,
    };
    alias.or_else(|| FACILITIES.iter().position(|f| *f == s).map(|p| p as u8))
}

/// A severity name (`info`, `warning`/`warn`, `err`/`error`, …) or number 0–7.
pub fn parse_severity(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return (n < 8).then_some(n);
    }
    let alias = match s.as_str() {
        "emergency" | "panic" => Some(0),
        "critical" | "fatal" => Some(2),
        "error" => Some(3),
        "warn" => Some(4),
        "informational" | "information" => Some(6),
        "trace" => Some(7),
        _ => None,
    };
    alias.or_else(|| SEVERITIES.iter().position(|f| *f == s).map(|p| p as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_and_severity_names_and_numbers() {
        assert_eq!(parse_facility("user"), Some(1));
        assert_eq!(parse_facility("LOCAL4"), Some(20));
        assert_eq!(parse_facility("local7"), Some(23));
        assert_eq!(parse_facility("23"), Some(23));
        assert_eq!(parse_facility("24"), None);
        assert_eq!(parse_facility("security"), Some(4));
        assert_eq!(parse_facility("bogus"), None);
        assert_eq!(parse_severity("info"), Some(6));
        assert_eq!(parse_severity("Warning"), Some(4));
        assert_eq!(parse_severity("warn"), Some(4));
        assert_eq!(parse_severity("error"), Some(3));
        assert_eq!(parse_severity("0"), Some(0));
        assert_eq!(parse_severity("8"), None);
        assert_eq!(parse_severity(""), None);
    }
}
