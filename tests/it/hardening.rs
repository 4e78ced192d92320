//! Hardening: every way a PullLogs answer can go wrong, each with the outcome the delivery
//! rule demands (retried, then every log delivered exactly once; or a failed invocation, 404
//! with `x-fc-status: 404` and a one-line error that names the problem), and the size limits.
//!
//! Cases already covered elsewhere are not repeated here: 500 twice, persistent 503, 403
//! `ReadQuotaExceed`/`ShardReadQuotaExceed` once each, 401 `SignatureNotMatch`,
//! `InvalidCursor`, `ShardNotExist`, `LogStoreNotExist`, a stalled answer, a proxy's 502 page
//! and an empty answer (tests/it/invoke.rs); malformed events (tests/it/invoke.rs).
//!
//! The receiver is the in-process [`Collector`]: what arrived is compared byte for byte.

use crate::support;

use std::time::Duration;

use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::{Fault, SlsServer};
use sls_syslog::sls::proto::{Log, LogGroup};
use sls_syslog::syslog::Framing;
use support::call::{demo_headers, invoke_with, with, Raw};
use support::collector::Collector;
use support::function::*;

/// Every invocation here must answer well before this (the longest function timeout used is
/// 3 s; a fault that made the function wait for the stalled server would take 60 s).
const BOUND: Duration = Duration::from_secs(20);

/// The frame the function must send for `log` of `group` with [`settings`] and octet
/// counting: the RFC 5424 header, then the reference's `kv` body unchanged.
fn expected_frame(group: &LogGroup, log: &Log) -> String {
    format!(
        "<164>1 {} fc-instance.example.com sls-syslog-test - - - {}",
        expected_timestamp(log.time, log.time_ns.unwrap_or(0)),
        expected_kv(group, log)
    )
}

/// A function sending to a fresh collector, an SLS test server holding `groups` as
/// `logstore` shard 0, with `pull_count` groups per pull.
struct Rig {
    sls: SlsServer,
    rx: Collector,
    function: std::net::SocketAddr,
    groups: Vec<LogGroup>,
}

impl Rig {
    async fn new(groups: Vec<LogGroup>, pull_count: u32) -> Rig {
        let rx = Collector::start().await;
        let sls = start_sls(vec![("hard".into(), 0, groups.clone())]).await;
        let mut s = settings(rx.port(), Framing::OctetCounting);
        s.pull_count = pull_count;
        let function = start_function(s).await;
        Rig {
            sls,
            rx,
            function,
            groups,
        }
    }

    /// Invokes the function for the whole shard with function timeout `timeout` (seconds).
    async fn invoke(&self, timeout: &str) -> Raw {
        self.invoke_with(demo_headers(timeout)).await
    }

    async fn invoke_with(&self, headers: Vec<(&'static str, String)>) -> Raw {
        let ev = event(&self.sls, "hard", 0, 0, self.groups.len() as u64);
        tokio::time::timeout(BOUND, invoke_with(self.function, ev.to_string(), &headers))
            .await
            .expect("the invocation answers in bounded time")
    }

    /// Asserts a 200 whose summary counts every log, and that the receiver got each log's
    /// frame exactly once, in order.
    async fn assert_delivered(&self, raw: &Raw, pull_retries: u64) {
        let a = raw.answer();
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.fc_status, None);
        let logs = logs_of(&self.groups);
        assert_eq!(a.body["logs"], logs.len() as u64, "{a:?}");
        assert_eq!(a.body["frames_sent"], logs.len() as u64, "{a:?}");
        assert_eq!(a.body["pull_retries"], pull_retries, "{a:?}");
        let frames = self.rx.wait_for(logs.len(), Duration::from_secs(10)).await;
        let frames: Vec<String> = frames
            .iter()
            .map(|f| String::from_utf8(f.clone()).unwrap())
            .collect();
        let expected: Vec<String> = logs.iter().map(|(g, l)| expected_frame(g, l)).collect();
        assert_eq!(frames.len(), expected.len(), "frame count");
        for (i, (f, e)) in frames.iter().zip(&expected).enumerate() {
            assert_eq!(f, e, "frame {i}");
        }
    }
}

/// Asserts a failed invocation of `error_type` whose message is one line holding every
/// one of `needles`; returns the message.
fn assert_fails(raw: &Raw, error_type: &str, needles: &[&str]) -> String {
    let msg = assert_failed(&raw.answer(), error_type);
    assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "one line: {msg:?}"
    );
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg:?}");
    }
    msg
}

fn groups() -> Vec<LogGroup> {
    sample::groups(3, 10, 42)
}

