//! End to end through `POST /invoke`: the SLS test server (signature and Host checked, LZ4
//! protobuf bodies) → the function → a real rsyslog, comparing every field received with what
//! was pulled.

use crate::support;

use std::time::{Duration, Instant};

use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::Fault;
use sls_syslog::sls::proto::LogGroup;
use sls_syslog::syslog::{Framing, Protocol};
use support::function::*;
use support::rsyslog::{Received, Rsyslog};

fn test_groups() -> Vec<LogGroup> {
    let mut groups = sample::groups(6, 50, 11);
    groups.insert(3, edge_group());
    groups
}

/// Checks every received message against the log it came from, in order.
fn check_received(received: &[Received], groups: &[LogGroup], framing: Framing) {
    let logs = logs_of(groups);
    assert_eq!(received.len(), logs.len(), "message count");
    for (i, (r, (g, l))) in received.iter().zip(&logs).enumerate() {
        let ctx = format!("message {i}: {r:?}");
        assert_eq!(r.input, "tcp", "{ctx}");
        assert_eq!(r.pri, "164", "{ctx}");
        assert_eq!(
            (r.facility.as_str(), r.severity.as_str()),
            ("20", "4"),
            "{ctx}"
        );
        assert_eq!(r.version, "1", "{ctx}");
        assert_eq!(
            r.timestamp,
            expected_timestamp(l.time, l.time_ns.unwrap_or(0)),
            "{ctx}"
        );
        assert_eq!(r.hostname, "fc-instance.example.com", "{ctx}");
        assert_eq!(r.app_name, "sls-syslog-test", "{ctx}");
        assert_eq!(r.procid, "-", "{ctx}");
        assert_eq!(r.msgid, "-", "{ctx}");
        assert_eq!(r.structured_data, "-", "{ctx}");
        let kv = expected_kv(g, l);
        let want = match framing {
            Framing::Lf => kv.replace('\n', "\\n").replace('\r', "\\r"),
            Framing::OctetCounting => kv,
        };
        assert_eq!(r.msg, want, "{ctx}");
    }
}

/// Pulls for a range of `groups` small log groups: one group first, then up to eight times
/// the count before, at most `max` (the byte budget never binds for small groups).
fn small_group_pulls(groups: usize, max: u32) -> u64 {
    let (mut left, mut count, mut pulls) = (groups, 1usize, 0);
    while left > 0 {
        let asked = count.min(max as usize);
        left = left.saturating_sub(asked);
        pulls += 1;
        count = asked * 8;
    }
    pulls
}

