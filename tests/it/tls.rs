//! RFC 5425 over real TLS: rsyslog's gtls (GnuTLS) and ossl (OpenSSL) drivers, verification
//! failures, mutual TLS and a handshake that never completes.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sls_syslog::config::Settings;
use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::Account;
use support::function::*;
use support::rsyslog::Rsyslog;

fn tls_settings(vars: &[(&str, String)]) -> Settings {
    let mut map: HashMap<String, String> = [
        ("SYSLOG_HOST", "127.0.0.1".to_string()),
        ("SYSLOG_PROTOCOL", "tls".to_string()),
        ("SYSLOG_FACILITY", "local4".to_string()),
        ("SYSLOG_SEVERITY", "warning".to_string()),
        ("SYSLOG_HOSTNAME", "fc-instance.example.com".to_string()),
        ("SYSLOG_APP_NAME", "sls-syslog-test".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in vars {
        map.insert(k.to_string(), v.clone());
    }
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

fn path(p: std::path::PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

/// Ships a realistic range to `port` and checks every field of every message rsyslog parsed.
async fn ship_over(rx: &Rsyslog, port: u16, input: &str, extra: &[(&str, String)]) {
    let groups = sample::groups(4, 25, 9);
    let sls = start_sls(vec![("tls".into(), 0, groups.clone())]).await;
    let mut vars = vec![
        ("SYSLOG_PORT", port.to_string()),
        ("SYSLOG_TLS_CA", path(rx.ca_pem())),
    ];
    vars.extend(extra.iter().cloned());
    let f = start_function(tls_settings(&vars)).await;
    let a = invoke(f, &event(&sls, "tls", 0, 0, 4)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["logs"], 100);
    let received: Vec<_> = rx
        .wait_for(100, Duration::from_secs(20))
        .into_iter()
        .filter(|r| r.input == input)
        .collect();
    let logs = logs_of(&groups);
    assert_eq!(received.len(), logs.len());
    for (r, (g, l)) in received.iter().zip(logs) {
        assert_eq!(r.pri, "164");
        assert_eq!(
            r.timestamp,
            expected_timestamp(l.time, l.time_ns.unwrap_or(0))
        );
        assert_eq!(r.hostname, "fc-instance.example.com");
        assert_eq!(r.app_name, "sls-syslog-test");
        assert_eq!(
            (
                r.procid.as_str(),
                r.msgid.as_str(),
                r.structured_data.as_str()
            ),
            ("-", "-", "-")
        );
        // Octet counting is the TLS default: multi-line values arrive unchanged.
        assert_eq!(r.msg, expected_kv(g, l));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_gnutls_driver() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    ship_over(&rx, rx.tls_gtls_port(), "tls-gtls", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_openssl_driver() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    ship_over(&rx, rx.tls_ossl_port(), "tls-ossl", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_works_with_a_client_certificate() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let client = [
        ("SYSLOG_TLS_CERT", path(rx.client_cert())),
        (
            "SYSLOG_TLS_KEY",
            std::fs::read_to_string(rx.client_key()).unwrap(),
        ),
    ];
    ship_over(&rx, rx.tls_mtls_port(), "tls-mtls", &client).await;
}

async fn expect_send_failure(settings: Settings, timeout: &str) -> String {
    let started = Instant::now();
    let msg = expect_send_failure_inner(settings, timeout).await;
    if msg.contains("refused") {
        // Retried, a refusal would fail only at the deadline, 95 % of the timeout: half of
        // it leaves seconds of slack either way.
        let half = Duration::from_secs(timeout.parse::<u64>().unwrap()) / 2;
        assert!(
            started.elapsed() < half,
            "a TLS refusal is not retried: {:?}",
            started.elapsed()
        );
    }
    msg
}

async fn expect_send_failure_inner(settings: Settings, timeout: &str) -> String {
    let sls = start_sls(vec![("tls".into(), 0, sample::groups(1, 5, 2))]).await;
    let f = start_function(settings).await;
    let a = invoke_raw(
        f,
        event(&sls, "tls", 0, 0, 1).to_string(),
        &Account::demo().access_key_secret,
        timeout,
    )
    .await;
    assert_failed(&a, "SendError")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_a_client_certificate_fails() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let s = tls_settings(&[
        ("SYSLOG_PORT", rx.tls_mtls_port().to_string()),
        ("SYSLOG_TLS_CA", path(rx.ca_pem())),
    ]);
    let msg = expect_send_failure(s, "10").await;
    assert!(
        msg.contains("TLS with syslog receiver") && msg.contains("CertificateRequired"),
        "{msg}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx
        .wait_for(1, Duration::from_millis(200))
        .iter()
        .all(|r| r.input != "tls-mtls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_ca_fails_the_handshake() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let s = tls_settings(&[
        ("SYSLOG_PORT", rx.tls_gtls_port().to_string()),
        ("SYSLOG_TLS_CA", path(rx.other_ca_pem())),
    ]);
    let msg = expect_send_failure(s, "10").await;
    assert!(
        msg.contains("refused: handshake failed") && msg.contains("UnknownIssuer"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_certificate_does_not_hold_fails_the_handshake() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let s = tls_settings(&[
        ("SYSLOG_PORT", rx.tls_ossl_port().to_string()),
        ("SYSLOG_TLS_CA", path(rx.ca_pem())),
        ("SYSLOG_TLS_SERVER_NAME", "siem.example.com".into()),
    ]);
    let msg = expect_send_failure(s, "10").await;
    assert!(
        msg.contains("refused: handshake failed") && msg.contains("not valid for name"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_mode_skips_verification() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let sls = start_sls(vec![("tls".into(), 0, sample::groups(1, 5, 2))]).await;
    let s = tls_settings(&[
        ("SYSLOG_PORT", rx.tls_gtls_port().to_string()),
        ("SYSLOG_TLS_INSECURE", "true".into()),
        ("SYSLOG_TLS_SERVER_NAME", "siem.example.com".into()),
    ]);
    let f = start_function(s).await;
    let a = invoke(f, &event(&sls, "tls", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(rx.wait_for(5, Duration::from_secs(10)).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_completes_fails_within_the_timeout() {
    // A TCP server that accepts and then says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(conns);
    });
    let s = tls_settings(&[
        ("SYSLOG_PORT", port.to_string()),
        ("SYSLOG_TLS_INSECURE", "true".into()),
    ]);
    let started = Instant::now();
    let msg = expect_send_failure(s, "3").await;
    assert!(msg.contains("TLS handshake timed out"), "{msg}");
    assert_gave_up_by_the_deadline(started, 3);
}

/// A PKI in a fresh directory (`None`, loudly, when openssl is missing and skipping is
/// allowed).
fn pki() -> Option<std::path::PathBuf> {
    if !support::daemon::openssl_works() {
        return support::daemon::skip("openssl CLI needed (apt-get install -y openssl)");
    }
    let dir = support::daemon::fresh_dir("close-notify").join("pki");
    support::daemon::make_pki(&dir, false);
    Some(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_ends_kept_tls_connections_with_close_notify() {
    use support::tls_sink::{Ending, TlsSink};
    let Some(pki) = pki() else { return };
    let sink = TlsSink::start(&pki).await;
    let sls = start_sls(vec![("cn".into(), 0, sample::groups(1, 3, 2))]).await;
    let f = start_function(tls_settings(&[
        ("SYSLOG_PORT", sink.port().to_string()),
        ("SYSLOG_TLS_CA", path(pki.join("ca.pem"))),
    ]))
    .await;
    let a = invoke(f, &event(&sls, "cn", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    // The connection is kept for the next invocation until the instance stops.
    assert!(sink
        .wait_for_endings(1, Duration::from_millis(300))
        .await
        .is_empty());
    let resp = reqwest::get(format!("http://{f}/pre-stop")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let endings = sink.wait_for_endings(1, Duration::from_secs(5)).await;
    assert_eq!(endings, vec![Ending::CloseNotify]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_kept_tls_connections_with_close_notify() {
    use support::tls_sink::{Ending, TlsSink};
    let Some(pki) = pki() else { return };
    let sink = TlsSink::start(&pki).await;
    let sls = start_sls(vec![("cn".into(), 0, sample::groups(1, 3, 2))]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sls-syslog"))
        .env_clear()
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .env("SYSLOG_HOST", "127.0.0.1")
        .env("SYSLOG_PORT", sink.port().to_string())
        .env("SYSLOG_PROTOCOL", "tls")
        .env("SYSLOG_TLS_CA", path(pki.join("ca.pem")))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    let a = invoke(([127, 0, 0, 1], port).into(), &event(&sls, "cn", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    let endings = sink.wait_for_endings(1, Duration::from_secs(5)).await;
    assert_eq!(endings, vec![Ending::CloseNotify]);
}
