//! `sls-syslog check [--send-test]`: is this configuration able to reach the receiver?
//!
//! 1. Validates every variable (all problems, one line each, not only the first as `serve`
//!    does) and prints the effective settings, secrets left out.
//! 2. Resolves `SYSLOG_HOST` and prints the addresses.
//! 3. Connects (tcp, tls) through the same transport the function uses; over TLS completes
//!    the handshake with the configured verification and describes the receiver's
//!    certificates. UDP cannot be verified beyond name resolution.
//! 4. With `--send-test`, sends one test message formatted and framed exactly as real output,
//!    then closes the connection cleanly (a TLS `close_notify`, and a receiver that resets
//!    the connection is a failure).
//!
//! Lines start with `ok`, `FAIL`, `WARN` or spaces (details); the check passes only when no
//! line says `FAIL`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::x509;
use crate::config::{self, ConfigError, Settings, VARIABLES};
use crate::record::{Record, Value};
use crate::syslog::format::{MessageFormat, Origin, SyslogFormat};
use crate::syslog::tls::{self, TlsOptions};
use crate::syslog::{Batch, Framing, Protocol, SendError, Sender};

/// How long the whole check may take (each connection attempt is also bounded by the
/// transport's own 10 s).
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints the check's lines and counts its failures.
#[derive(Default)]
struct Out {
    failures: usize,
}

impl Out {
    fn ok(&mut self, line: &str) {
        println!("ok    {line}");
    }
    fn fail(&mut self, line: &str) {
        self.failures += 1;
        println!("FAIL  {line}");
    }
    fn warn(&mut self, line: &str) {
        println!("WARN  {line}");
    }
    fn detail(&mut self, line: &str) {
        println!("      {line}");
    }
}

/// Runs the check on the variables `env` (the process environment in `main`). Returns the
/// number of failed checks: 0 means everything checked passed.
pub async fn run(env: &HashMap<String, String>, send_test: bool) -> usize {
    let mut out = Out::default();
    let (settings, problems) = validate(env);
    for p in &problems {
        out.fail(&redact(p, env));
    }
    for name in env.keys() {
        if name.starts_with("SYSLOG_") && !VARIABLES.contains(&name.as_str()) {
            out.warn(&format!(
                "{name} is not a setting of sls-syslog and is ignored (a typo?)"
            ));
        }
    }
    let Some(settings) = settings else {
        out.detail(&format!(
            "{} configuration problem(s): fix them first (README, \"Configuration\")",
            problems.len()
        ));
        return out.failures;
    };
    out.ok("configuration: every variable is valid");
    print_settings(&mut out, &settings, env);

    let deadline = Instant::now() + CHECK_TIMEOUT;
    let (host, port) = (settings.host.as_str(), settings.port);
    let resolved = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await;
    match resolved {
        Ok(Ok(addrs)) => {
            let addrs: Vec<String> = addrs.map(|a| a.to_string()).collect();
            if addrs.is_empty() {
                out.fail(&format!("resolve {host}: the name has no address"));
                return out.failures;
            }
            out.ok(&format!("resolve {host}: {}", addrs.join(", ")));
        }
        Ok(Err(e)) => {
            out.fail(&format!("resolve {host}: {e}"));
            return out.failures;
        }
        Err(_) => {
            out.fail(&format!("resolve {host}: timed out"));
            return out.failures;
        }
    }

    if settings.protocol == Protocol::Udp && !send_test {
        out.warn(
            "udp: nothing is sent and nothing can be verified beyond name resolution (UDP has no \
             connection and no acknowledgement); --send-test sends one datagram",
        );
        return out.failures;
    }

    let sender = match Sender::connect(
        host,
        port,
        settings.protocol,
        settings.tls.as_ref(),
        deadline,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            out.fail(&e.to_string());
            if let SendError::TlsRefused { .. } = e {
                show_refused_certificate(&mut out, &settings, env, deadline).await;
            }
            return out.failures;
        }
    };
    let peer = sender
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| format!("{host}:{port}"));
    match settings.protocol {
        Protocol::Udp => out.ok(&format!("udp socket connected to {peer}")),
        Protocol::Tcp => out.ok(&format!("tcp connection to {peer}")),
        Protocol::Tls => {
            out.ok(&format!("tcp connection to {peer}"));
            describe_session(&mut out, &sender, &settings, env);
        }
    }

    let mut sender = sender;
    if send_test {
        let mut batch = Batch::default();
        let framing = match settings.protocol {
            Protocol::Tcp | Protocol::Tls => Some(settings.framing),
            Protocol::Udp => None,
        };
        let truncated = batch.push(
            framing,
            &test_message(&settings),
            settings.max_message_bytes,
        );
        let bytes = batch.buf.len();
        match sender.send_batch(&batch, deadline).await {
            Ok(()) => {
                let how = match framing {
                    Some(Framing::Lf) => "LF-framed",
                    Some(Framing::OctetCounting) => "octet-counted",
                    None => "one datagram",
                };
                out.ok(&format!("test message sent ({bytes} bytes, {how}):"));
                let shown = String::from_utf8_lossy(&batch.buf);
                out.detail(shown.trim_end_matches('\n'));
                if truncated {
                    out.warn("the test message was cut to SYSLOG_MAX_MESSAGE_BYTES");
                }
            }
            Err(e) => {
                out.fail(&e.to_string());
                return out.failures;
            }
        }
    }
    if settings.protocol == Protocol::Udp {
        out.warn(
            "udp: the datagram left this machine; whether it arrived can only be seen at the \
             receiver (UDP has no acknowledgement)",
        );
        return out.failures;
    }
    match sender.finish(deadline).await {
        Ok(()) => out.ok(if settings.protocol == Protocol::Tls {
            "connection closed cleanly (TLS close_notify sent)"
        } else {
            "connection closed cleanly"
        }),
        Err(e) => out.fail(&e.to_string()),
    }
    out.failures
}

