//! LogGroup → flat records, exactly as the official Python SDK flattens them
//! (`PullLogResponse.loggroups_to_flattern_list`, research/sls-api.md §3.2):
//!
//! 1. `__time__`, 2. `__topic__` (`""` when unset), 3. `__source__` (`""` when unset),
//! 4. `__time_ns_part__` when the nanosecond part is not 0, 5. `__tag__:<key>` per tag,
//! 6. each content key in order.
//!
//! A key seen again (a duplicate tag, or a content key equal to an earlier key) overwrites
//! the earlier value and keeps the earlier position, as a Python dict does. Keys and values
//! that are not UTF-8 are converted lossily (U+FFFD); nothing fails because of them.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use crate::sls::wire::{self, GroupHeader, WireError};
use crate::sys::ascii_text as text;
use crate::text::{has_control, word_has_control};

/// A field value: text from the log, or one of the two numbers the SDK adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Text(Cow<'a, str>),
    Number(u32),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(t) => f.write_str(t),
            Value::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One flattened log. Borrowed from the decoded response where possible.
#[derive(Debug, Clone, Default)]
pub struct Record<'a> {
    /// `__time__`: Unix seconds of the log (`Log.Time`).
    pub time: u32,
    /// Nanosecond part of the time, 0 when the log has none.
    pub time_ns: u32,
    /// Every field in SDK order, `__time__` first.
    pub fields: Vec<(Cow<'a, str>, Value<'a>)>,
}

impl<'a> Record<'a> {
    /// The value of `key`, if the record has it.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A decompressed PullLogs body, its log groups counted. The `__tag__:<key>` names of all its
/// groups are built once, when the first log is flattened into a [`Record`], so that
/// flattening allocates nothing per log or per group (only text that is not UTF-8 is
/// copied); logs that are streamed ([`Body::stream`]) need no such names, and no walk of the
/// whole body before the first log.
pub struct Body<'a> {
    bytes: &'a [u8],
    groups: usize,
    tag_index: OnceCell<TagIndex<'a>>,
}

/// Every distinct tag key of a body, as `__tag__:<key>`.
#[derive(Default)]
struct TagIndex<'a> {
    /// The names, end to end.
    names: String,
    /// Raw tag key → its range in `names`.
    index: Vec<(&'a [u8], std::ops::Range<usize>)>,
}

