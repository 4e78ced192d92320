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
use std::fmt;

use crate::sls::proto::LogGroup;

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
    fn set(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// The value of `key`, if the record has it.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Calls `each` with every log of `group`, flattened. The record passed is reused between
/// calls (its field vector keeps its capacity).
pub fn for_each<'a, E>(
    group: &'a LogGroup,
    mut each: impl FnMut(&Record<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let topic = group
        .topic
        .as_deref()
        .map(text)
        .unwrap_or(Cow::Borrowed(""));
    let source = group
        .source
        .as_deref()
        .map(text)
        .unwrap_or(Cow::Borrowed(""));
    let mut tags: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(group.log_tags.len());
    for tag in &group.log_tags {
        let key = Cow::Owned(format!("__tag__:{}", text(&tag.key)));
        let value = text(&tag.value);
        match tags.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => tags.push((key, value)),
        }
    }
    let mut record = Record {
        fields: Vec::with_capacity(8 + tags.len()),
        ..Record::default()
    };
    for log in &group.logs {
        record.time = log.time;
        record.time_ns = log.time_ns.unwrap_or(0);
        record.fields.clear();
        record
            .fields
            .push((Cow::Borrowed("__time__"), Value::Number(log.time)));
        record
            .fields
            .push((Cow::Borrowed("__topic__"), Value::Text(topic.clone())));
        record
            .fields
            .push((Cow::Borrowed("__source__"), Value::Text(source.clone())));
        if record.time_ns != 0 {
            record.fields.push((
                Cow::Borrowed("__time_ns_part__"),
                Value::Number(record.time_ns),
            ));
        }
        for (k, v) in &tags {
            record.fields.push((k.clone(), Value::Text(v.clone())));
        }
        for content in &log.contents {
            record.set(text(&content.key), Value::Text(text(&content.value)));
        }
        each(&record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sls::proto::tests::{hex, VECTOR_HEX};
    use crate::sls::proto::{self, Content, Log, LogTag};
    use bytes::Bytes;

    fn flat(group: &LogGroup) -> Vec<Vec<(String, String)>> {
        let mut out = Vec::new();
        for_each::<()>(group, |r| {
            out.push(
                r.fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
            Ok(())
        })
        .unwrap();
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