/// Every problem of the configuration, not only the first: after each error the variable is
/// taken out (its default applies) and the settings are read again, so that later problems,
/// read in the same context (protocol, formats), are found too. The settings come back only
/// when there is no problem.
pub fn validate(env: &HashMap<String, String>) -> (Option<Settings>, Vec<ConfigError>) {
    let mut values: HashMap<&'static str, String> = VARIABLES
        .iter()
        .filter_map(|v| env.get(*v).map(|value| (*v, value.clone())))
        .collect();
    let mut problems: Vec<ConfigError> = Vec::new();
    for _ in 0..=VARIABLES.len() {
        let e = match Settings::from_lookup(|k| values.get(k).cloned()) {
            Ok(s) => return (problems.is_empty().then_some(s), problems),
            Err(e) => e,
        };
        let repeated = problems.iter().any(|p| p.var == e.var);
        let var = e.var;
        if !repeated {
            problems.push(e);
        }
        if values.remove(var).is_some() && !repeated {
            continue;
        }
        // The problem is the variable's absence, or it stays without it.
        match var {
            "SYSLOG_HOST" => {
                values.insert("SYSLOG_HOST", "check.invalid".into());
            }
            "SYSLOG_TLS_CERT" | "SYSLOG_TLS_KEY" => {
                values.remove("SYSLOG_TLS_CERT");
                values.remove("SYSLOG_TLS_KEY");
            }
            "SYSLOG_TLS_CA" => {
                values.insert("SYSLOG_TLS_INSECURE", "true".into());
            }
            _ => break,
        }
    }
    (None, problems)
}

/// A problem's line, with the value of `SYSLOG_TLS_KEY` never in it.
fn redact(problem: &ConfigError, env: &HashMap<String, String>) -> String {
    let line = problem.to_string();
    match env.get("SYSLOG_TLS_KEY").map(|k| k.trim()) {
        Some(key) if !key.is_empty() => line
            .replace(&format!("{key:?}"), "(the value, not shown)")
            .replace(key, "(the value, not shown)"),
        _ => line,
    }
}

/// The value of a PEM variable as it may be shown: a path, or how much PEM text.
fn pem_source(value: &str) -> String {
    let value = value.trim();
    if value.contains("-----BEGIN") {
        let blocks = value.matches("-----BEGIN").count();
        format!("PEM text ({blocks} block(s))")
    } else {
        format!("file {value}")
    }
}

