//! Runs the function in-process (the same router FC would talk to) next to the SLS test
//! server, and invokes it over HTTP with the FC headers; plus an independent computation of
//! what each log must look like once shipped.

use std::net::SocketAddr;

use bytes::Bytes;
use serde_json::Value;
use sls_syslog::config::Settings;
use sls_syslog::devkit::check_frame::calendar;
use sls_syslog::devkit::sls_server::{self, Account, Data, SlsServer};
use sls_syslog::fc::{self, App};
use sls_syslog::sls::proto::{Content, Log, LogGroup, LogTag};
use sls_syslog::syslog::Framing;

pub const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Settings that send to `127.0.0.1:port` over TCP.
pub fn settings(port: u16, framing: Framing) -> Settings {
    Settings::from_lookup(|var| {
        let value = match var {
            "SYSLOG_HOST" => "127.0.0.1".to_string(),
            "SYSLOG_PORT" => port.to_string(),
            "SYSLOG_FRAMING" => match framing {
                Framing::Lf => "lf".into(),
                Framing::OctetCounting => "octet-counting".into(),
            },
            "SYSLOG_FACILITY" => "local4".into(),
            "SYSLOG_SEVERITY" => "warning".into(),
            "SYSLOG_HOSTNAME" => "fc-instance.example.com".into(),
            "SYSLOG_APP_NAME" => "sls-syslog-test".into(),
            _ => return None,
        };
        Some(value)
    })
    .unwrap()
}

/// Waits (10 s at most) until something accepts connections on loopback `port`: a function
/// binary just started.
pub fn wait_listening(port: u16) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the function did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts the function's HTTP server on a free loopback port.
pub async fn start_function(settings: Settings) -> SocketAddr {
    let app = App::new(settings, sls_syslog::sls::Http::new());
    let listener = tokio::net::TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, fc::router(app)).await });
    addr
}

pub async fn start_sls(data: Data) -> SlsServer {
    SlsServer::start(LOOPBACK, Account::demo(), data)
        .await
        .unwrap()
}

/// A trigger event for `[cursor(begin), cursor(end))` of `logstore` shard `shard`.
pub fn event(sls: &SlsServer, logstore: &str, shard: u32, begin: u64, end: u64) -> Value {
    serde_json::json!({
        "parameter": {},
        "source": {
            "endpoint": sls.endpoint(),
            "projectName": Account::demo().project,
            "logstoreName": logstore,
            "shardId": shard,
            "beginCursor": sls_server::cursor(begin),
            "endCursor": sls_server::cursor(end),
        },
        "jobName": "job",
        "taskId": "task",
        "cursorTime": 1_700_000_000,
    })
}

/// The answer to one `/invoke`.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub fc_status: Option<String>,
    pub body: Value,
}

/// POSTs `body` to `/invoke` with the demo credentials (override with `secret`).
pub async fn invoke_raw(addr: SocketAddr, body: String, secret: &str, timeout: &str) -> Answer {
    let acct = Account::demo();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/invoke"))
        .header("content-type", "application/octet-stream")
        .header("x-fc-request-id", "req-test-1")
        .header("x-fc-function-timeout", timeout)
        .header("x-fc-access-key-id", &acct.access_key_id)
        .header("x-fc-access-key-secret", secret)
        .header(
            "x-fc-security-token",
            acct.security_token.as_deref().unwrap(),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let fc_status = resp
        .headers()
        .get("x-fc-status")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    Answer {
        status,
        fc_status,
        body,
    }
}

pub async fn invoke(addr: SocketAddr, event: &Value) -> Answer {
    invoke_raw(
        addr,
        event.to_string(),
        &Account::demo().access_key_secret,
        "60",
    )
    .await
}

/// Asserts a failed invocation as FC needs it and returns its error message.
pub fn assert_failed(a: &Answer, error_type: &str) -> String {
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.fc_status.as_deref(), Some("404"), "{a:?}");
    assert_eq!(a.body["errorType"], error_type, "{a:?}");
    a.body["errorMessage"].as_str().unwrap().to_string()
}