impl<'a> Body<'a> {
    /// Counts the log groups of `bytes` (without reading into them: a malformed group is
    /// reported when it is reached).
    pub fn parse(bytes: &'a [u8]) -> Result<Body<'a>, WireError> {
        Ok(Body {
            bytes,
            groups: wire::count_groups(bytes)?,
            tag_index: OnceCell::new(),
        })
    }

    /// Number of log groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// `__tag__:<raw>`, for a tag key of this body.
    fn tag_key(&self, raw: &[u8]) -> &str {
        let tags = self.tag_index.get_or_init(|| {
            let mut tags = TagIndex::default();
            let mut header = GroupHeader::default();
            // Up to the first malformed group: flattening stops there too.
            for group in wire::groups(self.bytes).map_while(Result::ok) {
                if group.header(&mut header).is_err() {
                    break;
                }
                for (k, _) in &header.tags {
                    if !tags.index.iter().any(|(raw, _)| raw == k) {
                        let start = tags.names.len();
                        tags.names.push_str("__tag__:");
                        tags.names.push_str(&text(k));
                        tags.index.push((k, start..tags.names.len()));
                    }
                }
            }
            tags
        });
        tags.index
            .iter()
            .find(|(k, _)| *k == raw)
            .and_then(|(_, r)| tags.names.get(r.clone()))
            .unwrap_or("__tag__:")
    }

    /// The tags of a group as they are flattened: `(__tag__:<key>, value)`, each key once
    /// (a repeated key keeps its first place and takes the last value).
    fn record_tags<'b>(
        &'b self,
        header: &GroupHeader<'b>,
        tags: &mut Vec<(&'b str, Cow<'b, str>)>,
    ) {
        tags.clear();
        for (k, v) in &header.tags {
            let key = self.tag_key(k);
            match tags.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = text(v),
                None => tags.push((key, text(v))),
            }
        }
    }

    /// Calls `each` with the index of the log group and every log, flattened, in order. The
    /// record passed is reused from log to log.
    pub fn for_each<'b>(
        &'b self,
        mut each: impl FnMut(usize, &Record<'b>),
    ) -> Result<(), WireError> {
        struct Records<F>(F);
        impl<'b, F: FnMut(usize, &Record<'b>)> Sink<'b> for Records<F> {
            fn streams(&self) -> bool {
                false
            }
            fn group(&mut self, _: usize, _: &str, _: &str, _: &[(Cow<'b, str>, Cow<'b, str>)]) {}
            fn begin(&mut self, _: u32, _: u32) {}
            fn field(&mut self, _: usize, _: bool, _: &str, _: &str, _: bool) {}
            fn end(&mut self) {}
            fn abandon(&mut self) {}
            fn record(&mut self, group: usize, record: &Record<'b>) {
                (self.0)(group, record)
            }
        }
        self.stream(&mut Records(&mut each))
    }

    /// Sends every log to `sink`, in order: field by field when the sink [streams](Sink::streams)
    /// and the log allows it (the same fields in the same order as its [`Record`] would
    /// have), else as a record. A log goes as a record when its key repeats an earlier one
    /// (the record keeps the first position with the last value), when a key is not UTF-8,
    /// or when its time does not come first or its nanosecond part last, as encoders write
    /// them; a log abandoned part-way is then sent again as a record.
    pub fn stream<'b>(&'b self, sink: &mut impl Sink<'b>) -> Result<(), WireError> {
        const NS_KEY: &str = "__time_ns_part__";
        const TAG: &str = "__tag__:";
        let streams = sink.streams();
        let mut header = GroupHeader::default();
        // A group's tags as text (for streaming), and as flattened (for records).
        let mut tag_texts: Vec<(Cow<'b, str>, Cow<'b, str>)> = Vec::new();
        let mut tags: Vec<(&'b str, Cow<'b, str>)> = Vec::new();
        let mut record = Record::default();
        let mut fields = Fields::default();
        // The keys of the log being streamed: the group's fixed ones, then its contents.
        let mut keys: Vec<&'b str> = Vec::new();
        let mut last: Vec<(&'b str, bool)> = Vec::new();
        let mut name = String::new();
        for (i, group) in wire::groups(self.bytes).enumerate() {
            let group = group?;
            group.header(&mut header)?;
            let topic = text(header.topic.unwrap_or_default());
            let source = text(header.source.unwrap_or_default());
            tag_texts.clear();
            for (k, v) in &header.tags {
                let k = text(k);
                match tag_texts.iter_mut().find(|(key, _)| *key == k) {
                    Some(slot) => slot.1 = text(v),
                    None => tag_texts.push((k, text(v))),
                }
            }
            sink.group(i, &topic, &source, &tag_texts);
            let mut group_seen = Fields::default();
            keys.clear();
            keys.extend(["__time__", "__topic__", "__source__"]);
            for key in &keys {
                group_seen.mark(key.as_bytes());
            }
            // Tag keys that are not UTF-8 may flatten to one name: such a group's logs go
            // as records.
            let mut streams = streams;
            for (k, _) in &tag_texts {
                streams &= matches!(k, Cow::Borrowed(_));
                name.clear();
                name.push_str(TAG);
                name.push_str(k);
                group_seen.mark(name.as_bytes());
            }
            let is_tag = |key: &str| {
                key.strip_prefix(TAG)
                    .is_some_and(|rest| tag_texts.iter().any(|(k, _)| k == rest))
            };
            let group_keys = keys.len();
            let mut tags_ready = false;
            let mut as_record = |log: wire::Log<'b>, sink: &mut dyn FnMut(&Record<'b>)| {
                if !tags_ready {
                    self.record_tags(&header, &mut tags);
                    tags_ready = true;
                }
                let flat = Flattening {
                    topic: &topic,
                    source: &source,
                    tags: &tags,
                };
                flat.build(log, &mut record, &mut fields)?;
                sink(&record);
                Ok::<(), WireError>(())
            };
            // The contents' keys of the group's last streamed log, each with whether it has
            // a byte below 0x0E. Each was checked (UTF-8, none of the group's keys nor an
            // earlier content's, not reserved by the sink), so a log whose keys start with
            // the same ones needs those checks only from its first other key on: logs of one
            // group mostly repeat their keys, in the same order.
            last.clear();
            group.for_each_log(|log| {
                let guess = log.trailing_time_ns().unwrap_or(0);
                let time = match log.leading_time() {
                    Some(time) if streams => time,
                    _ => {
                        last.clear();
                        return as_record(log, &mut |r| sink.record(i, r));
                    }
                };
                let mut seen = group_seen.clone();
                keys.truncate(group_keys);
                if guess != 0 {
                    seen.mark(NS_KEY.as_bytes());
                    keys.push(NS_KEY);
                }
                sink.begin(time, guess);
                let mut streaming = true;
                // Contents so far, and whether all of them repeat `last`'s.
                let mut at = 0;
                let mut repeating = true;
                let mut fresh_next = false;
                let (read_time, time_ns) = log.read_fields(|k, v| {
                    if !streaming {
                        return;
                    }
                    let repeat = repeating
                        && last
                            .get(at)
                            .is_some_and(|(key, _)| Fields::same(key.as_bytes(), k));
                    let (k, key_low) = if repeat {
                        last[at]
                    } else {
                        if repeating {
                            // The first other key: the checks need the ones before it.
                            repeating = false;
                            last.truncate(at);
                            for (key, _) in &last {
                                seen.mark(key.as_bytes());
                                keys.push(key);
                            }
                        }
                        let (maybe_seen, key_control) = seen.mark(k);
                        let Cow::Borrowed(k) = text(k) else {
                            streaming = false;
                            return;
                        };
                        if maybe_seen && (keys.contains(&k) || is_tag(k)) || sink.forces_record(k) {
                            streaming = false;
                            return;
                        }
                        // A content named like the nanosecond part repeats a key only in
                        // the logs that have one: the next log checks all its keys.
                        fresh_next |= k == NS_KEY;
                        keys.push(k);
                        last.push((k, key_control));
                        (k, key_control)
                    };
                    let value_control = has_control(v);
                    let v = text(v);
                    sink.field(at, repeat, k, &v, key_low || value_control);
                    at += 1;
                })?;
                if streaming && read_time == time && time_ns.unwrap_or(0) == guess {
                    last.truncate(if fresh_next { 0 } else { at });
                    sink.end();
                    Ok(())
                } else {
                    last.clear();
                    sink.abandon();
                    as_record(log, &mut |r| sink.record(i, r))
                }
            })?;
        }
        Ok(())
    }
}

