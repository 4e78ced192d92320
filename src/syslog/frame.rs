//! Stream framing (RFC 6587): LF-terminated or octet-counted.
//!
//! With LF framing a CR or LF inside the message would split it at the receiver, so they are
//! written as the two-character escapes `\r` and `\n`. Octet counting (`LEN SP MSG`, the only
//! framing RFC 5425 allows over TLS) sends the message unchanged.

use crate::buffers;

/// How messages are delimited on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `MSG LF`, CR/LF inside MSG escaped.
    Lf,
    /// `MSG-LEN SP MSG`.
    OctetCounting,
}

impl Framing {
    /// `lf` or `octet-counting` (also `octet_counting`, `octet`).
    pub fn parse(s: &str) -> Option<Framing> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lf" | "non-transparent" => Some(Framing::Lf),
            "octet-counting" | "octet_counting" | "octet" => Some(Framing::OctetCounting),
            _ => None,
        }
    }

    /// Appends `msg`, framed, to `out`, cut so that the message the receiver reads (after
    /// escaping, before the count or trailer) is at most `max` bytes, on a UTF-8 character
    /// boundary. Returns whether it was cut.
    pub fn write(self, out: &mut Vec<u8>, msg: &[u8], max: usize) -> bool {
        match self {
            Framing::Lf => {
                let truncated = write_escaped(out, msg, max);
                out.push(b'\n');
                truncated
            }
            Framing::OctetCounting => {
                let cut = utf8_cut(msg, max);
                write_decimal(out, cut as u64);
                out.push(b' ');
                out.extend_from_slice(&msg[..cut]);
                cut < msg.len()
            }
        }
    }
}

