//! One log → one syslog message: the header (RFC 5424 or RFC 3164, with header fields
//! optionally taken from log fields) and the body ([`body`](super::body)).

use std::io::Write;

use super::body::{self, Cef, FieldFilter, Leef};
use super::header::{write_header_field, Timestamps, APP_NAME_MAX, HOSTNAME_MAX, MSGID_MAX};
use super::{parse_facility, parse_severity};
use crate::record::{Record, Value};

/// `SYSLOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    Rfc5424,
    Rfc3164,
}

/// `SYSLOG_MESSAGE_FORMAT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageFormat {
    /// `||key=value` with this separator.
    Kv(String),
    Json,
    Cef(Cef),
    Leef(Leef),
}

/// A header value: a constant, or a log field with the constant as fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromField<T> {
    pub constant: T,
    pub field: Option<String>,
}

/// Everything that shapes a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatter {
    pub format: SyslogFormat,
    pub facility: FromField<u8>,
    pub severity: FromField<u8>,
    pub hostname: FromField<String>,
    pub app_name: FromField<String>,
    pub msgid: FromField<String>,
    pub body: MessageFormat,
    pub filter: FieldFilter,
    /// `SYSLOG_SD_ID`: adds `[id project=… logstore=… shard=… cursor=…]` (RFC 5424 only).
    pub sd_id: Option<String>,
}

/// Where a log came from, for the structured data.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub project: &'a str,
    pub logstore: &'a str,
    pub shard: u32,
    /// The cursor of the log's group.
    pub cursor: &'a str,
}

/// RFC 3164 allows a TAG of at most 32 characters.
const TAG_MAX: usize = 32;

