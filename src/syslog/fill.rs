//! A decompressed PullLogs body → one batch of framed messages: what each pull of an
//! invocation goes through.
//!
//! A kv, JSON or LEEF body whose header values (and LEEF event ID) are constants or come
//! from the log group's fields (the default settings, or e.g. HOSTNAME from
//! `__tag__:__hostname__`) is written as the body is read: the header's start from the log's
//! time, the rest of the header and the group's fields (topic, source, tags) copied from
//! what was built once per log group, then each content as it comes ([`Body::stream`]).
//! Every other log, and CEF, are flattened into a [`Record`] first and formatted from it.
//! Both give the same bytes; the tests compare them.

use std::borrow::Cow;

use super::body::{json_string, kv_key, kv_pair, leef_dev_time, leef_head, leef_skips, LeefTables};
use super::format::{Formatter, Origin, Streamed};
use super::frame::{has_break, write_decimal, Batch, Framing};
use super::header::Timestamps;
use crate::record::{Body, Record, Sink};
use crate::sls::{self, wire::WireError};

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub logs: u64,
    /// Messages cut to the size limit.
    pub truncated: u64,
    /// Logs written as they were read, without a [`Record`].
    pub streamed: u64,
}

/// How messages are framed and how large they may be.
#[derive(Debug, Clone, Copy)]
pub struct Framed {
    /// `None`: one datagram per message.
    pub framing: Option<Framing>,
    pub max: usize,
}

/// Appends every log of `body` to `batch` as a framed message. `origin.cursor` is the cursor
/// of the body's first log group (the structured data names each group's own). `stream`:
/// whether logs may be written without a [`Record`] when the settings allow it (the tests
/// turn it off to compare).
pub fn fill(
    batch: &mut Batch,
    scratch: &mut Vec<u8>,
    body: &Body<'_>,
    formatter: &Formatter,
    framed: Framed,
    origin: &Origin<'_>,
    stream: bool,
) -> Result<Filled, WireError> {
    let streamed = formatter.streamed().filter(|_| stream);
    let mut leef_start = Vec::new();
    let leef = match streamed {
        Some(Streamed::Leef(leef)) => {
            leef_head(&mut leef_start, leef, &leef.event_id);
            Some(LeefTables::new(leef.delimiter as u8))
        }
        _ => None,
    };
    let mut writer = Writer {
        formatter,
        framed,
        origin: *origin,
        batch,
        scratch,
        filled: Filled::default(),
        cursor: None,
        streamed,
        leef,
        leef_start,
        per_group: formatter.header_fields().next().is_some(),
        reserved: formatter
            .header_fields()
            .filter(|f| f.starts_with("__tag__:"))
            .collect(),
        pri: formatter.constant_pri(),
        keeps_time: formatter.filter.keeps("__time__"),
        keeps_ns: formatter.filter.keeps("__time_ns_part__"),
        comma: false,
        timestamps: Timestamps::default(),
        rest: Vec::new(),
        before_ns: Vec::new(),
        after_ns: Vec::new(),
        name: String::new(),
        start: 0,
        // (A LEEF delimiter cannot be CR or LF; JSON has none outside its values.)
        fixed_breaks: matches!(streamed, Some(Streamed::Kv(separator)) if has_break(separator.as_bytes())),
        group_breaks: false,
        breaks: false,
        key_bytes: Vec::new(),
        key_pieces: Vec::new(),
    };
    body.stream(&mut writer)?;
    Ok(writer.filled)
}

