//! The oracle shared by the fuzz targets (`fuzz/`) and the property tests
//! (`tests/it/properties.rs`): a log made of arbitrary bytes goes the shipping path and every
//! step is checked against rules written independently of the code under test.
//!
//! [`check_case`]: the log is encoded as a protobuf `LogGroupList`, flattened by
//! [`record`](crate::record) (compared with [`model_flatten`], a plain ordered-dict model of
//! the SDK's flattening), written by the [`Formatter`](crate::syslog::Formatter) that
//! [`Settings::from_lookup`] makes of the case's variables, and framed into a
//! [`Batch`] as `ship` frames it. Then:
//!
//! - the message is valid UTF-8 with a well-formed header ([`check_message`]): RFC 5424
//!   (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD`, every field PRINTUSASCII within
//!   its length, the timestamp the log's time, SD elements with escaped values) or RFC 3164
//!   (`<PRI>Mmm dd hh:mm:ss HOST TAG: `);
//! - the body parses back: `kv` byte for byte, `json` as a JSON object holding exactly the
//!   kept fields, `cef` as a header of seven fields and one unique key per kept field, `leef`
//!   as a header and one attribute per kept field;
//! - the frame is what [`fill`] writes for the body, whether it streams the log or formats
//!   it from its record ([`check_fill`]);
//! - exactly one frame ([`check_frame`]): one LF, last, and no raw CR for LF framing; a
//!   correct length prefix for octet counting; the payload valid UTF-8, at most the size cap,
//!   and the whole message (escaped for LF framing) or its longest prefix that fits without
//!   splitting a character or an escape.
//!
//! [`check_body`] is the oracle for PullLogs bodies: flattening never panics and agrees with
//! prost + [`model_flatten`] whenever both readers accept the body.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use prost::Message;

use crate::config::Settings;
use crate::record::{self, Value};
use crate::sls::proto::{self, Content, Log, LogGroup, LogGroupList, LogTag};
use crate::syslog::fill::{fill, Framed};
use crate::syslog::format::{MessageFormat, Origin, SyslogFormat};
use crate::syslog::{Batch, Framing, Protocol};

/// The variables a case may set (`SYSLOG_HOST` is fixed; the protocol is [`Case::udp`]).
pub const VARIABLES: &[&str] = &[
    "SYSLOG_FORMAT",
    "SYSLOG_MESSAGE_FORMAT",
    "SYSLOG_FRAMING",
    "SYSLOG_MAX_MESSAGE_BYTES",
    "SYSLOG_FACILITY",
    "SYSLOG_SEVERITY",
    "SYSLOG_HOSTNAME",
    "SYSLOG_APP_NAME",
    "SYSLOG_MSGID",
    "SYSLOG_HOSTNAME_FIELD",
    "SYSLOG_APP_NAME_FIELD",
    "SYSLOG_MSGID_FIELD",
    "SYSLOG_SEVERITY_FIELD",
    "SYSLOG_FACILITY_FIELD",
    "SYSLOG_INCLUDE_FIELDS",
    "SYSLOG_EXCLUDE_FIELDS",
    "SYSLOG_SD_ID",
    "SYSLOG_KV_SEPARATOR",
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
];

/// One log and the settings to ship it with.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// `(name, value)`; names outside [`VARIABLES`] are ignored.
    pub vars: Vec<(String, String)>,
    /// UDP (one datagram, no framing) instead of TCP.
    pub udp: bool,
    pub time: u32,
    pub time_ns: Option<u32>,
    pub topic: Option<Vec<u8>>,
    pub source: Option<Vec<u8>>,
    pub tags: Vec<(Vec<u8>, Vec<u8>)>,
    pub contents: Vec<(Vec<u8>, Vec<u8>)>,
    /// The [`Origin`] (written into STRUCTURED-DATA when `SYSLOG_SD_ID` is set).
    pub project: String,
    pub logstore: String,
    pub shard: u32,
    pub cursor: String,
}

/// What [`check_case`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The variables are not a valid configuration (the function would refuse to start).
    Refused(String),
    /// Everything checked; whether the message was cut to the size cap.
    Checked { truncated: bool },
}