/// Where [`Body::stream`] sends the logs of a body. Streamed, a log is `begin`, `field` for
/// each content in order, then `end` (or `abandon`, when it comes again as a `record`); the
/// fields before the contents are the group's (`group`) and the nanosecond part (`begin`).
pub trait Sink<'b> {
    /// Whether logs may be streamed at all; when not, every log comes as a `record`.
    fn streams(&self) -> bool;
    /// A log group starts: its index, topic, source and tags (key, value), each key once
    /// (the last value of a repeated key); a key flattens to `__tag__:<key>`. Streamed logs
    /// come only from groups whose tag keys are UTF-8.
    fn group(
        &mut self,
        index: usize,
        topic: &str,
        source: &str,
        tags: &[(Cow<'b, str>, Cow<'b, str>)],
    );
    /// A log of the group starts: its time and nanosecond part (0 when it has none).
    fn begin(&mut self, time: u32, time_ns: u32);
    /// The content at index `at` of the log, whose key is none of the log's earlier keys.
    /// `repeat`: this key and every one before it are those of the group's last streamed log
    /// at the same places (so what the sink made of the key then holds). `low`: whether the
    /// key or value has a byte below 0x0E (when neither has, they hold no CR or LF).
    fn field(&mut self, at: usize, repeat: bool, key: &str, value: &str, low: bool);
    /// Whether a content named `key` must send its log down the record path (the sink took
    /// something from the group that such a content would change in the record). The
    /// answer for a key must not change within a body: a log that repeats the keys of the
    /// group's last streamed log is not asked again.
    fn forces_record(&self, _key: &str) -> bool {
        false
    }
    /// The log begun is complete.
    fn end(&mut self);
    /// Forget the log begun: it comes again as a `record`.
    fn abandon(&mut self);
    /// A whole log of group `group`, flattened.
    fn record(&mut self, group: usize, record: &Record<'b>);
}

