//! A TCP proxy between the function and a receiver that resets the function's connection once,
//! with data in flight, as a middlebox or a network fault would: the bytes its TCP
//! acknowledged all reach the receiver, the rest never does.
//!
//! The first connection is forwarded until about `cut_after` bytes have gone through; then
//! the proxy stops reading, so the function's bytes pile up unacknowledged in its send queue
//! (the proxy's receive buffer is kept small), waits until nothing more arrives, forwards
//! what its own kernel had already acknowledged (read with `MSG_PEEK`, so that reading opens
//! no window for more), and resets the connection (RST). Later connections are forwarded
//! untouched. TLS passes through as bytes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The proxy's receive buffer: small, so that what its TCP acknowledges stays a small part of
/// what the function has in flight.
const RECEIVE_BUFFER: u32 = 32 * 1024;
/// How long nothing must arrive after the proxy stopped reading before it resets.
const SETTLE: Duration = Duration::from_millis(300);

pub struct ResetProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    upstream: SocketAddr,
    cut_after: u64,
    /// The one reset happened.
    reset: AtomicBool,
    connections: AtomicU64,
    /// Bytes forwarded on the cut connection.
    forwarded_before_reset: AtomicU64,
}

impl Drop for ResetProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ResetProxy {
    /// Listens on a free loopback port and forwards to `upstream`; the first connection is
    /// reset after about `cut_after` bytes (`u64::MAX`: once everything sent has arrived and
    /// nothing more comes).
    pub async fn start(upstream: SocketAddr, cut_after: u64) -> ResetProxy {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(RECEIVE_BUFFER).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(64).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            cut_after,
            reset: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            forwarded_before_reset: AtomicU64::new(0),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let first = shared.connections.fetch_add(1, Ordering::SeqCst) == 0;
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(state.upstream).await else {
                        return;
                    };
                    if first {
                        cut(client, upstream, &state).await;
                    } else {
                        pass(client, upstream).await;
                    }
                });
            }
        });
        ResetProxy { addr, state, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Whether the connection was reset.
    pub fn was_reset(&self) -> bool {
        self.state.reset.load(Ordering::SeqCst)
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Bytes the cut connection delivered to the receiver before the reset.
    pub fn forwarded_before_reset(&self) -> u64 {
        self.state.forwarded_before_reset.load(Ordering::SeqCst)
    }
}

/// Forwards both ways until either side closes.
async fn pass(mut client: TcpStream, mut upstream: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

async fn cut(client: TcpStream, upstream: TcpStream, state: &State) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_upstream, mut to_upstream) = upstream.into_split();
    // The receiver's answers (TLS handshake) go back untouched, until the reset.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let back = tokio::spawn(async move {
        tokio::select! {
            _ = tokio::io::copy(&mut from_upstream, &mut to_client) => {}
            _ = stopped => {}
        }
        to_client
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut forwarded = 0u64;
    // Forward until the cut point (or, with u64::MAX, until the function falls silent).
    loop {
        let read = if state.cut_after == u64::MAX {
            match tokio::time::timeout(SETTLE, from_client.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => break,
            }
        } else {
            from_client.read(&mut buf).await
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to_upstream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        forwarded += n as u64;
        if forwarded >= state.cut_after {
            break;
        }
    }
    // Stop reading; wait until the function's bytes stop arriving (the window is full, or
    // it has nothing more to send).
    let mut waiting = 0usize;
    loop {
        tokio::time::sleep(SETTLE).await;
        let peek = from_client.peek(&mut buf);
        let now = match tokio::time::timeout(Duration::from_millis(20), peek).await {
            Ok(Ok(n)) => n,
            _ => 0,
        };
        if now == waiting {
            break;
        }
        waiting = now;
    }
    // What the proxy's TCP acknowledged reaches the receiver; nothing else does.
    let _ = to_upstream.write_all(&buf[..waiting]).await;
    forwarded += waiting as u64;
    let _ = to_upstream.shutdown().await;
    state
        .forwarded_before_reset
        .store(forwarded, Ordering::SeqCst);
    state.reset.store(true, Ordering::SeqCst);
    // Reset the function's connection: SO_LINGER 0, then close.
    let _ = stop.send(());
    if let Ok(to_client) = back.await {
        if let Ok(client) = from_client.reunite(to_client) {
            let _ = client.set_zero_linger();
            drop(client);
        }
    }
}