/// The effective settings, one `NAME = value` line each: what is set, and the defaults that
/// matter. Secrets are not shown.
fn print_settings(out: &mut Out, s: &Settings, env: &HashMap<String, String>) {
    let tls = s.protocol == Protocol::Tls;
    let set = |var: &str| {
        env.get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let framing = match (s.protocol, s.framing) {
        (Protocol::Udp, _) => "unused on udp (one message per datagram)".to_string(),
        (_, Framing::Lf) => "lf".into(),
        (_, Framing::OctetCounting) => "octet-counting".into(),
    };
    let message_format = match &s.formatter.body {
        MessageFormat::Kv(_) => "kv",
        MessageFormat::Json => "json",
        MessageFormat::Cef(_) => "cef",
        MessageFormat::Leef(_) => "leef",
    };
    let mut defaults: BTreeMap<&str, String> = BTreeMap::new();
    defaults.insert("SYSLOG_PORT", s.port.to_string());
    defaults.insert("SYSLOG_PROTOCOL", "tcp".into());
    defaults.insert("SYSLOG_FRAMING", framing.clone());
    defaults.insert("SYSLOG_MAX_MESSAGE_BYTES", s.max_message_bytes.to_string());
    defaults.insert(
        "SYSLOG_FORMAT",
        match s.formatter.format {
            SyslogFormat::Rfc5424 => "rfc5424".into(),
            SyslogFormat::Rfc3164 => "rfc3164".into(),
        },
    );
    defaults.insert("SYSLOG_MESSAGE_FORMAT", message_format.into());
    if let MessageFormat::Kv(sep) = &s.formatter.body {
        defaults.insert("SYSLOG_KV_SEPARATOR", format!("{sep:?}"));
    }
    defaults.insert("SYSLOG_FACILITY", "user".into());
    defaults.insert("SYSLOG_SEVERITY", "info".into());
    defaults.insert(
        "SYSLOG_HOSTNAME",
        format!(
            "{} (default: this machine's name)",
            s.formatter.hostname.constant
        ),
    );
    defaults.insert("SYSLOG_APP_NAME", "-".into());
    defaults.insert("SYSLOG_MSGID", "-".into());
    defaults.insert("SLS_PULL_COUNT", s.pull_count.to_string());
    if tls {
        let insecure = s.tls.as_ref().is_some_and(|t| t.insecure);
        if !insecure {
            defaults.insert("SYSLOG_TLS_CA", "the system's CA certificates".into());
        }
        defaults.insert("SYSLOG_TLS_SERVER_NAME", s.host.clone());
        defaults.insert("SYSLOG_TLS_INSECURE", "false".into());
    }
    out.detail("effective settings:");
    for var in VARIABLES {
        let value = match set(var) {
            Some(v) => match *var {
                // Key material is never shown; a path is.
                "SYSLOG_TLS_KEY" if v.contains("-----BEGIN") => "PEM text (not shown)".into(),
                "SYSLOG_TLS_KEY" if std::path::Path::new(&v).is_file() => format!("file {v}"),
                "SYSLOG_TLS_KEY" => "set (not shown)".into(),
                "SYSLOG_TLS_CA" | "SYSLOG_TLS_CERT" => pem_source(&v),
                "SYSLOG_FRAMING" => framing.clone(),
                "SYSLOG_KV_SEPARATOR" | "SYSLOG_LEEF_DELIMITER" => {
                    format!("{:?}", env.get(*var).map(String::as_str).unwrap_or(""))
                }
                _ => v,
            },
            None => match defaults.get(var) {
                Some(d) if d.contains("(default") => d.clone(),
                Some(d) => format!("{d} (default)"),
                None => continue,
            },
        };
        out.detail(&format!("  {var} = {value}"));
    }
    // Set but not used with these settings: probably not what was meant.
    for var in VARIABLES {
        if set(var).is_none() {
            continue;
        }
        let unused = (var.starts_with("SYSLOG_TLS_") && !tls)
            || (var.starts_with("SYSLOG_CEF_") && message_format != "cef")
            || (var.starts_with("SYSLOG_LEEF_") && message_format != "leef")
            || (*var == "SYSLOG_KV_SEPARATOR" && message_format != "kv")
            || (*var == "SYSLOG_FRAMING" && s.protocol == Protocol::Udp)
            || (*var == "SYSLOG_SD_ID" && s.formatter.format == SyslogFormat::Rfc3164);
        if unused {
            out.warn(&format!("{var} is set but not used with these settings"));
        }
    }
    if s.tls.as_ref().is_some_and(|t| t.insecure) {
        out.warn("SYSLOG_TLS_INSECURE=true: the receiver's certificate and name are NOT verified");
    }
}

/// The TLS session: version, cipher suite, verification, the receiver's certificates.
fn describe_session(out: &mut Out, sender: &Sender, s: &Settings, env: &HashMap<String, String>) {
    let Some(session) = sender.tls_session() else {
        return;
    };
    let version = session
        .protocol_version()
        .map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
            other => format!("{other:?}"),
        })
        .unwrap_or_else(|| "TLS".into());
    let suite = session
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    let name = env
        .get("SYSLOG_TLS_SERVER_NAME")
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .unwrap_or(&s.host);
    let insecure = s.tls.as_ref().is_some_and(|t| t.insecure);
    if insecure {
        out.ok(&format!("{version} handshake ({suite})"));
        out.warn("the certificate was NOT verified (SYSLOG_TLS_INSECURE=true)");
    } else {
        let anchors = match env.get("SYSLOG_TLS_CA").map(|v| v.trim()) {
            Some(ca) if !ca.is_empty() => format!("SYSLOG_TLS_CA ({})", pem_source(ca)),
            _ => "the system's CA certificates".into(),
        };
        out.ok(&format!(
            "{version} handshake ({suite}); certificate verified for the name {name} against {anchors}"
        ));
    }
    if env
        .get("SYSLOG_TLS_CERT")
        .is_some_and(|c| !c.trim().is_empty())
    {
        out.ok("client certificate (SYSLOG_TLS_CERT) accepted by the receiver");
    }
    describe_chain(
        out,
        session.peer_certificates().unwrap_or_default(),
        insecure,
    );
}

