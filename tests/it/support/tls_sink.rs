//! A TLS syslog receiver (rustls) that tells how each connection ended: with the client's
//! `close_notify` alert (a clean close, as RFC 5425 requires), or without one (the TCP
//! connection just closed or reset). rsyslog and syslog-ng do not report it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client sent `close_notify`.
    CloseNotify,
    /// Anything else, with the error seen.
    Unclean(String),
}

pub struct TlsSink {
    port: u16,
    endings: Arc<Mutex<Vec<Ending>>>,
}

/// A TLS server side with `pki`'s `server.pem` and `server.key` (see
/// [`super::daemon::make_pki`]).
pub fn acceptor(pki: &Path) -> tokio_rustls::TlsAcceptor {
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(pki.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

impl TlsSink {
    /// Listens on a free loopback port with `pki`'s `server.pem` and `server.key` (see
    /// [`super::daemon::make_pki`]).
    pub async fn start(pki: &Path) -> TlsSink {
        let acceptor = acceptor(pki);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endings: Arc<Mutex<Vec<Ending>>> = Arc::default();
        let record = endings.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 64 * 1024];
                    // rustls answers Ok(0) only after close_notify; a bare TCP close is an
                    // UnexpectedEof error.
                    let ending = loop {
                        match tls.read(&mut buf).await {
                            Ok(0) => break Ending::CloseNotify,
                            Ok(_) => continue,
                            Err(e) => break Ending::Unclean(e.to_string()),
                        }
                    };
                    record.lock().unwrap().push(ending);
                });
            }
        });
        TlsSink { port, endings }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (up to `timeout`) until `n` connections have ended; returns how they ended.
    pub async fn wait_for_endings(&self, n: usize, timeout: Duration) -> Vec<Ending> {
        let start = Instant::now();
        loop {
            let endings = self.endings.lock().unwrap().clone();
            if endings.len() >= n || start.elapsed() >= timeout {
                return endings;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