struct Writer<'a> {
    formatter: &'a Formatter,
    framed: Framed,
    origin: Origin<'a>,
    batch: &'a mut Batch,
    scratch: &'a mut Vec<u8>,
    filled: Filled,
    /// The current group's cursor, when the structured data names it.
    cursor: Option<String>,
    /// The body when logs are streamed.
    streamed: Option<Streamed<'a>>,
    /// A streamed LEEF body's escaping and its header up to `devTime`.
    leef: Option<LeefTables>,
    leef_start: Vec<u8>,
    /// Whether header values (or the LEEF event ID) come from the group's fields.
    per_group: bool,
    /// The tag fields they come from: a content by such a name takes the record path.
    reserved: Vec<&'a str>,
    pri: u16,
    /// Whether a JSON body has `__time__`.
    keeps_time: bool,
    keeps_ns: bool,
    /// JSON: the object being streamed has a member already (the next needs a comma).
    comma: bool,
    timestamps: Timestamps,
    /// Built once per group: the header after the timestamp, and the body's fields before
    /// and after `__time_ns_part__`.
    rest: Vec<u8>,
    before_ns: Vec<u8>,
    after_ns: Vec<u8>,
    /// A field name being put together.
    name: String,
    /// Where the message being streamed starts in the batch.
    start: usize,
    /// Whether a CR or LF may be in what every streamed message has (the kv separator), in
    /// what the group's have (`rest`, the group's fields, LEEF's start), in the message being
    /// streamed. Only a message that may hold one is searched for it before LF framing.
    fixed_breaks: bool,
    group_breaks: bool,
    breaks: bool,
    /// What goes before each content's value (by its index in the log), end to end.
    key_bytes: Vec<u8>,
    key_pieces: Vec<std::ops::Range<usize>>,
}

/// `origin` with the current group's cursor.
fn group_origin<'x>(origin: &Origin<'x>, cursor: &'x Option<String>) -> Origin<'x> {
    Origin {
        cursor: cursor.as_deref().unwrap_or(origin.cursor),
        ..*origin
    }
}

impl Writer<'_> {
    fn finished(&mut self, truncated: bool) {
        self.filled.logs += 1;
        self.filled.truncated += u64::from(truncated);
    }

    /// Makes what goes before the value of the log's content `at` (`||key=`, `"key":`,
    /// `^key=`; empty when the key is not written), in place of what the group's last log
    /// had there and after. A log that repeats the last one's keys uses theirs.
    #[inline(never)]
    fn key_piece(&mut self, at: usize, key: &str) {
        self.key_pieces.truncate(at);
        let from = self.key_pieces.last().map_or(0, |k| k.end);
        let bytes = &mut self.key_bytes;
        bytes.truncate(from);
        if let (Some(streamed), true) = (self.streamed, self.formatter.filter.keeps(key)) {
            match streamed {
                Streamed::Kv(separator) => kv_key(bytes, separator, key),
                Streamed::Json => {
                    json_string(bytes, key);
                    bytes.push(b':');
                }
                Streamed::Leef(_) => {
                    if let Some(tables) = self.leef.as_ref().filter(|_| !leef_skips(key)) {
                        tables.key(bytes, key);
                    }
                }
            }
        }
        self.key_pieces.push(from..bytes.len());
    }
}