/// Each certificate of the receiver's chain, leaf first.
fn describe_chain(
    out: &mut Out,
    chain: &[rustls::pki_types::CertificateDer<'_>],
    warn_validity: bool,
) {
    let now = crate::time::Utc::now();
    for (i, der) in chain.iter().enumerate() {
        let role = if i == 0 {
            "receiver certificate"
        } else {
            "chain certificate"
        };
        out.detail(&format!("{role} {i}:"));
        match x509::describe(der) {
            Some(info) => {
                out.detail(&format!("  subject  {}", info.subject));
                out.detail(&format!("  issuer   {}", info.issuer));
                out.detail(&format!(
                    "  valid    {} to {}",
                    info.not_before, info.not_after
                ));
                if !info.alt_names.is_empty() {
                    out.detail(&format!("  names    {}", info.alt_names.join(", ")));
                }
                if let Some(problem) = info.validity_problem(&now) {
                    if warn_validity {
                        out.warn(&format!("certificate {i} is {problem}"));
                    }
                }
            }
            None => out.detail("  (not readable by this tool's small X.509 reader)"),
        }
        out.detail(&format!("  SHA-256  {}", x509::sha256_fingerprint(der)));
    }
}

/// After a TLS refusal: connects again without verification, only to show which certificate
/// the receiver presents (nothing is sent).
async fn show_refused_certificate(
    out: &mut Out,
    s: &Settings,
    env: &HashMap<String, String>,
    deadline: Instant,
) {
    let name = env
        .get("SYSLOG_TLS_SERVER_NAME")
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| s.host.clone());
    let Ok(insecure) = tls::load(&TlsOptions {
        server_name: &name,
        insecure: true,
        ..TlsOptions::default()
    }) else {
        return;
    };
    let Ok(sender) =
        Sender::connect(&s.host, s.port, Protocol::Tls, Some(&insecure), deadline).await
    else {
        return;
    };
    if let Some(chain) = sender.tls_session().and_then(|t| t.peer_certificates()) {
        out.detail(&format!(
            "the receiver presents (shown without verification; SYSLOG_TLS_CA must hold its \
             issuer's CA certificate, and its names must include {name}):"
        ));
        describe_chain(out, chain, true);
    }
    let _ = sender.finish(deadline).await;
}

