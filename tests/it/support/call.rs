//! `POST /invoke` with any FC headers (credentials, token, timeout), keeping the raw answer
//! for tests that look at every byte a failed invocation returns.

use std::net::SocketAddr;

use sls_syslog::devkit::sls_server::Account;

use super::function::Answer;

/// The raw answer to one `/invoke`.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub fc_status: Option<String>,
    pub text: String,
}

impl Raw {
    /// As [`Answer`] (the body must be JSON).
    pub fn answer(&self) -> Answer {
        Answer {
            status: self.status,
            fc_status: self.fc_status.clone(),
            body: serde_json::from_str(&self.text)
                .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", self.text)),
        }
    }
}

/// The FC headers of an invocation with the demo account's credentials.
pub fn demo_headers(timeout: &str) -> Vec<(&'static str, String)> {
    let acct = Account::demo();
    vec![
        ("x-fc-request-id", "req-hardening".to_string()),
        ("x-fc-function-timeout", timeout.to_string()),
        ("x-fc-access-key-id", acct.access_key_id),
        ("x-fc-access-key-secret", acct.access_key_secret),
        (
            "x-fc-security-token",
            acct.security_token.unwrap_or_default(),
        ),
    ]
}

/// `headers` with `name` set to `value` (added when missing).
pub fn with(
    mut headers: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    headers.retain(|(k, _)| *k != name);
    headers.push((name, value.to_string()));
    headers
}

/// `headers` without `name`.
pub fn without(
    mut headers: Vec<(&'static str, String)>,
    name: &str,
) -> Vec<(&'static str, String)> {
    headers.retain(|(k, _)| *k != name);
    headers
}

/// POSTs `body` to `http://{addr}/invoke` with exactly `headers`.
pub async fn invoke_with(addr: SocketAddr, body: String, headers: &[(&str, String)]) -> Raw {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/invoke"))
        .header("content-type", "application/octet-stream");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let fc_status = resp
        .headers()
        .get("x-fc-status")
        .map(|v| v.to_str().unwrap().to_string());
    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap()).into_owned();
    Raw {
        status,
        fc_status,
        text,
    }
}
