//! 16 invocations at once against one function instance, each for its own shard (distinct
//! data), into one real rsyslog over TCP (LF framing) and over TLS (octet counting): every
//! log arrives exactly once, whole, well-formed, and traced (RFC 5424 STRUCTURED-DATA) to
//! the shard and log group it was pulled from. A frame interleaved with another connection's,
//! or torn, would not parse into an expected message.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use sls_syslog::config::Settings;
use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::{cursor, Data};
use support::call::{demo_headers, invoke_with, with};
use support::function::*;
use support::rsyslog::Rsyslog;

const SHARDS: u32 = 16;
const GROUPS: usize = 5;
const LOGS: usize = 30;

fn vars_settings(vars: &[(&str, String)]) -> Settings {
    let mut map: HashMap<String, String> = [
        ("SYSLOG_HOST", "127.0.0.1"),
        ("SYSLOG_FACILITY", "local4"),
        ("SYSLOG_SEVERITY", "warning"),
        ("SYSLOG_HOSTNAME", "fc-instance.example.com"),
        ("SYSLOG_APP_NAME", "sls-syslog-test"),
        ("SYSLOG_SD_ID", "sls@32473"),
        // Several pulls, so each invocation writes several batches.
        ("SLS_PULL_COUNT", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        map.insert(k.to_string(), v.clone());
    }
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

/// Per shard, realistic logs (multi-line values, Unicode) each with a unique probe field.
fn data() -> Data {
    (0..SHARDS)
        .map(|shard| {
            let mut groups = sample::groups(GROUPS, LOGS, 500 + u64::from(shard));
            for (g, group) in groups.iter_mut().enumerate() {
                for (i, log) in group.logs.iter_mut().enumerate() {
                    log.contents
                        .push(content("probe", format!("s{shard}-g{g}-l{i}").as_bytes()));
                }
            }
            ("conc".to_string(), shard, groups)
        })
        .collect()
}

/// What one received message must be.
struct Expected {
    shard: u32,
    group: usize,
    timestamp: String,
}

/// Expected messages by their MSG (as rsyslog gives it back for `escape_lf` framing).
fn expected(data: &Data, escape_lf: bool) -> HashMap<String, Expected> {
    let mut out = HashMap::new();
    for (_, shard, groups) in data {
        for (gi, g) in groups.iter().enumerate() {
            for l in &g.logs {
                let kv = expected_kv(g, l);
                let msg = if escape_lf {
                    kv.replace('\n', "\\n").replace('\r', "\\r")
                } else {
                    kv
                };
                let e = Expected {
                    shard: *shard,
                    group: gi,
                    timestamp: expected_timestamp(l.time, l.time_ns.unwrap_or(0)),
                };
                assert!(out.insert(msg, e).is_none(), "test data must be unique");
            }
        }
    }
    out
}

async fn sixteen_at_once(rx: &Rsyslog, settings: Settings, input: &str, escape_lf: bool) {
    let data = data();
    let sls = start_sls(data.clone()).await;
    let f = start_function(settings).await;
    let calls: Vec<_> = (0..SHARDS)
        .map(|shard| {
            let ev = event(&sls, "conc", shard, 0, GROUPS as u64).to_string();
            let headers = with(
                demo_headers("60"),
                "x-fc-request-id",
                &format!("req-shard-{shard}"),
            );
            tokio::spawn(async move { invoke_with(f, ev, &headers).await })
        })
        .collect();
    for (shard, call) in calls.into_iter().enumerate() {
        let a = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("bounded")
            .unwrap()
            .answer();
        assert_eq!(a.status, 200, "shard {shard}: {a:?}");
        assert_eq!(a.body["shard"], shard as u64);
        assert_eq!(a.body["request_id"], format!("req-shard-{shard}"));
        assert_eq!(a.body["logs"], (GROUPS * LOGS) as u64, "{a:?}");
        assert_eq!(a.body["frames_sent"], (GROUPS * LOGS) as u64, "{a:?}");
        assert_eq!(a.body["frames_resent"], 0, "{a:?}");
    }
    let total = SHARDS as usize * GROUPS * LOGS;
    let mut received = rx.wait_for(total, Duration::from_secs(60));
    // Anything beyond the expected count (a duplicate, a torn remainder) arrives with them.
    received.extend(
        rx.wait_for(total + 1, Duration::from_millis(500))
            .into_iter()
            .skip(received.len()),
    );
    let want = expected(&data, escape_lf);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in &received {
        let ctx = format!("{r:?}");
        assert_eq!(r.input, input, "{ctx}");
        let e = want
            .get(r.msg.as_str())
            .unwrap_or_else(|| panic!("a message no shard holds (torn or interleaved?): {ctx}"));
        *seen.entry(r.msg.as_str()).or_default() += 1;
        assert_eq!((r.pri.as_str(), r.version.as_str()), ("164", "1"), "{ctx}");
        assert_eq!(r.timestamp, e.timestamp, "{ctx}");
        assert_eq!(r.hostname, "fc-instance.example.com", "{ctx}");
        assert_eq!(r.app_name, "sls-syslog-test", "{ctx}");
        assert_eq!((r.procid.as_str(), r.msgid.as_str()), ("-", "-"), "{ctx}");
        assert_eq!(
            r.sd,
            json!({"sls@32473": {"project": "demo-project", "logstore": "conc",
                "shard": e.shard.to_string(), "cursor": cursor(e.group as u64)}}),
            "the log is traced to its own shard and group: {ctx}"
        );
    }
    let missing = want
        .keys()
        .filter(|m| !seen.contains_key(m.as_str()))
        .count();
    let doubled = seen.values().filter(|&&n| n > 1).count();
    assert_eq!((missing, doubled), (0, 0), "every log exactly once");
    assert_eq!(received.len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_shards_at_once_over_tcp() {
    let Some(rx) = Rsyslog::start() else { return };
    let s = vars_settings(&[
        ("SYSLOG_PORT", rx.tcp_port().to_string()),
        ("SYSLOG_FRAMING", "lf".into()),
    ]);
    sixteen_at_once(&rx, s, "tcp", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_shards_at_once_over_tls() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let s = vars_settings(&[
        ("SYSLOG_PROTOCOL", "tls".into()),
        ("SYSLOG_PORT", rx.tls_ossl_port().to_string()),
        ("SYSLOG_TLS_CA", rx.ca_pem().to_string_lossy().into_owned()),
    ]);
    sixteen_at_once(&rx, s, "tls-ossl", false).await;
}