/// What a group's logs are flattened with.
struct Flattening<'g, 'b> {
    topic: &'g Cow<'b, str>,
    source: &'g Cow<'b, str>,
    tags: &'g [(&'b str, Cow<'b, str>)],
}

impl<'b> Flattening<'_, 'b> {
    /// Flattens `log` into `record`.
    fn build(
        &self,
        log: wire::Log<'b>,
        record: &mut Record<'b>,
        fields: &mut Fields,
    ) -> Result<(), WireError> {
        let build = |record: &mut Record<'b>, fields: &mut Fields, time_ns: Option<u32>| {
            fields.start(&mut record.fields);
            fields.push(&mut record.fields, "__time__", Value::Number(0));
            fields.push(
                &mut record.fields,
                "__topic__",
                Value::Text(self.topic.clone()),
            );
            fields.push(
                &mut record.fields,
                "__source__",
                Value::Text(self.source.clone()),
            );
            if let Some(ns) = time_ns.filter(|&ns| ns != 0) {
                fields.push(&mut record.fields, "__time_ns_part__", Value::Number(ns));
            }
            for (k, v) in self.tags {
                fields.push(&mut record.fields, k, Value::Text(v.clone()));
            }
            log.read_fields(|k, v| {
                let (k, v) = (text(k), text(v));
                fields.set(&mut record.fields, k, Value::Text(v));
            })
        };
        // The nanosecond part comes last but its field goes 4th: build with the guess from
        // the log's last bytes, and again in the rare case it was wrong.
        let guess = log.trailing_time_ns();
        let (time, time_ns) = build(record, fields, guess)?;
        if time_ns.unwrap_or(0) != guess.unwrap_or(0) {
            build(record, fields, time_ns)?;
        }
        record.time = time;
        record.time_ns = time_ns.unwrap_or(0);
        // Contents are text: a number still in place was not overwritten by one.
        if let Some(slot @ (_, Value::Number(_))) = record.fields.first_mut() {
            slot.1 = Value::Number(time);
        }
        Ok(())
    }
}

/// The field list being built, with a 256-bit summary of the keys in it, so that the search
/// for a repeated key is skipped for the keys that cannot be there.
#[derive(Default, Clone)]
struct Fields {
    seen: [u64; 4],
}

impl Fields {
    /// Which of the 256 bits stands for `key`: a hash of its length and of its first and
    /// last eight bytes (all of a shorter key). Field names share prefixes and suffixes
    /// (`__tag__:…`, `…_id`), so a few sampled bytes collided often.
    #[inline(always)]
    fn bit(key: &str) -> (usize, u64) {
        let (head, tail) = Fields::sample(key.as_bytes());
        Fields::hash(key.len(), head, tail)
    }

    /// A key's first and last eight bytes (all of a key up to 16 bytes), or first and last
    /// four, or (under four bytes) its bytes with zeros after them.
    #[inline(always)]
    fn sample(b: &[u8]) -> (u64, u64) {
        let n = b.len();
        let word = |s: &[u8]| {
            let mut w = [0u8; 8];
            w[..s.len()].copy_from_slice(s);
            u64::from_le_bytes(w)
        };
        if n >= 8 {
            (word(&b[..8]), word(&b[n - 8..]))
        } else if n >= 4 {
            (word(&b[..4]), word(&b[n - 4..]))
        } else {
            let pick = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
            (pick(0) | pick(1) << 8 | pick(2) << 16, 0)
        }
    }