/// One message as the function would write it for a log with a `message` field: the same
/// formatter, so the header fields, body format and size cap are the real ones.
fn test_message(s: &Settings) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let id = format!("{:016x}", crate::jitter());
    let text = |t: &str| Value::Text(Cow::Owned(t.to_string()));
    let record = Record {
        time: now.as_secs() as u32,
        time_ns: now.subsec_nanos(),
        fields: vec![
            (
                Cow::Borrowed("__time__"),
                Value::Number(now.as_secs() as u32),
            ),
            (Cow::Borrowed("__topic__"), text("sls-syslog-check")),
            (
                Cow::Borrowed("__source__"),
                text(&config::machine_hostname()),
            ),
            (
                Cow::Borrowed("message"),
                text("sls-syslog check --send-test: test message"),
            ),
            (Cow::Borrowed("check_id"), text(&id)),
        ],
    };
    let origin = Origin {
        project: "sls-syslog-check",
        logstore: "sls-syslog-check",
        shard: 0,
        cursor: "-",
    };
    let mut msg = Vec::with_capacity(512);
    s.formatter.write(&mut msg, &record, &origin);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vars_of(problems: &[ConfigError]) -> Vec<&str> {
        problems.iter().map(|p| p.var).collect()
    }

    #[test]
    fn every_problem_is_reported() {
        let (s, problems) = validate(&env(&[
            ("SYSLOG_PORT", "x"),
            ("SYSLOG_FACILITY", "local9"),
            ("SYSLOG_SEVERITY", "loud"),
            ("SYSLOG_MESSAGE_FORMAT", "cef"),
            ("SYSLOG_CEF_SEVERITY", "11"),
        ]));
        assert!(s.is_none());
        assert_eq!(
            vars_of(&problems),
            [
                "SYSLOG_HOST",
                "SYSLOG_PORT",
                "SYSLOG_FACILITY",
                "SYSLOG_SEVERITY",
                "SYSLOG_CEF_SEVERITY"
            ]
        );
    }

    #[test]
    fn tls_problems_in_context() {
        let (_, problems) = validate(&env(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_PROTOCOL", "tls"),
            ("SYSLOG_TLS_CA", "/no/such/ca.pem"),
            ("SYSLOG_TLS_CERT", "/no/such/cert.pem"),
            ("SYSLOG_TLS_INSECURE", "maybe"),
            ("SYSLOG_MAX_MESSAGE_BYTES", "1"),
        ]));
        assert_eq!(
            vars_of(&problems),
            [
                "SYSLOG_MAX_MESSAGE_BYTES",
                "SYSLOG_TLS_INSECURE",
                "SYSLOG_TLS_CA",
                "SYSLOG_TLS_KEY"
            ]
        );
    }

    #[test]
    fn a_good_configuration_has_no_problem() {
        let (s, problems) = validate(&env(&[("SYSLOG_HOST", "siem.example.com")]));
        assert!(problems.is_empty());
        assert_eq!(s.unwrap().port, 514);
    }

    #[test]
    fn key_material_is_redacted_from_problems() {
        let key = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        let e = env(&[("SYSLOG_TLS_KEY", key)]);
        let p = ConfigError {
            var: "SYSLOG_TLS_KEY",
            reason: format!("is neither PEM text nor a readable file ({key:?}: not found)"),
        };
        let line = redact(&p, &e);
        assert!(!line.contains(key), "{line}");
        assert!(line.contains("SYSLOG_TLS_KEY"), "{line}");
    }

    #[test]
    fn the_test_message_is_formatted_like_real_output() {
        let (s, _) = validate(&env(&[
            ("SYSLOG_HOST", "h"),
            ("SYSLOG_HOSTNAME", "fc-host"),
            ("SYSLOG_APP_NAME", "sls"),
        ]));
        let msg = String::from_utf8(test_message(&s.unwrap())).unwrap();
        assert!(msg.starts_with("<14>1 "), "{msg}");
        assert!(msg.contains(" fc-host sls - - - ||__topic__=sls-syslog-check||__source__="));
        assert!(msg.contains("||message=sls-syslog check --send-test: test message||check_id="));
    }
}
