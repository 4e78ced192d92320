//! The SLS HTTP connections (`sls::Http`) against a real TLS server: `https://` verified
//! against a CA, keep-alive connections reused, a connection the server closed while idle
//! passed over (closed after its answer, or announced by `Connection: close`), a server whose
//! certificate the CA did not sign refused.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderValue, HOST};
use sls_syslog::sls::http::{Http, HttpError, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use rustls_pki_types::pem::PemObject;
use support::daemon::make_pki;

/// A TLS server that answers each request on a connection with `body`, and closes a
/// connection after `per_connection` answers (saying `Connection: close` in the last one
/// when `announce`). Counts the connections it accepted.
struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

async fn serve(
    pki: &std::path::Path,
    body: &'static str,
    per_connection: usize,
    announce: bool,
) -> Server {
    let acceptor = support::tls_sink::acceptor(pki);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                for n in 1..=per_connection {
                    // One request head (a GET has no body).
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let close = if announce && n == per_connection {
                        "connection: close\r\n"
                    } else {
                        ""
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{close}\r\n{body}",
                        body.len()
                    );
                    if tls.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    Server { port, accepted }
}

fn client_config(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HOST, HeaderValue::from_static("localhost"));
    h
}

async fn get(http: &Http, origin: &Origin) -> Result<String, HttpError> {
    let response = http.get(origin, "/logstores/x", headers()).await?;
    assert_eq!(response.status, 200);
    let mut body = Vec::new();
    assert!(response.read_body(1024, &mut body).await?);
    Ok(String::from_utf8(body).unwrap())
}

/// A test PKI, a server with it and a client trusting its CA, for `host`; the PKI is removed
/// on drop.
struct Case {
    dir: std::path::PathBuf,
    server: Server,
    http: Http,
    origin: Origin,
}

impl Case {
    async fn new(host: &str, body: &'static str, per_connection: usize, announce: bool) -> Case {
        let dir = tempdir();
        make_pki(&dir.join("pki"), false);
        let server = serve(&dir.join("pki"), body, per_connection, announce).await;
        let http = Http::with_tls(client_config(&dir.join("pki/ca.pem")));
        let origin = Origin {
            https: true,
            host: host.into(),
            port: server.port,
        };
        Case {
            dir,
            server,
            http,
            origin,
        }
    }

    fn accepted(&self) -> usize {
        self.server.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn https_is_verified_kept_alive_and_a_closed_idle_connection_passed_over() {
    let c = Case::new("localhost", "hello", 2, false).await;
    // Two answers on the first connection.
    assert_eq!(get(&c.http, &c.origin).await.unwrap(), "hello");
    assert_eq!(get(&c.http, &c.origin).await.unwrap(), "hello");
    assert_eq!(c.accepted(), 1);
    // The server closed it after its second answer: the next request goes on a new one.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(get(&c.http, &c.origin).await.unwrap(), "hello");
    assert_eq!(c.accepted(), 2);

    // A client trusting another CA refuses the server.
    let other = Http::with_tls(client_config(&c.dir.join("pki/other-ca.pem")));
    let e = get(&other, &c.origin).await.unwrap_err();
    let HttpError::Network(e) = e else {
        panic!("{e:?}")
    };
    assert!(e.contains("TLS handshake"), "{e}");
    assert!(e.contains(&c.server.port.to_string()), "{e}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_cut_and_its_connection_not_reused() {
    let c = Case::new("127.0.0.1", "0123456789", 5, false).await;
    let response = c.http.get(&c.origin, "/", headers()).await.unwrap();
    let mut body = Vec::new();
    assert!(!response.read_body(4, &mut body).await.unwrap());
    assert_eq!(body, b"0123");
    assert_eq!(get(&c.http, &c.origin).await.unwrap(), "0123456789");
    assert_eq!(c.accepted(), 2);
}

#[tokio::test]
async fn an_answer_saying_connection_close_is_not_reused() {
    // One answer per connection, announced: each request, sent at once after the last
    // answer, needs a new connection and gets one.
    let c = Case::new("localhost", "once", 1, true).await;
    for n in 1..=3 {
        assert_eq!(get(&c.http, &c.origin).await.unwrap(), "once");
        assert_eq!(c.accepted(), n);
    }
}

/// Runs in a child process of this test binary: rustls-native-certs reads only
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` when they are set, and setting them here would change what
/// every other test in this process trusts.
#[test]
fn no_system_ca_certificates_is_a_setup_error_not_a_network_one() {
    const CHILD: &str = "SLS_SYSLOG_TEST_NO_SYSTEM_CA";
    if std::env::var_os(CHILD).is_some() {
        return no_system_ca_certificates_child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sls_http::no_system_ca_certificates_is_a_setup_error_not_a_network_one",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("SSL_CERT_FILE", "/nonexistent/sls-syslog-ca.pem")
        .env("SSL_CERT_DIR", "/nonexistent/sls-syslog-certs")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn no_system_ca_certificates_child() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = Origin {
        https: true,
        host: "127.0.0.1".into(),
        port: listener.local_addr().unwrap().port(),
    };
    match get(&Http::new(), &origin).await {
        Err(HttpError::Setup(e)) => assert!(e.contains("no CA certificates"), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

fn tempdir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sls-syslog-http-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
