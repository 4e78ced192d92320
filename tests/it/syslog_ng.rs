//! The strict receiver: syslog-ng's `syslog()` source takes octet counting only and refuses
//! malformed RFC 5424, so every message arriving parsed here is well-formed on the wire.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use sls_syslog::config::Settings;
use sls_syslog::devkit::sample;
use sls_syslog::sls::proto::{Log, LogGroup};
use support::function::*;
use support::syslog_ng::{NgReceived, SyslogNg};

fn ng_settings(vars: &[(&str, String)]) -> Settings {
    let mut map: HashMap<String, String> = [
        ("SYSLOG_HOST", "127.0.0.1"),
        ("SYSLOG_FACILITY", "local4"),
        ("SYSLOG_SEVERITY", "warning"),
        ("SYSLOG_HOSTNAME", "fc-instance.example.com"),
        ("SYSLOG_APP_NAME", "sls-syslog-test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        map.insert(k.to_string(), v.clone());
    }
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

fn groups() -> Vec<LogGroup> {
    let mut g = sample::groups(4, 30, 31);
    g.insert(2, edge_group());
    g
}

/// syslog-ng writes the timestamp with a numeric offset.
fn ng_timestamp(l: &Log) -> String {
    let t = expected_timestamp(l.time, l.time_ns.unwrap_or(0));
    format!("{}+00:00", t.trim_end_matches('Z'))
}

async fn ship(ng: &SyslogNg, vars: &[(&str, String)], input: &str, escaped: bool) {
    let groups = groups();
    let n: usize = groups.iter().map(|g| g.logs.len()).sum();
    let sls = start_sls(vec![("ng".into(), 0, groups.clone())]).await;
    let f = start_function(ng_settings(vars)).await;
    let a = invoke(f, &event(&sls, "ng", 0, 0, groups.len() as u64)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["logs"], n as u64);
    let received: Vec<NgReceived> = ng.wait_for(n, Duration::from_secs(20));
    assert_eq!(received.len(), n, "internal log: {}", ng.internal_log());
    for (r, (g, l)) in received.iter().zip(logs_of(&groups)) {
        let ctx = format!("{r:?}");
        assert_eq!(r.input, input, "{ctx}");
        assert_eq!((r.pri, r.facility, r.severity), (164, 20, 4), "{ctx}");
        assert_eq!(r.timestamp, ng_timestamp(l), "{ctx}");
        assert_eq!(r.hostname, "fc-instance.example.com", "{ctx}");
        assert_eq!(r.app_name, "sls-syslog-test", "{ctx}");
        assert_eq!((r.procid.as_str(), r.msgid.as_str()), ("", ""), "{ctx}");
        assert_eq!(r.structured_data, "", "{ctx}");
        let kv = expected_kv(g, l);
        let want = if escaped {
            kv.replace('\n', "\\n").replace('\r', "\\r")
        } else {
            kv
        };
        assert_eq!(r.msg, want, "{ctx}");
    }
    assert!(
        !ng.internal_log().contains("Error processing log message"),
        "{}",
        ng.internal_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octet_counted_tcp_is_accepted_by_the_strict_source() {
    let Some(ng) = SyslogNg::start() else { return };
    let vars = [
        ("SYSLOG_PORT", ng.tcp_port().to_string()),
        ("SYSLOG_FRAMING", "octet-counting".to_string()),
    ];
    ship(&ng, &vars, "tcp", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lf_framed_tcp_reaches_the_network_source_unsplit() {
    let Some(ng) = SyslogNg::start() else { return };
    let vars = [("SYSLOG_PORT", ng.lf_port().to_string())];
    ship(&ng, &vars, "lf", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_default_octet_counting() {
    let Some(ng) = SyslogNg::start() else { return };
    let vars = [
        ("SYSLOG_PROTOCOL", "tls".to_string()),
        ("SYSLOG_PORT", ng.tls_port().to_string()),
        ("SYSLOG_TLS_CA", ng.ca_pem().to_string_lossy().into_owned()),
        ("SYSLOG_TLS_SERVER_NAME", "localhost".to_string()),
    ];
    ship(&ng, &vars, "tls", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams() {
    let Some(ng) = SyslogNg::start() else { return };
    let vars = [
        ("SYSLOG_PROTOCOL", "udp".to_string()),
        ("SYSLOG_PORT", ng.udp_port().to_string()),
        ("SYSLOG_MAX_MESSAGE_BYTES", "65000".to_string()),
    ];
    ship(&ng, &vars, "udp", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_log_is_truncated_and_the_connection_survives() {
    let Some(ng) = SyslogNg::start() else { return };
    let mut groups = sample::groups(1, 3, 8);
    groups[0].logs[1]
        .contents
        .push(content("huge", "é".repeat(60_000).as_bytes()));
    let sls = start_sls(vec![("big".into(), 0, groups.clone())]).await;
    let f = start_function(ng_settings(&[
        ("SYSLOG_PORT", ng.tcp_port().to_string()),
        ("SYSLOG_FRAMING", "octet-counting".to_string()),
    ]))
    .await;
    let a = invoke(f, &event(&sls, "big", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["truncated"], 1);
    let received = ng.wait_for(3, Duration::from_secs(10));
    assert_eq!(received.len(), 3, "{}", ng.internal_log());
    let logs = logs_of(&groups);
    assert_eq!(received[0].msg, expected_kv(logs[0].0, logs[0].1));
    assert_eq!(received[2].msg, expected_kv(logs[2].0, logs[2].1));
    let cut = &received[1];
    assert!(cut.rawmsg.len() <= 65_536, "{}", cut.rawmsg.len());
    assert!(
        cut.rawmsg.len() > 65_530,
        "cut close to the cap: {}",
        cut.rawmsg.len()
    );
    assert!(expected_kv(logs[1].0, logs[1].1).starts_with(&cut.msg));
    assert!(cut.msg.ends_with('é'), "cut on a character boundary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_closes_kept_tls_connections_with_close_notify() {
    let Some(ng) = SyslogNg::start() else { return };
    let sls = start_sls(vec![("c".into(), 0, sample::groups(1, 2, 3))]).await;
    let f = start_function(ng_settings(&[
        ("SYSLOG_PROTOCOL", "tls".to_string()),
        ("SYSLOG_PORT", ng.tls_port().to_string()),
        ("SYSLOG_TLS_CA", ng.ca_pem().to_string_lossy().into_owned()),
        ("SYSLOG_TLS_SERVER_NAME", "localhost".to_string()),
    ]))
    .await;
    let a = invoke(f, &event(&sls, "c", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ng.wait_for(2, Duration::from_secs(10)).len(), 2);
    let r = reqwest::Client::new()
        .get(format!("http://{f}/pre-stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = ng.wait_for_internal_log("Syslog connection closed", Duration::from_secs(5));
    eprintln!("{log}");
    assert!(!log.to_lowercase().contains("unexpected eof"), "{log}");
}
