//! `sls-syslog demo`: the whole data path on this machine, without a cloud account.
//!
//! It starts the SLS test server seeded with sample logs, a syslog receiver and the function
//! itself, invokes the function over HTTP exactly as FC does (the trigger event as the body,
//! the `x-fc-*` headers), and prints every frame received and the summary.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::receiver;
use super::sample;
use super::sls_server::{self, Account, SlsServer};
use crate::config::Settings;
use crate::fc::{self, App};

/// The sample data set: its shape is what `events/sample.json` points at.
pub const DEMO_LOGSTORE: &str = "demo-logstore";
pub const DEMO_GROUPS: usize = 4;
pub const DEMO_LOGS_PER_GROUP: usize = 5;
pub const DEMO_SEED: u64 = 2024;

/// The data the demo and `sls-server` serve: shard 0 of `demo-logstore`.
pub fn demo_data() -> sls_server::Data {
    vec![(
        DEMO_LOGSTORE.to_string(),
        0,
        sample::groups(DEMO_GROUPS, DEMO_LOGS_PER_GROUP, DEMO_SEED),
    )]
}

/// A trigger event for shard 0 of the demo data at `endpoint`.
pub fn demo_event(endpoint: &str) -> serde_json::Value {
    serde_json::json!({
        "parameter": {},
        "source": {
            "endpoint": endpoint,
            "projectName": Account::demo().project,
            "logstoreName": DEMO_LOGSTORE,
            "shardId": 0,
            "beginCursor": sls_server::cursor(0),
            "endCursor": sls_server::cursor(DEMO_GROUPS as u64),
        },
        "jobName": "0d5e2f6c9b1a4e3d8d70b5a412843d817a39demo",
        "taskId": "6a3c2b8e-1f0d-4c55-9a57-000000000001",
        "cursorTime": sample::BASE_TIME + 60,
    })
}

/// Runs the demo; `Err` is a message for the user.
pub async fn run() -> Result<(), String> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sls = SlsServer::start(loopback, Account::demo(), demo_data())
        .await
        .map_err(|e| format!("cannot start the SLS test server: {e}"))?;
    println!("SLS test server:  {} (project demo-project, logstore {DEMO_LOGSTORE}, shard 0, {} log groups)", sls.endpoint(), DEMO_GROUPS);

    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = frames.clone();
    let rx_addr = receiver::spawn(
        loopback,
        Arc::new(move |f| {
            if let Ok(mut v) = sink.lock() {
                v.push(f);
            }
        }),
    )
    .await
    .map_err(|e| format!("cannot start the syslog receiver: {e}"))?;
    println!("syslog receiver:  tcp://{rx_addr} (LF framing)");

    let settings = Settings::from_lookup(|var| {
        let value = match var {
            "SYSLOG_HOST" => "127.0.0.1".to_string(),
            "SYSLOG_PORT" => rx_addr.port().to_string(),
            "SYSLOG_HOSTNAME" => "sls-syslog-demo".into(),
            "SYSLOG_APP_NAME" => "sls-syslog".into(),
            _ => return None,
        };
        Some(value)
    })
    .map_err(|e| e.to_string())?;
    let app = App::new(settings, crate::sls::Http::new());
    let listener = tokio::net::TcpListener::bind(loopback)
        .await
        .map_err(|e| format!("cannot start the function: {e}"))?;
    let fn_addr = listener
        .local_addr()
        .map_err(|e| format!("cannot start the function: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, fc::router(app)).await;
    });
    println!("function:         http://{fn_addr} (FC custom runtime)\n");

    let acct = Account::demo();
    let event = demo_event(&sls.endpoint());
    println!("POST /invoke with the SLS trigger event:\n{event:#}\n");
    let request = hyper::Request::post("/invoke")
        .header("host", fn_addr.to_string())
        .header("content-type", "application/octet-stream")
        .header("x-fc-request-id", "demo-0001")
        .header("x-fc-function-timeout", "60")
        .header("x-fc-access-key-id", &acct.access_key_id)
        .header("x-fc-access-key-secret", &acct.access_key_secret)
        .header(
            "x-fc-security-token",
            acct.security_token.as_deref().unwrap_or(""),
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(
            event.to_string(),
        )))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let cannot = |e: &dyn std::fmt::Display| format!("cannot invoke the function: {e}");
    let tcp = tokio::net::TcpStream::connect(fn_addr)
        .await
        .map_err(|e| cannot(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| cannot(&e))?;
    tokio::spawn(conn);
    let resp = sender.send_request(request).await.map_err(|e| cannot(&e))?;
    let status = resp.status();
    let fc_status = resp
        .headers()
        .get("x-fc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();

    // The receiver may still be reading the last bytes the function flushed.
    for _ in 0..50 {
        let n = frames.lock().map(|f| f.len()).unwrap_or(0);
        if n >= DEMO_GROUPS * DEMO_LOGS_PER_GROUP || !status.is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let frames = frames.lock().map(|f| f.clone()).unwrap_or_default();
    println!(
        "\nFrames received by the syslog receiver ({}):",
        frames.len()
    );
    for f in &frames {
        println!("  {}", String::from_utf8_lossy(f));
    }
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .map(|v| format!("{v:#}"))
        .unwrap_or(body);
    println!(
        "\nResponse: HTTP {status}{}\n{pretty}",
        fc_status
            .map(|s| format!(", x-fc-status: {s}"))
            .unwrap_or_default()
    );
    if status.is_success() {
        Ok(())
    } else {
        Err("the invocation failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `events/sample.json` is the curl example (docs/cli.md) against `sls-syslog sls-server`.
    #[test]
    fn sample_event_file_matches_the_demo_data() {
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../../events/sample.json")).unwrap();
        assert_eq!(file, demo_event("http://127.0.0.1:9100"));
        assert!(crate::trigger::Event::parse(file.to_string().as_bytes()).is_ok());
    }
}
