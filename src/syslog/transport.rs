//! Carrying frames to the receiver: TCP (a batch of frames in one large write) or UDP (one
//! message per datagram). Every operation is bounded by the invocation deadline.

use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::frame::Batch;
use super::tls::Tls;
use crate::sys;

/// A byte stream both ways (TCP or TLS over TCP).
trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// The transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Tls,
    Udp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "tls" => Some(Protocol::Tls),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// 514 for tcp and udp, 6514 for tls (RFC 5425).
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Tls => 6514,
            Protocol::Tcp | Protocol::Udp => 514,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Udp => "udp",
        }
    }
}

/// A failure to deliver to the receiver.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to syslog receiver {target} over {protocol}: {detail}")]
    Connect {
        target: String,
        protocol: &'static str,
        detail: String,
    },
    #[error("writing to syslog receiver {target} failed: {detail}")]
    Write { target: String, detail: String },
    #[error("syslog receiver {target} did not accept data before the function timeout")]
    Timeout { target: String },
    #[error("syslog receiver {target} had not acknowledged the last {queued} bytes written when the function timeout came")]
    Unacknowledged { target: String, queued: u64 },
    /// UDP pacing cannot send what is left before the deadline: failing now is better than
    /// being killed by FC's timeout half way.
    #[error("UDP pacing at {rate} messages/s needs {needed_ms} ms to send the next {messages} messages to {target}, more than the {left_ms} ms left before the function timeout: raise SYSLOG_UDP_RATE (if the receiver keeps up) or the function timeout, or ship fewer logs per invocation")]
    Pacing {
        target: String,
        rate: u32,
        messages: usize,
        needed_ms: u128,
        left_ms: u128,
    },
    /// TLS refused on either side (certificate not trusted, wrong name, client certificate
    /// refused): trying again cannot help.
    #[error("TLS with syslog receiver {target} refused: {detail}")]
    TlsRefused { target: String, detail: String },
}

impl SendError {
    /// Worth reconnecting and trying again (everything but a TLS refusal).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            SendError::TlsRefused { .. } | SendError::Pacing { .. }
        )
    }
}

/// A TLS failure inside an I/O error: certificate problems and refusal alerts.
fn tls_refusal(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::AlertReceived(_) => Some(inner.to_string()),
        _ => None,
    }
}

/// Longest wait for a TCP connection or a TLS handshake, whatever the deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `finish` waits for the receiver to close its side.
const CLOSE_WAIT: Duration = Duration::from_millis(500);
/// How long a new TLS connection is watched for a refusal before data is written.
const REFUSAL_WAIT: Duration = Duration::from_millis(150);

fn target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An open connection (or connected UDP socket) to the receiver.
pub struct Sender {
    target: String,
    /// `protocol://host:port`: which pooled connections can serve a destination.
    key: String,
    inner: Inner,
}

enum Inner {
    Tcp(Counted),
    Tls(Box<TlsStream<Counted>>),
    Udp(UdpSocket, Pacer),
}

/// A TCP connection that counts the bytes written into it. Under TLS these are the records'
/// bytes: what the receiver's TCP acknowledges is counted in them, not in the messages'.
struct Counted {
    stream: TcpStream,
    written: u64,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.written += n as u64;
        }
        result
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// How long [`Sender::confirm`] watches a connection whose every byte was acknowledged for a
/// reset or a close, before calling the bytes delivered.
const CONFIRM_DRAIN: Duration = Duration::from_millis(20);
/// Longest pause between two looks at the send queue while waiting for acknowledgements.
const CONFIRM_POLL_MAX: Duration = Duration::from_millis(20);

/// Spaces UDP datagrams to at most `rate` a second. A receiver reads datagrams from a socket
/// buffer of a few hundred KiB; what arrives while it is full is dropped without a word, so
/// sending as fast as the kernel takes them loses most of a large range.
#[derive(Debug)]
struct Pacer {
    /// Messages per second; 0: not paced.
    rate: u32,
    /// When the next datagram is due.
    next: Instant,
}

/// How far ahead of its time a datagram may go: the timer's resolution is a millisecond, so
/// datagrams go out in bursts of about this long's worth.
const PACING_SLACK: Duration = Duration::from_millis(2);
/// Longest wait between attempts when the kernel has no buffer for a datagram.
const NO_BUFFER_WAIT_MAX: Duration = Duration::from_millis(50);

