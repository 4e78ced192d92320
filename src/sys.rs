//! The crate's only `unsafe` code (the rest of the crate denies it), two small functions:
//!
//! - [`unacknowledged`]: what the receiver's TCP has acknowledged, the one system call
//!   delivery needs that neither std nor tokio offers;
//! - [`ascii_text`]: ASCII bytes as a `str` without a second UTF-8 validation.
//!
//! A write to a TCP socket returns once the kernel has the bytes, long before the receiver
//! has them: a connection reset afterwards loses whatever was still queued, and the writer is
//! never told. Linux's `SIOCOUTQ` ioctl (tcp(7)) gives the bytes of a socket's send queue that
//! the peer has not acknowledged yet, sent or not; bytes written minus that many have reached
//! the receiver's TCP. std, tokio and socket2 have no call for it, so this module wraps it,
//! once, with the `libc` binding the tree already has.

use std::borrow::Cow;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;

/// Bytes written to `socket` that its peer has not acknowledged (unsent included).
pub fn unacknowledged(socket: &impl AsFd) -> io::Result<u64> {
    let fd = socket.as_fd();
    let mut queued: libc::c_int = 0;
    // SIOCOUTQ is TIOCOUTQ on Linux (linux/sockios.h); libc names only the latter.
    // SAFETY: the request writes one `c_int` through the pointer, which points at `queued`,
    // alive and writable for the whole call; `fd` is borrowed from a live socket, so it
    // cannot be closed or reused during the call.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(queued).unwrap_or(0))
}

/// Text of a key or value: borrowed when it is UTF-8, else converted lossily.
///
/// Most keys and values are ASCII. `is_ascii` checks eight bytes at a time; a full UTF-8
/// validation (`std::str::from_utf8`) of the same bytes costs 14 % more CPU per log over the
/// whole path (docs/performance.md, "Unsafe code").
#[inline]
pub fn ascii_text(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // SAFETY: checked on the line above: every byte is ASCII, and ASCII is valid UTF-8.
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    #[test]
    fn counts_what_the_peer_has_not_acknowledged() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut reader, _) = listener.accept().unwrap();
        assert_eq!(unacknowledged(&writer).unwrap(), 0);

        // A reader that does not read: its window fills and the rest stays queued here.
        reader
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        writer.set_nonblocking(true).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0u64;
        loop {
            match writer.write(&chunk) {
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let queued = unacknowledged(&writer).unwrap();
        assert!(queued > 0 && queued <= written, "{queued} of {written}");

        // Once the reader has read everything, the peer's TCP has acknowledged it all.
        let mut buf = vec![0u8; 1 << 20];
        let mut read = 0u64;
        while read < written {
            read += reader.read(&mut buf).unwrap() as u64;
        }
        let start = Instant::now();
        while unacknowledged(&writer).unwrap() != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "never acknowledged"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn text_is_borrowed_when_valid_and_replaced_when_not() {
        assert!(matches!(ascii_text(b"plain"), Cow::Borrowed("plain")));
        assert!(matches!(
            ascii_text("日志 é".as_bytes()),
            Cow::Borrowed("日志 é")
        ));
        assert_eq!(ascii_text(b"\xff ok \xc3"), "\u{fffd} ok \u{fffd}");
        assert!(matches!(ascii_text(b""), Cow::Borrowed("")));
    }

    #[test]
    fn a_descriptor_that_is_no_socket_is_an_error() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(unacknowledged(&file).is_err());
    }
}
