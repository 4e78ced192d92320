//! The HTTP/1.1 connections PullLogs goes over: hyper's client connection, driven directly.
//!
//! A PullLogs answer is megabytes. Through a general client (reqwest) hyper read it into
//! buffers that grow to 408 KiB, a fresh one for each read while the last chunk was still
//! being copied out; the static (musl) build mmapped each, faulted it in page by page and
//! unmapped it again: 17 page faults per 1000 logs shipped, and TLB shootdowns between the
//! worker threads. Here hyper reads [`READ_BUF`] at a time (3 faults per 1000 logs, ~10% less
//! CPU per log at 1M logs); musl maps even a block that size on its own, so the function's
//! allocator keeps a few freed ones for the next read ([`crate::heap`]).
//!
//! What is kept from a general client: idle keep-alive connections reused by the next pull
//! and the next invocation (a connection the server closed while idle is passed over),
//! connect and TLS handshake timeouts, TLS verified against the system's CA certificates.
//! Not kept: HTTP proxies and redirects, which PullLogs does not use.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, CONTENT_LENGTH};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

/// Bytes hyper reads at a time; 32 KiB measured a little better than 64 KiB.
const READ_BUF: usize = 32 * 1024;
/// Longest a TCP connect (name lookup included) or a TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are closed rather than reused (SLS closes its side after
/// about a minute).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Most room asked for up front for a body from its `Content-Length` (a buffer that must grow
/// for it gets an eighth more, [`crate::buffers::reserve`]); a longer body grows it.
const RESERVE_MAX: usize = 16 * 1024 * 1024;
/// Idle connections kept (one per concurrent invocation is enough).
const MAX_IDLE: usize = 8;

/// Where requests go: the scheme, the host to connect to (and to verify in TLS), the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The process's connections to SLS. Clones share them.
#[derive(Clone, Default)]
pub struct Http {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    idle: Mutex<Vec<Idle>>,
    /// Built on first use (it reads the system's CA certificates), or given by a test.
    tls: tokio::sync::OnceCell<Arc<ClientConfig>>,
}

struct Idle {
    origin: Origin,
    sender: SendRequest<Empty<Bytes>>,
    since: Instant,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// It cannot be made from here (no CA certificates, a host TLS cannot name): trying
    /// again cannot help.
    Setup(String),
    /// The network or the server failed it: worth trying again.
    Network(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Setup(m) | HttpError::Network(m) => f.write_str(m),
        }
    }
}

/// An answer whose body is still to be read.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    body: Incoming,
    origin: Origin,
    /// The connection: back to the idle ones once the body has been read to its end.
    conn: SendRequest<Empty<Bytes>>,
    http: Http,
}

impl Http {
    pub fn new() -> Http {
        Http::default()
    }

    /// Verifying `https://` origins with `config` instead of the system's CA certificates.
    pub fn with_tls(config: Arc<ClientConfig>) -> Http {
        Http {
            inner: Arc::new(Inner {
                idle: Mutex::default(),
                tls: tokio::sync::OnceCell::new_with(Some(config)),
            }),
        }
    }

    /// Reads the system's CA certificates now (off the runtime's threads), so that the first
    /// `https://` pull does not wait for it.
    pub async fn load_tls(&self) -> Result<(), HttpError> {
        self.tls().await.map(|_| ())
    }