/// A body that can be written as the log is read ([`Formatter::streamed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed<'a> {
    /// kv with this separator.
    Kv(&'a str),
    Json,
    Leef(&'a Leef),
}

impl Formatter {
    /// Appends the whole message for `record`.
    pub fn write(&self, out: &mut Vec<u8>, record: &Record<'_>, origin: &Origin<'_>) {
        self.write_with(out, &mut Timestamps::default(), record, origin);
    }

    /// [`Formatter::write`] with `timestamps` kept from message to message.
    pub fn write_with(
        &self,
        out: &mut Vec<u8>,
        timestamps: &mut Timestamps,
        record: &Record<'_>,
        origin: &Origin<'_>,
    ) {
        let facility = self.number(&self.facility, record, parse_facility);
        let severity = self.number(&self.severity, record, parse_severity);
        let pri = pri(facility, severity);
        self.write_head(out, timestamps, pri, record.time, record.time_ns);
        let hostname = self.text(&self.hostname, record);
        let app_name = self.text(&self.app_name, record);
        let msgid = self.text(&self.msgid, record);
        self.write_rest(out, hostname, app_name, msgid, origin);
        match &self.body {
            MessageFormat::Kv(sep) => body::write_kv(out, record, sep, &self.filter),
            MessageFormat::Json => body::write_json(out, record, &self.filter),
            MessageFormat::Cef(cef) => body::write_cef(out, record, cef, &self.filter),
            MessageFormat::Leef(leef) => body::write_leef(out, record, leef, &self.filter),
        }
    }

    /// The body when nothing of a message but its time and its body depends on the log
    /// (every header value, and a LEEF event ID, is a constant or comes from a field of the
    /// log group: [`group_level`]) and the body is kv, JSON or LEEF. Such messages are built
    /// from [`Formatter::write_head`], the group's [`Formatter::write_rest`] and the fields
    /// as they are read (see [`fill`](super::fill)).
    pub fn streamed(&self) -> Option<Streamed<'_>> {
        if !self.header_fields().all(group_level) {
            return None;
        }
        match &self.body {
            MessageFormat::Kv(sep) => Some(Streamed::Kv(sep)),
            MessageFormat::Json => Some(Streamed::Json),
            MessageFormat::Leef(leef) => Some(Streamed::Leef(leef)),
            MessageFormat::Cef(_) => None,
        }
    }

    /// The fields that header values (and a LEEF event ID) are taken from.
    pub fn header_fields(&self) -> impl Iterator<Item = &str> {
        let leef = match &self.body {
            MessageFormat::Leef(leef) => leef.event_id_field.as_deref(),
            _ => None,
        };
        [
            self.facility.field.as_deref(),
            self.severity.field.as_deref(),
            self.hostname.field.as_deref(),
            self.app_name.field.as_deref(),
            self.msgid.field.as_deref(),
            leef,
        ]
        .into_iter()
        .flatten()
    }

    /// PRI, HOSTNAME, APP-NAME and MSGID of a log whose fields named by
    /// [`Formatter::header_fields`] have the values `lookup` gives (as from its record).
    pub fn header_values<'v>(
        &'v self,
        lookup: &dyn Fn(&str) -> Option<&'v str>,
    ) -> (u16, &'v str, &'v str, &'v str) {
        let number = |v: &FromField<u8>, parse: fn(&str) -> Option<u8>| {
            v.field
                .as_deref()
                .and_then(lookup)
                .and_then(parse)
                .unwrap_or(v.constant)
        };
        let pri = pri(
            number(&self.facility, parse_facility),
            number(&self.severity, parse_severity),
        );
        (
            pri,
            from_field_text(&self.hostname, lookup),
            from_field_text(&self.app_name, lookup),
            from_field_text(&self.msgid, lookup),
        )
    }

    /// PRI from the constant facility and severity.
    pub fn constant_pri(&self) -> u16 {
        pri(self.facility.constant, self.severity.constant)
    }

    /// The header's start: `<PRI>1 TIMESTAMP` (RFC 5424) or `<PRI>Mmm dd hh:mm:ss`
    /// (RFC 3164).
    pub fn write_head(
        &self,
        out: &mut Vec<u8>,
        timestamps: &mut Timestamps,
        pri: u16,
        time: u32,
        time_ns: u32,
    ) {
        timestamps.write_pri(out, pri);
        match self.format {
            SyslogFormat::Rfc5424 => {
                out.extend_from_slice(b"1 ");
                timestamps.write(out, time, time_ns);
            }
            SyslogFormat::Rfc3164 => timestamps.write_legacy(out, time),
        }
    }

    /// The rest of the header, up to the body: ` HOSTNAME APP-NAME - MSGID SD ` (RFC 5424)
    /// or ` HOSTNAME TAG: ` (RFC 3164).
    pub fn write_rest(
        &self,
        out: &mut Vec<u8>,
        hostname: &str,
        app_name: &str,
        msgid: &str,
        origin: &Origin<'_>,
    ) {
        out.push(b' ');
        write_header_field(out, hostname, HOSTNAME_MAX);
        out.push(b' ');
        match self.format {
            SyslogFormat::Rfc5424 => {
                write_header_field(out, app_name, APP_NAME_MAX);
                out.extend_from_slice(b" - ");
                write_header_field(out, msgid, MSGID_MAX);
                out.push(b' ');
                match &self.sd_id {
                    Some(id) => write_sd(out, id, origin),
                    None => out.push(b'-'),
                }
                out.push(b' ');
            }
            SyslogFormat::Rfc3164 => {
                // RFC 3164: any non-alphanumeric character ends the TAG.
                let start = out.len();
                out.extend(
                    app_name
                        .bytes()
                        .filter(u8::is_ascii_alphanumeric)
                        .take(TAG_MAX),
                );
                if out.len() == start {
                    out.extend_from_slice(b"sls");
                }
                out.extend_from_slice(b": ");
            }
        }
    }

    fn text<'r>(&'r self, v: &'r FromField<String>, record: &'r Record<'_>) -> &'r str {
        from_field_text(v, &|field| match record.get(field) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        })
    }

    fn number(&self, v: &FromField<u8>, record: &Record<'_>, parse: fn(&str) -> Option<u8>) -> u8 {
        let parsed = match v.field.as_deref().and_then(|f| record.get(f)) {
            Some(Value::Text(t)) => parse(t),
            Some(Value::Number(n)) => parse(&n.to_string()),
            None => None,
        };
        parsed.unwrap_or(v.constant)
    }
}