/// Asserts that an invocation with a function timeout of `timeout_secs`, started at
/// `started`, answered with its own failure instead of running on. The margin the function
/// keeps before the platform's timeout is `ship::deadline`'s, checked exactly by its unit
/// test; a clock read here cannot tell 200 ms apart on a loaded 2-core machine, so this
/// allows 2 s beyond the timeout and catches what matters end to end: a wait that ignores
/// the deadline (a stalled peer, endless retries) runs far longer.
pub fn assert_gave_up_by_the_deadline(started: std::time::Instant, timeout_secs: u64) {
    let limit = std::time::Duration::from_secs(timeout_secs + 2);
    assert!(
        started.elapsed() < limit,
        "the invocation ran {:?}, past its {timeout_secs} s timeout",
        started.elapsed()
    );
}

/// `YYYY-MM-DDThh:mm:ss.ffffffZ`, computed the slow way (counting years and months, by the
/// frame checker's calendar), to check the function's calendar arithmetic independently.
pub fn expected_timestamp(secs: u32, ns: u32) -> String {
    let (year, month, day, hour, minute, second) = calendar(secs);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:06}Z",
        ns / 1000
    )
}

/// The SDK's flattening of `log` of `group`, computed independently: `__time__`,
/// `__topic__`, `__source__`, `__time_ns_part__` (when not 0), tags, contents; a repeated key
/// keeps its first place and its last value. Numbers stay numbers.
pub fn expected_fields(group: &LogGroup, log: &Log) -> Vec<(String, serde_json::Value)> {
    use serde_json::Value as J;
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut fields: Vec<(String, J)> = vec![
        ("__time__".into(), J::from(log.time)),
        (
            "__topic__".into(),
            J::from(group.topic.as_deref().map(s).unwrap_or_default()),
        ),
        (
            "__source__".into(),
            J::from(group.source.as_deref().map(s).unwrap_or_default()),
        ),
    ];
    if let Some(ns) = log.time_ns.filter(|&n| n != 0) {
        fields.push(("__time_ns_part__".into(), J::from(ns)));
    }
    let mut put = |k: String, v: String| match fields.iter_mut().find(|(fk, _)| *fk == k) {
        Some(slot) => slot.1 = J::from(v),
        None => fields.push((k, J::from(v))),
    };
    for t in &group.log_tags {
        put(format!("__tag__:{}", s(&t.key)), s(&t.value));
    }
    for c in &log.contents {
        put(s(&c.key), s(&c.value));
    }
    fields
}

/// A field value as text.
pub fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `kv` body the reference function would write for `log` of `group`: `||k=v` for the
/// SDK's flattened fields but `__time__`.
pub fn expected_kv(group: &LogGroup, log: &Log) -> String {
    expected_fields(group, log)
        .iter()
        .filter(|(k, _)| k != "__time__")
        .map(|(k, v)| format!("||{k}={}", text(v)))
        .collect()
}

/// Every log of `groups`, in order, with its group.
pub fn logs_of(groups: &[LogGroup]) -> Vec<(&LogGroup, &Log)> {
    groups
        .iter()
        .flat_map(|g| g.logs.iter().map(move |l| (g, l)))
        .collect()
}

pub fn content(k: &str, v: &[u8]) -> Content {
    Content {
        key: Bytes::from(k.to_string()),
        value: Bytes::from(v.to_vec()),
    }
}

/// Logs that have broken other shippers: line breaks, Unicode, bytes that are not UTF-8,
/// empty values, repeated keys and tags, edge times.
pub fn edge_group() -> LogGroup {
    LogGroup {
        logs: vec![
            Log {
                time: 1_709_622_489,
                time_ns: Some(123_456_789),
                contents: vec![
                    content("msg", b"line1\nline2\r\nline3\ttabbed"),
                    content("unicode", "日志 é Zoë 🚀".as_bytes()),
                    content("not_utf8", b"\xff\xfe ok \xc3"),
                    content("empty", b""),
                    content("a", b"1"),
                    content("a", b"2"),
                ],
            },
            Log {
                time: 951_868_799,
                time_ns: Some(999_999_999),
                contents: vec![content("leap", b"day")],
            },
            Log {
                time: 1_700_000_000,
                time_ns: Some(0),
                contents: vec![content("level", b"INFO")],
            },
            Log {
                time: 1,
                time_ns: None,
                contents: vec![],
            },
        ],
        topic: None,
        source: Some(Bytes::from_static(b"10.0.0.1")),
        log_tags: vec![
            LogTag {
                key: Bytes::from_static(b"__hostname__"),
                value: Bytes::from_static(b"h1"),
            },
            LogTag {
                key: Bytes::from_static(b"__hostname__"),
                value: Bytes::from_static(b"h2"),
            },
        ],
        ..LogGroup::default()
    }
}