    #[inline(always)]
    fn hash(n: usize, head: u64, tail: u64) -> (usize, u64) {
        let h =
            (head ^ tail.rotate_left(23) ^ (n as u64) << 56).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let h = (h >> 56) as u32;
        ((h >> 6) as usize & 3, 1 << (h & 63))
    }

    /// Whether keys `a` and `b` are the same bytes (read as for the summary when they are up
    /// to 16 bytes long).
    #[inline(always)]
    fn same(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len()
            && if a.len() <= 16 {
                Fields::sample(a) == Fields::sample(b)
            } else {
                a == b
            }
    }

    /// Adds the key `key` (bytes not yet known to be UTF-8) to the summary; returns whether
    /// it may have been there already, and whether it holds a control byte
    /// ([`has_control`]), read from the same loads for a key of up to 16 bytes.
    #[inline(always)]
    fn mark(&mut self, key: &[u8]) -> (bool, bool) {
        let n = key.len();
        let (head, tail) = Fields::sample(key);
        let (word, bit) = Fields::hash(n, head, tail);
        let maybe = self.seen[word] & bit != 0;
        self.seen[word] |= bit;
        let control = match n {
            // The zeros after a short key's bytes made spaces.
            0..4 => word_has_control(head | 0x2020_2020_2020_2020 << (8 * n)),
            4..8 => word_has_control(head | tail << 32),
            8..=16 => word_has_control(head) || word_has_control(tail),
            _ => has_control(key),
        };
        (maybe, control)
    }

    fn start<'b>(&mut self, fields: &mut Vec<(Cow<'b, str>, Value<'b>)>) {
        fields.clear();
        self.seen = [0; 4];
    }

    /// Appends a key known not to be there yet.
    fn push<'b>(
        &mut self,
        fields: &mut Vec<(Cow<'b, str>, Value<'b>)>,
        key: &'b str,
        value: Value<'b>,
    ) {
        let (word, bit) = Fields::bit(key);
        self.seen[word] |= bit;
        fields.push((Cow::Borrowed(key), value));
    }

    /// Sets `key`: overwrites its value in place if it is there, else appends it.
    #[inline(always)]
    fn set<'b>(
        &mut self,
        fields: &mut Vec<(Cow<'b, str>, Value<'b>)>,
        key: Cow<'b, str>,
        value: Value<'b>,
    ) {
        let (word, bit) = Fields::bit(&key);
        if self.seen[word] & bit != 0 {
            if let Some(slot) = fields.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
                return;
            }
        }
        self.seen[word] |= bit;
        fields.push((key, value));
    }
}

