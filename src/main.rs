//! `sls-syslog`: with no arguments, serve the Function Compute custom runtime. Other
//! commands run the local stand-ins (see `sls-syslog help`).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sls_syslog::cli::check;
use sls_syslog::config::Settings;
use sls_syslog::devkit::{demo, receiver, sls_server};
use sls_syslog::fc::{self, App};

const USAGE: &str = "\
sls-syslog: ship Alibaba Cloud SLS logs to a SIEM over syslog (Function Compute custom runtime)

usage:
  sls-syslog [serve]                 serve the FC custom runtime on 0.0.0.0:$FC_CUSTOM_LISTEN_PORT
                                     (else $FC_SERVER_PORT, else 9000); settings from SYSLOG_* variables
  sls-syslog check [--send-test]     check the SYSLOG_* settings and the receiver: every problem, one line
                                     each; resolve, connect, TLS handshake and certificate; --send-test
                                     sends one test message formatted like real output. Exit 0 = all good
  sls-syslog invoke --event FILE [--timeout SECONDS]
                                     one invocation without the HTTP server: the trigger event from FILE
                                     (- = stdin), credentials from ALIBABA_CLOUD_*, settings from SYSLOG_*;
                                     prints what the function prints; exit 0 = the range was shipped
  sls-syslog demo                    run SLS test server + syslog receiver + function locally, invoke once
  sls-syslog sls-server [--port N]   run the SLS test server with the demo data (default port 9100)
  sls-syslog receiver [--port N]     print syslog frames received over TCP (default port 5140)
  sls-syslog help | --version
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("serve");
    let port_arg = |default: u16| -> Result<u16, String> {
        match args.get(1).map(String::as_str) {
            None => Ok(default),
            Some("--port") => args
                .get(2)
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| "--port needs a port number".to_string()),
            Some(other) => Err(format!("unexpected argument {other:?}")),
        }
    };
    let result = match command {
        "serve" => runtime().and_then(|rt| rt.block_on(serve())),
        "check" => check_command(&args[1..]),
        "invoke" => invoke_command(&args[1..]),
        "demo" => runtime().and_then(|rt| rt.block_on(demo::run())),
        "sls-server" => port_arg(9100).and_then(|p| runtime()?.block_on(sls_server_command(p))),
        "receiver" => port_arg(5140).and_then(|p| runtime()?.block_on(receiver_command(p))),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        "--version" | "-V" => {
            println!("sls-syslog {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("sls-syslog: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `check [--send-test]`.
fn check_command(args: &[String]) -> Result<(), String> {
    let send_test = match args {
        [] => false,
        [flag] if flag == "--send-test" => true,
        _ => return Err(format!("usage: sls-syslog check [--send-test]\n\n{USAGE}")),
    };
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let failures = runtime()?.block_on(check::run(&env, send_test));
    if failures == 0 {
        println!("check passed");
        Ok(())
    } else {
        Err(format!("check failed: {failures} problem(s)"))
    }
}

/// `invoke --event FILE [--timeout SECONDS]`. A failed invocation has already printed its
/// `ERROR` line: the error is then empty and only the exit status says it.
fn invoke_command(args: &[String]) -> Result<(), String> {
    let usage = || "usage: sls-syslog invoke --event FILE|- [--timeout SECONDS]".to_string();
    let (mut event, mut timeout) = (None, fc::DEFAULT_TIMEOUT);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--event" => event = Some(rest.next().ok_or_else(usage)?.clone()),
            "--timeout" => {
                let value = rest.next().ok_or_else(usage)?;
                timeout = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("--timeout: {value:?} is not a number of seconds"))?;
            }
            other => return Err(format!("unexpected argument {other:?}; {}", usage())),
        }
    }
    let event = event.ok_or_else(usage)?;
    let bytes = if event == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
        buf
    } else {
        std::fs::read(&event).map_err(|e| format!("cannot read the event file {event}: {e}"))?
    };
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    if settings.tls.as_ref().is_some_and(|t| t.insecure) {
        fc::say("WARN SYSLOG_TLS_INSECURE=true: the receiver's certificate and name are NOT verified; anyone on the path can read and alter the logs");
    }
    let rt = runtime()?;
    rt.block_on(async {
        let start = tokio::time::Instant::now();
        let app = App::new(settings, sls_syslog::sls::Http::new());
        let id = format!("local-{}", std::process::id());
        let credentials = fc::credentials(&Default::default(), |k| std::env::var(k).ok());
        let result = fc::invoke_once(
            &id,
            fc::run_event(&app, &bytes, credentials, timeout, &id, start),
        )
        .await;
        // Close the receiver connection cleanly (a TLS close_notify).
        app.pool
            .close_all(tokio::time::Instant::now() + Duration::from_secs(2))
            .await;
        result.map(|_| ()).map_err(|_| String::new())
    })
}

async fn serve() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let port = fc::listen_port(|k| std::env::var(k).ok())?;
    if settings.tls.as_ref().is_some_and(|t| t.insecure) {
        fc::say("WARN SYSLOG_TLS_INSECURE=true: the receiver's certificate and name are NOT verified; anyone on the path can read and alter the logs");
    }
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    fc::say(&format!(
        "INFO sls-syslog {} listening on {addr}; shipping to {}:{} over {}",
        env!("CARGO_PKG_VERSION"),
        settings.host,
        settings.port,
        settings.protocol.as_str()
    ));
    let app = App::starting(settings);
    let pool = app.pool.clone();
    let served = axum::serve(listener, fc::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"));
    let closed = pool
        .close_all(tokio::time::Instant::now() + std::time::Duration::from_secs(2))
        .await;
    fc::say(&format!(
        "INFO shutting down; closed {closed} receiver connection(s)"
    ));
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn sls_server_command(port: u16) -> Result<(), String> {
    let account = sls_server::Account::demo();
    let server = sls_server::SlsServer::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        account.clone(),
        demo::demo_data(),
    )
    .await
    .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    println!("SLS test server on {}", server.endpoint());
    println!(
        "  project {}, logstore {}, shard 0, {} log groups of {} logs",
        account.project,
        demo::DEMO_LOGSTORE,
        demo::DEMO_GROUPS,
        demo::DEMO_LOGS_PER_GROUP
    );
    println!(
        "  access key id {}, secret {}, security token {}",
        account.access_key_id,
        account.access_key_secret,
        account.security_token.as_deref().unwrap_or("-")
    );
    println!(
        "  trigger event for this range:\n{:#}",
        demo::demo_event(&server.endpoint())
    );
    shutdown_signal().await;
    Ok(())
}

async fn receiver_command(port: u16) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    println!("syslog receiver on tcp://127.0.0.1:{port}");
    let on_frame: receiver::OnFrame = Arc::new(|f| println!("{}", String::from_utf8_lossy(&f)));
    tokio::select! {
        _ = receiver::serve(listener, on_frame) => {},
        _ = shutdown_signal() => {},
    }
    Ok(())
}