/// A flattened field, owned.
pub type Field = (String, Value<'static>);

/// Ships `case` through the real code and checks every step; `Err` says what broke.
pub fn check_case(case: &Case) -> Result<Outcome, String> {
    let mut vars: HashMap<&str, &str> = case
        .vars
        .iter()
        .filter(|(k, _)| VARIABLES.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vars.insert("SYSLOG_HOST", "127.0.0.1");
    vars.insert("SYSLOG_PROTOCOL", if case.udp { "udp" } else { "tcp" });
    let settings = match Settings::from_lookup(|k| vars.get(k).map(|v| v.to_string())) {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
    };
    let group = case_group(case);
    let body = LogGroupList {
        log_groups: vec![group.clone()],
    }
    .encode_to_vec();
    let expected = model_flatten(&group);
    let origin = Origin {
        project: &case.project,
        logstore: &case.logstore,
        shard: case.shard,
        cursor: &case.cursor,
    };
    let framing = match settings.protocol {
        Protocol::Udp => None,
        Protocol::Tcp | Protocol::Tls => Some(settings.framing),
    };
    let max = settings.max_message_bytes;
    let mut failure = None;
    let mut truncated = false;
    let mut records = 0;
    let mut frame = Vec::new();
    let groups = record::for_each_in_body(&body, |_, r| {
        records += 1;
        let got = owned_fields(&r.fields);
        let outcome = if Some(&got) != expected.first() {
            Err(format!(
                "flattened {got:?}, the SDK model gives {:?}",
                expected.first()
            ))
        } else {
            let mut msg = Vec::new();
            settings.formatter.write(&mut msg, r, &origin);
            let kept = KeptFields::from_vars(&vars);
            check_message(&settings, &kept, &got, r.time, r.time_ns, &origin, &msg).and_then(|()| {
                let mut batch = Batch::default();
                let cut = batch.push(framing, &msg, max);
                truncated = cut;
                frame.clone_from(&batch.buf);
                check_frame(framing, &msg, &batch.buf, max, cut)
            })
        };
        if let Err(e) = outcome {
            failure.get_or_insert(e);
        }
    })
    .map_err(|e| format!("our own encoding does not flatten: {e}"))?;
    if let Some(e) = failure {
        return Err(e);
    }
    if groups != 1 || records != 1 {
        return Err(format!(
            "{groups} groups and {records} records, not 1 and 1"
        ));
    }
    let filled = check_fill(&settings, &body, &origin)?;
    if filled != frame {
        return Err(format!(
            "fill wrote {:?}, formatting the record gives {:?}",
            String::from_utf8_lossy(&filled),
            String::from_utf8_lossy(&frame)
        ));
    }
    Ok(Outcome::Checked { truncated })
}

/// Fills a batch from `body` twice, streaming the logs that can be and formatting every
/// log from its record: `Err` unless both give the same messages and counts. Returns the
/// batch's bytes.
pub fn check_fill(
    settings: &Settings,
    body: &[u8],
    origin: &Origin<'_>,
) -> Result<Vec<u8>, String> {
    let parsed = record::Body::parse(body).map_err(|e| format!("does not parse: {e}"))?;
    let framed = Framed {
        framing: match settings.protocol {
            Protocol::Udp => None,
            Protocol::Tcp | Protocol::Tls => Some(settings.framing),
        },
        max: settings.max_message_bytes,
    };
    let run = |stream| {
        let mut batch = Batch::default();
        let filled = fill(
            &mut batch,
            &mut Vec::new(),
            &parsed,
            &settings.formatter,
            framed,
            origin,
            stream,
        )
        .map_err(|e| format!("fill failed: {e}"))?;
        let messages: Vec<Vec<u8>> = batch.iter().map(<[u8]>::to_vec).collect();
        Ok::<_, String>((filled, messages, std::mem::take(&mut batch.buf)))
    };
    let (records, record_messages, bytes) = run(false)?;
    let (streamed, streamed_messages, _) = run(true)?;
    if records.streamed != 0 {
        return Err("logs were streamed with streaming off".into());
    }
    if (streamed.logs, streamed.truncated) != (records.logs, records.truncated) {
        return Err(format!(
            "streaming filled {streamed:?}, records {records:?}"
        ));
    }
    if let Some(i) =
        (0..record_messages.len()).find(|&i| record_messages.get(i) != streamed_messages.get(i))
    {
        return Err(format!(
            "message {i}: streamed {:?}, from the record {:?}",
            streamed_messages.get(i).map(|m| String::from_utf8_lossy(m)),
            String::from_utf8_lossy(&record_messages[i])
        ));
    }
    if record_messages.len() != streamed_messages.len() {
        return Err("streaming wrote more messages".into());
    }
    Ok(bytes)
}

/// The log group of a case.
pub fn case_group(case: &Case) -> LogGroup {
    let pair = |(k, v): &(Vec<u8>, Vec<u8>)| (Bytes::from(k.clone()), Bytes::from(v.clone()));
    LogGroup {
        logs: vec![Log {
            time: case.time,
            contents: case
                .contents
                .iter()
                .map(pair)
                .map(|(key, value)| Content { key, value })
                .collect(),
            time_ns: case.time_ns,
        }],
        topic: case.topic.clone().map(Bytes::from),
        source: case.source.clone().map(Bytes::from),
        log_tags: case
            .tags
            .iter()
            .map(pair)
            .map(|(key, value)| LogTag { key, value })
            .collect(),
        ..Default::default()
    }
}

fn owned_fields(fields: &[(Cow<'_, str>, Value<'_>)]) -> Vec<Field> {
    fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Text(t) => Value::Text(Cow::Owned(t.to_string())),
                Value::Number(n) => Value::Number(*n),
            };
            (k.to_string(), v)
        })
        .collect()
}

