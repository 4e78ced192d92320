//! A kept receiver connection must only be reused under the TLS settings it was verified
//! with: a trigger whose `functionParameter` names another CA (or server name, or client
//! certificate) for the same host and port must get its own, verified connection.
//!
//! Today `syslog::Pool::take` keys kept connections by host, port and protocol only, so the
//! second invocation below reuses the connection verified with the first one's CA and
//! succeeds although its own CA does not trust the receiver. Ignored until the pool key
//! includes the TLS settings (see the hardening report).

use crate::support;

use std::collections::HashMap;

use serde_json::json;
use sls_syslog::config::Settings;
use sls_syslog::devkit::sample;
use support::function::*;
use support::rsyslog::Rsyslog;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_with_another_ca_does_not_reuse_a_connection_verified_with_the_first() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let sls = start_sls(vec![("p".into(), 0, sample::groups(1, 3, 4))]).await;
    let vars: HashMap<&str, String> = [
        ("SYSLOG_HOST", "127.0.0.1".to_string()),
        ("SYSLOG_PROTOCOL", "tls".to_string()),
        ("SYSLOG_PORT", rx.tls_ossl_port().to_string()),
        ("SYSLOG_TLS_CA", rx.ca_pem().to_string_lossy().into_owned()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let f = start_function(settings).await;

    let a = invoke(f, &event(&sls, "p", 0, 0, 1)).await;
    assert_eq!(a.status, 200, "{a:?}");

    let mut ev = event(&sls, "p", 0, 0, 1);
    ev["parameter"] = json!({"SYSLOG_TLS_CA": rx.other_ca_pem().to_string_lossy()});
    let a = invoke(f, &ev).await;
    let msg = assert_failed(&a, "SendError");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}
