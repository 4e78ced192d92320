//! What the real SLS and FC do that a friendly test server never did, against the real
//! binary: the data of a shard ending before the end cursor, the newer custom runtimes'
//! credentials (no `x-fc-security-token`), a trigger parameter typed as text, log groups of
//! 4096 logs and of about 5 MB (memory bounded by bytes), and UDP paced so that a default
//! rsyslog receives every datagram.

use crate::support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::{Account, Fault};
use sls_syslog::sls::proto::{Log, LogGroup};
use support::call::{demo_headers, invoke_with, with, without};
use support::collector::Collector;
use support::function::*;
use support::rsyslog::Rsyslog;

/// The function's binary, serving FC's runtime API on a free port, its stdout kept line by
/// line.
struct Function {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Function {
    /// Starts the binary with exactly `env` (plus the listen port).
    fn start(env: &[(&str, String)]) -> Function {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sls-syslog"));
        cmd.env_clear()
            .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        wait_listening(port);
        Function {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            lines,
        }
    }

    /// Every line printed so far.
    fn stdout(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The JSON summary lines printed so far.
    fn summaries(&self) -> Vec<Value> {
        // The line of an invocation follows its answer by microseconds.
        std::thread::sleep(Duration::from_millis(50));
        self.stdout()
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Peak resident memory of the process so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings that send over TCP to `port` on loopback, as the environment of the binary.
fn tcp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SYSLOG_HOST", "127.0.0.1".into()),
        ("SYSLOG_PORT", port.to_string()),
        ("SYSLOG_HOSTNAME", "fc-instance.example.com".into()),
        ("SYSLOG_APP_NAME", "sls-syslog-test".into()),
    ]
}

/// The demo account's credentials as FC's role would set them in the environment.
fn role_env() -> Vec<(&'static str, String)> {
    let acct = Account::demo();
    vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", acct.access_key_id),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", acct.access_key_secret),
        (
            "ALIBABA_CLOUD_SECURITY_TOKEN",
            acct.security_token.unwrap_or_default(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_ending_before_the_end_cursor_completes_the_range() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(5, 10, 21);
    let sls = start_sls(vec![("tail".into(), 0, groups.clone())]).await;
    sls.end_data_early();
    let f = Function::start(&tcp_env(rx.tcp_port()));

    // The trigger's range ends 7 groups past what the shard holds: SLS answers the pull at
    // the tail with no log groups and the request cursor.
    let ev = event(&sls, "tail", 0, 0, 12);
    let a = invoke_with(f.addr, ev.to_string(), &demo_headers("60"))
        .await
        .answer();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["logs"], 50);
    assert_eq!(a.body["ended_before_end_cursor"], true);
    let tail = sls_syslog::devkit::sls_server::cursor(5);
    assert_eq!(a.body["ended_at_cursor"], tail.as_str());
    let received = rx.wait_for(50, Duration::from_secs(20));
    assert_eq!(received.len(), 50);
    for (r, (g, l)) in received.iter().zip(logs_of(&groups)) {
        assert_eq!(r.msg, expected_kv(g, l).replace('\n', "\\n"));
    }
    let line = &f.summaries()[0];
    assert_eq!(line["outcome"], "ok");
    assert_eq!(line["ended_before_end_cursor"], true);
    assert_eq!(line["ended_at_cursor"], tail.as_str());
    assert_eq!(line["end_cursor"], ev["source"]["endCursor"]);
    let warns: Vec<String> = f
        .stdout()
        .into_iter()
        .filter(|l| l.starts_with("WARN RequestId: req-hardening "))
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(warns[0].contains(&tail) && warns[0].contains("before the end cursor"));

    // A range that starts at the tail: nothing to ship, and still done.
    let a = invoke_with(
        f.addr,
        event(&sls, "tail", 0, 5, 9).to_string(),
        &demo_headers("60"),
    )
    .await
    .answer();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        (a.body["logs"].as_u64(), a.body["pulls"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(a.body["ended_before_end_cursor"], true);

    // Log groups came back but the cursor stayed put: a stuck server, not the tail.
    sls.inject([Fault::NextCursor(0)]);
    let a = invoke_with(
        f.addr,
        event(&sls, "tail", 0, 0, 12).to_string(),
        &demo_headers("60"),
    )
    .await
    .answer();
    let message = assert_failed(&a, "DecodeError");
    assert!(message.contains("did not advance"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_headers_or_the_role_environment_as_a_complete_set() {
    let sink = Collector::start().await;
    let groups = sample::groups(2, 5, 4);
    let sls = start_sls(vec![("creds".into(), 0, groups)]).await;
    let body = event(&sls, "creds", 0, 0, 2).to_string();
    let no_token = without(demo_headers("60"), "x-fc-security-token");

    // custom.debian10: the headers carry the whole set.
    let f = Function::start(&tcp_env(sink.port()));
    let a = invoke_with(f.addr, body.clone(), &demo_headers("60"))
        .await
        .answer();
    assert_eq!(a.status, 200, "headers complete: {a:?}");

    // custom.debian11/12: the key pair without its token; the role's triple is in the
    // environment.
    let mut env = tcp_env(sink.port());
    env.extend(role_env());
    let f = Function::start(&env);
    let a = invoke_with(f.addr, body.clone(), &no_token).await.answer();
    assert_eq!(
        a.status, 200,
        "headers without a token, env complete: {a:?}"
    );
    assert_eq!(a.body["logs"], 10);

    // Neither complete: one clear error naming what each source lacks, and no value.
    let mut env = tcp_env(sink.port());
    env.push(("ALIBABA_CLOUD_ACCESS_KEY_ID", Account::demo().access_key_id));
    let f = Function::start(&env);
    let a = invoke_with(f.addr, body.clone(), &no_token).await.answer();
    let message = assert_failed(&a, "CredentialsError");
    assert!(
        message.contains("x-fc-security-token")
            && message.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "{message}"
    );
    let acct = Account::demo();
    let printed = f.stdout().join("\n");
    assert!(
        printed.contains("CredentialsError (credentials stage)"),
        "{printed}"
    );
    for secret in [
        acct.access_key_secret.as_str(),
        acct.security_token.as_deref().unwrap(),
    ] {
        assert!(!printed.contains(secret) && !message.contains(secret));
    }
    let frames = sink.wait_for(21, Duration::from_secs(1)).await;
    assert_eq!(frames.len(), 20, "only the two good invocations shipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_typed_as_text_is_read_or_ignored_with_a_warning() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(1, 3, 8);
    let sls = start_sls(vec![("param".into(), 0, groups)]).await;
    let f = Function::start(&tcp_env(rx.tcp_port()));
    let headers = demo_headers("60");
    let invoke_with_parameter = |parameter: Value| {
        let mut ev = event(&sls, "param", 0, 0, 1);
        ev["parameter"] = parameter;
        invoke_with(f.addr, ev.to_string(), &headers)
    };

    // The FC API's functionParameter: a string holding the JSON object.
    let a = invoke_with_parameter(json!(r#"{"SYSLOG_APP_NAME": "from-text"}"#))
        .await
        .answer();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.get("warnings").is_none(), "{a:?}");
    let received = rx.wait_for(3, Duration::from_secs(10));
    assert!(
        received.iter().all(|r| r.app_name == "from-text"),
        "{received:?}"
    );

    // Text that is no object: no overrides, and a warning in the JSON line.
    for parameter in [json!("SYSLOG_APP_NAME=x"), json!(7), json!([1])] {
        let a = invoke_with_parameter(parameter.clone()).await.answer();
        assert_eq!(a.status, 200, "{parameter}: {a:?}");
        let warnings = a.body["warnings"].to_string();
        assert!(warnings.contains("ignored"), "{parameter}: {warnings}");
    }
    let received = rx.wait_for(12, Duration::from_secs(10));
    assert_eq!(received.len(), 12);
    assert!(received[3..]
        .iter()
        .all(|r| r.app_name == "sls-syslog-test"));
    let lines = f.summaries();
    assert_eq!(lines.len(), 4);
    assert!(lines[1]["warnings"][0]
        .as_str()
        .is_some_and(|w| w.contains("a string that is not JSON")));

    // A typo inside an object still fails: the wrong settings must not ship silently.
    let a = invoke_with_parameter(json!(r#"{"SYSLOG_APP_NAEM": "x"}"#))
        .await
        .answer();
    let message = assert_failed(&a, "InvalidParameter");
    assert!(message.contains("SYSLOG_APP_NAEM"), "{message}");
}

/// `n` log groups of `logs` logs each, with `value` bytes of message per log.
fn big_groups(n: usize, logs: usize, value: usize) -> Vec<LogGroup> {
    let filler: String = "0123456789abcdef".repeat(value / 16 + 1)[..value].to_string();
    (0..n)
        .map(|g| LogGroup {
            logs: (0..logs)
                .map(|i| Log {
                    time: 1_700_000_000 + g as u32,
                    time_ns: Some(i as u32),
                    contents: vec![
                        content("seq", format!("{g}-{i}").as_bytes()),
                        content("message", filler.as_bytes()),
                    ],
                })
                .collect(),
            topic: Some(Bytes::from_static(b"big")),
            source: Some(Bytes::from_static(b"10.0.0.9")),
            ..LogGroup::default()
        })
        .collect()
}

/// Ships `groups` through the binary to a counting receiver; returns the answer's body and
/// the binary's peak RSS.
async fn ship_big(groups: Vec<LogGroup>) -> (Value, u64) {
    let logs: usize = groups.iter().map(|g| g.logs.len()).sum();
    let n = groups.len() as u64;
    let sink = Collector::start().await;
    let sls = start_sls(vec![("big".into(), 0, groups)]).await;
    let f = Function::start(&tcp_env(sink.port()));
    let a = invoke_with(
        f.addr,
        event(&sls, "big", 0, 0, n).to_string(),
        &demo_headers("120"),
    )
    .await
    .answer();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["logs"], logs as u64);
    assert_eq!(
        sink.wait_for(logs, Duration::from_secs(60)).await.len(),
        logs
    );
    (a.body, f.peak_rss())
}

/// Peak RSS allowed for any shape of log group (the benchmark measures the figures).
const RSS_BOUND: u64 = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_of_4096_logs_are_pulled_a_few_mib_at_a_time() {
    // 30 groups of 4096 logs of ~420 bytes: about 50 MB decoded, once pulled in one go.
    let (body, rss) = ship_big(big_groups(30, 4096, 400)).await;
    assert!(body["pulls"].as_u64().unwrap() >= 8, "{body}");
    assert!(rss < RSS_BOUND, "peak RSS {} MiB", rss >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_near_5_mb_stay_bounded_too() {
    // 8 groups of about 5 MB (one group a pull).
    let (body, rss) = ship_big(big_groups(8, 1200, 4000)).await;
    assert_eq!(body["pulls"], 8, "{body}");
    assert!(rss < RSS_BOUND, "peak RSS {} MiB", rss >> 20);
}

/// A UDP function sending to `port` at `rate` (the default when `None`).
fn udp_env(port: u16, rate: Option<u32>) -> Vec<(&'static str, String)> {
    let mut env = tcp_env(port);
    env.push(("SYSLOG_PROTOCOL", "udp".into()));
    if let Some(rate) = rate {
        env.push(("SYSLOG_UDP_RATE", rate.to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_at_the_default_rate_reaches_a_default_rsyslog_in_full() {
    let Some(rx) = Rsyslog::start() else { return };
    // 100 groups x 10 logs: the shape that lost half its datagrams unpaced.
    let groups = sample::groups(100, 10, 5);
    let sls = start_sls(vec![("udp".into(), 0, groups)]).await;
    let f = Function::start(&udp_env(rx.udp_port(), None));
    let a = invoke_with(
        f.addr,
        event(&sls, "udp", 0, 0, 100).to_string(),
        &demo_headers("60"),
    )
    .await
    .answer();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["frames_sent"], 1000);
    let received = rx.wait_for(1000, Duration::from_secs(20));
    assert_eq!(received.len(), 1000, "datagrams received of 1000");
    assert!(received.iter().all(|r| r.input == "udp"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_that_cannot_be_paced_before_the_deadline_fails_early_and_clearly() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(10, 200, 6);
    let sls = start_sls(vec![("udp".into(), 0, groups)]).await;
    // 2000 messages at 100/s need 20 s; the function has 10 (its deadline at 9.5 s). The
    // first pull's one group of 200 takes 2 s; the next pull's 1600 cannot be paced in time
    // and fail at once, not at the deadline: under 6 s leaves seconds of slack either way.
    let f = Function::start(&udp_env(rx.udp_port(), Some(100)));
    let started = Instant::now();
    let raw = invoke_with(
        f.addr,
        event(&sls, "udp", 0, 0, 10).to_string(),
        &with(demo_headers("10"), "x-fc-function-timeout", "10"),
    )
    .await;
    let message = assert_failed(&raw.answer(), "SendError");
    assert!(
        message.contains("SYSLOG_UDP_RATE") && message.contains("100 messages/s"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "failed only after {:?}, not as soon as pacing could not finish",
        started.elapsed()
    );
}