/// The official SDK's flattening as an ordered dict: `__time__`, `__topic__`, `__source__`,
/// `__time_ns_part__` (when not 0), `__tag__:<key>` per tag, the contents; a key set again
/// keeps its place and takes the new value; bytes that are not UTF-8 become U+FFFD.
pub fn model_flatten(group: &LogGroup) -> Vec<Vec<Field>> {
    fn set(fields: &mut Vec<Field>, key: String, value: Value<'static>) {
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => fields.push((key, value)),
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let value = |b: &[u8]| Value::Text(Cow::Owned(text(b)));
    group
        .logs
        .iter()
        .map(|log| {
            let mut fields = Vec::new();
            set(&mut fields, "__time__".into(), Value::Number(log.time));
            set(
                &mut fields,
                "__topic__".into(),
                value(group.topic.as_deref().unwrap_or_default()),
            );
            set(
                &mut fields,
                "__source__".into(),
                value(group.source.as_deref().unwrap_or_default()),
            );
            if let Some(ns) = log.time_ns.filter(|&ns| ns != 0) {
                set(&mut fields, "__time_ns_part__".into(), Value::Number(ns));
            }
            for t in &group.log_tags {
                set(
                    &mut fields,
                    format!("__tag__:{}", text(&t.key)),
                    value(&t.value),
                );
            }
            for c in &log.contents {
                set(&mut fields, text(&c.key), value(&c.value));
            }
            fields
        })
        .collect()
}

/// A decompressed PullLogs body: flattening it never panics, yields one record per log of
/// every group it accepts, and, when prost decodes the body too, exactly what the SDK model
/// makes of prost's messages. Returns the number of records.
pub fn check_body(body: &[u8]) -> Result<usize, String> {
    let mut got: Vec<(usize, Vec<Field>)> = Vec::new();
    let ours = record::for_each_in_body(body, |i, r| got.push((i, owned_fields(&r.fields))));
    let prost = proto::decode(Bytes::copy_from_slice(body));
    match (ours, prost) {
        (Ok(groups), Ok(list)) => {
            if groups != list.log_groups.len() {
                return Err(format!(
                    "{groups} log groups, prost reads {}",
                    list.log_groups.len()
                ));
            }
            let expected: Vec<(usize, Vec<Field>)> = list
                .log_groups
                .iter()
                .enumerate()
                .flat_map(|(i, g)| model_flatten(g).into_iter().map(move |r| (i, r)))
                .collect();
            if got != expected {
                return Err(format!(
                    "flattened {got:?}\nthe SDK model of prost's decoding gives {expected:?}"
                ));
            }
        }
        // The two readers differ on what they refuse (wire types of unused fields, groups);
        // only an agreement is compared.
        (Ok(_), Err(_)) | (Err(_), _) => {}
    }
    Ok(got.len())
}

/// Which fields a body must carry, read from `SYSLOG_INCLUDE_FIELDS` and
/// `SYSLOG_EXCLUDE_FIELDS` as the README describes them (comma lists of exact names or
/// `prefix*` patterns, blanks ignored; include first, then exclude), without the production
/// filter.
#[derive(Debug, Default)]
pub struct KeptFields {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl KeptFields {
    pub fn from_vars(vars: &HashMap<&str, &str>) -> KeptFields {
        let list = |name: &str| -> Vec<String> {
            vars.get(name)
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        KeptFields {
            include: list("SYSLOG_INCLUDE_FIELDS"),
            exclude: list("SYSLOG_EXCLUDE_FIELDS"),
        }
    }

    fn listed(patterns: &[String], key: &str) -> bool {
        patterns.iter().any(|p| {
            if let Some(prefix) = p.strip_suffix('*') {
                key.starts_with(prefix)
            } else {
                p == key
            }
        })
    }

    pub fn keeps(&self, key: &str) -> bool {
        let included = self.include.is_empty() || Self::listed(&self.include, key);
        included && !Self::listed(&self.exclude, key)
    }
}

/// Checks one message (before framing) as a receiver would parse it: see the module docs.
/// `fields` is the flattened record; `time`/`time_ns` its time; `kept` which fields the
/// body carries.
pub fn check_message(
    settings: &Settings,
    kept: &KeptFields,
    fields: &[Field],
    time: u32,
    time_ns: u32,
    origin: &Origin<'_>,
    msg: &[u8],
) -> Result<(), String> {
    let text = std::str::from_utf8(msg).map_err(|e| format!("message is not UTF-8: {e}"))?;
    let f = &settings.formatter;
    let body = match f.format {
        SyslogFormat::Rfc5424 => rfc5424(text, time, time_ns, f.sd_id.as_deref(), origin),
        SyslogFormat::Rfc3164 => rfc3164(text, time),
    }
    .map_err(|e| format!("{e}\nin message {text:?}"))?;
    let kept: Vec<&Field> = fields.iter().filter(|(k, _)| kept.keeps(k)).collect();
    match &f.body {
        MessageFormat::Kv(sep) => kv(body, sep, &kept),
        MessageFormat::Json => json(body, &kept),
        MessageFormat::Cef(_) => cef(body, &kept),
        MessageFormat::Leef(l) => leef(body, l.delimiter, &kept),
    }
    .map_err(|e| format!("{e}\nin body {body:?}"))
}

/// Checks a framed message against the message `msg`, the cap `max` and the truncation flag
/// `truncated` the framer returned. `framing` `None` is a UDP datagram.
pub fn check_frame(
    framing: Option<Framing>,
    msg: &[u8],
    frame: &[u8],
    max: usize,
    truncated: bool,
) -> Result<(), String> {
    let (payload, whole): (&[u8], Cow<'_, [u8]>) = match framing {
        Some(Framing::Lf) => {
            let Some((&b'\n', payload)) = frame.split_last() else {
                return Err("an LF frame that does not end with LF".into());
            };
            if payload.contains(&b'\n') || payload.contains(&b'\r') {
                return Err(format!("a raw CR or LF inside an LF frame: {payload:?}"));
            }
            (payload, Cow::Owned(escape_lf(msg)))
        }
        Some(Framing::OctetCounting) => {
            let sp = frame
                .iter()
                .position(|&b| b == b' ')
                .ok_or("an octet-counted frame without SP")?;
            let digits = &frame[..sp];
            if digits.is_empty()
                || digits.len() > 9
                || !digits.iter().all(u8::is_ascii_digit)
                || (digits[0] == b'0' && digits.len() > 1)
            {
                return Err(format!("a bad MSG-LEN {digits:?}"));
            }
            let len: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or("a bad MSG-LEN")?;
            let payload = &frame[sp + 1..];
            if payload.len() != len {
                return Err(format!(
                    "MSG-LEN {len} but {} bytes follow (more than one frame, or a short one)",
                    payload.len()
                ));
            }
            (payload, Cow::Borrowed(msg))
        }
        None => (frame, Cow::Borrowed(msg)),
    };
    if payload.len() > max {
        return Err(format!("{} bytes over the {max}-byte cap", payload.len()));
    }
    std::str::from_utf8(payload).map_err(|e| format!("payload is not UTF-8: {e}"))?;
    if whole.len() <= max {
        if payload != &whole[..] {
            return Err("the message was changed though it fits".into());
        }
        if truncated {
            return Err("reported as cut though it fits".into());
        }
        return Ok(());
    }
    if !truncated {
        return Err("cut but not reported as cut".into());
    }
    if !whole.starts_with(payload) {
        return Err("the cut message is not a prefix of the message".into());
    }
    // The units (characters; `\r`/`\n` escapes for LF framing) of the whole message: the cut
    // is at a unit boundary and the next unit would not have fitted.
    let units = units(msg, framing == Some(Framing::Lf));
    let Some(next) = units.iter().find(|u| u.start >= payload.len()) else {
        return Err("cut after the end".into());
    };
    if next.start != payload.len() {
        return Err(format!(
            "cut at byte {} inside a character or escape",
            payload.len()
        ));
    }
    if next.end <= max {
        return Err(format!(
            "cut at {} though the next character ends at {} within the cap {max}",
            payload.len(),
            next.end
        ));
    }
    Ok(())
}

/// CR and LF as `\r` and `\n`.
pub fn escape_lf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    for &b in msg {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out
}

/// Byte ranges, in what is sent (`msg` with CR and LF escaped when `escapes`), of the units
/// of `msg` a cut must not split: its characters, CR and LF being two bytes once escaped.
fn units(msg: &[u8], escapes: bool) -> Vec<std::ops::Range<usize>> {
    let text = String::from_utf8_lossy(msg);
    let mut out = Vec::new();
    let mut at = 0;
    for c in text.chars() {
        let len = match c {
            '\r' | '\n' if escapes => 2,
            c => c.len_utf8(),
        };
        out.push(at..at + len);
        at += len;
    }
    out
}

/// PRINTUSASCII, 1 to `max` characters.
fn header_field(name: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(format!(
            "{name} {s:?} is not 1-{max} printable ASCII characters"
        ));
    }
    Ok(())
}

/// `<PRI>` at the start of `s`: the rest.
fn pri(s: &str) -> Result<&str, String> {
    let rest = s.strip_prefix('<').ok_or("no <PRI>")?;
    let (digits, rest) = rest.split_once('>').ok_or("no <PRI>")?;
    let n: u32 = digits.parse().map_err(|_| format!("PRI {digits:?}"))?;
    if digits.is_empty()
        || digits.len() > 3
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || n > 191
    {
        return Err(format!("PRI {digits:?}"));
    }
    Ok(rest)
}

/// UTC calendar time of Unix seconds, counted the slow, obvious way: `(year, month, day,
/// hour, minute, second)`, month and day from 1. An oracle for `time::Utc`.
pub fn calendar(secs: u32) -> (u32, u32, u32, u32, u32, u32) {
    let mut days = secs / 86_400;
    let rem = secs % 86_400;
    let leap = |y: u32| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    (
        year,
        month as u32 + 1,
        days + 1,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Checks an RFC 5424 header; returns MSG.
fn rfc5424<'m>(
    s: &'m str,
    time: u32,
    time_ns: u32,
    sd_id: Option<&str>,
    origin: &Origin<'_>,
) -> Result<&'m str, String> {
    let rest = pri(s)?;
    let rest = rest.strip_prefix("1 ").ok_or("VERSION is not 1")?;
    let (y, mo, d, h, mi, se) = calendar(time);
    let expected = format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{:06}Z",
        time_ns.min(999_999_999) / 1000
    );
    let rest = rest
        .strip_prefix(expected.as_str())
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("TIMESTAMP is not {expected}"))?;
    let mut rest = rest;
    for (name, max) in [
        ("HOSTNAME", 255),
        ("APP-NAME", 48),
        ("PROCID", 128),
        ("MSGID", 32),
    ] {
        let (field, r) = rest
            .split_once(' ')
            .ok_or_else(|| format!("the header ends before {name}"))?;
        header_field(name, field, max)?;
        rest = r;
    }
    let rest = match rest.strip_prefix('-') {
        Some(r) => {
            if sd_id.is_some() {
                return Err("STRUCTURED-DATA is nil, SYSLOG_SD_ID is set".into());
            }
            r
        }
        None => {
            let id = sd_id.ok_or("STRUCTURED-DATA without SYSLOG_SD_ID")?;
            let (params, r) = sd_element(rest)?;
            let expected = [
                ("", id.to_string()),
                ("project", origin.project.to_string()),
                ("logstore", origin.logstore.to_string()),
                ("shard", origin.shard.to_string()),
                ("cursor", origin.cursor.to_string()),
            ];
            if params != expected {
                return Err(format!("SD element {params:?}, not {expected:?}"));
            }
            r
        }
    };
    match rest.strip_prefix(' ') {
        Some(msg) => Ok(msg),
        None if rest.is_empty() => Ok(""),
        None => Err(format!("no SP after STRUCTURED-DATA: {rest:?}")),
    }
}

