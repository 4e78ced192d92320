//! The real binary as FC runs it: configuration from the environment, the FC log lines on
//! stdout, no secret anywhere in what it prints, clean exit on SIGTERM.

use crate::support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::Account;
use support::function::*;
use support::rsyslog::Rsyslog;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_fc_prints_its_log_lines_and_never_a_secret() {
    let Some(rx) = Rsyslog::start() else { return };
    let groups = sample::groups(2, 10, 3);
    let sls = start_sls(vec![("bin".into(), 0, groups.clone())]).await;
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sls-syslog"))
        .env_clear()
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .env("SYSLOG_HOST", "127.0.0.1")
        .env("SYSLOG_PORT", rx.tcp_port().to_string())
        .env("SYSLOG_FACILITY", "local4")
        .env("SYSLOG_SEVERITY", "warning")
        .env("SYSLOG_HOSTNAME", "fc-instance.example.com")
        .env("SYSLOG_APP_NAME", "sls-syslog-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_listening(port);
    let addr = ([127, 0, 0, 1], port).into();

    let ok = invoke(addr, &event(&sls, "bin", 0, 0, 2)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["logs"], 20);
    let received = rx.wait_for(20, Duration::from_secs(10));
    assert_eq!(received.len(), 20);
    for (r, (g, l)) in received.iter().zip(logs_of(&groups)) {
        assert_eq!(r.pri, "164");
        assert_eq!(r.hostname, "fc-instance.example.com");
        assert_eq!(r.msg, expected_kv(g, l).replace('\n', "\\n"));
    }

    let secret = "wrong-secret-0123456789";
    let bad = invoke_raw(addr, event(&sls, "bin", 0, 0, 2).to_string(), secret, "60").await;
    assert_eq!(bad.fc_status.as_deref(), Some("404"));

    // SIGTERM: graceful shutdown.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "FC Invoke Start RequestId: req-test-1")
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "FC Invoke End RequestId: req-test-1")
            .count(),
        2,
        "{stdout}"
    );
    assert!(
        lines.contains(&"INFO shutting down; closed 1 receiver connection(s)"),
        "SIGTERM closes the kept connection: {stdout}"
    );
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ERROR")).collect();
    assert_eq!(
        errors.len(),
        1,
        "one error line for the failed invocation: {stdout}"
    );
    assert!(errors[0].contains("SignatureNotMatch"), "{stdout}");
    assert!(errors[0].contains("PullError (pull stage)"), "{stdout}");

    // One JSON summary line per invocation, for SLS queries and alerts.
    let summaries: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(summaries.len(), 2, "{stdout}");
    let ok = &summaries[0];
    assert_eq!(ok["event"], "sls-syslog.invocation");
    assert_eq!(ok["outcome"], "ok");
    assert_eq!(ok["request_id"], "req-test-1");
    assert_eq!(ok["logs"], 20);
    assert_eq!(ok["frames_sent"], 20);
    assert_eq!(ok["shard"], 0);
    assert!(ok.get("error").is_none());
    let failed = &summaries[1];
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["stage"], "pull");
    assert_eq!(failed["error_type"], "PullError");
    assert_eq!(failed["logs"], 0);
    assert_eq!(failed["project"], ok["project"]);
    assert!(failed["error"]
        .as_str()
        .is_some_and(|e| e.contains("SignatureNotMatch")));
    let everything = format!("{stdout}{stderr}");
    for s in [
        secret,
        Account::demo().access_key_secret.as_str(),
        Account::demo().security_token.as_deref().unwrap(),
    ] {
        assert!(
            !everything.contains(s),
            "secret {s:?} printed:\n{everything}"
        );
    }
}

#[test]
fn bad_configuration_is_one_line_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_sls-syslog"))
        .env_clear()
        .env("SYSLOG_HOST", "127.0.0.1")
        .env("SYSLOG_FACILITY", "local9")
        .env("FC_CUSTOM_LISTEN_PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("SYSLOG_FACILITY") && stderr.contains("local9"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_sls-syslog"))
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SYSLOG_HOST"));
}

#[test]
fn demo_runs_end_to_end() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sls-syslog"))
        .arg("demo")
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut frames = 0;
    let mut ok = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("  <14>1 2024-03-05T07:08:")
            && line.contains(" sls-syslog-demo sls-syslog - - - ||__topic__=")
        {
            frames += 1;
        }
        if line.starts_with("Response: HTTP 200 OK") {
            ok = true;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(ok);
    assert_eq!(frames, 20);
}
