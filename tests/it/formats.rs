//! Each message format end to end through a real rsyslog, parsed back: JSON with serde_json,
//! CEF with pycef (PyPI) and LEEF with a parser written from IBM's description
//! (tests/conformance/parse.py), so no value is checked with the code that wrote it.

use crate::support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sls_syslog::config::Settings;
use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::cursor;
use sls_syslog::sls::proto::LogGroup;
use support::function::*;
use support::rsyslog::{Received, Rsyslog};

fn vars_settings(port: u16, vars: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("SYSLOG_HOST".into(), "127.0.0.1".into());
    map.insert("SYSLOG_PORT".into(), port.to_string());
    map.insert("SYSLOG_FRAMING".into(), "octet-counting".into());
    map.insert("SYSLOG_HOSTNAME".into(), "fc-instance.example.com".into());
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

fn groups() -> Vec<LogGroup> {
    let mut g = sample::groups(4, 15, 41);
    g.insert(1, edge_group());
    // Names of CEF keys with a type (a time, an address) that a log value need not fit.
    g[0].logs[0].contents.push(content("rt", b"not a time"));
    g[0].logs[0].contents.push(content("src", b"example.com"));
    g
}

/// Ships `groups()` with `vars` (plus `parameter` in the event) and returns what rsyslog got.
async fn ship(
    rx: &Rsyslog,
    vars: &[(&str, &str)],
    parameter: Value,
) -> (Vec<LogGroup>, Vec<Received>) {
    let groups = groups();
    let n: usize = groups.iter().map(|g| g.logs.len()).sum();
    let sls = start_sls(vec![("fmt".into(), 2, groups.clone())]).await;
    let f = start_function(vars_settings(rx.tcp_port(), vars)).await;
    let mut ev = event(&sls, "fmt", 2, 0, groups.len() as u64);
    ev["parameter"] = parameter;
    let a = invoke(f, &ev).await;
    assert_eq!(a.status, 200, "{a:?}");
    let received = rx.wait_for(n, Duration::from_secs(20));
    assert_eq!(received.len(), n);
    (groups, received)
}

/// Runs the independent parser over the messages; `None` (after a loud line) when Python or
/// pycef is missing and the run opted out of the receivers and their tools
/// (`SKIP_RECEIVERS=1`); a failure otherwise.
fn parse_with_python(kind: &str, msgs: &[&str]) -> Option<Vec<Value>> {
    let ok = Command::new("python3")
        .args(["-c", "import pycef"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let message = "python3 with pycef is needed: pip install pycef==1.11";
        return support::daemon::skip(message);
    }
    let mut child = Command::new("python3")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/parse.py"),
            kind,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for m in msgs {
            writeln!(stdin, "{}", serde_json::to_string(m).unwrap()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "parse.py failed");
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_parses_back_to_the_flattened_record() {
    let Some(rx) = Rsyslog::start() else { return };
    let (groups, received) = ship(&rx, &[("SYSLOG_MESSAGE_FORMAT", "json")], Value::Null).await;
    for (r, (g, l)) in received.iter().zip(logs_of(&groups)) {
        let v: Value = serde_json::from_str(&r.msg).unwrap();
        let mut got: Vec<(String, Value)> = v.as_object().unwrap().clone().into_iter().collect();
        let want = expected_fields(g, l);
        // The order on the wire is the SDK's: each key appears after the one before it.
        let positions: Vec<usize> = want
            .iter()
            .map(|(k, _)| r.msg.find(&serde_json::to_string(k).unwrap()).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", r.msg);
        let mut want = want;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want);
    }
}

/// The CEF extension key of each field name in `groups()`, written out by hand from the rule
/// in docs/formats.md (a string-typed ArcSight dictionary key stays, anything else becomes
/// `sls` + its letters and digits in camel case), not computed by the encoder.
fn expected_cef_key(field: &str) -> String {
    let key = match field {
        // Dictionary keys.
        "msg" => "msg",
        // Typed dictionary keys a log value need not fit.
        "rt" => "slsRt",
        "src" => "slsSrc",
        "__topic__" => "slsTopic",
        "__source__" => "slsSource",
        "__time_ns_part__" => "slsTimeNsPart",
        "__tag__:__hostname__" => "slsTagHostname",
        "__tag__:__pack_id__" => "slsTagPackId",
        "__tag__:__receive_time__" => "slsTagReceiveTime",
        "remote_addr" => "slsRemoteAddr",
        "method" => "slsMethod",
        "request_uri" => "slsRequestUri",
        "status" => "slsStatus",
        "body_bytes_sent" => "slsBodyBytesSent",
        "request_time" => "slsRequestTime",
        "http_user_agent" => "slsHttpUserAgent",
        "http_referer" => "slsHttpReferer",
        "remote_user" => "slsRemoteUser",
        "host" => "slsHost",
        "level" => "slsLevel",
        "logger" => "slsLogger",
        "thread" => "slsThread",
        "trace_id" => "slsTraceId",
        "user" => "slsUser",
        "action" => "slsAction",
        "result" => "slsResult",
        "latency_ms" => "slsLatencyMs",
        "message" => "slsMessage",
        "unicode" => "slsUnicode",
        "not_utf8" => "slsNotUtf8",
        "empty" => "slsEmpty",
        "a" => "slsA",
        "leap" => "slsLeap",
        other => panic!("add the CEF key of field {other:?} to expected_cef_key"),
    };
    key.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cef_values_are_recovered_by_an_independent_parser() {
    let Some(rx) = Rsyslog::start() else { return };
    let vars = [
        ("SYSLOG_MESSAGE_FORMAT", "cef"),
        ("SYSLOG_CEF_VENDOR", "Acme Cloud"),
        ("SYSLOG_CEF_EVENT_CLASS_FIELD", "action"),
    ];
    let (groups, received) = ship(&rx, &vars, Value::Null).await;
    let msgs: Vec<&str> = received.iter().map(|r| r.msg.as_str()).collect();
    let Some(parsed) = parse_with_python("cef", &msgs) else {
        return;
    };
    for (p, (g, l)) in parsed.iter().zip(logs_of(&groups)) {
        let fields = expected_fields(g, l);
        let class = fields
            .iter()
            .find(|(k, _)| k == "action")
            .map(|(_, v)| text(v))
            .unwrap_or_else(|| "sls-log".into());
        assert_eq!(
            p["header"],
            serde_json::json!(["0", "Acme Cloud", "SLS", "1.0", class, "SLS log", "5"])
        );
        let millis = u64::from(l.time) * 1000 + u64::from(l.time_ns.unwrap_or(0)) / 1_000_000;
        assert_eq!(p["fields"]["rt"], millis.to_string());
        if fields.iter().any(|(k, _)| k == "rt") {
            assert_eq!(p["fields"]["slsRt"], "not a time", "{p}");
            assert_eq!(p["fields"]["slsSrc"], "example.com", "{p}");
            assert!(p["fields"].get("src").is_none(), "{p}");
        }
        for (k, v) in fields.iter().filter(|(k, _)| !k.starts_with("__time")) {
            let key = expected_cef_key(k);
            let want = text(v);
            match p["fields"].get(&key) {
                Some(got) => assert_eq!(got.as_str().unwrap(), want, "{key} in {p}"),
                // pycef cannot see an empty value (its value pattern needs a character).
                None => assert_eq!(want, "", "{key} missing from {p}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leef_values_are_recovered_by_an_independent_parser() {
    let Some(rx) = Rsyslog::start() else { return };
    let vars = [
        ("SYSLOG_MESSAGE_FORMAT", "leef"),
        ("SYSLOG_LEEF_DELIMITER", "x09"),
    ];
    let (groups, received) = ship(&rx, &vars, Value::Null).await;
    let msgs: Vec<&str> = received.iter().map(|r| r.msg.as_str()).collect();
    let Some(parsed) = parse_with_python("leef", &msgs) else {
        return;
    };
    for (p, (g, l)) in parsed.iter().zip(logs_of(&groups)) {
        assert_eq!(
            p["header"],
            serde_json::json!(["Alibaba Cloud", "SLS", "1.0", "sls-log", "\t"])
        );
        let f = &p["fields"];
        assert_eq!(f["devTimeFormat"], "MMM dd yyyy HH:mm:ss.SSS z");
        let ts = expected_timestamp(l.time, l.time_ns.unwrap_or(0));
        // 2024-03-05T07:08:09.123456Z → Mar 05 2024 07:08:09.123 UTC
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = months[ts[5..7].parse::<usize>().unwrap() - 1];
        let want = format!(
            "{month} {} {} {}.{} UTC",
            &ts[8..10],
            &ts[0..4],
            &ts[11..19],
            &ts[20..23]
        );
        assert_eq!(f["devTime"], want.as_str());
        for (k, v) in expected_fields(g, l)
            .iter()
            .filter(|(k, _)| !k.starts_with("__time"))
        {
            // LEEF has no escaping: the delimiter (TAB), CR and LF become spaces.
            let want = text(v).replace(['\t', '\r', '\n'], " ");
            let key = k.replace(['\t', '=', ' '], " ");
            assert_eq!(f[&key].as_str(), Some(want.as_str()), "{key} in {p}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3164_with_header_fields_from_log_fields() {
    let Some(rx) = Rsyslog::start() else { return };
    let vars = [
        ("SYSLOG_FORMAT", "rfc3164"),
        ("SYSLOG_APP_NAME", "sls"),
        ("SYSLOG_SEVERITY_FIELD", "level"),
        ("SYSLOG_HOSTNAME_FIELD", "__tag__:__hostname__"),
        ("SYSLOG_EXCLUDE_FIELDS", "__tag__:*,__time_ns_part__"),
        ("SYSLOG_FRAMING", "lf"),
    ];
    let (groups, received) = ship(&rx, &vars, Value::Null).await;
    for (r, (g, l)) in received.iter().zip(logs_of(&groups)) {
        let fields = expected_fields(g, l);
        let get = |k: &str| fields.iter().find(|(fk, _)| fk == k).map(|(_, v)| text(v));
        let severity = match get("level").as_deref() {
            Some("ERROR") => "3",
            Some("WARN") => "4",
            Some("DEBUG") => "7",
            _ => "6",
        };
        assert_eq!(r.severity, severity, "{r:?}");
        assert_eq!(r.hostname, get("__tag__:__hostname__").unwrap(), "{r:?}");
        assert_eq!(r.app_name, "sls", "{r:?}");
        let body: String = fields
            .iter()
            .filter(|(k, _)| {
                k != "__time__" && !k.starts_with("__tag__:") && k != "__time_ns_part__"
            })
            .map(|(k, v)| format!("||{k}={}", text(v)))
            .collect();
        // rsyslog keeps the space after "TAG:" as the start of MSG.
        assert_eq!(
            r.msg.strip_prefix(' ').unwrap_or(&r.msg),
            body.replace('\n', "\\n").replace('\r', "\\r"),
            "{r:?}"
        );
        // Mmm dd hh:mm:ss has no year or fraction: rsyslog fills in the year.
        let ts = expected_timestamp(l.time, 0);
        assert_eq!(&r.timestamp[5..19], &ts[5..19], "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_parameters_override_and_sd_traces_each_log() {
    let Some(rx) = Rsyslog::start() else { return };
    let parameter = serde_json::json!({
        "SYSLOG_MESSAGE_FORMAT": "json",
        "SYSLOG_SD_ID": "sls@32473",
        "SYSLOG_MSGID": "SLS",
        "SYSLOG_INCLUDE_FIELDS": "msg,level",
    });
    let (groups, received) = ship(&rx, &[], parameter).await;
    let mut i = 0;
    for (gi, g) in groups.iter().enumerate() {
        for l in &g.logs {
            let r = &received[i];
            i += 1;
            assert_eq!(r.msgid, "SLS");
            assert_eq!(
                r.sd,
                serde_json::json!({"sls@32473": {"project": "demo-project", "logstore": "fmt",
                    "shard": "2", "cursor": cursor(gi as u64)}})
            );
            let want: serde_json::Map<String, Value> = expected_fields(g, l)
                .into_iter()
                .filter(|(k, _)| k == "msg" || k == "level")
                .collect();
            assert_eq!(
                serde_json::from_str::<Value>(&r.msg).unwrap(),
                Value::Object(want)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_trigger_parameter_fails_the_invocation() {
    let sls = start_sls(vec![("p".into(), 0, sample::groups(1, 1, 1))]).await;
    let f = start_function(vars_settings(9, &[])).await;
    let mut ev = event(&sls, "p", 0, 0, 1);
    ev["parameter"] = serde_json::json!({"SYSLOG_HOTS": "x"});
    let a = invoke(f, &ev).await;
    let msg = assert_failed(&a, "InvalidParameter");
    assert!(msg.contains("SYSLOG_HOTS"), "{msg}");
}