/// The longest prefix of `msg` of at most `max` bytes that does not split a UTF-8 character.
pub fn utf8_cut(msg: &[u8], max: usize) -> usize {
    if msg.len() <= max {
        return msg.len();
    }
    let mut cut = max;
    while cut > 0 && (msg[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    cut
}

/// Whether `bytes` has a CR or LF (what LF framing must escape).
pub fn has_break(bytes: &[u8]) -> bool {
    memchr::memchr2(b'\n', b'\r', bytes).is_some()
}

/// Appends `msg` with CR and LF written as `\r` and `\n`, at most `max` bytes, never
/// splitting a character or an escape. Returns whether it was cut.
fn write_escaped(out: &mut Vec<u8>, msg: &[u8], max: usize) -> bool {
    let breaks = memchr::memchr2_iter(b'\n', b'\r', msg).count();
    let (msg, truncated) = if msg.len() + breaks <= max {
        (msg, false)
    } else {
        // The longest run of whole characters whose escaped length fits.
        let (mut len, mut cut) = (0, 0);
        for (i, b) in msg.iter().enumerate() {
            if (b & 0xC0) != 0x80 {
                cut = i;
            }
            len += if *b == b'\n' || *b == b'\r' { 2 } else { 1 };
            if len > max {
                break;
            }
        }
        (&msg[..cut], true)
    };
    if breaks == 0 {
        out.extend_from_slice(msg);
        return truncated;
    }
    out.reserve(msg.len() + breaks);
    let mut from = 0;
    for i in memchr::memchr2_iter(b'\n', b'\r', msg) {
        out.extend_from_slice(&msg[from..i]);
        out.extend_from_slice(if msg[i] == b'\n' { b"\\n" } else { b"\\r" });
        from = i + 1;
    }
    out.extend_from_slice(&msg[from..]);
    truncated
}

/// Appends `n` in decimal (itoa: what `write!(out, "{n}")` does, without the formatting
/// machinery).
#[inline]
pub fn write_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Framed messages of one batch in one buffer, with where each ends (UDP sends them one
/// datagram each; TCP writes the whole buffer at once).
#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    ends: Vec<usize>,
    /// Bytes left before the message being written for its octet count (`LEN SP`).
    room: usize,
    /// Digits of the last octet count: the room left for the next.
    digits: usize,
}

impl Batch {
    /// An empty batch that writes into `buf` (one of the process's [`buffers`]).
    pub fn with_buffer(mut buf: Vec<u8>) -> Batch {
        buf.clear();
        Batch {
            buf,
            ends: Vec::new(),
            room: 0,
            digits: 0,
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Appends `msg` framed by `framing`, or as-is (a datagram) when `framing` is `None`,
    /// cut to `max` bytes (see [`Framing::write`]). Returns whether it was cut.
    pub fn push(&mut self, framing: Option<Framing>, msg: &[u8], max: usize) -> bool {
        let truncated = match framing {
            Some(f) => f.write(&mut self.buf, msg, max),
            None => {
                let cut = utf8_cut(msg, max);
                self.buf.extend_from_slice(&msg[..cut]);
                cut < msg.len()
            }
        };
        self.ends.push(self.buf.len());
        truncated
    }

    /// What [`Batch::push`] does with the message `write` appends, without first building
    /// it elsewhere when that changes nothing (see [`Batch::finish`]). Returns whether it
    /// was cut.
    pub fn push_formatted(
        &mut self,
        framing: Option<Framing>,
        max: usize,
        scratch: &mut Vec<u8>,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let start = self.begin(framing);
        write(&mut self.buf);
        self.finish(start, framing, max, scratch, true)
    }

    /// Starts a message: returns where to write it into `buf` (then call
    /// [`Batch::finish`], or [`Batch::abandon`]). An octet-counted message starts after room
    /// for a count as long as the last one, so that it rarely has to move.
    #[inline]
    pub fn begin(&mut self, framing: Option<Framing>) -> usize {
        self.room = match framing {
            Some(Framing::OctetCounting) => self.digits.max(1) + 1,
            _ => 0,
        };
        self.buf.resize(self.buf.len() + self.room, b' ');
        self.buf.len()
    }

    /// Drops the message begun at `start`.
    pub fn abandon(&mut self, start: usize) {
        self.buf.truncate(start - self.room);
    }

    /// Frames the message written into `buf` from `start` (what [`Batch::begin`] returned)
    /// as [`Batch::push`] would: an LF-framed message with no CR or LF and a datagram stay
    /// where they are (a datagram cut in place), an octet-counted one gets its count in the
    /// room before it, and only LF-framed ones that need escaping or cutting are moved to
    /// `scratch` and framed from there. Returns whether it was cut. `may_break`: false when
    /// the writer knows that the message holds no CR or LF, which is then not searched for.
    #[inline]
    pub fn finish(
        &mut self,
        start: usize,
        framing: Option<Framing>,
        max: usize,
        scratch: &mut Vec<u8>,
        may_break: bool,
    ) -> bool {
        let msg = &self.buf[start..];
        let truncated = match framing {
            Some(Framing::Lf) if msg.len() <= max && !(may_break && has_break(msg)) => {
                self.buf.push(b'\n');
                false
            }
            None => {
                let (len, cut) = (msg.len(), utf8_cut(msg, max));
                self.buf.truncate(start + cut);
                cut < len
            }
            Some(Framing::OctetCounting) => {
                // `LEN SP MSG` in the room left by `begin`; the message moves only when its
                // count has another number of digits than the last one.
                let (len, cut) = (msg.len(), utf8_cut(msg, max));
                let mut digits = itoa::Buffer::new();
                let count = digits.format(cut).as_bytes();
                let head = start - self.room;
                let at = head + count.len() + 1;
                self.buf.truncate(start + cut);
                if at != start {
                    if at > start {
                        self.buf.resize(at + cut, 0);
                    }
                    self.buf.copy_within(start..start + cut, at);
                    self.buf.truncate(at + cut);
                }
                self.buf[head..at - 1].copy_from_slice(count);
                self.buf[at - 1] = b' ';
                self.digits = count.len();
                cut < len
            }
            Some(f) => {
                scratch.clear();
                scratch.extend_from_slice(msg);
                self.buf.truncate(start);
                f.write(&mut self.buf, scratch, max)
            }
        };
        self.ends.push(self.buf.len());
        truncated
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each message's bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let slice = &self.buf[start..end];
            start = end;
            slice
        })
    }
}

/// The buffer goes back to the process's [`buffers`] for the next batch.
impl Drop for Batch {
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(f: Framing, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(!f.write(&mut out, msg, usize::MAX));
        out
    }

    fn capped(f: Option<Framing>, msg: &str, max: usize) -> (String, bool) {
        let mut b = Batch::default();
        let cut = b.push(f, msg.as_bytes(), max);
        (String::from_utf8(std::mem::take(&mut b.buf)).unwrap(), cut)
    }

    #[test]
    fn truncation_keeps_whole_characters_and_escapes() {
        // "é" is 2 bytes, "中" 3: a cut never splits them.
        assert_eq!(capped(None, "aé中b", 2), ("a".into(), true));
        assert_eq!(capped(None, "aé中b", 3), ("aé".into(), true));
        assert_eq!(capped(None, "aé中b", 5), ("aé".into(), true));
        assert_eq!(capped(None, "aé中b", 6), ("aé中".into(), true));
        assert_eq!(capped(None, "aé中b", 7), ("aé中b".into(), false));
        assert_eq!(
            capped(Some(Framing::OctetCounting), "aé中b", 4),
            ("3 aé".into(), true)
        );
        // LF framing counts the escaped size and never cuts an escape in half.
        assert_eq!(
            capped(Some(Framing::Lf), "a\nb", 4),
            ("a\\nb\n".into(), false)
        );
        assert_eq!(
            capped(Some(Framing::Lf), "a\nb", 3),
            ("a\\n\n".into(), true)
        );
        assert_eq!(capped(Some(Framing::Lf), "a\nb", 2), ("a\n".into(), true));
        assert_eq!(
            capped(Some(Framing::Lf), "é\r\n", 5),
            ("é\\r\n".into(), true)
        );
        assert_eq!(capped(Some(Framing::Lf), "é", 1), ("\n".into(), true));
    }

    #[test]
    fn lf_framing_escapes_cr_and_lf_so_nothing_splits() {
        assert_eq!(framed(Framing::Lf, b"plain"), b"plain\n");
        assert_eq!(
            framed(Framing::Lf, b"line1\nline2\r\nend\n"),
            b"line1\\nline2\\r\\nend\\n\n"
        );
        let out = framed(Framing::Lf, "é\n中文".as_bytes());
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(out, "é\\n中文\n".as_bytes());
    }

    #[test]
    fn octet_counting_counts_bytes_and_keeps_the_message() {
        assert_eq!(framed(Framing::OctetCounting, b"a\nb"), b"3 a\nb");
        assert_eq!(
            framed(Framing::OctetCounting, "é".as_bytes()),
            "2 é".as_bytes()
        );
        assert_eq!(framed(Framing::OctetCounting, b""), b"0 ");
    }

    #[test]
    fn batch_keeps_message_boundaries() {
        let mut b = Batch::default();
        b.push(None, b"one", 100);
        b.push(None, b"", 100);
        b.push(Some(Framing::Lf), b"two", 100);
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![&b"one"[..], b"", b"two\n"]
        );
        b.clear();
        assert!(b.is_empty() && b.buf.is_empty());
    }

    #[test]
    fn formatting_in_place_frames_exactly_as_push() {
        let messages = [
            "",
            "<14>1 - - - - - plain",
            "two\nlines",
            "cr\r\nlf\n",
            "\n",
            "é1234567",
            "12345678é",
            "ünïcödé ünïcödé ünïcödé",
            &"ab".repeat(60),
            &"é\n".repeat(400),
        ];
        let framings = [None, Some(Framing::Lf), Some(Framing::OctetCounting)];
        for framing in framings {
            for max in [0, 1, 5, 8, 9, 10, 11, 64, 100, 1000, usize::MAX] {
                let (mut want, mut got) = (Batch::default(), Batch::default());
                let mut scratch = Vec::new();
                for m in messages {
                    let a = want.push(framing, m.as_bytes(), max);
                    let b = got.push_formatted(framing, max, &mut scratch, |out| {
                        out.extend_from_slice(m.as_bytes())
                    });
                    assert_eq!(a, b, "{framing:?} max {max} {m:?}");
                }
                assert_eq!(got.buf, want.buf, "{framing:?} max {max}");
                assert_eq!(got.ends, want.ends, "{framing:?} max {max}");
            }
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!(Framing::parse("LF"), Some(Framing::Lf));
        assert_eq!(
            Framing::parse("octet-counting"),
            Some(Framing::OctetCounting)
        );
        assert_eq!(Framing::parse("crlf"), None);
    }
}
