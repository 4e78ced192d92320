//! The `LogGroupList` protobuf (proto2) that PullLogs returns, research/sls-api.md §3.1.
//!
//! Keys and values are declared as `bytes` and decoded into [`bytes::Bytes`] that share the
//! decompressed buffer (no copy per field). A value that is not UTF-8 is therefore never a
//! decode error; it is converted lossily when a record is flattened.

use bytes::Bytes;

/// A whole PullLogs body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogGroupList {
    #[prost(message, repeated, tag = "1")]
    pub log_groups: Vec<LogGroup>,
}

/// Logs that share a topic, a source and tags.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogGroup {
    #[prost(message, repeated, tag = "1")]
    pub logs: Vec<Log>,
    /// Go calls it "Category"; unused by the flattening.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub reserved: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub topic: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub source: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "5")]
    pub machine_uuid: Option<Bytes>,
    #[prost(message, repeated, tag = "6")]
    pub log_tags: Vec<LogTag>,
}

/// One log: a time and ordered key/value contents.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Log {
    /// Unix seconds.
    #[prost(uint32, required, tag = "1")]
    pub time: u32,
    #[prost(message, repeated, tag = "2")]
    pub contents: Vec<Content>,
    /// Nanosecond part of the time (fixed32, 0..=999_999_999).
    #[prost(fixed32, optional, tag = "4")]
    pub time_ns: Option<u32>,
}

/// One key/value of a log.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Content {
    #[prost(bytes = "bytes", required, tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", required, tag = "2")]
    pub value: Bytes,
}

/// A tag of a log group (`__tag__:key` once flattened).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogTag {
    #[prost(bytes = "bytes", required, tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", required, tag = "2")]
    pub value: Bytes,
}

/// Decodes a decompressed PullLogs body.
pub fn decode(body: Bytes) -> Result<LogGroupList, prost::DecodeError> {
    <LogGroupList as prost::Message>::decode(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prost::Message;

    /// research/sls-api.md §3.4: one group, topic-a, source 10.0.0.1, tag __hostname__=host-1.
    pub(crate) const VECTOR_HEX: &str = "0a6b0a280880e2cfaa06120d0a056c6576656c1204494e464f120c0a036d7367120568656c6c6f2515cd5b070a140881e2cfaa06120c0a036d73671205776f726c641a07746f7069632d61220831302e302e302e3132160a0c5f5f686f73746e616d655f5f1206686f73742d31";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_the_sdk_vector() {
        let raw = hex(VECTOR_HEX);
        assert_eq!(raw.len(), 109);
        let list = decode(Bytes::from(raw)).unwrap();
        assert_eq!(list.log_groups.len(), 1);
        let g = &list.log_groups[0];
        assert_eq!(g.topic.as_deref(), Some(&b"topic-a"[..]));
        assert_eq!(g.source.as_deref(), Some(&b"10.0.0.1"[..]));
        assert_eq!(g.log_tags[0].key, "__hostname__");
        assert_eq!(g.log_tags[0].value, "host-1");
        assert_eq!(g.logs.len(), 2);
        assert_eq!(g.logs[0].time, 1_700_000_000);
        assert_eq!(g.logs[0].time_ns, Some(123_456_789));
        assert_eq!(g.logs[0].contents[0].key, "level");
        assert_eq!(g.logs[0].contents[0].value, "INFO");
        assert_eq!(g.logs[1].time, 1_700_000_001);
        assert_eq!(g.logs[1].time_ns, None);
        assert_eq!(g.logs[1].contents[0].value, "world");
    }

    #[test]
    fn encoding_our_messages_gives_the_sdk_bytes() {
        let list = decode(Bytes::from(hex(VECTOR_HEX))).unwrap();
        assert_eq!(list.encode_to_vec(), hex(VECTOR_HEX));
    }

    #[test]
    fn a_value_that_is_not_utf8_decodes() {
        let list = LogGroupList {
            log_groups: vec![LogGroup {
                logs: vec![Log {
                    time: 1,
                    contents: vec![Content {
                        key: Bytes::from_static(b"k"),
                        value: Bytes::from_static(b"a\xff\xfeb"),
                    }],
                    time_ns: None,
                }],
                ..Default::default()
            }],
        };
        let back = decode(Bytes::from(list.encode_to_vec())).unwrap();
        assert_eq!(
            back.log_groups[0].logs[0].contents[0].value,
            &b"a\xff\xfeb"[..]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(Bytes::from_static(b"\x0a\xff\xff\xff\xff\x0f")).is_err());
        assert!(decode(Bytes::from_static(b"not a protobuf at all")).is_err());
    }
}
