//! The operator commands of the real binary: `check` against a bad configuration, a closed
//! port and a real rsyslog over TCP, TLS and UDP (with `--send-test` received and parsed), and
//! `invoke --event` against the SLS test server with the demo data. And the deploy scripts:
//! `scripts/check-deploy` on s.yaml and copies of it, `scripts/build-fc --print-binary` under
//! `CARGO_TARGET_DIR` and `build.target-dir`.

use crate::support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sls_syslog::devkit::demo;
use sls_syslog::devkit::sls_server::Account;
use support::function::*;
use support::rsyslog::Rsyslog;

/// The result of one run of the binary.
#[derive(Debug)]
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

/// Runs `sls-syslog args` with exactly `env` (and `stdin`), off the async runtime.
async fn run(args: &[&str], env: &[(&str, String)], stdin: Option<String>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sls-syslog"));
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn path(p: std::path::PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

fn receiver_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SYSLOG_HOST", "127.0.0.1".into()),
        ("SYSLOG_PORT", port.to_string()),
        ("SYSLOG_FACILITY", "local4".into()),
        ("SYSLOG_SEVERITY", "warning".into()),
        ("SYSLOG_HOSTNAME", "fc-instance.example.com".into()),
        ("SYSLOG_APP_NAME", "sls-syslog-test".into()),
    ]
}

fn tls_env(port: u16, rx: &Rsyslog) -> Vec<(&'static str, String)> {
    let mut env = receiver_env(port);
    env.push(("SYSLOG_PROTOCOL", "tls".into()));
    env.push(("SYSLOG_TLS_CA", path(rx.ca_pem())));
    env
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn check_reports_every_configuration_problem_one_line_each() {
    let r = run(
        &["check"],
        &[
            ("SYSLOG_PORT", "99999".into()),
            ("SYSLOG_FACILITY", "local9".into()),
            ("SYSLOG_MESSAGE_FORMAT", "xml".into()),
            ("SYSLOG_TLS_KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".into()),
            ("SYSLOG_PROT", "udp".into()),
        ],
        None,
    )
    .await;
    assert!(!r.ok, "{r:?}");
    let fails = r.lines_starting("FAIL");
    assert_eq!(fails.len(), 4, "{r:?}");
    for (line, var) in fails.iter().zip([
        "SYSLOG_HOST",
        "SYSLOG_PORT",
        "SYSLOG_FACILITY",
        "SYSLOG_MESSAGE_FORMAT",
    ]) {
        assert!(
            line.starts_with(&format!("FAIL  configuration: {var}: ")),
            "{line}"
        );
    }
    assert!(r.stdout.contains("\"99999\"") && r.stdout.contains("\"local9\""));
    // A variable name that is not a setting: a warning, not a failure.
    assert_eq!(r.lines_starting("WARN  SYSLOG_PROT ").len(), 1, "{r:?}");
    assert!(!r.stdout.contains("MIIEvQ"), "{r:?}");
    assert!(r.stderr.contains("check failed: 4 problem(s)"), "{r:?}");
}

#[tokio::test]
async fn check_fails_clearly_on_a_closed_port() {
    let port = closed_port();
    let r = run(&["check"], &receiver_env(port), None).await;
    assert!(!r.ok, "{r:?}");
    assert!(r
        .stdout
        .contains(&format!("ok    resolve 127.0.0.1: 127.0.0.1:{port}")));
    let fails = r.lines_starting("FAIL");
    assert_eq!(fails.len(), 1, "{r:?}");
    assert!(
        fails[0].contains(&format!(
            "cannot connect to syslog receiver 127.0.0.1:{port} over tcp"
        )) && fails[0].contains("refused"),
        "{r:?}"
    );
    // The effective settings were printed.
    assert!(r.stdout.contains("SYSLOG_FACILITY = local4"), "{r:?}");
}

#[tokio::test]
async fn check_completes_the_tls_handshake_with_rsyslog_and_describes_its_certificate() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let r = run(&["check"], &tls_env(rx.tls_ossl_port(), &rx), None).await;
    assert!(r.ok, "{r:?}");
    assert!(r.lines_starting("FAIL").is_empty(), "{r:?}");
    let handshake = r.lines_starting("ok    TLS 1.");
    assert_eq!(handshake.len(), 1, "{r:?}");
    assert!(
        handshake[0].contains("certificate verified for the name 127.0.0.1 against SYSLOG_TLS_CA"),
        "{r:?}"
    );
    // The server certificate of the harness: SAN DNS:localhost, IP:127.0.0.1.
    assert!(r.stdout.contains("receiver certificate 0:"), "{r:?}");
    assert!(r.stdout.contains("  subject  "), "{r:?}");
    assert!(r.stdout.contains("  issuer   "), "{r:?}");
    assert!(r.stdout.contains(" UTC to "), "{r:?}");
    assert!(
        r.stdout.contains("DNS:localhost") && r.stdout.contains("IP:127.0.0.1"),
        "{r:?}"
    );
    assert!(r.stdout.contains("  SHA-256  "), "{r:?}");
    assert!(r
        .stdout
        .contains("ok    connection closed cleanly (TLS close_notify sent)"));
    assert!(r.stdout.ends_with("check passed\n"), "{r:?}");
    // Nothing was sent without --send-test.
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.wait_for(1, Duration::from_millis(200)).is_empty());
}

