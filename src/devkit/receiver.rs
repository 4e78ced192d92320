//! A minimal syslog receiver over TCP for the demo and for trying the function by hand. Each
//! frame, octet-counted or LF-terminated (told apart by its first byte, as rsyslog does), is
//! handed to a callback. It is no SIEM: the tests use a real rsyslog.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Called with each frame's message (without count or trailer).
pub type OnFrame = Arc<dyn Fn(Vec<u8>) + Send + Sync>;

/// Largest frame accepted.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Accepts connections on `listener` forever, calling `on_frame` for every message.
pub async fn serve(listener: TcpListener, on_frame: OnFrame) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let on_frame = on_frame.clone();
        tokio::spawn(async move {
            let _ = read_frames(stream, on_frame).await;
        });
    }
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn spawn(addr: SocketAddr, on_frame: OnFrame) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, on_frame));
    Ok(bound)
}

async fn read_frames(stream: TcpStream, on_frame: OnFrame) -> std::io::Result<()> {
    let mut r = BufReader::new(stream);
    loop {
        let first = match r.fill_buf().await?.first() {
            None => return Ok(()),
            Some(b) => *b,
        };
        if first.is_ascii_digit() {
            let mut len = Vec::new();
            r.read_until(b' ', &mut len).await?;
            let n: usize = std::str::from_utf8(len.trim_ascii_end())
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&n| n <= MAX_FRAME)
                .ok_or_else(|| std::io::Error::other("bad octet count"))?;
            let mut msg = vec![0u8; n];
            r.read_exact(&mut msg).await?;
            on_frame(msg);
        } else {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            on_frame(line);
        }
    }
}