async fn ship_and_check(framing: Framing, pull_count: u32) {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = test_groups();
    let n_logs: usize = groups.iter().map(|g| g.logs.len()).sum();
    let sls = start_sls(vec![("app-logs".into(), 3, groups.clone())]).await;
    let mut s = settings(rx.tcp_port(), framing);
    s.pull_count = pull_count;
    let f = start_function(s).await;

    let ev = event(&sls, "app-logs", 3, 0, groups.len() as u64);
    let a = invoke(f, &ev).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.fc_status, None);
    let b = &a.body;
    // The range, as the event gave it.
    assert_eq!(b["project"], ev["source"]["projectName"]);
    assert_eq!(b["logstore"], "app-logs");
    assert_eq!(b["begin_cursor"], ev["source"]["beginCursor"]);
    assert_eq!(b["end_cursor"], ev["source"]["endCursor"]);
    assert_eq!(b["ended_before_end_cursor"], false);
    // Every byte sent once and confirmed; nothing cut or resent.
    assert_eq!(b["bytes_confirmed"], b["bytes_sent"]);
    assert_eq!(
        (&b["truncated"], &b["send_retries"], &b["frames_resent"]),
        (&0.into(), &0.into(), &0.into())
    );
    assert_eq!(b["logs"], n_logs as u64);
    assert_eq!(b["frames_sent"], n_logs as u64);
    assert_eq!(b["log_groups"], groups.len() as u64);
    assert_eq!(b["pulls"], small_group_pulls(groups.len(), pull_count));
    assert_eq!(b["pull_retries"], 0);
    assert_eq!(b["shard"], 3);
    assert_eq!(b["request_id"], "req-test-1");
    assert!(b["bytes_pulled"].as_u64().unwrap() > 0);
    assert!(b["bytes_sent"].as_u64().unwrap() > b["bytes_decoded"].as_u64().unwrap() / 2);
    assert_eq!(sls.served_groups(), groups.len() as u64);

    let received = rx.wait_for(n_logs, Duration::from_secs(20));
    check_received(&received, &groups, framing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lf_framing_delivers_every_log_intact_over_several_pulls() {
    ship_and_check(Framing::Lf, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octet_counting_delivers_multiline_values_unchanged() {
    ship_and_check(Framing::OctetCounting, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sends_one_message_per_datagram() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = vec![edge_group()];
    let sls = start_sls(vec![("udp".into(), 0, groups.clone())]).await;
    let mut s = settings(rx.udp_port(), Framing::Lf);
    s.protocol = Protocol::Udp;
    let f = start_function(s).await;
    let a = invoke(f, &event(&sls, "udp", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let received = rx.wait_for(4, Duration::from_secs(10));
    assert_eq!(received.len(), 4);
    for (r, (g, l)) in received.iter().zip(logs_of(&groups)) {
        assert_eq!(r.input, "udp");
        assert_eq!(
            r.msg,
            expected_kv(g, l),
            "datagrams carry the message unchanged"
        );
        assert_eq!(
            r.timestamp,
            expected_timestamp(l.time, l.time_ns.unwrap_or(0))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sls_500_twice_then_success_delivers_everything() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(3, 20, 5);
    let sls = start_sls(vec![("flaky".into(), 0, groups.clone())]).await;
    sls.inject([
        Fault::error(500, "InternalServerError"),
        Fault::error(500, "InternalServerError"),
    ]);
    let f = start_function(settings(rx.tcp_port(), Framing::Lf)).await;
    let a = invoke(f, &event(&sls, "flaky", 0, 0, 3)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["pull_retries"], 2);
    assert_eq!(a.body["logs"], 60);
    // Two refused, then one group, then the other two.
    assert_eq!(sls.requests(), 4);
    let received = rx.wait_for(60, Duration::from_secs(10));
    check_received(&received, &groups, Framing::Lf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_quota_403_is_retried() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(2, 5, 6);
    let sls = start_sls(vec![("quota".into(), 0, groups)]).await;
    sls.inject([
        Fault::error(403, "ShardReadQuotaExceed"),
        Fault::error(403, "ReadQuotaExceed"),
    ]);
    let f = start_function(settings(rx.tcp_port(), Framing::Lf)).await;
    let a = invoke(f, &event(&sls, "quota", 0, 0, 2)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["pull_retries"], 2);
    assert_eq!(rx.wait_for(10, Duration::from_secs(10)).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_range_succeeds_with_zero_counts() {
    let sls = start_sls(vec![("empty".into(), 0, vec![])]).await;
    // Nothing listens on the receiver port: an empty range must not need the receiver.
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let a = invoke(f, &event(&sls, "empty", 0, 0, 0)).await;
    assert_eq!(a.status, 200, "{a:?}");
    for field in ["logs", "log_groups", "frames_sent", "bytes_sent", "pulls"] {
        assert_eq!(a.body[field], 0, "{field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_fails_with_slss_error_and_never_echoes_the_secret() {
    let sls = start_sls(vec![("s".into(), 0, sample::groups(1, 1, 1))]).await;
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let secret = "wrong-secret-value-xyz";
    let a = invoke_raw(f, event(&sls, "s", 0, 0, 1).to_string(), secret, "60").await;
    let msg = assert_failed(&a, "PullError");
    assert!(msg.contains("401 SignatureNotMatch"), "{msg}");
    assert!(msg.contains("request id 5F"), "{msg}");
    assert!(!a.body.to_string().contains(secret));
    assert_eq!(sls.requests(), 1, "a signature error is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_logstore_and_wrong_project_fail_clearly() {
    let sls = start_sls(vec![("s".into(), 0, sample::groups(1, 1, 1))]).await;
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let a = invoke(f, &event(&sls, "nope", 0, 0, 1)).await;
    assert!(assert_failed(&a, "PullError").contains("404 LogStoreNotExist"));

    // The project travels only in the Host header; the server checks it.
    let mut ev = event(&sls, "s", 0, 0, 1);
    ev["source"]["projectName"] = "other-project".into();
    let a = invoke(f, &ev).await;
    let msg = assert_failed(&a, "PullError");
    assert!(
        msg.contains("ProjectNotExist") && msg.contains("other-project.127.0.0.1"),
        "{msg}"
    );

    let a = invoke(f, &event(&sls, "s", 7, 0, 1)).await;
    assert!(assert_failed(&a, "PullError").contains("ShardNotExist"));
    let a = invoke(f, &event(&sls, "s", 0, 5, 9)).await;
    assert!(assert_failed(&a, "PullError").contains("InvalidCursor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_not_listening_fails_within_the_timeout() {
    let sls = start_sls(vec![("s".into(), 0, sample::groups(2, 3, 1))]).await;
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let started = Instant::now();
    let secret = sls_syslog::devkit::sls_server::Account::demo().access_key_secret;
    let a = invoke_raw(f, event(&sls, "s", 0, 0, 2).to_string(), &secret, "3").await;
    let msg = assert_failed(&a, "SendError");
    assert!(
        msg.contains("cannot connect to syslog receiver 127.0.0.1:"),
        "{msg}"
    );
    assert_gave_up_by_the_deadline(started, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sls_errors_fail_before_the_function_timeout() {
    let sls = start_sls(vec![("s".into(), 0, sample::groups(1, 1, 1))]).await;
    sls.inject((0..100).map(|_| Fault::error(503, "ServerBusy")));
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let started = Instant::now();
    let a = invoke_raw(
        f,
        event(&sls, "s", 0, 0, 1).to_string(),
        &sls_syslog::devkit::sls_server::Account::demo().access_key_secret,
        "3",
    )
    .await;
    let msg = assert_failed(&a, "PullError");
    assert!(
        msg.contains("503 ServerBusy") && msg.contains("gave up"),
        "{msg}"
    );
    assert_gave_up_by_the_deadline(started, 3);
    assert!(sls.requests() >= 2, "retried at least once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_fail_naming_the_problem() {
    let sls = start_sls(vec![]).await;
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let secret = sls_syslog::devkit::sls_server::Account::demo().access_key_secret;
    let mut no_end = event(&sls, "s", 0, 0, 1);
    no_end["source"]
        .as_object_mut()
        .unwrap()
        .remove("endCursor");
    let mut bad_shard = event(&sls, "s", 0, 0, 1);
    bad_shard["source"]["shardId"] = "zero".into();
    for (body, needle) in [
        ("not json".to_string(), "not JSON"),
        ("[]".to_string(), "not a JSON object"),
        ("{}".to_string(), "source"),
        (no_end.to_string(), "source.endCursor"),
        (bad_shard.to_string(), "source.shardId"),
        ("x".repeat(2 * 1024 * 1024), "over 1048576 bytes"),
    ] {
        let a = invoke_raw(f, body, &secret, "60").await;
        let msg = assert_failed(&a, "InvalidEvent");
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_hooks_answer_200() {
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{f}/initialize"))
        .header("x-fc-request-id", "init-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for path in ["pre-stop", "pre-freeze"] {
        let r = http.get(format!("http://{f}/{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_inside_the_shard_ships_exactly_its_logs() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(6, 4, 21);
    let sls = start_sls(vec![("mid".into(), 0, groups.clone())]).await;
    let mut s = settings(rx.tcp_port(), Framing::OctetCounting);
    s.pull_count = 1;
    let f = start_function(s).await;
    let a = invoke(f, &event(&sls, "mid", 0, 1, 4)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["log_groups"], 3);
    assert_eq!(a.body["pulls"], 3);
    assert_eq!(sls.served_groups(), 3, "the end cursor bounds every pull");
    let received = rx.wait_for(12, Duration::from_secs(10));
    check_received(&received, &groups[1..4], Framing::OctetCounting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_that_advances_to_the_end_succeeds() {
    let sls = start_sls(vec![("e".into(), 0, sample::groups(3, 2, 1))]).await;
    sls.inject([Fault::Empty]);
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let a = invoke(f, &event(&sls, "e", 0, 0, 3)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["pulls"], 1);
    assert_eq!(a.body["logs"], 0);
    assert_eq!(a.body["bytes_decoded"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxys_502_page_is_retried() {
    let Some(rx) = Rsyslog::start() else { return };
    let sls = start_sls(vec![("p".into(), 0, sample::groups(1, 3, 1))]).await;
    sls.inject([Fault::Html(502)]);
    let f = start_function(settings(rx.tcp_port(), Framing::Lf)).await;
    let a = invoke(f, &event(&sls, "p", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["pull_retries"], 1);
    assert_eq!(rx.wait_for(3, Duration::from_secs(10)).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sls_answer_fails_before_the_function_timeout() {
    let sls = start_sls(vec![("slow".into(), 0, sample::groups(1, 1, 1))]).await;
    sls.inject([Fault::Delay(Duration::from_secs(30))]);
    let f = start_function(settings(closed_port(), Framing::Lf)).await;
    let started = Instant::now();
    let a = invoke_raw(
        f,
        event(&sls, "slow", 0, 0, 1).to_string(),
        &sls_syslog::devkit::sls_server::Account::demo().access_key_secret,
        "3",
    )
    .await;
    let msg = assert_failed(&a, "PullError");
    assert!(msg.contains("timed out"), "{msg}");
    assert_gave_up_by_the_deadline(started, 3);
}

/// Logs whose header values each come from a field of their own, different in every log:
/// `(group, expected (hostname, app, msgid, facility, severity, cef name, cef severity))`.
#[allow(clippy::type_complexity)]
fn header_field_logs() -> (
    LogGroup,
    Vec<(String, String, String, u8, u8, String, String)>,
) {
    use sls_syslog::sls::proto::Log;
    // Facility and severity names with their numbers (RFC 5424 §6.2.1), written out here.
    let facilities = [("local3", 19u8), ("auth", 4), ("daemon", 3)];
    let severities = [("err", 3u8), ("warning", 4), ("debug", 7)];
    let cef_severities = ["3", "7", "10"];
    let mut expected = Vec::new();
    let logs = (0..9)
        .map(|i| {
            let (fac, fac_n) = facilities[i % 3];
            let (sev, sev_n) = severities[(i / 3) % 3];
            let row = (
                format!("host-{i}.example.com"),
                format!("svc{i}"),
                format!("EV{i}"),
                fac_n,
                sev_n,
                format!("Sign-in {i}"),
                cef_severities[(i + 1) % 3].to_string(),
            );
            let contents = vec![
                content("src_host", row.0.as_bytes()),
                content("svc", row.1.as_bytes()),
                content("evt", row.2.as_bytes()),
                content("fac", fac.as_bytes()),
                content("lvl", sev.as_bytes()),
                content("title", row.5.as_bytes()),
                content("risk", row.6.as_bytes()),
            ];
            expected.push(row);
            Log {
                time: 1_700_000_000 + i as u32,
                time_ns: None,
                contents,
            }
        })
        .collect();
    let group = LogGroup {
        logs,
        ..LogGroup::default()
    };
    (group, expected)
}

/// Ships the header-field logs with `vars` (plus the receiver) and returns what rsyslog got.
async fn ship_header_fields(vars: &[(&str, &str)]) -> Option<Vec<Received>> {
    let rx = Rsyslog::start()?;
    let (group, expected) = header_field_logs();
    let sls = start_sls(vec![("fields".into(), 0, vec![group])]).await;
    let port = rx.tcp_port().to_string();
    let settings = sls_syslog::config::Settings::from_lookup(|k| {
        match k {
            "SYSLOG_HOST" => Some("127.0.0.1"),
            "SYSLOG_PORT" => Some(port.as_str()),
            // Constants that the fields must win over.
            "SYSLOG_HOSTNAME" => Some("constant-host"),
            "SYSLOG_APP_NAME" => Some("constant-app"),
            "SYSLOG_MSGID" => Some("CONST"),
            _ => vars.iter().find(|(v, _)| *v == k).map(|(_, x)| *x),
        }
        .map(str::to_string)
    })
    .unwrap();
    let f = start_function(settings).await;
    let a = invoke(f, &event(&sls, "fields", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let received = rx.wait_for(expected.len(), Duration::from_secs(10));
    assert_eq!(received.len(), expected.len());
    Some(received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_header_field_variable_takes_its_own_field_by_value() {
    let Some(received) = ship_header_fields(&[
        ("SYSLOG_HOSTNAME_FIELD", "src_host"),
        ("SYSLOG_APP_NAME_FIELD", "svc"),
        ("SYSLOG_MSGID_FIELD", "evt"),
        ("SYSLOG_FACILITY_FIELD", "fac"),
        ("SYSLOG_SEVERITY_FIELD", "lvl"),
    ])
    .await
    else {
        return;
    };
    let (_, expected) = header_field_logs();
    for (r, (host, app, msgid, fac, sev, _, _)) in received.iter().zip(&expected) {
        assert_eq!(
            (r.hostname.as_str(), r.app_name.as_str(), r.msgid.as_str()),
            (host.as_str(), app.as_str(), msgid.as_str()),
            "{r:?}"
        );
        assert_eq!(
            (r.facility.as_str(), r.severity.as_str()),
            (fac.to_string().as_str(), sev.to_string().as_str()),
            "{r:?}"
        );
        assert_eq!(r.pri, (u32::from(*fac) * 8 + u32::from(*sev)).to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cef_name_and_severity_and_the_leef_event_id_take_their_fields_by_value() {
    let Some(cef) = ship_header_fields(&[
        ("SYSLOG_MESSAGE_FORMAT", "cef"),
        ("SYSLOG_CEF_NAME_FIELD", "title"),
        ("SYSLOG_CEF_SEVERITY_FIELD", "risk"),
    ])
    .await
    else {
        return;
    };
    let (_, expected) = header_field_logs();
    for (r, (_, _, _, _, _, name, severity)) in cef.iter().zip(&expected) {
        // CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|
        let header: Vec<&str> = r.msg.splitn(8, '|').collect();
        assert_eq!(header[0], "CEF:0", "{}", r.msg);
        assert_eq!(
            (header[5], header[6]),
            (name.as_str(), severity.as_str()),
            "{}",
            r.msg
        );
    }
    let Some(leef) = ship_header_fields(&[
        ("SYSLOG_MESSAGE_FORMAT", "leef"),
        ("SYSLOG_LEEF_EVENT_ID_FIELD", "evt"),
    ])
    .await
    else {
        return;
    };
    for (r, (_, _, event_id, _, _, _, _)) in leef.iter().zip(&expected) {
        // LEEF:2.0|Vendor|Product|Version|EventID|delimiter|attributes
        let header: Vec<&str> = r.msg.splitn(7, '|').collect();
        assert_eq!(header[0], "LEEF:2.0", "{}", r.msg);
        assert_eq!(header[4], event_id.as_str(), "{}", r.msg);
    }
}

/// UDP at the default size caps (2048 bytes a datagram for RFC 5424, 1024 for RFC 3164): a
/// message under the cap arrives whole, a longer one is cut to the cap and counted.
async fn udp_at_the_default_cap(format: &str, cap: usize) {
    use sls_syslog::sls::proto::Log;
    let Some(rx) = Rsyslog::start() else { return };
    let log = |value: usize| Log {
        time: 1_700_000_000,
        time_ns: None,
        contents: vec![content("message", "x".repeat(value).as_bytes())],
    };
    let group = LogGroup {
        logs: vec![log(cap - 400), log(cap * 3)],
        ..LogGroup::default()
    };
    let sls = start_sls(vec![("udp".into(), 0, vec![group.clone()])]).await;
    let port = rx.udp_port().to_string();
    let s = sls_syslog::config::Settings::from_lookup(|k| {
        match k {
            "SYSLOG_HOST" => Some("127.0.0.1"),
            "SYSLOG_PORT" => Some(port.as_str()),
            "SYSLOG_PROTOCOL" => Some("udp"),
            "SYSLOG_FORMAT" => Some(format),
            "SYSLOG_HOSTNAME" => Some("fc-instance.example.com"),
            _ => None,
        }
        .map(str::to_string)
    })
    .unwrap();
    let f = start_function(s).await;
    let a = invoke(f, &event(&sls, "udp", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["truncated"], 1, "{a:?}");
    let received = rx.wait_for(2, Duration::from_secs(10));
    assert_eq!(received.len(), 2);
    let expected: Vec<String> = group.logs.iter().map(|l| expected_kv(&group, l)).collect();
    for r in &received {
        assert!(
            r.rawmsg.len() <= cap,
            "{} bytes over the {cap} cap",
            r.rawmsg.len()
        );
    }
    // rsyslog keeps the space after an RFC 3164 TAG's colon in MSG.
    let msg = |r: &Received| r.msg.strip_prefix(' ').unwrap_or(&r.msg).to_string();
    assert_eq!(msg(&received[0]), expected[0], "under the cap: whole");
    let cut = &msg(&received[1]);
    assert!(
        expected[1].starts_with(cut.as_str()) && cut.len() < expected[1].len(),
        "over the cap: a prefix ({} of {} bytes)",
        cut.len(),
        expected[1].len()
    );
    assert!(
        received[1].rawmsg.len() > cap - 20,
        "cut at the cap, not far before it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_rfc5424_datagrams_keep_to_the_2048_byte_default() {
    udp_at_the_default_cap("rfc5424", 2048).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_rfc3164_datagrams_keep_to_the_1024_byte_default() {
    udp_at_the_default_cap("rfc3164", 1024).await;
}
