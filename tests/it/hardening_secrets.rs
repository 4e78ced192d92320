//! No secret ever leaves the function: the real binary, started as FC starts it, is driven
//! through every failure it can meet (bad and expired credentials, credentials from the
//! environment, SLS faults, an unreachable receiver, TLS refusals with a client key
//! configured, invalid events and parameters), and nothing it prints on stdout or stderr, nor
//! any HTTP answer, holds the access key secret, the security token or the TLS private key.

use crate::support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::{cursor, Account, Fault, SlsServer};
use sls_syslog::secret::Secret;
use sls_syslog::sls::Credentials;
use support::call::{invoke_with, Raw};
use support::function::LOOPBACK;
use support::rsyslog::Rsyslog;

// Distinctive values: found anywhere, they were leaked.
const SECRET: &str = "hdr-secret-Q9xK2vLm7RtW";
const TOKEN: &str = "hdr-token-Zp4Yn8Bc3Hs";
const WRONG_SECRET: &str = "wrong-secret-Jd6Fq1Xe9";
const EXPIRED_TOKEN: &str = "expired-token-Vb2Nk5Tg0";
const ENV_SECRET: &str = "env-secret-Lw3Cz8Pr4";
const ENV_TOKEN: &str = "env-token-Hm7Sd2Qa6";
const PARAM_KEY_MARK: &str = "PARAMKEYSECRETa1b2c3d4e5f6";