    /// `GET target` (path and query) from `origin` with `headers` (`Host` included), on an
    /// idle connection to `origin` if there is one. The error says what failed.
    pub async fn get(
        &self,
        origin: &Origin,
        target: &str,
        headers: HeaderMap,
    ) -> Result<Response, HttpError> {
        let mut request = hyper::Request::get(target)
            .body(Empty::new())
            .map_err(|e| HttpError::Setup(format!("invalid request target: {e}")))?;
        let failed = |e: &hyper::Error| {
            HttpError::Network(format!("the request to {origin} failed: {}", describe(e)))
        };
        *request.headers_mut() = headers;
        while let Some(mut sender) = self.take_idle(origin) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.response(response, origin, sender)),
                // Not written: the connection closed while idle; try the next.
                Err(mut e) => match e.take_message() {
                    Some(r) => request = r,
                    None => return Err(failed(&e.into_error())),
                },
            }
        }
        let mut sender = self.connect(origin).await?;
        let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
        Ok(self.response(response, origin, sender))
    }

    fn response(
        &self,
        response: hyper::Response<Incoming>,
        origin: &Origin,
        sender: SendRequest<Empty<Bytes>>,
    ) -> Response {
        let (parts, body) = response.into_parts();
        Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            origin: origin.clone(),
            conn: sender,
            http: self.clone(),
        }
    }

    fn take_idle(&self, origin: &Origin) -> Option<SendRequest<Empty<Bytes>>> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| c.since.elapsed() < IDLE_TIMEOUT && !c.sender.is_closed());
        let at = idle.iter().rposition(|c| c.origin == *origin)?;
        Some(idle.swap_remove(at).sender)
    }

    fn give_back(&self, origin: Origin, sender: SendRequest<Empty<Bytes>>) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push(Idle {
            origin,
            sender,
            since: Instant::now(),
        });
    }

    async fn tls(&self) -> Result<Arc<ClientConfig>, HttpError> {
        self.inner
            .tls
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(system_tls)
                    .await
                    .map_err(|e| format!("cannot load the system's CA certificates: {e}"))
                    .and_then(|r| r)
                    .map_err(HttpError::Setup)
            })
            .await
            .cloned()
    }

    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Empty<Bytes>>, HttpError> {
        let tcp = tcp(origin).await.map_err(HttpError::Network)?;
        if !origin.https {
            return handshake(tcp, origin).await;
        }
        let config = self.tls().await?;
        let name = ServerName::try_from(origin.host.clone())
            .map_err(|_| HttpError::Setup(format!("{:?} is not a TLS server name", origin.host)))?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        match tokio::time::timeout(CONNECT_TIMEOUT, tls).await {
            Err(_) => Err(HttpError::Network(format!(
                "the TLS handshake with {origin} timed out"
            ))),
            Ok(Err(e)) => Err(HttpError::Network(format!(
                "the TLS handshake with {origin} failed: {e}"
            ))),
            Ok(Ok(tls)) => handshake(tls, origin).await,
        }
    }
}

/// A TCP connection to one of the origin's addresses, in the order the resolver gives them,
/// each given a share of [`CONNECT_TIMEOUT`] (at least 2 s), so that one address that drops
/// packets does not keep the others from being tried.
async fn tcp(origin: &Origin) -> Result<tokio::net::TcpStream, String> {
    let lookup = tokio::net::lookup_host((origin.host.as_str(), origin.port));
    let addrs: Vec<std::net::SocketAddr> = match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await
    {
        Err(_) => return Err(format!("looking up {} timed out", origin.host)),
        Ok(Err(e)) => return Err(format!("cannot look up {}: {e}", origin.host)),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    let share = (CONNECT_TIMEOUT / addrs.len().max(1) as u32).max(Duration::from_secs(2));
    let mut last = format!("cannot connect to {origin}: the name has no address");
    for addr in addrs {
        match tokio::time::timeout(share, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => last = format!("cannot connect to {origin} ({addr}): {e}"),
            Err(_) => last = format!("connecting to {origin} ({addr}) timed out"),
        }
    }
    Err(last)
}

impl Response {
    /// `Content-Length`, when the answer has one.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }

    /// Reads the body into `out` (its contents replaced), at most `limit` bytes, and returns
    /// whether that was all of it (the rest of a longer body is not read, and its connection
    /// is closed).
    pub async fn read_body(mut self, limit: usize, out: &mut Vec<u8>) -> Result<bool, HttpError> {
        out.clear();
        if let Some(n) = self.content_length() {
            crate::buffers::reserve(out, (n as usize).min(limit).min(RESERVE_MAX));
        }
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(|e| {
                HttpError::Network(format!(
                    "reading the answer from {} failed: {}",
                    self.origin,
                    describe(&e)
                ))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = limit - out.len();
            if data.len() > room {
                out.extend_from_slice(&data[..room]);
                return Ok(false);
            }
            out.extend_from_slice(&data);
        }
        // All of it: the connection may carry the next request.
        self.http.give_back(self.origin, self.conn);
        Ok(true)
    }
}

async fn handshake<T>(io: T, origin: &Origin) -> Result<SendRequest<Empty<Bytes>>, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .read_buf_exact_size(Some(READ_BUF))
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| HttpError::Network(format!("HTTP with {origin} failed: {}", describe(&e))))?;
    // Ends when the connection closes or its sender is dropped; a failure shows in the
    // request that was on it.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// TLS for `https://` endpoints: TLS 1.3 and 1.2, the system's CA certificates.
fn system_tls() -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(format!(
            "the system has no CA certificates to verify an https:// SLS endpoint{why}"
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An error and its causes, on one line.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