/// `("", SD-ID)` then `(PARAM-NAME, value)` of an SD element.
type SdParams<'a> = Vec<(&'a str, String)>;

/// One SD-ELEMENT at the start of `s`: `("", SD-ID)` then its `(PARAM-NAME, value)`s,
/// unescaped; and the rest.
fn sd_element(s: &str) -> Result<(SdParams<'_>, &str), String> {
    let sd_name = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && n.bytes()
                .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
    };
    let rest = s
        .strip_prefix('[')
        .ok_or("STRUCTURED-DATA is neither - nor [")?;
    let end = rest.find([' ', ']']).ok_or("an SD element without ]")?;
    let id = &rest[..end];
    if !sd_name(id) {
        return Err(format!("SD-ID {id:?}"));
    }
    let mut params = vec![("", id.to_string())];
    let mut rest = &rest[end..];
    loop {
        if let Some(r) = rest.strip_prefix(']') {
            return Ok((params, r));
        }
        let r = rest
            .strip_prefix(' ')
            .ok_or("SD params not separated by SP")?;
        let (name, r) = r.split_once("=\"").ok_or("an SD param without =\"")?;
        if !sd_name(name) {
            return Err(format!("PARAM-NAME {name:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let after = loop {
            match chars.next() {
                None => return Err("an unterminated PARAM-VALUE".into()),
                Some((i, '"')) => break &r[i + 1..],
                Some((_, '\\')) => match chars.next() {
                    Some((_, c @ ('"' | '\\' | ']'))) => value.push(c),
                    // RFC 5424 §6.3.3: a backslash before anything else is itself.
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err("an unterminated PARAM-VALUE".into()),
                },
                Some((_, ']')) => return Err("an unescaped ] in a PARAM-VALUE".into()),
                Some((_, c)) => value.push(c),
            }
        };
        params.push((name, value));
        rest = after;
    }
}

/// Checks an RFC 3164 header; returns MSG.
fn rfc3164(s: &str, time: u32) -> Result<&str, String> {
    let rest = pri(s)?;
    let (_, mo, d, h, mi, se) = calendar(time);
    let expected = format!("{} {d:>2} {h:02}:{mi:02}:{se:02} ", MONTHS[mo as usize - 1]);
    let rest = rest
        .strip_prefix(expected.as_str())
        .ok_or_else(|| format!("TIMESTAMP is not {expected:?}"))?;
    let (host, rest) = rest.split_once(' ').ok_or("no HOSTNAME")?;
    header_field("HOSTNAME", host, 255)?;
    let (tag, msg) = rest.split_once(": ").ok_or("no TAG: ")?;
    if tag.is_empty() || tag.len() > 32 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("TAG {tag:?} is not 1-32 letters and digits"));
    }
    Ok(msg)
}