// ---- answers that are retried, then the range is delivered ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_in_the_middle_of_the_body_is_retried() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::ResetMidBody]);
    let raw = rig.invoke("60").await;
    rig.assert_delivered(&raw, 1).await;
    // The first pull (one group) once more, then the other two groups.
    assert_eq!(rig.sls.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_shorter_than_its_content_length_is_retried() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::TruncatedBody]);
    let raw = rig.invoke("60").await;
    rig.assert_delivered(&raw, 1).await;
    assert_eq!(rig.sls.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_briefly_is_waited_for() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls
        .inject([Fault::StalledBody(Duration::from_millis(300))]);
    let raw = rig.invoke("60").await;
    rig.assert_delivered(&raw, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_later_pulls_are_retried_without_resending_earlier_groups() {
    // One group per pull: the first pull is clean, the next ones fail once each.
    let rig = Rig::new(groups(), 1).await;
    // Faults are taken in request order; a zero delay serves the first request normally.
    rig.sls.inject([
        Fault::Delay(Duration::ZERO),
        Fault::ResetMidBody,
        Fault::error(403, "ShardReadQuotaExceed"),
        Fault::TruncatedBody,
    ]);
    let raw = rig.invoke("60").await;
    rig.assert_delivered(&raw, 3).await;
    assert_eq!(rig.sls.requests(), 6);
}

// ---- answers that fail the invocation ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_security_token_fails_without_retrying() {
    let rig = Rig::new(groups(), 1000).await;
    let raw = rig
        .invoke_with(with(
            demo_headers("60"),
            "x-fc-security-token",
            "expired-token-value",
        ))
        .await;
    assert_fails(
        &raw,
        "PullError",
        &[
            "SLS answered HTTP 401 SecurityTokenExpired",
            "request id 5F",
        ],
    );
    assert!(!raw.text.contains("expired-token-value"), "{}", raw.text);
    assert_eq!(rig.sls.requests(), 1, "a credential error is not retried");
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_401_security_token_expired_is_not_retried() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::error(401, "SecurityTokenExpired")]);
    let raw = rig.invoke("60").await;
    assert_fails(&raw, "PullError", &["401 SecurityTokenExpired"]);
    assert_eq!(rig.sls.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_read_quota_that_never_clears_fails_before_the_timeout() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls
        .inject((0..100).map(|_| Fault::error(403, "ShardReadQuotaExceed")));
    let raw = rig.invoke("3").await;
    assert_fails(
        &raw,
        "PullError",
        &["403 ShardReadQuotaExceed", "before the function timeout"],
    );
    assert!(rig.sls.requests() >= 2, "retried at least once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_outlives_the_deadline_fails_in_time() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls
        .inject([Fault::StalledBody(Duration::from_secs(60))]);
    // 3 s function timeout: the function gives up at its deadline (2.8 s), not after the
    // 60 s stall (BOUND would fail the test first).
    let raw = rig.invoke("3").await;
    assert_fails(
        &raw,
        "PullError",
        &["timed out", "before the function timeout"],
    );
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_size_smaller_than_the_body_fails_as_a_decode_error() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::RawSizeOff(-100)]);
    let raw = rig.invoke("60").await;
    assert_fails(
        &raw,
        "DecodeError",
        &[
            "invalid PullLogs response (request id 5F",
            "x-log-bodyrawsize",
            "too small",
        ],
    );
    assert_eq!(rig.sls.requests(), 1, "a corrupt answer is not retried");
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_size_larger_than_the_body_fails_as_a_decode_error() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::RawSizeOff(100)]);
    let raw = rig.invoke("60").await;
    assert_fails(
        &raw,
        "DecodeError",
        &["once decoded, but x-log-bodyrawsize says"],
    );
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_raw_size_is_refused_before_decoding() {
    let rig = Rig::new(groups(), 1000).await;
    // 4 GiB: over MAX_RAW_SIZE.
    rig.sls.inject([Fault::RawSize(4 << 30)]);
    let raw = rig.invoke("60").await;
    assert_fails(
        &raw,
        "DecodeError",
        &["x-log-bodyrawsize 4294967296 is larger than the 268435456-byte limit"],
    );
    // 200 MiB: under the limit, but more than the few-kB LZ4 block can hold.
    rig.sls.inject([Fault::RawSize(200 << 20)]);
    let raw = rig.invoke("60").await;
    assert_fails(
        &raw,
        "DecodeError",
        &[
            "x-log-bodyrawsize 209715200 is more than a",
            "lz4 block can hold",
        ],
    );
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_lz4_fails_as_a_decode_error() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::CorruptLz4]);
    let raw = rig.invoke("60").await;
    assert_fails(&raw, "DecodeError", &["corrupt lz4 body"]);
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_a_log_group_list_fail_as_a_decode_error() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::NotProtobuf]);
    let raw = rig.invoke("60").await;
    assert_fails(&raw, "DecodeError", &["LogGroupList"]);
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_cursor_header_fails_as_a_decode_error() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::NoCursor]);
    let raw = rig.invoke("60").await;
    assert_fails(&raw, "DecodeError", &["no x-log-cursor header"]);
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_does_not_advance_fails_instead_of_looping() {
    // Two groups per pull of three: after the first pull, more remain.
    let rig = Rig::new(groups(), 2).await;
    rig.sls.inject([Fault::NextCursor(0)]);
    let raw = rig.invoke("60").await;
    assert_fails(&raw, "DecodeError", &["did not advance"]);
    assert_eq!(rig.sls.requests(), 1, "refused at once, not pulled again");
    // The answer was refused before any of its logs was shipped.
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_goes_backwards_fails_instead_of_shipping_again() {
    let rig = Rig::new(groups(), 1).await;
    // The first pull is served normally; the second answers a cursor before its request's.
    rig.sls
        .inject([Fault::Delay(Duration::ZERO), Fault::NextCursor(-1)]);
    let raw = rig.invoke("60").await;
    assert_fails(
        &raw,
        "DecodeError",
        &["goes back before the request cursor"],
    );
    assert_eq!(rig.sls.requests(), 2);
    // Only the first group was shipped, once.
    let frames = rig.rx.wait_for(10, Duration::from_secs(10)).await;
    assert_eq!(frames.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_past_the_end_cursor_fails() {
    let rig = Rig::new(groups(), 1).await;
    rig.sls.inject([Fault::NextCursor(5)]);
    let raw = rig.invoke("60").await;
    assert_fails(&raw, "DecodeError", &["is past the end cursor"]);
    assert!(rig.rx.frames().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_wire_limit_is_refused_unread() {
    let rig = Rig::new(groups(), 1000).await;
    rig.sls.inject([Fault::ContentLength(1 << 40)]);
    let raw = rig.invoke("60").await;
    assert_fails(
        &raw,
        "DecodeError",
        &["Content-Length 1099511627776 is over the", "-byte limit"],
    );
}

// ---- limits ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_one_mib_is_refused_and_the_function_keeps_serving() {
    let rig = Rig::new(groups(), 1000).await;
    // Valid JSON up to the limit, so only the size can be the reason.
    let ev = event(&rig.sls, "hard", 0, 0, 3).to_string();
    let pad = sls_syslog::fc::MAX_EVENT_BYTES + 1 - ev.len();
    let big = format!(
        "{}, \"pad\": \"{}\"}}",
        &ev[..ev.len() - 1],
        "p".repeat(pad)
    );
    assert!(big.len() > sls_syslog::fc::MAX_EVENT_BYTES);
    let raw = tokio::time::timeout(BOUND, invoke_with(rig.function, big, &demo_headers("60")))
        .await
        .unwrap();
    assert_fails(&raw, "InvalidEvent", &["over 1048576 bytes"]);
    assert_eq!(rig.sls.requests(), 0);
    // Still serving: the next invocation ships the range.
    let raw = rig.invoke("60").await;
    rig.assert_delivered(&raw, 0).await;
}

/// Groups whose logs each carry one value of `value_len` bytes (distinct per log).
fn big_value_groups(groups: usize, logs: usize, value_len: usize) -> Vec<LogGroup> {
    (0..groups)
        .map(|g| LogGroup {
            logs: (0..logs)
                .map(|i| Log {
                    time: 1_709_622_489 + i as u32,
                    time_ns: Some(1000 * i as u32),
                    contents: vec![
                        content("id", format!("g{g}-l{i}").as_bytes()),
                        content(
                            "payload",
                            &format!("g{g}l{i}:")
                                .bytes()
                                .chain((0..).map(|k| b'a' + (k % 26) as u8))
                                .take(value_len)
                                .collect::<Vec<u8>>(),
                        ),
                        content("after", b"tail"),
                    ],
                })
                .collect(),
            topic: Some(bytes::Bytes::from_static(b"big")),
            ..LogGroup::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mb_values_are_cut_to_the_message_cap_and_counted() {
    // 4 pulls of 2 groups of 2 logs, each log 1 MB: at most two pulls in flight at a time.
    let groups = big_value_groups(8, 2, 1 << 20);
    let rig = Rig::new(groups.clone(), 2).await;
    let raw = rig.invoke("60").await;
    let a = raw.answer();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["logs"], 16);
    assert_eq!(
        a.body["truncated"], 16,
        "every message is over the 65536-byte default"
    );
    let frames = rig.rx.wait_for(16, Duration::from_secs(20)).await;
    assert_eq!(frames.len(), 16);
    for (i, (f, (g, l))) in frames.iter().zip(logs_of(&groups)).enumerate() {
        assert_eq!(f.len(), 65536, "frame {i} is cut to the cap");
        let full = expected_frame(g, l);
        assert!(full.as_bytes().starts_with(f), "frame {i} is a prefix");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mb_values_arrive_whole_under_a_16_mib_cap() {
    let groups = big_value_groups(4, 2, 1 << 20);
    let rx = Collector::start().await;
    let sls = start_sls(vec![("hard".into(), 0, groups.clone())]).await;
    let mut s = settings(rx.port(), Framing::OctetCounting);
    s.pull_count = 1;
    s.max_message_bytes = 16 << 20;
    let rig = Rig {
        sls,
        rx,
        function: start_function(s).await,
        groups,
    };
    let raw = rig.invoke("60").await;
    rig.assert_delivered(&raw, 0).await;
    assert_eq!(raw.answer().body["truncated"], 0);
}