/// Whether `field` is one of a log group's fields (`__topic__`, `__source__`, `__tag__:…`):
/// the same in every log of the group that is streamed (a content by such a name sends its
/// log down the record path).
pub fn group_level(field: &str) -> bool {
    matches!(field, "__topic__" | "__source__") || field.starts_with("__tag__:")
}

/// `v`'s field's value from `lookup` unless it is missing or blank, else its constant (as
/// [`Formatter::text`] does from a record).
pub fn from_field_text<'v>(
    v: &'v FromField<String>,
    lookup: &dyn Fn(&str) -> Option<&'v str>,
) -> &'v str {
    v.field
        .as_deref()
        .and_then(lookup)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(&v.constant)
}

/// PRI: facility × 8 + severity, each clamped to its range.
fn pri(facility: u8, severity: u8) -> u16 {
    u16::from(facility.min(23)) * 8 + u16::from(severity.min(7))
}

/// `[id project="…" logstore="…" shard="…" cursor="…"]`, PARAM-VALUEs escaped per RFC 5424
/// §6.3.3 (`\`, `"` and `]` get a backslash).
fn write_sd(out: &mut Vec<u8>, id: &str, origin: &Origin<'_>) {
    out.push(b'[');
    out.extend_from_slice(id.as_bytes());
    let shard = origin.shard.to_string();
    for (name, value) in [
        ("project", origin.project),
        ("logstore", origin.logstore),
        ("shard", shard.as_str()),
        ("cursor", origin.cursor),
    ] {
        let _ = write!(out, " {name}=\"");
        sd_value(out, value);
        out.push(b'"');
    }
    out.push(b']');
}