fn display(v: &Value<'_>) -> String {
    match v {
        Value::Text(t) => t.to_string(),
        Value::Number(n) => format!("{n}"),
    }
}

/// `kv`: exactly the separator, key, `=` and value of every kept field but `__time__`.
fn kv(body: &str, sep: &str, kept: &[&Field]) -> Result<(), String> {
    let mut expected = String::new();
    for (k, v) in kept.iter().filter(|(k, _)| k != "__time__") {
        expected.push_str(sep);
        expected.push_str(k);
        expected.push('=');
        expected.push_str(&display(v));
    }
    if body != expected {
        return Err(format!("kv body is not {expected:?}"));
    }
    Ok(())
}

/// `json`: an object with exactly the kept fields, numbers as numbers.
fn json(body: &str, kept: &[&Field]) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let object = value.as_object().ok_or("JSON body is not an object")?;
    if object.len() != kept.len() {
        return Err(format!(
            "JSON object has {} keys, {} fields were kept",
            object.len(),
            kept.len()
        ));
    }
    for (k, v) in kept {
        let expected = match v {
            Value::Text(t) => serde_json::Value::String(t.to_string()),
            Value::Number(n) => serde_json::Value::from(*n),
        };
        if object.get(k.as_str()) != Some(&expected) {
            return Err(format!(
                "JSON {k:?} is {:?}, not {expected}",
                object.get(k.as_str())
            ));
        }
    }
    Ok(())
}