fn account() -> Account {
    Account {
        project: "secret-test".into(),
        endpoint_host: "127.0.0.1".into(),
        access_key_id: "STS.secret-test-id".into(),
        access_key_secret: SECRET.into(),
        security_token: Some(TOKEN.into()),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn event(sls: &SlsServer, parameter: Value) -> String {
    json!({
        "parameter": parameter,
        "source": {
            "endpoint": sls.endpoint(),
            "projectName": "secret-test",
            "logstoreName": "s",
            "shardId": 0,
            "beginCursor": cursor(0),
            "endCursor": cursor(2),
        },
        "jobName": "job",
        "taskId": "task",
        "cursorTime": 1_700_000_000,
    })
    .to_string()
}

/// FC headers: `credentials` is `(key id, secret, token)`; `None` sends none (the
/// function then uses the `ALIBABA_CLOUD_*` variables).
fn headers(
    credentials: Option<(&str, &str, Option<&str>)>,
    timeout: &str,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("x-fc-request-id", "req-secrets".to_string()),
        ("x-fc-function-timeout", timeout.to_string()),
    ];
    if let Some((id, secret, token)) = credentials {
        h.push(("x-fc-access-key-id", id.to_string()));
        h.push(("x-fc-access-key-secret", secret.to_string()));
        if let Some(t) = token {
            h.push(("x-fc-security-token", t.to_string()));
        }
    }
    h
}

fn good() -> Option<(&'static str, &'static str, Option<&'static str>)> {
    Some(("STS.secret-test-id", SECRET, Some(TOKEN)))
}

fn start_binary(port: u16, envs: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sls-syslog"));
    cmd.env_clear()
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .env("RUST_BACKTRACE", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    support::function::wait_listening(port);
    child
}

/// SIGTERM, then everything the process printed.
fn stop(mut child: Child) -> (String, String) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (out, err)
}

/// The lines of a PEM private key that hold key material.
fn key_material(pem: &str) -> Vec<String> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_failure_prints_or_answers_a_secret() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let key_pem = std::fs::read_to_string(rx.client_key()).unwrap();
    let cert_pem = std::fs::read_to_string(rx.client_cert()).unwrap();
    let data = vec![("s".to_string(), 0, sample::groups(2, 5, 8))];
    let sls = SlsServer::start(LOOPBACK, account(), data).await.unwrap();
    let port = free_port();
    let child = start_binary(
        port,
        &[
            ("SYSLOG_HOST", "127.0.0.1".into()),
            ("SYSLOG_PROTOCOL", "tls".into()),
            ("SYSLOG_PORT", rx.tls_mtls_port().to_string()),
            ("SYSLOG_TLS_CA", rx.ca_pem().to_string_lossy().into_owned()),
            ("SYSLOG_TLS_CERT", cert_pem.clone()),
            ("SYSLOG_TLS_KEY", key_pem.clone()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.secret-test-id".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ENV_SECRET.into()),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", ENV_TOKEN.into()),
        ],
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut answers: Vec<(String, Raw)> = Vec::new();
    let closed = free_port().to_string();
    let bad_key_pem =
        format!("-----BEGIN PRIVATE KEY-----\n{PARAM_KEY_MARK}\n-----END PRIVATE KEY-----\n");

    // (what, faults to inject, credentials, parameter, timeout, expected status/errorType)
    type Case = (
        &'static str,
        Vec<Fault>,
        Option<(&'static str, &'static str, Option<&'static str>)>,
        Value,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        // First, while no receiver connection is kept: a kept connection would be reused
        // whatever the trigger's TLS settings (see tests/it/hardening_tls_pool.rs).
        (
            "untrusted receiver certificate",
            vec![],
            good(),
            json!({"SYSLOG_TLS_CA": rx.other_ca_pem().to_string_lossy()}),
            "60",
            "SendError",
        ),
        (
            "wrong receiver name",
            vec![],
            good(),
            json!({"SYSLOG_TLS_SERVER_NAME": "siem.example.com"}),
            "60",
            "SendError",
        ),
        (
            "success over mutual TLS",
            vec![],
            good(),
            json!({}),
            "60",
            "200",
        ),
        (
            "wrong secret",
            vec![],
            Some(("STS.secret-test-id", WRONG_SECRET, Some(TOKEN))),
            json!({}),
            "60",
            "PullError",
        ),
        (
            "expired token",
            vec![],
            Some(("STS.secret-test-id", SECRET, Some(EXPIRED_TOKEN))),
            json!({}),
            "60",
            "PullError",
        ),
        (
            "no token",
            vec![],
            Some(("STS.secret-test-id", SECRET, None)),
            json!({}),
            "60",
            "PullError",
        ),
        (
            "credentials from the environment",
            vec![],
            None,
            json!({}),
            "60",
            "PullError",
        ),
        (
            "injected 401",
            vec![Fault::error(401, "SecurityTokenExpired")],
            good(),
            json!({}),
            "60",
            "PullError",
        ),
        (
            "injected 403",
            vec![Fault::error(403, "ProjectForbidden")],
            good(),
            json!({}),
            "60",
            "PullError",
        ),
        (
            "proxy page then success",
            vec![Fault::Html(502)],
            good(),
            json!({}),
            "60",
            "200",
        ),
        (
            "reset, truncated, then success",
            vec![Fault::ResetMidBody, Fault::TruncatedBody],
            good(),
            json!({}),
            "60",
            "200",
        ),
        (
            "stalled body",
            vec![Fault::StalledBody(Duration::from_secs(30))],
            good(),
            json!({}),
            "2",
            "PullError",
        ),
        (
            "corrupt lz4",
            vec![Fault::CorruptLz4],
            good(),
            json!({}),
            "60",
            "DecodeError",
        ),
        (
            "junk protobuf",
            vec![Fault::NotProtobuf],
            good(),
            json!({}),
            "60",
            "DecodeError",
        ),
        (
            "no cursor",
            vec![Fault::NoCursor],
            good(),
            json!({}),
            "60",
            "DecodeError",
        ),
        (
            "stuck cursor",
            vec![Fault::NextCursor(0)],
            good(),
            json!({}),
            "60",
            "DecodeError",
        ),
        (
            "hostile raw size",
            vec![Fault::RawSize(4 << 30)],
            good(),
            json!({}),
            "60",
            "DecodeError",
        ),
        (
            "unreachable receiver",
            vec![],
            good(),
            json!({"SYSLOG_PORT": closed}),
            "3",
            "SendError",
        ),
        (
            "TLS to a plaintext port",
            vec![],
            good(),
            json!({"SYSLOG_PORT": rx.tcp_port().to_string()}),
            "3",
            "SendError",
        ),
        (
            "client key that is not a key",
            vec![],
            good(),
            json!({"SYSLOG_TLS_KEY": bad_key_pem}),
            "60",
            "InvalidParameter",
        ),
        (
            "unknown parameter",
            vec![],
            good(),
            json!({"SYSLOG_TLS_PASSWORD": SECRET}),
            "60",
            "InvalidParameter",
        ),
    ];
    for (what, faults, credentials, parameter, timeout, outcome) in cases {
        sls.inject(faults);
        let raw = tokio::time::timeout(
            Duration::from_secs(30),
            invoke_with(addr, event(&sls, parameter), &headers(credentials, timeout)),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer"));
        let a = raw.answer();
        if outcome == "200" {
            assert_eq!(a.status, 200, "{what}: {a:?}");
        } else {
            assert_eq!(a.status, 404, "{what}: {a:?}");
            assert_eq!(a.body["errorType"], outcome, "{what}: {a:?}");
        }
        answers.push((what.to_string(), raw));
    }
    // Events that are not events.
    for (what, body) in [
        ("not JSON", "{\"source\": ".to_string()),
        ("over 1 MiB", "x".repeat(2 << 20)),
    ] {
        let raw = invoke_with(addr, body, &headers(good(), "60")).await;
        assert_eq!(raw.answer().body["errorType"], "InvalidEvent", "{what}");
        answers.push((what.to_string(), raw));
    }
    // The instance is stopped as FC stops it.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/pre-stop"))
        .send()
        .await
        .unwrap();
    answers.push((
        "pre-stop".into(),
        Raw {
            status: r.status().as_u16(),
            fc_status: None,
            text: r.text().await.unwrap(),
        },
    ));
    let (stdout, stderr) = stop(child);

    let mut secrets: Vec<String> = [
        SECRET,
        TOKEN,
        WRONG_SECRET,
        EXPIRED_TOKEN,
        ENV_SECRET,
        ENV_TOKEN,
        PARAM_KEY_MARK,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    secrets.extend(key_material(&key_pem));
    assert!(secrets.len() > 10, "the key has material lines");
    for s in &secrets {
        assert!(!stdout.contains(s.as_str()), "{s:?} on stdout:\n{stdout}");
        assert!(!stderr.contains(s.as_str()), "{s:?} on stderr:\n{stderr}");
        for (what, raw) in &answers {
            assert!(
                !raw.text.contains(s.as_str()),
                "{s:?} in the answer to {what}: {}",
                raw.text
            );
        }
    }
    // The failures were reported, one line each.
    let errors = stdout.lines().filter(|l| l.starts_with("ERROR")).count();
    assert_eq!(
        errors,
        answers.iter().filter(|(_, r)| r.status == 404).count()
    );
}

#[test]
fn debug_output_of_credentials_and_settings_is_redacted() {
    let c = Credentials {
        access_key_id: "STS.id".into(),
        access_key_secret: Secret::new(SECRET),
        security_token: Some(Secret::new(TOKEN)),
    };
    for s in [format!("{c:?}"), format!("{c:#?}")] {
        assert!(!s.contains(SECRET) && !s.contains(TOKEN), "{s}");
        assert!(s.contains("<redacted>"), "{s}");
    }

    // Settings made from a TLS configuration with a client key given as PEM text.
    let Some((cert, key)) = self_signed() else {
        return;
    };
    let vars = [
        ("SYSLOG_HOST", "127.0.0.1".to_string()),
        ("SYSLOG_PROTOCOL", "tls".to_string()),
        ("SYSLOG_TLS_INSECURE", "true".to_string()),
        ("SYSLOG_TLS_CERT", cert),
        ("SYSLOG_TLS_KEY", key.clone()),
    ];
    let settings = sls_syslog::config::Settings::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let material = key_material(&key);
    assert!(material.len() > 10);
    for s in [format!("{settings:?}"), format!("{settings:#?}")] {
        for line in &material {
            assert!(!s.contains(line.as_str()), "key material in {s}");
        }
        assert!(!s.contains("PRIVATE KEY"), "{s}");
    }
}

/// A self-signed certificate and its key (PEM text), made with the openssl CLI; `None`
/// (skipped loudly, with `SKIP_RECEIVERS=1`; a failure otherwise) without it.
fn self_signed() -> Option<(String, String)> {
    let dir = std::env::temp_dir().join(format!(
        "sls-syslog-secrets-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=client"])
        .arg("-keyout")
        .arg(dir.join("k.pem"))
        .arg("-out")
        .arg(dir.join("c.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let pair = ok.then(|| {
        (
            std::fs::read_to_string(dir.join("c.pem")).unwrap(),
            std::fs::read_to_string(dir.join("k.pem")).unwrap(),
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    if pair.is_none() {
        return support::daemon::skip("openssl CLI needed (apt-get install -y openssl)");
    }
    pair
}

/// A key pasted without its `-----BEGIN` line is taken for a path; the error must not
/// repeat it (it reaches stderr at start-up, and the answer and the log of an invocation
/// whose trigger parameter sets it).
#[test]
fn a_client_key_without_its_pem_armour_is_not_echoed() {
    let Some((cert, key)) = self_signed() else {
        return;
    };
    let material = key_material(&key).join("\n");
    let vars = [
        ("SYSLOG_HOST", "127.0.0.1".to_string()),
        ("SYSLOG_PROTOCOL", "tls".to_string()),
        ("SYSLOG_TLS_INSECURE", "true".to_string()),
        ("SYSLOG_TLS_CERT", cert),
        ("SYSLOG_TLS_KEY", material.clone()),
    ];
    let err = sls_syslog::config::Settings::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("SYSLOG_TLS_KEY"), "{err}");
    for line in key_material(&key) {
        assert!(!err.contains(line.as_str()), "key material echoed: {err}");
    }
}