/// Calls `each` with the index of the log group and every log of a decompressed PullLogs
/// body, flattened, in order. Returns the number of log groups.
pub fn for_each_in_body(
    body: &[u8],
    mut each: impl FnMut(usize, &Record<'_>),
) -> Result<usize, WireError> {
    let body = Body::parse(body)?;
    body.for_each(|i, r| each(i, r))?;
    Ok(body.groups())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sls::proto::tests::{hex, VECTOR_HEX};
    use crate::sls::proto::{self, Content, Log, LogGroup, LogTag};
    use bytes::Bytes;
    use prost::Message;

    #[test]
    fn control_bytes_are_found_at_every_length_and_place() {
        let expect = |b: &[u8]| b.iter().any(|&c| c < 0x0E);
        // Both ways of checking: a value's, and a key's along with its summary bit.
        let scan = |b: &[u8]| {
            let (_, as_key) = Fields::default().mark(b);
            assert_eq!(as_key, has_control(b), "{b:?} as a key");
            as_key
        };
        // Every length up to three words and then some, with each interesting byte at each
        // place, alone and after a byte that borrows (0x00) or is high (0xFF).
        let specials = [0x00, 0x09, 0x0A, 0x0D, 0x0E, 0x20, 0x7F, 0x80, 0xC3, 0xFF];
        for n in 0..=27 {
            let plain = vec![b'a'; n];
            assert_eq!(scan(&plain), expect(&plain), "{n} plain bytes");
            for at in 0..n {
                for &s in &specials {
                    let mut b = plain.clone();
                    b[at] = s;
                    assert_eq!(scan(&b), expect(&b), "{b:?}");
                    for &t in &specials {
                        if at + 1 < n {
                            b[at + 1] = t;
                            assert_eq!(scan(&b), expect(&b), "{b:?}");
                        }
                    }
                }
            }
        }
        // Inside a larger buffer: nothing outside the slice is read into the answer.
        let buf = b"\n\xFF0123456789abcdef\r\xC3";
        for start in 2..18 {
            for end in start..18 {
                assert_eq!(scan(&buf[start..end]), expect(&buf[start..end]));
            }
        }
    }

    fn flat(group: &LogGroup) -> Vec<Vec<(String, String)>> {
        let body = proto::LogGroupList {
            log_groups: vec![group.clone()],
        }
        .encode_to_vec();
        let mut out = Vec::new();
        let groups = for_each_in_body(&body, |_, r| {
            out.push(
                r.fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        })
        .unwrap();
        assert_eq!(groups, 1);
        out
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// research/sls-api.md §3.3, the SDK's own output (with `__time_ns_part__` as its number
    /// rather than the SDK's accidental 1-tuple).
    #[test]
    fn matches_the_sdk_flattening_of_the_vector() {
        let list = proto::decode(Bytes::from(hex(VECTOR_HEX))).unwrap();
        let got = flat(&list.log_groups[0]);
        assert_eq!(
            got,
            vec![
                pairs(&[
                    ("__time__", "1700000000"),
                    ("__topic__", "topic-a"),
                    ("__source__", "10.0.0.1"),
                    ("__time_ns_part__", "123456789"),
                    ("__tag__:__hostname__", "host-1"),
                    ("level", "INFO"),
                    ("msg", "hello"),
                ]),
                pairs(&[
                    ("__time__", "1700000001"),
                    ("__topic__", "topic-a"),
                    ("__source__", "10.0.0.1"),
                    ("__tag__:__hostname__", "host-1"),
                    ("msg", "world"),
                ]),
            ]
        );
    }

    fn content(k: &'static [u8], v: &'static [u8]) -> Content {
        Content {
            key: Bytes::from_static(k),
            value: Bytes::from_static(v),
        }
    }

    #[test]
    fn duplicates_overwrite_in_place_and_unset_topic_is_empty() {
        let group = LogGroup {
            logs: vec![Log {
                time: 5,
                contents: vec![
                    content(b"a", b"1"),
                    content(b"__topic__", b"from-content"),
                    content(b"b", b"2"),
                    content(b"a", b"3"),
                ],
                time_ns: Some(0),
            }],
            log_tags: vec![
                LogTag {
                    key: Bytes::from_static(b"t"),
                    value: Bytes::from_static(b"first"),
                },
                LogTag {
                    key: Bytes::from_static(b"u"),
                    value: Bytes::from_static(b"x"),
                },
                LogTag {
                    key: Bytes::from_static(b"t"),
                    value: Bytes::from_static(b"last"),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            flat(&group),
            vec![pairs(&[
                ("__time__", "5"),
                ("__topic__", "from-content"),
                ("__source__", ""),
                ("__tag__:t", "last"),
                ("__tag__:u", "x"),
                ("a", "3"),
                ("b", "2"),
            ])]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let group = LogGroup {
            logs: vec![Log {
                time: 1,
                contents: vec![content(b"k\xff", b"caf\xc3\xa9 \xe9t\xe9")],
                time_ns: Some(42),
            }],
            ..Default::default()
        };
        let got = flat(&group);
        assert_eq!(got[0][3], ("__time_ns_part__".into(), "42".into()));
        assert_eq!(
            got[0][4],
            ("k\u{fffd}".into(), "café \u{fffd}t\u{fffd}".into())
        );
    }
}
