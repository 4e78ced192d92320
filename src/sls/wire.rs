//! A borrowing reader of the PullLogs `LogGroupList` protobuf (research/sls-api.md §3.1):
//! the shipping path walks the decompressed body in place, so no log, key or value is copied
//! or allocated (the [`prost`](super::proto) types remain for building bodies in tests and in
//! the SLS test server).
//!
//! ```text
//! LogGroupList { repeated LogGroup logGroupList = 1; }
//! LogGroup     { repeated Log Logs = 1; optional string Reserved = 2; optional string Topic = 3;
//!                optional string Source = 4; optional string MachineUUID = 5;
//!                repeated LogTag LogTags = 6; }
//! Log          { required uint32 Time = 1; repeated Content Contents = 2; optional fixed32 Time_ns = 4; }
//! Content, LogTag { required string Key = 1; required string Value = 2; }
//! ```
//!
//! Unknown fields are skipped as protobuf says; a truncated or malformed field, a wrong wire
//! type for a known field, or a group (wire types 3 and 4) is an error. A missing required
//! field reads as its default (0 or empty), as prost reads it.

/// Why a body is not a `LogGroupList`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset} of the log group list")]
pub struct WireError {
    pub what: &'static str,
    pub offset: usize,
}

/// One field as read from the wire.
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A fixed64 (no known field has one; it is skipped).
    Fixed64,
}

/// Reads the fields of one message, in order.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole body, for error messages.
    base: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8], base: usize) -> Fields<'a> {
        Fields { buf, pos: 0, base }
    }

    fn error(&self, what: &'static str) -> WireError {
        WireError {
            what,
            offset: self.base + self.pos,
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        // Tags and short lengths are one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.error("a truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error("a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(self.error("a field longer than its message")),
        }
    }

    /// The field with the one-byte `tag` (a length-delimited one) if it comes next, its
    /// length takes one or two bytes and it fits: its bytes and their offset in the body.
    /// The common case, read without [`Fields::next`].
    #[inline(always)]
    fn short_bytes(&mut self, tag: u8) -> Option<(&'a [u8], usize)> {
        let rest = &self.buf[self.pos..];
        let (len, head) = match *rest {
            [t, l, ..] if t == tag && l < 0x80 => (usize::from(l), 2),
            [t, l0, l1, ..] if t == tag && l0 >= 0x80 && l1 < 0x80 => {
                (usize::from(l0 & 0x7f) | usize::from(l1) << 7, 3)
            }
            _ => return None,
        };
        let b = rest.get(head..head + len)?;
        // Offsets as `next` gives them: just after the tag.
        let at = self.base + self.pos + 1;
        self.pos += head + len;
        Some((b, at))
    }

    /// The next field number and value, `None` at the end of the message. Also returns the
    /// offset of the value in the body.
    #[inline]
    fn next(&mut self) -> Result<Option<(u32, Field<'a>, usize)>, WireError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(self.error("an invalid field number"));
        }
        let at = self.base + self.pos;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| self.error("an impossible length"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => return Err(self.error("an unsupported wire type (group or invalid)")),
        };
        Ok(Some((number as u32, field, at)))
    }
}

fn bytes<'a>(field: Field<'a>, at: usize) -> Result<&'a [u8], WireError> {
    match field {
        Field::Bytes(b) => Ok(b),
        _ => Err(WireError {
            what: "a string or message field with another wire type",
            offset: at,
        }),
    }
}

/// The log groups of a PullLogs body, each as its encoded bytes and offset.
pub fn groups(body: &[u8]) -> impl Iterator<Item = Result<Group<'_>, WireError>> {
    let mut fields = Fields::new(body, 0);
    let mut failed = false;
    std::iter::from_fn(move || loop {
        if failed {
            return None;
        }
        match fields.next() {
            Ok(None) => return None,
            Ok(Some((1, f, at))) => {
                let r = bytes(f, at).map(|b| Group { bytes: b, base: at });
                failed = r.is_err();
                return Some(r);
            }
            Ok(Some(_)) => continue,
            Err(e) => {
                failed = true;
                return Some(Err(e));
            }
        }
    })
}

/// The body cut at log-group boundaries into pieces of about `size` bytes, each holding
/// whole log groups (at least one) and so itself a `LogGroupList`: the index of each piece's
/// first group and its byte range. What keeps the output of one pull in bounded batches
/// whatever the size of its groups.
pub fn pieces(body: &[u8], size: usize) -> Result<Vec<(usize, std::ops::Range<usize>)>, WireError> {
    let mut fields = Fields::new(body, 0);
    let mut out = Vec::new();
    let (mut start, mut first, mut index) = (0, 0, 0);
    loop {
        let at = fields.pos;
        if at - start >= size && index > first {
            out.push((first, start..at));
            (start, first) = (at, index);
        }
        match fields.next()? {
            None => break,
            Some((1, f, at)) => {
                bytes(f, at)?;
                index += 1;
            }
            Some(_) => {}
        }
    }
    if start < body.len() {
        out.push((first, start..body.len()));
    }
    Ok(out)
}