#[tokio::test]
async fn check_shows_what_an_untrusted_receiver_presents() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let mut env = tls_env(rx.tls_gtls_port(), &rx);
    env.retain(|(k, _)| *k != "SYSLOG_TLS_CA");
    env.push(("SYSLOG_TLS_CA", path(rx.other_ca_pem())));
    let r = run(&["check"], &env, None).await;
    assert!(!r.ok, "{r:?}");
    let fails = r.lines_starting("FAIL");
    assert_eq!(fails.len(), 1, "{r:?}");
    assert!(
        fails[0].contains("TLS with syslog receiver") && fails[0].contains("UnknownIssuer"),
        "{r:?}"
    );
    assert!(r.stdout.contains("the receiver presents"), "{r:?}");
    assert!(r.stdout.contains("IP:127.0.0.1"), "{r:?}");
}

#[tokio::test]
async fn check_mutual_tls_reports_the_accepted_client_certificate() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let mut env = tls_env(rx.tls_mtls_port(), &rx);
    env.push(("SYSLOG_TLS_CERT", path(rx.client_cert())));
    let key = std::fs::read_to_string(rx.client_key()).unwrap();
    env.push(("SYSLOG_TLS_KEY", key.clone()));
    let r = run(&["check", "--send-test"], &env, None).await;
    assert!(r.ok, "{r:?}");
    assert!(r
        .stdout
        .contains("client certificate (SYSLOG_TLS_CERT) accepted"));
    assert!(r.stdout.contains("SYSLOG_TLS_KEY = PEM text (not shown)"));
    let body = key
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 20)
        .unwrap();
    assert!(
        !r.stdout.contains(body) && !r.stderr.contains(body),
        "{r:?}"
    );
    let got = rx.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].input, "tls-mtls");
}

/// The test message as rsyslog parsed it: the configured header, the kv body.
fn assert_test_message(r: &support::rsyslog::Received) {
    assert_eq!(r.pri, "164");
    assert_eq!(r.version, "1");
    assert_eq!(r.hostname, "fc-instance.example.com");
    assert_eq!(r.app_name, "sls-syslog-test");
    assert_eq!(
        (
            r.procid.as_str(),
            r.msgid.as_str(),
            r.structured_data.as_str()
        ),
        ("-", "-", "-")
    );
    assert!(
        r.msg
            .starts_with("||__topic__=sls-syslog-check||__source__="),
        "{r:?}"
    );
    assert!(
        r.msg
            .contains("||message=sls-syslog check --send-test: test message||check_id="),
        "{r:?}"
    );
}

