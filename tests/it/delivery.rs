//! The delivery rule under receiver faults: a receiver restarted in the middle of a large
//! range, connections kept across invocations, concurrent invocations.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::Fault;
use sls_syslog::syslog::Framing;
use support::function::*;
use support::rsyslog::{Received, Rsyslog};

/// Waits for every expected message to arrive at least once (duplicates count towards the
/// total, so the last originals get time to land); returns how many times each arrived and
/// how many messages were received.
fn wait_for_coverage(rx: &Rsyslog, expected: &[String]) -> (Vec<usize>, usize) {
    let mut received = rx.wait_for(expected.len(), Duration::from_secs(60));
    for _ in 0..20 {
        if coverage(&received, expected).iter().all(|&c| c > 0) {
            break;
        }
        received = rx.wait_for(received.len() + 1, Duration::from_millis(500));
    }
    (coverage(&received, expected), received.len())
}

/// How many times each expected message body arrived.
fn coverage(received: &[Received], expected: &[String]) -> Vec<usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in received {
        *counts.entry(r.msg.as_str()).or_default() += 1;
    }
    expected
        .iter()
        .map(|e| counts.get(e.as_str()).copied().unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_restarted_mid_range_loses_nothing_or_fails() {
    let Some(mut rx) = Rsyslog::start() else {
        return;
    };
    // 100 groups × 1000 logs = 100k logs, pulled 10 groups at a time, each pull slowed down
    // so the restart lands in the middle.
    let groups = sample::groups(100, 1000, 77);
    let expected: Vec<String> = logs_of(&groups)
        .into_iter()
        .map(|(g, l)| expected_kv(g, l).replace('\n', "\\n"))
        .collect();
    let sls = start_sls(vec![("big".into(), 0, groups)]).await;
    sls.inject((0..10).map(|_| Fault::Delay(Duration::from_millis(250))));
    let mut s = settings(rx.tcp_port(), Framing::Lf);
    s.pull_count = 10;
    let f = start_function(s).await;

    let invocation = tokio::spawn(async move {
        let a = invoke(f, &event(&sls, "big", 0, 0, 100)).await;
        (a, sls)
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let rx = tokio::task::spawn_blocking(move || {
        rx.restart();
        rx
    })
    .await
    .unwrap();
    let (a, _sls) = invocation.await.unwrap();

    if a.status == 404 {
        // Allowed: the trigger retries the range.
        assert_eq!(a.fc_status.as_deref(), Some("404"), "{a:?}");
        return;
    }
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["logs"], 100_000);
    let (counts, received) = wait_for_coverage(&rx, &expected);
    let missing = counts.iter().filter(|&&c| c == 0).count();
    assert_eq!(
        missing, 0,
        "{missing} logs lost after a receiver restart; summary {}",
        a.body
    );
    eprintln!(
        "restart mid-range: {} messages received for 100000 logs; summary {}",
        received, a.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_kept_between_invocations_and_replaced_when_closed() {
    let Some(mut rx) = Rsyslog::start() else {
        return;
    };
    let groups = sample::groups(3, 5, 4);
    let sls = start_sls(vec![("k".into(), 0, groups.clone())]).await;
    let f = start_function(settings(rx.tcp_port(), Framing::OctetCounting)).await;
    for round in 1..=3 {
        let a = invoke(f, &event(&sls, "k", 0, 0, 3)).await;
        assert_eq!(a.status, 200, "round {round}: {a:?}");
        assert_eq!(a.body["send_retries"], 0, "round {round}");
    }
    assert_eq!(rx.wait_for(45, Duration::from_secs(10)).len(), 45);
    // The receiver goes away between invocations: the kept connection is found closed
    // before anything is written to it, and a new one is made.
    let mut rx = tokio::task::spawn_blocking(move || {
        rx.restart();
        rx
    })
    .await
    .unwrap();
    let a = invoke(f, &event(&sls, "k", 0, 0, 3)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let received = rx.wait_for(60, Duration::from_secs(10));
    assert_eq!(received.len(), 60, "nothing lost, nothing doubled");
    rx.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_invocations_each_deliver_their_own_range() {
    let Some(rx) = Rsyslog::start() else { return };
    let data: Vec<_> = (0..16u32)
        .map(|shard| {
            (
                "c".to_string(),
                shard,
                sample::groups(4, 25, u64::from(shard) + 100),
            )
        })
        .collect();
    let sls = start_sls(data.clone()).await;
    let f = start_function(settings(rx.tcp_port(), Framing::OctetCounting)).await;
    let calls: Vec<_> = (0..16u32)
        .map(|shard| {
            let ev = event(&sls, "c", shard, 0, 4);
            tokio::spawn(async move { invoke(f, &ev).await })
        })
        .collect();
    for c in calls {
        let a = c.await.unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body["logs"], 100);
    }
    let received = rx.wait_for(1600, Duration::from_secs(20));
    assert_eq!(received.len(), 1600);
    let expected: Vec<String> = data
        .iter()
        .flat_map(|(_, _, groups)| logs_of(groups).into_iter().map(|(g, l)| expected_kv(g, l)))
        .collect();
    assert!(
        coverage(&received, &expected).iter().all(|&c| c == 1),
        "every log exactly once, none torn"
    );
}

/// 20,000 logs of about 400 bytes of message each: 8 MB of frames, far more than the proxy's
/// receive buffer, so that a reset always finds bytes in flight.
fn reset_groups() -> Vec<sls_syslog::sls::proto::LogGroup> {
    sample::groups(40, 500, 99)
}

/// Ships `groups` through a proxy that resets the connection once after `cut_after` bytes
/// (TLS when `tls`), and checks that every log arrived (duplicates allowed and counted), or
/// that the invocation failed and said how far delivery was confirmed. Returns the summary.
async fn ship_through_a_reset(cut_after: u64, tls: bool) -> Option<serde_json::Value> {
    use support::proxy::ResetProxy;
    let rx = if tls {
        Rsyslog::start_tls()?
    } else {
        Rsyslog::start()?
    };
    let groups = reset_groups();
    let n = groups.len() as u64;
    let framing = if tls {
        Framing::OctetCounting
    } else {
        Framing::Lf
    };
    let expected: Vec<String> = logs_of(&groups)
        .into_iter()
        .map(|(g, l)| match framing {
            Framing::Lf => expected_kv(g, l).replace('\n', "\\n"),
            Framing::OctetCounting => expected_kv(g, l),
        })
        .collect();
    let upstream_port = if tls {
        rx.tls_gtls_port()
    } else {
        rx.tcp_port()
    };
    let proxy = ResetProxy::start(([127, 0, 0, 1], upstream_port).into(), cut_after).await;
    let sls = start_sls(vec![("reset".into(), 0, groups)]).await;
    let settings = sls_syslog::config::Settings::from_lookup(|k| match k {
        "SYSLOG_HOST" => Some("127.0.0.1".into()),
        "SYSLOG_PORT" => Some(proxy.port().to_string()),
        "SYSLOG_PROTOCOL" => Some(if tls { "tls" } else { "tcp" }.into()),
        "SYSLOG_TLS_CA" => tls.then(|| rx.ca_pem().display().to_string()),
        "SYSLOG_HOSTNAME" => Some("fc-instance.example.com".into()),
        "SYSLOG_APP_NAME" => Some("sls-syslog-test".into()),
        _ => None,
    })
    .unwrap();
    let f = start_function(settings).await;
    let a = invoke(f, &event(&sls, "reset", 0, 0, n)).await;
    // After the last byte, the reset may come after the answer.
    for _ in 0..100 {
        if proxy.was_reset() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(proxy.was_reset(), "the proxy never reset: {a:?}");
    let b = &a.body;
    if a.status == 404 {
        assert_eq!(a.fc_status.as_deref(), Some("404"), "{a:?}");
        return Some(b.clone());
    }
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(b["bytes_confirmed"], b["bytes_sent"], "{b}");
    let (counts, _) = wait_for_coverage(&rx, &expected);
    let missing = counts.iter().filter(|&&c| c == 0).count();
    let duplicates: usize = counts.iter().map(|&c| c.saturating_sub(1)).sum();
    eprintln!(
        "reset after {cut_after} bytes ({}): {} of {} logs, {duplicates} duplicates, proxy forwarded {} bytes before the reset; summary {b}",
        if tls { "tls" } else { "tcp" },
        counts.len() - missing,
        counts.len(),
        proxy.forwarded_before_reset(),
    );
    assert_eq!(missing, 0, "{missing} logs lost after a reset; summary {b}");
    Some(b.clone())
}

/// The bytes of frames the range makes over LF framing (to place the cut near the end).
fn frame_bytes() -> u64 {
    logs_of(&reset_groups())
        .into_iter()
        .map(|(g, l)| expected_kv(g, l).len() as u64 + 80)
        .sum()
}

/// A reset with bytes in flight after `cut_after` bytes: every log arrives, and the summary
/// shows that messages were written again (and, with `reconnected`, a reconnection counted).
async fn assert_resent_after_a_reset(cut_after: u64, tls: bool, reconnected: bool) {
    let Some(b) = ship_through_a_reset(cut_after, tls).await else {
        return;
    };
    assert!(b["frames_resent"].as_u64() > Some(0), "{b}");
    if reconnected {
        assert!(b["send_retries"].as_u64() > Some(0), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_early_in_the_range_is_resent() {
    assert_resent_after_a_reset(500_000, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_in_the_middle_of_the_range_is_resent() {
    assert_resent_after_a_reset(frame_bytes() / 2, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_everything_was_written_is_noticed_and_resent() {
    // The function has written its last byte before the reset: only waiting for the
    // receiver's acknowledgements tells it that the end never arrived.
    assert_resent_after_a_reset(frame_bytes() - 300_000, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_the_last_byte_arrived_loses_nothing() {
    // Everything reached the receiver; the reset comes when the function has nothing left
    // to send. Success (everything acknowledged) or a resend are both right.
    ship_through_a_reset(u64::MAX, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_reset_after_everything_was_written_is_noticed_and_resent() {
    assert_resent_after_a_reset(frame_bytes() - 300_000, true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_reset_in_the_middle_is_resent() {
    assert_resent_after_a_reset(frame_bytes() / 2, true, true).await;
}