/// `cef`: `CEF:0|` + six header fields (only `\\` and `\|` escapes), then `rt=…` and one
/// unique alphanumeric key per kept field (but the two times), every `=` in a value escaped.
fn cef(body: &str, kept: &[&Field]) -> Result<(), String> {
    if body.contains(['\r', '\n']) {
        return Err("a raw CR or LF in a CEF body".into());
    }
    let rest = body.strip_prefix("CEF:0|").ok_or("no CEF:0| prefix")?;
    let mut chars = rest.char_indices();
    let mut header = Vec::new();
    let mut field = String::new();
    let ext_start = loop {
        match chars.next() {
            None => return Err("a CEF header of fewer than 7 fields".into()),
            Some((i, '|')) => {
                header.push(std::mem::take(&mut field));
                if header.len() == 6 {
                    break i + 1;
                }
            }
            Some((_, '\\')) => match chars.next() {
                Some((_, c @ ('\\' | '|'))) => field.push(c),
                other => return Err(format!("a bad CEF header escape \\{other:?}")),
            },
            Some((_, c)) => field.push(c),
        }
    };
    let severity = &header[5];
    let valid = severity.parse::<u8>().is_ok_and(|n| n <= 10)
        || matches!(
            severity.as_str(),
            "Unknown" | "Low" | "Medium" | "High" | "Very-High"
        );
    if !valid {
        return Err(format!("CEF severity {severity:?}"));
    }
    let ext = &rest[ext_start..];
    let bytes = ext.as_bytes();
    let mut keys = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                if !matches!(bytes.get(i + 1), Some(b'\\' | b'=' | b'n' | b'r')) {
                    return Err(format!("a bad CEF extension escape at {i}"));
                }
                i += 2;
                continue;
            }
            b'=' => {
                let start = bytes[..i]
                    .iter()
                    .rposition(|b| !b.is_ascii_alphanumeric())
                    .map_or(0, |p| p + 1);
                if start == i || (start > 0 && bytes[start - 1] != b' ') {
                    return Err(format!("an unescaped = not after \" key\" at {i}"));
                }
                keys.push(&ext[start..i]);
            }
            _ => {}
        }
        i += 1;
    }
    let fields = kept
        .iter()
        .filter(|(k, _)| k != "__time__" && k != "__time_ns_part__")
        .count();
    if keys.first() != Some(&"rt") || keys.len() != fields + 1 {
        return Err(format!(
            "CEF extension keys {keys:?}: rt and {fields} kept fields expected"
        ));
    }
    let unique: HashSet<&&str> = keys.iter().collect();
    if unique.len() != keys.len() {
        return Err(format!("repeated CEF extension keys {keys:?}"));
    }
    Ok(())
}