#[tokio::test]
async fn check_send_test_over_tcp_arrives_at_rsyslog() {
    let Some(rx) = Rsyslog::start() else { return };
    let r = run(
        &["check", "--send-test"],
        &receiver_env(rx.tcp_port()),
        None,
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.lines_starting("ok    test message sent (").len(), 1);
    let got = rx.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{r:?}");
    assert_eq!(got[0].input, "tcp");
    assert_test_message(&got[0]);
    // What check printed is what arrived.
    assert!(r.stdout.contains(&got[0].rawmsg), "{r:?} {:?}", got[0]);
}

#[tokio::test]
async fn check_send_test_over_tls_with_octet_counting() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let r = run(
        &["check", "--send-test"],
        &tls_env(rx.tls_gtls_port(), &rx),
        None,
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert!(r.stdout.contains("octet-counted"), "{r:?}");
    let got = rx.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{r:?}");
    assert_eq!(got[0].input, "tls-gtls");
    assert_test_message(&got[0]);
}

#[tokio::test]
async fn check_over_udp_sends_nothing_unless_asked() {
    let Some(rx) = Rsyslog::start() else { return };
    let mut env = receiver_env(rx.udp_port());
    env.push(("SYSLOG_PROTOCOL", "udp".into()));
    let r = run(&["check"], &env, None).await;
    assert!(r.ok, "{r:?}");
    assert!(
        r.stdout
            .contains("nothing can be verified beyond name resolution"),
        "{r:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.wait_for(1, Duration::from_millis(200)).is_empty());

    let r = run(&["check", "--send-test"], &env, None).await;
    assert!(r.ok, "{r:?}");
    let got = rx.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{r:?}");
    assert_eq!(got[0].input, "udp");
    assert_test_message(&got[0]);
}

/// The credentials of the SLS test server's demo account, as FC would set them.
fn credentials_env(secret: &str) -> Vec<(&'static str, String)> {
    let acct = Account::demo();
    vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", acct.access_key_id),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret.to_string()),
        (
            "ALIBABA_CLOUD_SECURITY_TOKEN",
            acct.security_token.unwrap_or_default(),
        ),
    ]
}