/// Counts the log groups of a body and checks its outer framing.
pub fn count_groups(body: &[u8]) -> Result<usize, WireError> {
    groups(body).try_fold(0usize, |n, g| g.map(|_| n + 1))
}

/// One encoded LogGroup.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    bytes: &'a [u8],
    base: usize,
}

/// What a group's logs share.
#[derive(Debug, Default)]
pub struct GroupHeader<'a> {
    pub topic: Option<&'a [u8]>,
    pub source: Option<&'a [u8]>,
    /// `(key, value)` of each tag, in order.
    pub tags: Vec<(&'a [u8], &'a [u8])>,
    pub logs: usize,
}

/// One log, still encoded: [`Log::read_fields`] reads it in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Log<'a> {
    bytes: &'a [u8],
    base: usize,
}

impl<'a> Group<'a> {
    /// Reads topic, source and tags (into `header`, whose tag vector is reused) and counts
    /// the logs.
    pub fn header(&self, header: &mut GroupHeader<'a>) -> Result<(), WireError> {
        header.topic = None;
        header.source = None;
        header.tags.clear();
        header.logs = 0;
        let mut fields = Fields::new(self.bytes, self.base);
        loop {
            // Logs are most of a group: skip them without the general field decoder.
            if fields.short_bytes(0x0a).is_some() {
                header.logs += 1;
                continue;
            }
            let Some((number, f, at)) = fields.next()? else {
                break;
            };
            match number {
                1 => {
                    bytes(f, at)?;
                    header.logs += 1;
                }
                3 => header.topic = Some(bytes(f, at)?),
                4 => header.source = Some(bytes(f, at)?),
                6 => header.tags.push(pair(bytes(f, at)?, at)?),
                _ => {}
            }
        }
        Ok(())
    }