/// `leef`: `LEEF:2.0|` + four header fields + the delimiter, then `devTime`,
/// `devTimeFormat` and one `key=value` attribute per kept field (but the two times and
/// fields named like the first two), split by the delimiter.
fn leef(body: &str, delimiter: char, kept: &[&Field]) -> Result<(), String> {
    if body.contains(['\r', '\n']) {
        return Err("a raw CR or LF in a LEEF body".into());
    }
    let rest = body
        .strip_prefix("LEEF:2.0|")
        .ok_or("no LEEF:2.0| prefix")?;
    let mut parts = rest.splitn(6, '|');
    for name in ["vendor", "product", "version", "event id"] {
        parts.next().ok_or_else(|| format!("no LEEF {name}"))?;
    }
    let announced = parts.next().ok_or("no LEEF delimiter")?;
    let d = delimiter as u32;
    let ok = if announced.len() == 1 {
        announced.starts_with(delimiter)
    } else {
        announced
            .strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            == Some(d)
    };
    if !ok {
        return Err(format!(
            "LEEF header announces {announced:?}, not {delimiter:?}"
        ));
    }
    let attrs = parts.next().ok_or("no LEEF attributes")?;
    let attrs: Vec<&str> = attrs.split(delimiter).collect();
    let fields = kept
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "__time__" | "__time_ns_part__" | "devTime" | "devTimeFormat"
            )
        })
        .count();
    if attrs.len() != fields + 2 {
        return Err(format!(
            "{} LEEF attributes split by {delimiter:?}, devTime, devTimeFormat and {fields} fields expected",
            attrs.len()
        ));
    }
    for (i, a) in attrs.iter().enumerate() {
        let (key, _) = a
            .split_once('=')
            .ok_or_else(|| format!("LEEF attribute {a:?} without ="))?;
        let expected = match i {
            0 => Some("devTime"),
            1 => Some("devTimeFormat"),
            _ => None,
        };
        if expected.is_some_and(|e| e != key) {
            return Err(format!("LEEF attribute {i} is {key:?}"));
        }
    }
    Ok(())
}