/// Escapes an SD PARAM-VALUE.
pub fn sd_value(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if matches!(b, b'\\' | b'"' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// An SD-ID: 1–32 PRINTUSASCII characters except `=`, space, `]` and `"`; a private one has
/// the form `name@<enterprise number>`.
pub fn valid_sd_id(id: &str) -> bool {
    let name_ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'));
    let at_ok = match id.split_once('@') {
        None => true,
        Some((name, pen)) => {
            !name.is_empty() && !pen.is_empty() && pen.bytes().all(|b| b.is_ascii_digit())
        }
    };
    name_ok && at_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;
    use std::borrow::Cow;

    fn formatter(format: SyslogFormat) -> Formatter {
        Formatter {
            format,
            facility: FromField {
                constant: 1,
                field: Some("facility".into()),
            },
            severity: FromField {
                constant: 6,
                field: Some("level".into()),
            },
            hostname: FromField {
                constant: "aliyun.example.com".into(),
                field: Some("host".into()),
            },
            app_name: FromField {
                constant: "sls".into(),
                field: Some("app".into()),
            },
            msgid: FromField {
                constant: "-".into(),
                field: Some("event".into()),
            },
            body: MessageFormat::Kv("||".into()),
            filter: FieldFilter::default(),
            sd_id: None,
        }
    }

    const ORIGIN: Origin<'static> = Origin {
        project: "p",
        logstore: "l",
        shard: 3,
        cursor: "MTU=",
    };

    fn record(time: u32, fields: &[(&'static str, &'static str)]) -> Record<'static> {
        Record {
            time,
            time_ns: 5_000,
            fields: fields
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Value::Text(Cow::Borrowed(*v))))
                .collect(),
        }
    }

    fn message(f: &Formatter, r: &Record<'_>) -> String {
        let mut out = Vec::new();
        f.write(&mut out, r, &ORIGIN);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn header_fields_from_log_fields_with_fallbacks() {
        let f = formatter(SyslogFormat::Rfc5424);
        let r = record(
            1_700_000_000,
            &[
                ("host", "web 01"),
                ("app", "nginx"),
                ("event", "E1"),
                ("level", "ERROR"),
                ("facility", "local4"),
            ],
        );
        assert_eq!(
            message(&f, &r),
            "<163>1 2023-11-14T22:13:20.000005Z web_01 nginx - E1 - ||host=web 01||app=nginx||event=E1||level=ERROR||facility=local4"
        );
        let r = record(1_700_000_000, &[("level", "nonsense"), ("host", " ")]);
        assert!(message(&f, &r)
            .starts_with("<14>1 2023-11-14T22:13:20.000005Z aliyun.example.com sls - - - "));
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        let mut f = formatter(SyslogFormat::Rfc5424);
        for (fac, sev, pri) in [(20, 5, "<165>1 "), (0, 0, "<0>1 "), (23, 7, "<191>1 ")] {
            f.facility = FromField {
                constant: fac,
                field: None,
            };
            f.severity = FromField {
                constant: sev,
                field: None,
            };
            assert!(message(&f, &record(0, &[])).starts_with(pri));
        }
    }

    /// The severity names of the issue, case-insensitive, and 0–7.
    #[test]
    fn severity_map() {
        for (names, code) in [
            (&["emerg", "emergency", "EMERG"][..], 0),
            (&["alert"], 1),
            (&["crit", "critical", "fatal", "FATAL"], 2),
            (&["err", "error", "Error"], 3),
            (&["warn", "warning", "WARNING"], 4),
            (&["notice"], 5),
            (&["info", "information", "INFO"], 6),
            (&["debug", "trace", "TRACE"], 7),
        ] {
            for n in names {
                assert_eq!(parse_severity(n), Some(code), "{n}");
            }
            assert_eq!(parse_severity(&code.to_string()), Some(code));
        }
        assert_eq!(parse_severity("8"), None);
        assert_eq!(parse_severity("verbose"), None);
    }

    #[test]
    fn rfc3164_header_pads_the_day_and_keeps_utf8() {
        let mut f = formatter(SyslogFormat::Rfc3164);
        f.hostname.field = None;
        f.app_name.constant = "a-very-long-application-name-over-32-chars:x".into();
        f.app_name.field = None;
        // 2024-03-05 07:08:09 UTC
        let r = record(1_709_622_489, &[("msg", "é 中文")]);
        assert_eq!(
            message(&f, &r),
            "<14>Mar  5 07:08:09 aliyun.example.com averylongapplicationnameover32ch: ||msg=é 中文"
        );
        let r = record(1_700_000_000, &[]);
        assert!(message(&f, &r).starts_with("<14>Nov 14 22:13:20 "));
    }

    /// RFC 5424 §6.3.5's escaping example, and the SD-ID rules.
    #[test]
    fn structured_data_is_escaped() {
        let mut out = Vec::new();
        sd_value(&mut out, r#"q"uote back\slash br]acket"#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"q\"uote back\\slash br\]acket"#
        );
        let mut f = formatter(SyslogFormat::Rfc5424);
        f.sd_id = Some("sls@32473".into());
        let origin = Origin {
            project: "p",
            logstore: "l]",
            shard: 3,
            cursor: "MTU=",
        };
        let mut out = Vec::new();
        f.write(&mut out, &record(0, &[]), &origin);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#" - [sls@32473 project="p" logstore="l\]" shard="3" cursor="MTU="] "#));
        assert!(valid_sd_id("sls@32473"));
        for bad in [
            "",
            "a b",
            "a=b",
            "a]",
            "a\"",
            "a@1@2",
            "a@",
            "@1",
            "sls@abc",
            &"x".repeat(33),
        ] {
            assert!(!valid_sd_id(bad), "{bad}");
        }
    }
}