    /// Calls `each` with every log, in order.
    pub fn for_each_log(
        &self,
        mut each: impl FnMut(Log<'a>) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        let mut fields = Fields::new(self.bytes, self.base);
        loop {
            if let Some((bytes, base)) = fields.short_bytes(0x0a) {
                each(Log { bytes, base })?;
                continue;
            }
            let Some((number, f, at)) = fields.next()? else {
                break;
            };
            if number == 1 {
                each(Log {
                    bytes: bytes(f, at)?,
                    base: at,
                })?;
            }
        }
        Ok(())
    }
}

impl<'a> Log<'a> {
    /// The nanosecond part if the log ends with it, as encoders write it (field 4 last): a
    /// guess to check against what [`Log::read_fields`] returns, since a content's value
    /// could end with the same bytes.
    pub fn trailing_time_ns(&self) -> Option<u32> {
        match self.bytes {
            [.., 0x25, a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    /// The time if the log starts with it, as encoders write it (field 1 first): to check
    /// against what [`Log::read_fields`] returns, since the field may come again.
    pub fn leading_time(&self) -> Option<u32> {
        let mut fields = Fields::new(self.bytes, self.base);
        match self.bytes {
            [0x08, ..] => {
                fields.pos = 1;
                fields.varint().ok().map(|t| t as u32)
            }
            _ => None,
        }
    }

    /// One pass over the log's fields: calls `each` with every content's key and value, in
    /// order, and returns the time and the nanosecond part.
    pub fn read_fields(
        &self,
        mut each: impl FnMut(&'a [u8], &'a [u8]),
    ) -> Result<(u32, Option<u32>), WireError> {
        let (mut time, mut time_ns) = (0, None);
        let mut fields = Fields::new(self.bytes, self.base);
        loop {
            // What encoders write, read without the general field decoder (anything else
            // takes the general path below, which also reports errors).
            if let Some((b, at)) = fields.short_bytes(0x12) {
                let (k, v) = pair(b, at)?;
                each(k, v);
                continue;
            }
            if let [0x08, ..] = fields.buf[fields.pos..] {
                fields.pos += 1;
                time = fields.varint()? as u32;
                continue;
            }
            if let [0x25, a, b, c, d, ..] = fields.buf[fields.pos..] {
                time_ns = Some(u32::from_le_bytes([a, b, c, d]));
                fields.pos += 5;
                continue;
            }
            let Some((number, f, at)) = fields.next()? else {
                break;
            };
            match (number, f) {
                (1, Field::Varint(v)) => time = v as u32,
                (2, Field::Bytes(b)) => {
                    let (k, v) = pair(b, at)?;
                    each(k, v);
                }
                (4, Field::Fixed32(v)) => time_ns = Some(v),
                (1 | 2 | 4, _) => {
                    return Err(WireError {
                        what: "a Log field with the wrong wire type",
                        offset: at,
                    })
                }
                _ => {}
            }
        }
        Ok((time, time_ns))
    }
}

/// A `Content` or `LogTag`: key 1, value 2.
#[inline]
fn pair(msg: &[u8], base: usize) -> Result<(&[u8], &[u8]), WireError> {
    // What every encoder writes: key (tag 0x0a, one-byte length), then value (tag 0x12,
    // one- or two-byte length), nothing else. Anything else takes the general path.
    if let [0x0a, klen, rest @ ..] = msg {
        let klen = usize::from(*klen);
        if klen < 0x80 && rest.len() > klen {
            let (key, rest) = rest.split_at(klen);
            let value = match rest {
                [0x12, l, v @ ..] if *l < 0x80 && v.len() == usize::from(*l) => Some(v),
                [0x12, l0, l1, v @ ..]
                    if *l0 >= 0x80
                        && *l1 < 0x80
                        && v.len() == usize::from(l0 & 0x7f) | (usize::from(*l1) << 7) =>
                {
                    Some(v)
                }
                _ => None,
            };
            if let Some(value) = value {
                return Ok((key, value));
            }
        }
    }
    let (mut key, mut value): (&[u8], &[u8]) = (b"", b"");
    let mut fields = Fields::new(msg, base);
    while let Some((number, f, at)) = fields.next()? {
        match number {
            1 => key = bytes(f, at)?,
            2 => value = bytes(f, at)?,
            _ => {}
        }
    }
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sls::proto::tests::{hex, VECTOR_HEX};
    use crate::sls::proto::{self, Content, LogGroup, LogGroupList, LogTag};
    use bytes::Bytes;
    use prost::Message;

    /// Everything the reader sees, as owned values, to compare with prost's decoding.
    type Seen = Vec<(
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(Vec<u8>, Vec<u8>)>,
        Vec<Seen1>,
    )>;
    type Seen1 = (u32, Option<u32>, Vec<(Vec<u8>, Vec<u8>)>);

    fn read_all(body: &[u8]) -> Result<Seen, WireError> {
        let mut out = Vec::new();
        let mut h = GroupHeader::default();
        for g in groups(body) {
            let g = g?;
            g.header(&mut h)?;
            let mut logs = Vec::new();
            g.for_each_log(|log| {
                let mut c = Vec::new();
                let (time, time_ns) = log.read_fields(|k, v| c.push((k.to_vec(), v.to_vec())))?;
                logs.push((time, time_ns, c));
                Ok(())
            })?;
            assert_eq!(logs.len(), h.logs);
            out.push((
                h.topic.map(<[u8]>::to_vec),
                h.source.map(<[u8]>::to_vec),
                h.tags
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect(),
                logs,
            ));
        }
        Ok(out)
    }

    fn from_prost(list: &LogGroupList) -> Seen {
        list.log_groups
            .iter()
            .map(|g| {
                (
                    g.topic.as_ref().map(|b| b.to_vec()),
                    g.source.as_ref().map(|b| b.to_vec()),
                    g.log_tags
                        .iter()
                        .map(|t| (t.key.to_vec(), t.value.to_vec()))
                        .collect(),
                    g.logs
                        .iter()
                        .map(|l| {
                            (
                                l.time,
                                l.time_ns,
                                l.contents
                                    .iter()
                                    .map(|c| (c.key.to_vec(), c.value.to_vec()))
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn reads_the_documented_vector_as_prost_does() {
        let body = hex(VECTOR_HEX);
        let list = proto::decode(Bytes::from(body.clone())).unwrap();
        assert_eq!(read_all(&body).unwrap(), from_prost(&list));
        assert_eq!(count_groups(&body), Ok(1));
    }

    #[test]
    fn reads_sample_data_as_prost_does() {
        let list = LogGroupList {
            log_groups: crate::devkit::sample::groups(6, 7, 3),
        };
        let body = list.encode_to_vec();
        assert_eq!(read_all(&body).unwrap(), from_prost(&list));
        assert_eq!(count_groups(&body), Ok(6));
    }

    #[test]
    fn content_lengths_on_both_sides_of_each_varint_size_read_as_prost_does() {
        // The content fast path takes one- and two-byte lengths; three bytes go the
        // general way.
        let logs = [
            0usize, 1, 124, 125, 126, 127, 128, 16_380, 16_383, 16_384, 70_000,
        ]
        .iter()
        .map(|&n| proto::Log {
            time: 1_700_000_000,
            contents: vec![
                Content {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from(vec![b'v'; n]),
                },
                Content {
                    key: Bytes::from(vec![b'x'; n.min(300)]),
                    value: Bytes::new(),
                },
            ],
            time_ns: Some(n as u32),
        })
        .collect();
        let list = LogGroupList {
            log_groups: vec![LogGroup {
                logs,
                ..LogGroup::default()
            }],
        };
        let body = list.encode_to_vec();
        assert_eq!(read_all(&body).unwrap(), from_prost(&list));
        // One group: cut anywhere inside it, the body is malformed.
        assert_eq!(read_all(&body[..0]).unwrap(), Seen::new());
        for cut in (1..body.len()).step_by(97) {
            assert!(read_all(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn skips_unknown_fields_and_reads_missing_ones_as_defaults() {
        let group = LogGroup {
            logs: vec![proto::Log {
                time: 0,
                contents: vec![Content {
                    key: Bytes::new(),
                    value: Bytes::from_static(b"v"),
                }],
                time_ns: None,
            }],
            reserved: Some(Bytes::from_static(b"r")),
            machine_uuid: Some(Bytes::from_static(b"m")),
            log_tags: vec![LogTag {
                key: Bytes::from_static(b"k"),
                value: Bytes::new(),
            }],
            ..LogGroup::default()
        };
        let mut body = LogGroupList {
            log_groups: vec![group],
        }
        .encode_to_vec();
        // An unknown varint field (15), fixed64 (14) and fixed32 (13) at the top level.
        body.extend_from_slice(&[15 << 3, 0x96, 0x01]);
        body.extend_from_slice(&[(14 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        body.extend_from_slice(&[(13 << 3) | 5, 1, 2, 3, 4]);
        let seen = read_all(&body).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].3, vec![(0, None, vec![(vec![], b"v".to_vec())])]);
        assert_eq!(seen[0].2, vec![(b"k".to_vec(), vec![])]);
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let good = LogGroupList {
            log_groups: crate::devkit::sample::groups(2, 3, 1),
        }
        .encode_to_vec();
        // Every truncation of a valid body either reads as fewer whole groups or fails.
        for cut in 0..good.len() {
            let _ = read_all(&good[..cut]);
        }
        for bad in [
            &[0x0a, 0x05, 0x01][..],       // length past the end
            &[0x0b][..],                   // wire type 3 (group)
            &[0x00, 0x01][..],             // field number 0
            &[0x08, 0xff, 0xff, 0xff][..], // truncated varint
            &[0x09, 1, 2][..],             // truncated fixed64
            &[0x08; 1][..],                // key with no value
            &[0x0a, 0x02, 0x08, 0x01][..], // group whose field 1 (logs) is a varint
        ] {
            assert!(read_all(bad).is_err(), "{bad:?}");
        }
        let eleven = [
            0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ];
        assert!(count_groups(&eleven).is_err());
    }

    #[test]
    fn pieces_hold_whole_groups_and_decode_on_their_own() {
        let list = LogGroupList {
            log_groups: crate::devkit::sample::groups(7, 5, 9),
        };
        let body = list.encode_to_vec();
        let one = list.log_groups[0].encoded_len();
        for size in [0, 1, one, one + 1, 3 * one, body.len(), usize::MAX] {
            let pieces = pieces(&body, size).unwrap();
            let mut next_group = 0;
            let mut next_byte = 0;
            for (first, range) in &pieces {
                assert_eq!(
                    (*first, range.start),
                    (next_group, next_byte),
                    "size {size}"
                );
                let piece = proto::decode(Bytes::from(body[range.clone()].to_vec())).unwrap();
                assert!(!piece.log_groups.is_empty(), "size {size}");
                assert_eq!(
                    piece.log_groups[..],
                    list.log_groups[*first..*first + piece.log_groups.len()],
                    "size {size}"
                );
                // A piece is cut at the first group boundary past `size`.
                let last = piece.log_groups[piece.log_groups.len() - 1].encoded_len();
                let last = 1 + prost::encoding::encoded_len_varint(last as u64) + last;
                assert!(range.len() - last < size.max(1), "size {size}");
                next_group += piece.log_groups.len();
                next_byte = range.end;
            }
            assert_eq!((next_group, next_byte), (7, body.len()), "size {size}");
        }
        assert_eq!(pieces(&body, 0).unwrap().len(), 7);
        assert_eq!(pieces(&body, usize::MAX).unwrap().len(), 1);
        assert_eq!(pieces(&[], 10).unwrap(), vec![]);
        assert!(pieces(&body[..body.len() - 1], 10).is_err());
    }
}