/// The trigger parser on arbitrary bytes: never panics; an accepted event has a host, SLS
/// names of 1–128 letters, digits, `-` and `_`, and cursors of 1–1024 base64 characters.
pub fn check_event(body: &[u8]) -> Result<(), String> {
    let Ok(e) = crate::trigger::Event::parse(body) else {
        return Ok(());
    };
    let name = |s: &str| {
        (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let cursor = |s: &str| {
        (1..=1024).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
    };
    if e.endpoint.host.is_empty() {
        return Err(format!("accepted an endpoint without a host: {e:?}"));
    }
    if !name(&e.project) || !name(&e.logstore) {
        return Err(format!("accepted a bad project or logstore name: {e:?}"));
    }
    if !cursor(&e.begin_cursor) || !cursor(&e.end_cursor) {
        return Err(format!("accepted a bad cursor: {e:?}"));
    }
    Ok(())
}

/// A PullLogs response body with its `x-log-compresstype` and `x-log-bodyrawsize`: decoding
/// never panics, a decoded body has exactly the claimed size, and [`check_body`] holds for
/// it. Returns the number of records, `None` when the body was refused.
pub fn check_response(
    body: &[u8],
    compress_type: &str,
    raw_size: usize,
) -> Result<Option<usize>, String> {
    use crate::sls::codec;
    let Ok(decoded) = codec::decode_body(Bytes::copy_from_slice(body), compress_type, raw_size)
    else {
        return Ok(None);
    };
    if decoded.len() != raw_size {
        return Err(format!(
            "decoded {} bytes, x-log-bodyrawsize says {raw_size}",
            decoded.len()
        ));
    }
    check_body(&decoded).map(Some)
}