/// The JSON object of the summary line (whatever prefix the line has).
fn summary_line(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find(|l| l.contains("\"logs\":") && l.contains('{'))
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_ships_the_demo_range_from_an_event_file() {
    let Some(rx) = Rsyslog::start() else { return };
    let sls = start_sls(demo::demo_data()).await;
    let dir = std::env::temp_dir().join(format!("sls-syslog-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let event_file = dir.join("event.json");
    std::fs::write(&event_file, demo::demo_event(&sls.endpoint()).to_string()).unwrap();
    let mut env = receiver_env(rx.tcp_port());
    env.extend(credentials_env(&Account::demo().access_key_secret));
    let r = run(
        &[
            "invoke",
            "--event",
            event_file.to_str().unwrap(),
            "--timeout",
            "30",
        ],
        &env,
        None,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(r.ok, "{r:?}");
    let starts = r.lines_starting("FC Invoke Start RequestId: ");
    let ends = r.lines_starting("FC Invoke End RequestId: ");
    assert_eq!((starts.len(), ends.len()), (1, 1), "{r:?}");
    assert!(r.lines_starting("ERROR").is_empty(), "{r:?}");
    let summary = summary_line(&r.stdout);
    assert_eq!(summary["logs"], 20, "{summary}");
    assert_eq!(summary["frames_sent"], 20, "{summary}");
    let received = rx.wait_for(20, Duration::from_secs(10));
    assert_eq!(received.len(), 20);
    for r in &received {
        assert_eq!(r.hostname, "fc-instance.example.com");
        assert!(r.msg.starts_with("||__topic__="), "{r:?}");
    }
    // No secret in what was printed.
    let everything = format!("{}{}", r.stdout, r.stderr);
    let acct = Account::demo();
    for s in [
        acct.access_key_secret.as_str(),
        acct.security_token.as_deref().unwrap(),
    ] {
        assert!(!everything.contains(s), "{everything}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_fails_with_one_error_line_and_a_non_zero_exit() {
    let sls = start_sls(demo::demo_data()).await;
    let port = closed_port();
    let event = demo::demo_event(&sls.endpoint()).to_string();

    // A wrong secret, the event on stdin: SLS refuses the signature.
    let mut env = receiver_env(port);
    env.extend(credentials_env("wrong-secret-0123456789"));
    let r = run(&["invoke", "--event", "-"], &env, Some(event.clone())).await;
    assert!(!r.ok, "{r:?}");
    let errors = r.lines_starting("ERROR");
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(
        errors[0].contains("PullError") && errors[0].contains("SignatureNotMatch"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("wrong-secret-0123456789"), "{r:?}");
    assert_eq!(r.lines_starting("FC Invoke End RequestId: ").len(), 1);

    // Right credentials, but the receiver's port is closed: a SendError before the timeout.
    let mut env = receiver_env(port);
    env.extend(credentials_env(&Account::demo().access_key_secret));
    let r = run(
        &["invoke", "--event", "-", "--timeout", "5"],
        &env,
        Some(event),
    )
    .await;
    assert!(!r.ok, "{r:?}");
    let errors = r.lines_starting("ERROR");
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(errors[0].contains("SendError"), "{r:?}");

    // Not an event, and no credentials at all.
    let r = run(
        &["invoke", "--event", "-"],
        &receiver_env(port),
        Some("{}".into()),
    )
    .await;
    assert!(!r.ok, "{r:?}");
    let errors = r.lines_starting("ERROR");
    assert_eq!(errors.len(), 1, "{r:?}");
    assert!(errors[0].contains("InvalidEvent"), "{r:?}");
}

#[tokio::test]
async fn invoke_usage_errors_are_one_line() {
    for args in [
        &["invoke"][..],
        &["invoke", "--event"],
        &["invoke", "--event", "/no/such/event.json"],
        &["invoke", "--event", "-", "--timeout", "soon"],
    ] {
        let r = run(args, &receiver_env(514), Some(String::new())).await;
        assert!(!r.ok, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
        assert!(r.stderr.starts_with("sls-syslog: "), "{args:?}: {r:?}");
    }
}

/// Runs `script args` in `dir` with cargo's target-dir variables removed, then `env` set.
fn run_script(
    script: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(script);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn repo_path(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A new empty directory for one test (its real path: cargo reports real paths).
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sls-syslog-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// The repository's s.yaml with every `<…>` placeholder of its `vars` block filled in, but the
/// one of `keep` (a var name), and SYSLOG_HOST set to a real-looking receiver. Only the vars
/// block is filled: a placeholder anywhere else must make check-deploy refuse.
fn filled_s_yaml(keep: Option<&str>) -> String {
    let text = std::fs::read_to_string(repo_path("s.yaml")).unwrap();
    let mut out = String::new();
    let mut in_vars = false;
    for line in text.lines() {
        if !line.starts_with([' ', '#']) && !line.is_empty() {
            in_vars = line.trim_end() == "vars:";
        }
        let name = line.trim_start().split(':').next().unwrap_or("");
        let mut line = line.to_string();
        if in_vars && Some(name) != keep {
            while let (Some(a), Some(b)) = (line.find('<'), line.find('>')) {
                assert!(a < b, "{line}");
                line.replace_range(a..=b, &format!("filled-{name}"));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let host = "SYSLOG_HOST: siem.example.com";
    assert!(out.contains(host), "s.yaml no longer has {host}");
    out.replace(host, "SYSLOG_HOST: siem.corp.internal")
}

#[test]
fn check_deploy_refuses_the_example_s_yaml_naming_syslog_host_and_every_placeholder() {
    let r = run_script(
        &repo_path("scripts/check-deploy"),
        &["s.yaml"],
        &repo_path(""),
        &[],
    );
    assert!(!r.ok, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(
        r.stderr
            .starts_with("check-deploy: not deploying: s.yaml still has example values"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("SYSLOG_HOST is still siem.example.com"),
        "{r:?}"
    );
    for var in [
        "accountId",
        "slsProject",
        "slsLogstore",
        "triggerLogLogstore",
    ] {
        assert!(
            r.stderr.contains(&format!("vars.{var} is still <")),
            "{var}: {r:?}"
        );
    }
    // Every placeholder lives in vars: none is reported elsewhere.
    assert!(!r.stderr.contains("outside vars"), "{r:?}");
    assert!(r.stderr.contains("docs/deploy.md"), "{r:?}");
}

#[test]
fn check_deploy_passes_a_filled_in_copy_and_names_the_one_placeholder_left() {
    let dir = scratch_dir("check-deploy");
    let script = repo_path("scripts/check-deploy");

    std::fs::write(dir.join("s.yaml"), filled_s_yaml(None)).unwrap();
    let r = run_script(&script, &["s.yaml"], &dir, &[]);
    assert!(r.ok, "{r:?}");
    assert!(
        r.stdout
            .contains("no placeholder left, SYSLOG_HOST=siem.corp.internal"),
        "{r:?}"
    );
    assert!(r.stderr.is_empty(), "{r:?}");

    std::fs::write(
        dir.join("s.yaml"),
        filled_s_yaml(Some("triggerLogLogstore")),
    )
    .unwrap();
    let r = run_script(&script, &["s.yaml"], &dir, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!r.ok, "{r:?}");
    let problems: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 1, "{r:?}");
    assert!(
        problems[0].starts_with("  - vars.triggerLogLogstore is still <trigger-log-logstore>"),
        "{r:?}"
    );
}

#[test]
fn build_fc_finds_the_binary_where_cargo_target_dir_and_build_target_dir_put_it() {
    let suffix = "x86_64-unknown-linux-musl/release/sls-syslog";
    let dir = scratch_dir("build-fc");
    let env_dir = dir.join("env-target");
    let env_dir = env_dir.to_str().unwrap();

    // The repository itself, with CARGO_TARGET_DIR.
    let r = run_script(
        &repo_path("scripts/build-fc"),
        &["--print-binary"],
        &dir,
        &[("CARGO_TARGET_DIR", env_dir)],
    );
    assert!(r.ok, "{r:?}");
    assert_eq!(r.stdout, format!("{env_dir}/{suffix}\n"), "{r:?}");

    // A package of its own whose .cargo/config.toml sets build.target-dir (relative: to the
    // directory holding .cargo/), with the script copied into its scripts/.
    let pkg = dir.join("pkg");
    for sub in ["src", "scripts", ".cargo"] {
        std::fs::create_dir_all(pkg.join(sub)).unwrap();
    }
    std::fs::write(
        pkg.join("Cargo.toml"),
        "[package]\nname = \"sls-syslog\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(pkg.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        pkg.join(".cargo/config.toml"),
        "[build]\ntarget-dir = \"from-config\"\n",
    )
    .unwrap();
    let script = pkg.join("scripts/build-fc");
    std::fs::copy(repo_path("scripts/build-fc"), &script).unwrap();
    let r = run_script(&script, &["--print-binary"], &dir, &[]);
    assert!(r.ok, "{r:?}");
    assert_eq!(
        r.stdout,
        format!("{}/from-config/{suffix}\n", pkg.display()),
        "{r:?}"
    );
    // CARGO_TARGET_DIR wins over build.target-dir, as in cargo.
    let r = run_script(
        &script,
        &["--print-binary"],
        &dir,
        &[("CARGO_TARGET_DIR", env_dir)],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.stdout, format!("{env_dir}/{suffix}\n"), "{r:?}");
}
