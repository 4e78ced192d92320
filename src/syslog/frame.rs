//! Stream framing (RFC 6587): LF-terminated or octet-counted.
//!
//! With LF framing a CR or LF inside the message would split it at the receiver, so they are
//! written as the two-character escapes `\r` and `\n`. Octet counting (`LEN SP MSG`, the only
//! framing RFC 5425 allows over TLS) sends the message unchanged.

use std::io::Write;

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

    /// Appends `msg`, framed, to `out`.
    pub fn write(self, out: &mut Vec<u8>, msg: &[u8]) {
        match self {
            Framing::Lf => {
                out.reserve(msg.len() + 1);
                let mut start = 0;
                for (i, &b) in msg.iter().enumerate() {
                    let escape: &[u8] = match b {
                        b'\n' => b"\\n",
                        b'\r' => b"\\r",
                        _ => continue,
                    };
                    out.extend_from_slice(&msg[start..i]);
                    out.extend_from_slice(escape);
                    start = i + 1;
                }
                out.extend_from_slice(&msg[start..]);
                out.push(b'\n');
            }
            Framing::OctetCounting => {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{} ", msg.len());
                out.extend_from_slice(msg);
            }
        }
    }
}

/// Framed messages of one batch in one buffer, with where each ends (UDP sends them one
/// datagram each; TCP writes the whole buffer at once).
#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Appends `msg` framed by `framing`, or as-is (a datagram) when `framing` is `None`.
    pub fn push(&mut self, framing: Option<Framing>, msg: &[u8]) {
        match framing {
            Some(f) => f.write(&mut self.buf, msg),
            None => self.buf.extend_from_slice(msg),
        }
        self.ends.push(self.buf.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(f: Framing, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        f.write(&mut out, msg);
        out
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
        b.push(None, b"one");
        b.push(None, b"");
        b.push(Some(Framing::Lf), b"two");
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![&b"one"[..], b"", b"two\n"]
        );
        b.clear();
        assert!(b.is_empty() && b.buf.is_empty());
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