impl Pacer {
    fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.rate.max(1)
    }

    /// Fails when `messages` more datagrams cannot go out before `deadline` at this rate.
    fn check(&self, target: &str, messages: usize, deadline: Instant) -> Result<(), SendError> {
        if self.rate == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let start = self.next.max(now);
        let needed = self.interval() * u32::try_from(messages).unwrap_or(u32::MAX);
        if start + needed > deadline {
            return Err(SendError::Pacing {
                target: target.to_string(),
                rate: self.rate,
                messages,
                needed_ms: (start + needed - now).as_millis(),
                left_ms: deadline.saturating_duration_since(now).as_millis(),
            });
        }
        Ok(())
    }

    /// Waits until the next datagram is due.
    async fn wait(&mut self) {
        if self.rate == 0 {
            return;
        }
        let now = Instant::now();
        if self.next > now + PACING_SLACK {
            tokio::time::sleep_until(self.next).await;
        }
        // A timer that fired late is caught up within the slack; time not used beyond it is
        // not saved up for a burst later.
        let earliest = now.checked_sub(PACING_SLACK).unwrap_or(now);
        self.next = self.next.max(earliest) + self.interval();
    }
}

/// Sends one datagram. A full socket buffer (`EAGAIN`, which tokio waits out) or no buffer
/// space in the kernel (`ENOBUFS`, a full device queue) is waited out and the datagram sent
/// again, never dropped.
async fn send_datagram(socket: &UdpSocket, message: &[u8]) -> io::Result<()> {
    let mut wait = Duration::from_millis(1);
    loop {
        match socket.send(message).await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::ENOBUFS)
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(NO_BUFFER_WAIT_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Sender {
    /// Resolves and connects to `host:port`; over TLS also completes the handshake with
    /// `tls` (which `Protocol::Tls` requires).
    pub async fn connect(
        host: &str,
        port: u16,
        protocol: Protocol,
        tls: Option<&Tls>,
        deadline: Instant,
    ) -> Result<Sender, SendError> {
        let target = target(host, port);
        let key = Sender::key_for(host, port, protocol, tls);
        let connect_err = |detail: String| SendError::Connect {
            target: target.clone(),
            protocol: protocol.as_str(),
            detail,
        };
        let limit = deadline.min(Instant::now() + CONNECT_TIMEOUT);
        let inner = match protocol {
            Protocol::Tcp | Protocol::Tls => {
                let stream = timeout_at(limit, TcpStream::connect((host, port)))
                    .await
                    .map_err(|_| connect_err("timed out".into()))?
                    .map_err(|e| connect_err(e.to_string()))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| connect_err(e.to_string()))?;
                let stream = Counted { stream, written: 0 };
                match (protocol, tls) {
                    (Protocol::Tls, Some(tls)) => {
                        let connector = TlsConnector::from(tls.config.clone());
                        let limit = deadline.min(Instant::now() + CONNECT_TIMEOUT);
                        let stream =
                            timeout_at(limit, connector.connect(tls.server_name.clone(), stream))
                                .await
                                .map_err(|_| connect_err("the TLS handshake timed out".into()))?
                                .map_err(|e| match tls_refusal(&e) {
                                    Some(detail) => SendError::TlsRefused {
                                        target: target.clone(),
                                        detail: format!("handshake failed: {detail}"),
                                    },
                                    None => connect_err(format!("TLS handshake failed: {e}")),
                                })?;
                        let mut sender = Sender {
                            target: target.clone(),
                            key: key.clone(),
                            inner: Inner::Tls(Box::new(stream)),
                        };
                        sender.await_refusal(deadline).await?;
                        return Ok(sender);
                    }
                    (Protocol::Tls, None) => {
                        return Err(connect_err("no TLS configuration".into()));
                    }
                    _ => Inner::Tcp(stream),
                }
            }
            Protocol::Udp => {
                let addr = timeout_at(limit, tokio::net::lookup_host((host, port)))
                    .await
                    .map_err(|_| connect_err("name resolution timed out".into()))?
                    .map_err(|e| connect_err(e.to_string()))?
                    .next()
                    .ok_or_else(|| connect_err("the name has no address".into()))?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| connect_err(e.to_string()))?;
                socket
                    .connect(addr)
                    .await
                    .map_err(|e| connect_err(e.to_string()))?;
                Inner::Udp(
                    socket,
                    Pacer {
                        rate: 0,
                        next: Instant::now(),
                    },
                )
            }
        };
        Ok(Sender { target, key, inner })
    }

    /// Sends a batch of framed messages: one large write on TCP (flushed before it returns),
    /// one datagram per message on UDP.
    pub async fn send_batch(&mut self, batch: &Batch, deadline: Instant) -> Result<(), SendError> {
        let result = match self.stream() {
            Some(stream) => {
                timeout_at(deadline, async {
                    stream.write_all(&batch.buf).await?;
                    stream.flush().await
                })
                .await
            }
            None => {
                let Inner::Udp(socket, pacer) = &mut self.inner else {
                    unreachable!("only UDP has no stream")
                };
                pacer.check(&self.target, batch.len(), deadline)?;
                timeout_at(deadline, async {
                    for message in batch.iter() {
                        pacer.wait().await;
                        send_datagram(socket, message).await?;
                    }
                    Ok(())
                })
                .await
            }
        };
        self.check(result)
    }

    /// Paces UDP datagrams to at most `rate` a second (0: as fast as the kernel takes them);
    /// nothing on TCP and TLS, where the receiver's window paces the sender.
    pub fn pace(&mut self, rate: u32) {
        if let Inner::Udp(_, pacer) = &mut self.inner {
            pacer.rate = rate;
        }
    }

    /// Closes the sending side (over TLS with a `close_notify` alert first, as RFC 5425
    /// requires) and waits briefly for the receiver to close its side: a receiver that reset
    /// the connection (and so may have dropped data) is an error.
    pub async fn finish(mut self, deadline: Instant) -> Result<(), SendError> {
        let target = self.target.clone();
        let Some(stream) = self.stream() else {
            return Ok(());
        };
        let shut = timeout_at(deadline, stream.shutdown()).await;
        Self::outcome(&target, shut)?;
        let wait = deadline.min(Instant::now() + CLOSE_WAIT);
        let mut scratch = [0u8; 512];
        loop {
            match timeout_at(wait, stream.read(&mut scratch)).await {
                // Closed in turn, or still open: nothing says data was refused.
                Err(_) | Ok(Ok(0)) => return Ok(()),
                Ok(Ok(_)) => continue,
                // Closed without close_notify: what was flushed was read.
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                // A reset or a TLS alert (a refused client certificate, say): what was
                // written may have been dropped.
                Ok(Err(e)) => {
                    return Err(SendError::Write {
                        target,
                        detail: format!("the receiver refused the connection after the data was written ({e}); data may have been lost"),
                    })
                }
            }
        }
    }

    /// The TLS session once the handshake is done (the receiver's certificates, the version
    /// and cipher suite), for `sls-syslog check`; `None` over TCP and UDP.
    pub fn tls_session(&self) -> Option<&rustls::ClientConnection> {
        match &self.inner {
            Inner::Tls(stream) => Some(stream.get_ref().1),
            Inner::Tcp(_) | Inner::Udp(..) => None,
        }
    }

    /// The address connected to (TCP, TLS or UDP).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.inner {
            Inner::Tcp(s) => s.stream.peer_addr().ok(),
            Inner::Tls(s) => s.get_ref().0.stream.peer_addr().ok(),
            Inner::Udp(s, _) => s.peer_addr().ok(),
        }
    }

    /// `protocol://host:port`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key of connections to `host:port` over `protocol`.
    /// What a kept connection is matched on: protocol, receiver and, for TLS, the settings
    /// it was verified under.
    pub fn key_for(host: &str, port: u16, protocol: Protocol, tls: Option<&Tls>) -> String {
        match tls.filter(|_| protocol == Protocol::Tls) {
            Some(t) => format!(
                "{}://{}#{:016x}",
                protocol.as_str(),
                target(host, port),
                t.fingerprint
            ),
            None => format!("{}://{}", protocol.as_str(), target(host, port)),
        }
    }

    /// True unless the receiver has closed or broken the connection (EOF, reset, a TLS
    /// alert). Checked without waiting before every write on a kept connection: writing into
    /// a half-closed TCP socket "succeeds" and the data is lost.
    pub fn is_open(&mut self) -> bool {
        let Some(stream) = self.stream() else {
            return true;
        };
        let mut scratch = [0u8; 256];
        let mut buf = ReadBuf::new(&mut scratch);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match Pin::new(stream).poll_read(&mut cx, &mut buf) {
            Poll::Pending => true,
            // A syslog receiver sends nothing; data is ignored, EOF is not.
            Poll::Ready(Ok(())) => !buf.filled().is_empty(),
            Poll::Ready(Err(_)) => false,
        }
    }

    /// After a TLS handshake: a receiver that refuses the client (a missing or untrusted
    /// client certificate under TLS 1.3) says so right after the handshake completes on our
    /// side. Waits briefly for that, so no data is written into a connection being refused.
    async fn await_refusal(&mut self, deadline: Instant) -> Result<(), SendError> {
        let target = self.target.clone();
        let Some(stream) = self.stream() else {
            return Ok(());
        };
        let wait = deadline.min(Instant::now() + REFUSAL_WAIT);
        let mut scratch = [0u8; 256];
        match timeout_at(wait, stream.read(&mut scratch)).await {
            Err(_) | Ok(Ok(1..)) => Ok(()),
            Ok(Ok(0)) => Err(SendError::Connect {
                target,
                protocol: "tls",
                detail: "the receiver closed the connection right after the TLS handshake (does it require a client certificate?)".into(),
            }),
            Ok(Err(e)) => Err(match tls_refusal(&e) {
                Some(detail) => SendError::TlsRefused {
                    target,
                    detail: format!("the receiver refused the session: {detail}"),
                },
                None => SendError::Connect {
                    target,
                    protocol: "tls",
                    detail: format!("the receiver dropped the TLS session: {e}"),
                },
            }),
        }
    }

    /// The TCP connection under TCP or TLS; `None` on UDP.
    fn tcp(&self) -> Option<&Counted> {
        match &self.inner {
            Inner::Tcp(s) => Some(s),
            Inner::Tls(s) => Some(s.get_ref().0),
            Inner::Udp(..) => None,
        }
    }

    /// True for TCP and TLS, whose receiver acknowledges what it gets; false for UDP.
    pub fn is_stream(&self) -> bool {
        self.tcp().is_some()
    }

    /// Bytes written into the connection's TCP so far (under TLS, the records' bytes); 0 on
    /// UDP.
    pub fn written(&self) -> u64 {
        self.tcp().map_or(0, |t| t.written)
    }

    /// How many of [`Sender::written`]'s bytes the receiver's TCP has acknowledged; `None` on
    /// UDP, or when the kernel cannot tell (the socket already reset).
    pub fn acknowledged(&self) -> Option<u64> {
        let tcp = self.tcp()?;
        let queued = sys::unacknowledged(&tcp.stream).ok()?;
        Some(tcp.written.saturating_sub(queued))
    }

    /// Waits until the receiver's TCP has acknowledged every byte written, then watches the
    /// connection a moment longer for a reset or a close: only then is what was written
    /// delivered, as far as TCP can tell. A reset or close before that, or acknowledgements
    /// still missing at `deadline`, is an error: the caller reconnects and writes again what
    /// was not acknowledged. Nothing to wait for on UDP.
    pub async fn confirm(&mut self, deadline: Instant) -> Result<(), SendError> {
        let Some(tcp) = self.tcp() else {
            return Ok(());
        };
        let target = self.target.clone();
        let written = tcp.written;
        let broken = |detail: String| SendError::Write {
            target: target.clone(),
            detail,
        };
        let mut pause = Duration::from_millis(1);
        loop {
            if !self.is_open() {
                let queued = self.tcp().map(|t| sys::unacknowledged(&t.stream));
                let unacked = match queued {
                    Some(Ok(n)) => format!("{n} of {written} bytes"),
                    _ => format!("some of {written} bytes"),
                };
                return Err(broken(format!(
                    "the receiver closed or reset the connection with {unacked} not acknowledged"
                )));
            }
            let queued = match self.tcp().map(|t| sys::unacknowledged(&t.stream)) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(broken(format!("cannot read the send queue: {e}"))),
                None => 0,
            };
            if queued == 0 {
                break;
            }
            if Instant::now() + pause >= deadline {
                return Err(SendError::Unacknowledged {
                    target: target.clone(),
                    queued,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(CONFIRM_POLL_MAX);
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + CONFIRM_DRAIN)).await;
        if !self.is_open() {
            return Err(broken(
                "the receiver closed or reset the connection right after acknowledging the data; it may not have kept it".into(),
            ));
        }
        Ok(())
    }

    /// The byte stream of a TCP or TLS connection; `None` on UDP.
    fn stream(&mut self) -> Option<&mut dyn Duplex> {
        match &mut self.inner {
            Inner::Tcp(s) => Some(s),
            Inner::Tls(s) => Some(s.as_mut()),
            Inner::Udp(..) => None,
        }
    }

    fn check(
        &self,
        result: Result<io::Result<()>, tokio::time::error::Elapsed>,
    ) -> Result<(), SendError> {
        Self::outcome(&self.target, result)
    }

    fn outcome(
        target: &str,
        result: Result<io::Result<()>, tokio::time::error::Elapsed>,
    ) -> Result<(), SendError> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Write {
                target: target.to_string(),
                detail: e.to_string(),
            }),
            Err(_) => Err(SendError::Timeout {
                target: target.to_string(),
            }),
        }
    }
}