impl<'b> Sink<'b> for Writer<'_> {
    fn streams(&self) -> bool {
        self.streamed.is_some()
    }

    fn group(
        &mut self,
        index: usize,
        topic: &str,
        source: &str,
        tags: &[(Cow<'b, str>, Cow<'b, str>)],
    ) {
        let f = self.formatter;
        if f.sd_id.is_some() {
            self.cursor = sls::cursor_after(self.origin.cursor, index as u64);
        }
        let Some(streamed) = self.streamed else {
            return;
        };
        // What a streamed log's record has under a group field's name.
        let lookup = |name: &str| -> Option<&str> {
            match name {
                "__topic__" => Some(topic),
                "__source__" => Some(source),
                _ => name
                    .strip_prefix("__tag__:")
                    .and_then(|k| tags.iter().find(|(t, _)| t == k))
                    .map(|(_, v)| v.as_ref()),
            }
        };
        // The header's rest changes from group to group only with the group's cursor and
        // the group fields it is taken from.
        if f.sd_id.is_some() || self.rest.is_empty() || self.per_group {
            let (pri, hostname, app_name, msgid) = f.header_values(&lookup);
            self.pri = pri;
            let mut rest = std::mem::take(&mut self.rest);
            rest.clear();
            let origin = group_origin(&self.origin, &self.cursor);
            f.write_rest(&mut rest, hostname, app_name, msgid, &origin);
            self.rest = rest;
        }
        if let Streamed::Leef(leef) = streamed {
            if let Some(field) = &leef.event_id_field {
                let id = lookup(field).filter(|t| !t.trim().is_empty());
                self.leef_start.clear();
                leef_head(&mut self.leef_start, leef, id.unwrap_or(&leef.event_id));
            }
        }
        let mut name = std::mem::take(&mut self.name);
        // Each kv field as `||key=value`, each JSON member as `,"key":"value"`, each LEEF
        // attribute as `^key=value`.
        let leef = &self.leef;
        let mut piece =
            |out: &mut Vec<u8>, fields: &mut dyn Iterator<Item = (&str, &str, &str)>| {
                out.clear();
                for (prefix, key, value) in fields {
                    if let (Streamed::Kv(sep), true) = (streamed, f.filter.keeps_all()) {
                        for part in [sep, prefix, key, "=", value] {
                            out.extend_from_slice(part.as_bytes());
                        }
                        continue;
                    }
                    name.clear();
                    name.push_str(prefix);
                    name.push_str(key);
                    if !f.filter.keeps(&name) {
                        continue;
                    }
                    match streamed {
                        Streamed::Kv(sep) => kv_pair(out, sep, &name, value),
                        Streamed::Json => {
                            out.push(b',');
                            json_string(out, &name);
                            out.push(b':');
                            json_string(out, value);
                        }
                        Streamed::Leef(_) => {
                            if let Some(tables) = leef.as_ref().filter(|_| !leef_skips(&name)) {
                                tables.attribute(out, &name, value);
                            }
                        }
                    }
                }
            };
        piece(
            &mut self.before_ns,
            &mut [("__topic__", topic), ("__source__", source)]
                .into_iter()
                .map(|(k, v)| (k, "", v)),
        );
        piece(
            &mut self.after_ns,
            &mut tags
                .iter()
                .map(|(k, v)| ("__tag__:", k.as_ref(), v.as_ref())),
        );
        self.name = name;
        self.group_breaks = self.fixed_breaks
            || [
                &self.rest,
                &self.before_ns,
                &self.after_ns,
                &self.leef_start,
            ]
            .into_iter()
            .any(|piece| has_break(piece));
    }

    #[inline]
    fn begin(&mut self, time: u32, time_ns: u32) {
        self.start = self.batch.begin(self.framed.framing);
        self.breaks = self.group_breaks;
        let out = &mut self.batch.buf;
        let timestamps = &mut self.timestamps;
        self.formatter
            .write_head(out, timestamps, self.pri, time, time_ns);
        out.extend_from_slice(&self.rest);
        let with_ns = time_ns != 0 && self.keeps_ns;
        match self.streamed {
            Some(Streamed::Json) => {
                // Members as the record has them: __time__, topic, source, the nanosecond
                // part, tags. The pieces start with a comma, dropped from the first.
                out.push(b'{');
                let mut comma = false;
                let mut member = |out: &mut Vec<u8>, piece: &[u8]| {
                    if let Some(rest) = piece.get(usize::from(!comma)..) {
                        out.extend_from_slice(rest);
                        comma = true;
                    }
                };
                if self.keeps_time {
                    member(out, b",\"__time__\":");
                    write_decimal(out, u64::from(time));
                }
                member(out, &self.before_ns);
                if with_ns {
                    member(out, b",\"__time_ns_part__\":");
                    write_decimal(out, u64::from(time_ns));
                }
                member(out, &self.after_ns);
                self.comma = comma;
            }
            Some(Streamed::Kv(sep)) => {
                out.extend_from_slice(&self.before_ns);
                if with_ns {
                    kv_key(out, sep, "__time_ns_part__");
                    write_decimal(out, u64::from(time_ns));
                }
                out.extend_from_slice(&self.after_ns);
            }
            Some(Streamed::Leef(leef)) => {
                // No nanosecond part: it is in devTime.
                out.extend_from_slice(&self.leef_start);
                leef_dev_time(out, leef.delimiter as u8, time, time_ns);
                out.extend_from_slice(&self.before_ns);
                out.extend_from_slice(&self.after_ns);
            }
            None => {}
        }
    }

    #[inline(always)]
    fn field(&mut self, at: usize, repeat: bool, key: &str, value: &str, low: bool) {
        if !repeat || at >= self.key_pieces.len() {
            self.key_piece(at, key);
        }
        let piece = &self.key_bytes[self.key_pieces[at].clone()];
        if piece.is_empty() {
            return;
        }
        self.breaks |= low;
        let out = &mut self.batch.buf;
        match &self.streamed {
            Some(Streamed::Kv(_)) => {
                out.extend_from_slice(piece);
                out.extend_from_slice(value.as_bytes());
            }
            Some(Streamed::Json) => {
                if self.comma {
                    out.push(b',');
                }
                self.comma = true;
                out.extend_from_slice(piece);
                json_string(out, value);
            }
            Some(Streamed::Leef(_)) => {
                out.extend_from_slice(piece);
                if let Some(tables) = &self.leef {
                    tables.value(out, value);
                }
            }
            None => {}
        }
    }

    #[inline]
    fn end(&mut self) {
        if self.streamed == Some(Streamed::Json) {
            self.batch.buf.push(b'}');
        }
        let Framed { framing, max } = self.framed;
        let truncated = self
            .batch
            .finish(self.start, framing, max, self.scratch, self.breaks);
        self.finished(truncated);
        self.filled.streamed += 1;
    }

    #[inline(always)]
    fn forces_record(&self, key: &str) -> bool {
        !self.reserved.is_empty() && self.reserved.contains(&key)
    }

    fn abandon(&mut self) {
        self.batch.abandon(self.start);
    }

    fn record(&mut self, _group: usize, record: &Record<'b>) {
        let Framed { framing, max } = self.framed;
        let origin = group_origin(&self.origin, &self.cursor);
        let formatter = self.formatter;
        let timestamps = &mut self.timestamps;
        let truncated = self
            .batch
            .push_formatted(framing, max, self.scratch, |out| {
                formatter.write_with(out, timestamps, record, &origin)
            });
        self.finished(truncated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::devkit::check_frame::check_fill;
    use crate::devkit::sample;
    use crate::sls::proto::LogGroupList;
    use prost::Message;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(|k| {
            if k == "SYSLOG_HOST" {
                return Some("127.0.0.1".into());
            }
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    }

    const ORIGIN: Origin<'static> = Origin {
        project: "p",
        logstore: "l",
        shard: 1,
        cursor: "MTUyOTQ4MDIwOTY1NTk3ODAwMA==",
    };

    fn filled(settings: &Settings, body: &[u8], stream: bool) -> (Filled, Vec<u8>) {
        let mut batch = Batch::default();
        let framed = Framed {
            framing: Some(settings.framing),
            max: settings.max_message_bytes,
        };
        let body = Body::parse(body).unwrap();
        let f = fill(
            &mut batch,
            &mut Vec::new(),
            &body,
            &settings.formatter,
            framed,
            &ORIGIN,
            stream,
        )
        .unwrap();
        (f, std::mem::take(&mut batch.buf))
    }

    fn sample_body() -> Vec<u8> {
        LogGroupList {
            log_groups: sample::groups(5, 40, 3),
        }
        .encode_to_vec()
    }

    #[test]
    fn default_settings_stream_every_sample_log_and_write_what_records_give() {
        for vars in [
            &[][..],
            &[("SYSLOG_SD_ID", "sls@32473"), ("SYSLOG_FORMAT", "rfc3164")],
            &[
                ("SYSLOG_KV_SEPARATOR", " "),
                ("SYSLOG_EXCLUDE_FIELDS", "__tag__:*,level"),
                ("SYSLOG_FRAMING", "octet-counting"),
                ("SYSLOG_MAX_MESSAGE_BYTES", "480"),
            ],
            &[("SYSLOG_MESSAGE_FORMAT", "json")],
            &[
                ("SYSLOG_MESSAGE_FORMAT", "json"),
                ("SYSLOG_EXCLUDE_FIELDS", "__time__,__topic__,__source__"),
                ("SYSLOG_FORMAT", "rfc3164"),
            ],
            &[
                ("SYSLOG_MESSAGE_FORMAT", "json"),
                ("SYSLOG_INCLUDE_FIELDS", "__tag__:*,__time_ns_part__,level"),
                ("SYSLOG_MAX_MESSAGE_BYTES", "480"),
            ],
            &[("SYSLOG_MESSAGE_FORMAT", "leef")],
            &[
                ("SYSLOG_MESSAGE_FORMAT", "leef"),
                ("SYSLOG_LEEF_DELIMITER", "0x09"),
                ("SYSLOG_EXCLUDE_FIELDS", "__topic__,level"),
                ("SYSLOG_FORMAT", "rfc3164"),
            ],
        ] {
            let s = settings(vars);
            let body = sample_body();
            let (streamed, bytes) = filled(&s, &body, true);
            assert_eq!(streamed.logs, 200);
            assert_eq!(streamed.streamed, 200, "{vars:?}");
            assert_eq!(check_fill(&s, &body, &ORIGIN).unwrap(), bytes);
        }
    }

    #[test]
    fn a_header_value_from_a_field_or_another_body_means_records() {
        let body = sample_body();
        for vars in [
            &[("SYSLOG_HOSTNAME_FIELD", "host")][..],
            &[("SYSLOG_SEVERITY_FIELD", "level")],
            &[
                ("SYSLOG_MESSAGE_FORMAT", "json"),
                ("SYSLOG_APP_NAME_FIELD", "app"),
            ],
            &[
                ("SYSLOG_MESSAGE_FORMAT", "leef"),
                ("SYSLOG_LEEF_EVENT_ID_FIELD", "level"),
            ],
            &[("SYSLOG_MESSAGE_FORMAT", "cef")],
        ] {
            let s = settings(vars);
            let (f, _) = filled(&s, &body, true);
            assert_eq!((f.logs, f.streamed), (200, 0), "{vars:?}");
            check_fill(&s, &body, &ORIGIN).unwrap();
        }
    }

    /// Header values (and a LEEF event ID) from the group's topic, source and tags are the
    /// same for every log of the group: the logs still stream, each group with its own.
    #[test]
    fn header_values_from_group_fields_stream() {
        let body = sample_body();
        let from_group = [
            ("SYSLOG_HOSTNAME_FIELD", "__tag__:__hostname__"),
            ("SYSLOG_APP_NAME_FIELD", "__topic__"),
            ("SYSLOG_MSGID_FIELD", "__source__"),
            ("SYSLOG_SEVERITY_FIELD", "__tag__:absent"),
            ("SYSLOG_FACILITY_FIELD", "__tag__:__receive_time__"),
            ("SYSLOG_LEEF_EVENT_ID_FIELD", "__topic__"),
        ];
        for (body_format, expected) in [
            ("kv", "||__topic__="),
            ("json", r#""__topic__":"#),
            ("leef", "|nginx-access|^|devTime="),
        ] {
            let mut vars = from_group.to_vec();
            vars.push(("SYSLOG_MESSAGE_FORMAT", body_format));
            let s = settings(&vars);
            let (f, bytes) = filled(&s, &body, true);
            assert_eq!((f.logs, f.streamed), (200, 200), "{body_format}");
            assert_eq!(check_fill(&s, &body, &ORIGIN).unwrap(), bytes);
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains(expected), "{text}");
            // Each group's own values: both topics and several hosts made it to headers.
            assert!(
                text.contains(" nginx-access ") && text.contains(" app "),
                "{text}"
            );
        }
    }

    /// A content named like the tag a header value comes from, in a group without that tag:
    /// its log's record has the content's value there, so that log goes as a record.
    #[test]
    fn a_content_named_like_a_header_tag_means_a_record() {
        let log = |extra: &[u8]| field(0x0a, &[TIME, &content(b"k", b"v"), extra].concat());
        let group = [
            log(b""),
            log(&content(b"__tag__:host", b"from-content")),
            log(b""),
            field(0x32, &[field(0x0a, b"other"), field(0x12, b"t")].concat()),
        ]
        .concat();
        let tagged = [
            log(b""),
            field(
                0x32,
                &[field(0x0a, b"host"), field(0x12, b"from-tag")].concat(),
            ),
        ]
        .concat();
        let body = [field(0x0a, &group), field(0x0a, &tagged)].concat();
        for format in ["kv", "json", "leef"] {
            let s = settings(&[
                ("SYSLOG_HOSTNAME_FIELD", "__tag__:host"),
                ("SYSLOG_HOSTNAME", "fallback"),
                ("SYSLOG_MESSAGE_FORMAT", format),
            ]);
            let (f, bytes) = filled(&s, &body, true);
            assert_eq!((f.logs, f.streamed), (4, 3), "{format}");
            assert_eq!(check_fill(&s, &body, &ORIGIN).unwrap(), bytes);
            let text = String::from_utf8(bytes).unwrap();
            assert_eq!(text.matches(" fallback ").count(), 2, "{text}");
            assert_eq!(text.matches(" from-content ").count(), 1, "{text}");
            assert_eq!(text.matches(" from-tag ").count(), 1, "{text}");
        }
    }

    /// Protobuf field `tag` holding `bytes`.
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let mut n = bytes.len();
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(bytes);
        out
    }

    fn content(k: &[u8], v: &[u8]) -> Vec<u8> {
        field(0x12, &[field(0x0a, k), field(0x12, v)].concat())
    }

    const TIME: &[u8] = &[0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06]; // 1700000000

    /// Under each of `settings`, `body` makes `logs` messages, `streamed` of them written as
    /// they were read, and the batch is what records alone give.
    fn streams_as_expected(
        body: &[u8],
        settings_list: &[&[(&str, &str)]],
        logs: u64,
        streamed: u64,
    ) {
        for vars in settings_list {
            let s = settings(vars);
            let (f, bytes) = filled(&s, body, true);
            assert_eq!(f.logs, logs, "{vars:?}");
            assert_eq!(f.streamed, streamed, "{vars:?}");
            assert_eq!(check_fill(&s, body, &ORIGIN).unwrap(), bytes, "{vars:?}");
        }
    }

    /// Logs an encoder could write but that the streaming path does not take: each is
    /// formatted from its record, and the batch is what records alone give.
    #[test]
    fn unusual_logs_fall_back_to_their_records() {
        let ns = |v: u32| [&[0x25][..], &v.to_le_bytes()].concat();
        let logs: Vec<(Vec<u8>, bool)> = vec![
            ([TIME, &content(b"a", b"1"), &ns(7)].concat(), true),
            ([&content(b"a", b"1")[..], TIME].concat(), false),
            (
                [TIME, &content(b"a", b"1"), &content(b"a", b"2")].concat(),
                false,
            ),
            ([TIME, &content(b"__topic__", b"t")].concat(), false),
            ([TIME, &content(b"__time__", b"t")].concat(), false),
            ([TIME, &content(b"__tag__:k", b"t")].concat(), false),
            ([TIME, &content(b"__time_ns_part__", b"t")].concat(), true),
            (
                [TIME, &content(b"__time_ns_part__", b"t"), &ns(5)].concat(),
                false,
            ),
            ([TIME, &content(b"k\xff", b"v")].concat(), false),
            ([TIME, &content(b"k", b"v\xff\xfe")].concat(), true),
            ([TIME, &ns(9), &content(b"k", b"v")].concat(), false),
            // A value ending with what looks like a nanosecond part.
            (
                [TIME, &content(b"k", b"ab\x25\x01\x02\x03\x04")].concat(),
                false,
            ),
            ([TIME, &content(b"k", b"v"), &[0x08, 0x01]].concat(), false),
            (
                [TIME, &[0x2a, 0x01, b'x'], &content(b"k", b"v")].concat(),
                true,
            ),
        ];
        let group = |logs: &[Vec<u8>]| {
            let mut g: Vec<u8> = logs.iter().flat_map(|l| field(0x0a, l)).collect();
            g.extend(field(0x1a, b"topic"));
            g.extend(field(
                0x32,
                &[field(0x0a, b"k"), field(0x12, b"tag")].concat(),
            ));
            g
        };
        let all: Vec<Vec<u8>> = logs.iter().map(|(l, _)| l.clone()).collect();
        let body = [field(0x0a, &group(&all)), field(0x0a, &group(&all[..3]))].concat();
        let streamable = logs.iter().filter(|(_, s)| *s).count() as u64;
        let settings = [
            &[][..],
            &[("SYSLOG_SD_ID", "sls@32473")],
            &[("SYSLOG_MESSAGE_FORMAT", "json")],
            &[("SYSLOG_MESSAGE_FORMAT", "leef")],
        ];
        streams_as_expected(&body, &settings, logs.len() as u64 + 3, streamable + 1);
    }

    /// Logs that repeat the keys of the log before them, around the ones that cannot
    /// stream (the keys' checks and `||key=` carried over from a streamed log only): after
    /// a log abandoned part-way and one sent as a record, with keys over 16 bytes that
    /// differ only after their 16th, with the repeated key coming after the shared ones.
    #[test]
    fn logs_repeating_keys_around_the_ones_that_cannot_stream() {
        let long_a = b"a-key-over-sixteen-bytes-1";
        let long_b = b"a-key-over-sixteen-bytes-2";
        let kv = |pairs: &[(&[u8], &[u8])]| -> Vec<u8> {
            pairs.iter().flat_map(|(k, v)| content(k, v)).collect()
        };
        let base = kv(&[(b"k", b"1"), (long_a, b"2"), (b"x", b"3")]);
        let logs: Vec<(Vec<u8>, bool)> = vec![
            ([TIME, &base].concat(), true),
            // The same keys, then another time: abandoned after its contents.
            ([TIME, &base, &[0x08, 0x01]].concat(), false),
            ([TIME, &base].concat(), true),
            // The time last: a record from the start.
            ([&base[..], TIME].concat(), false),
            ([TIME, &base].concat(), true),
            (
                [TIME, &kv(&[(b"k", b"1"), (long_b, b"2"), (b"x", b"3")])].concat(),
                true,
            ),
            (
                [TIME, &kv(&[(b"k", b"1"), (long_b, b"2"), (long_a, b"3")])].concat(),
                true,
            ),
            // The shared keys, then one of them again.
            (
                [TIME, &kv(&[(b"k", b"1"), (long_b, b"2"), (b"k", b"3")])].concat(),
                false,
            ),
            ([TIME, &kv(&[(b"k", b"1"), (long_b, b"2")])].concat(), true),
            (
                [TIME, &kv(&[(b"k", b"1"), (long_b, b"2\n3")])].concat(),
                true,
            ),
        ];
        let group: Vec<u8> = logs.iter().flat_map(|(l, _)| field(0x0a, l)).collect();
        let body = [field(0x0a, &group), field(0x0a, &group)].concat();
        let streamable = logs.iter().filter(|(_, s)| *s).count() as u64;
        let settings = [
            &[][..],
            &[("SYSLOG_EXCLUDE_FIELDS", "x")],
            &[("SYSLOG_FRAMING", "octet-counting")],
            &[("SYSLOG_MESSAGE_FORMAT", "json")],
        ];
        streams_as_expected(&body, &settings, 2 * logs.len() as u64, 2 * streamable);
    }

    /// Tag keys that are not UTF-8 (two that flatten to the same name), and a repeated tag
    /// key: the first group goes as records, the second streams with the tag's last value.
    #[test]
    fn groups_with_odd_tags() {
        let tag = |k: &[u8], v: &[u8]| field(0x32, &[field(0x0a, k), field(0x12, v)].concat());
        let log = field(0x0a, &[TIME, &content(b"k", b"v")].concat());
        let odd = [&log[..], &log, &tag(b"\xff", b"1"), &tag(b"\xfe", b"2")].concat();
        let repeated = [
            &log[..],
            &log,
            &tag(b"t", b"1"),
            &tag(b"u", b"2"),
            &tag(b"t", b"3"),
        ]
        .concat();
        let body = [field(0x0a, &odd), field(0x0a, &repeated)].concat();
        for (vars, last, first) in [
            (&[][..], "__tag__:t=3", "__tag__:t=1"),
            (
                &[("SYSLOG_EXCLUDE_FIELDS", "__tag__:u")],
                "__tag__:t=3",
                "__tag__:t=1",
            ),
            (
                &[("SYSLOG_MESSAGE_FORMAT", "json")],
                r#""__tag__:t":"3""#,
                r#""__tag__:t":"1""#,
            ),
            (
                &[("SYSLOG_MESSAGE_FORMAT", "leef")],
                "^__tag__:t=3",
                "^__tag__:t=1",
            ),
        ] {
            let s = settings(vars);
            let (f, bytes) = filled(&s, &body, true);
            assert_eq!((f.logs, f.streamed), (4, 2));
            assert_eq!(check_fill(&s, &body, &ORIGIN).unwrap(), bytes);
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains(last), "{text}");
            assert!(!text.contains(first), "{text}");
        }
    }
}
