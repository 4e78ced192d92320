//! The FC custom-runtime contract (research/fc-runtime.md §1): an HTTP server on
//! `0.0.0.0:$FC_CUSTOM_LISTEN_PORT` (else `$FC_SERVER_PORT`, else 9000) with
//! `POST /invoke`, `POST /initialize`, `GET /pre-stop` and `GET /pre-freeze`.
//!
//! Success is `200` with the JSON summary. Failure is `404` with `x-fc-status: 404` and
//! `{"errorType", "errorMessage"}`, which FC reports as a function error, so the SLS trigger
//! retries the range. Each invocation prints `FC Invoke Start RequestId: …` and
//! `FC Invoke End RequestId: …` on stdout, with one error line between them on failure.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::time::Instant;

use crate::config::Settings;
use crate::secret::Secret;
use crate::ship::{self, Invocation};
use crate::sls::{Credentials, Http};
use crate::syslog::Pool;
use crate::trigger::Event;

/// Largest event body accepted; an SLS trigger event is well under 1 KiB.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Function timeout assumed when FC sends no `x-fc-function-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What every request shares: settings and the process's SLS connections.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    /// SLS connections kept between pulls and invocations.
    pub http: Http,
    /// Receiver connections kept between invocations.
    pub pool: Arc<Pool>,
}

impl App {
    pub fn new(settings: Settings, http: Http) -> App {
        App {
            settings: Arc::new(settings),
            http,
            pool: Arc::default(),
        }
    }

    /// An app that reads the system's CA certificates (for `https://` SLS endpoints) in the
    /// background: a bundle and a directory of ~150 files, most of a cold start's work, so
    /// `serve` binds first and lets this run while FC connects. An `https://` pull waits for
    /// it, or reads them itself if this failed.
    pub fn starting(settings: Settings) -> App {
        let app = App::new(settings, Http::new());
        let http = app.http.clone();
        tokio::spawn(async move {
            if let Err(e) = http.load_tls().await {
                say(&format!("WARN {e}; an https:// pull will try again"));
            }
        });
        app
    }
}

/// The runtime's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/invoke", post(invoke))
        .route("/initialize", post(initialize))
        .route("/pre-stop", get(pre_stop))
        .route("/pre-freeze", get(lifecycle))
        .with_state(app)
}

/// The port to listen on: `FC_CUSTOM_LISTEN_PORT`, else `FC_SERVER_PORT`, else 9000.
pub fn listen_port(get: impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    for var in ["FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT"] {
        if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
            return v
                .trim()
                .parse::<u16>()
                .map_err(|_| format!("{var}: {v:?} is not a port number"));
        }
    }
    Ok(9000)
}

/// Prints one line on stdout and flushes it (FC cuts logs on these lines).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn request_id(headers: &HeaderMap) -> String {
    header(headers, "x-fc-request-id")
        .map(str::to_string)
        .unwrap_or_else(|| format!("local-{:016x}", crate::jitter()))
}

/// The names of one source of credentials: key id, secret, token.
struct Source {
    /// Says what the source is and that it lacks what follows.
    what: &'static str,
    names: [&'static str; 3],
}

const HEADERS: Source = Source {
    what: "the x-fc-* request headers lack",
    names: [
        "x-fc-access-key-id",
        "x-fc-access-key-secret",
        "x-fc-security-token",
    ],
};
const ENVIRONMENT: Source = Source {
    what: "the environment lacks",
    names: [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    ],
};

impl Source {
    /// The credentials of this source when they are a complete set: a key id and a secret,
    /// and a security token whenever the key id is a temporary (`STS.`) one; else the names
    /// that are missing.
    fn read(&self, get: impl Fn(&str) -> Option<String>) -> Result<Credentials, String> {
        let [id_name, secret_name, token_name] = self.names;
        let (id, secret, token) = (get(id_name), get(secret_name), get(token_name));
        let sts = id.as_deref().is_some_and(|id| id.starts_with("STS."));
        let mut missing = Vec::new();
        if id.is_none() {
            missing.push(id_name.to_string());
        }
        if secret.is_none() {
            missing.push(secret_name.to_string());
        }
        if sts && token.is_none() {
            missing.push(format!("{token_name} (the key id is a temporary STS. one)"));
        }
        match (id, secret) {
            (Some(access_key_id), Some(secret)) if missing.is_empty() => Ok(Credentials {
                access_key_id,
                access_key_secret: Secret::new(secret),
                security_token: token.map(Secret::new),
            }),
            _ => Err(format!("{} {}", self.what, missing.join(", "))),
        }
    }
}

/// The SLS credentials: the `x-fc-*` headers when they are a complete set, else the
/// `ALIBABA_CLOUD_*` environment variables that FC sets from the function's role (the newer
/// custom.debian11/12 runtimes send no `x-fc-security-token`: a key pair without its token
/// would be refused by SLS on every pull). When neither is complete, the error names what each
/// lacks, never a value.
pub fn credentials(
    headers: &HeaderMap,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, String> {
    let from_headers = HEADERS.read(|name| header(headers, name).map(str::to_string));
    let headers_missing = match from_headers {
        Ok(c) => return Ok(c),
        Err(missing) => missing,
    };
    let env_missing = match ENVIRONMENT.read(|name| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }) {
        Ok(c) => return Ok(c),
        Err(missing) => missing,
    };
    Err(format!(
        "no complete set of SLS credentials: {headers_missing}, and {env_missing}. Give the \
         function a role with log:GetCursorOrData on the logstore (FC then passes its temporary \
         credentials), or set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET \
         (and ALIBABA_CLOUD_SECURITY_TOKEN for an STS key)"
    ))
}

/// The function timeout from `x-fc-function-timeout` (seconds), and a warning when the
/// header is there but not a usable number of seconds.
fn function_timeout(headers: &HeaderMap) -> (Duration, Option<String>) {
    let Some(value) = header(headers, "x-fc-function-timeout") else {
        return (DEFAULT_TIMEOUT, None);
    };
    match value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
    {
        Some(secs) => (Duration::from_secs_f64(secs), None),
        None => (
            DEFAULT_TIMEOUT,
            Some(format!(
                "x-fc-function-timeout {value:?} is not a number of seconds (0-86400): {} s assumed",
                DEFAULT_TIMEOUT.as_secs()
            )),
        ),
    }
}

/// A failed invocation as FC wants it: 404, `x-fc-status: 404`, JSON error body.
pub fn failure(error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
    let mut resp = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert("x-fc-status", HeaderValue::from_static("404"));
    resp
}

async fn invoke(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let id = request_id(&headers);
    match invoke_once(&id, handle(&app, &headers, body, &id, start)).await {
        Ok(summary) => (StatusCode::OK, axum::Json(summary)).into_response(),
        Err(f) => failure(f.error_type, &f.message),
    }
}

/// One invocation between its `FC Invoke Start` and `FC Invoke End` lines, with what
/// [`report`] prints in between: `POST /invoke`, and `sls-syslog invoke` for one event.
pub async fn invoke_once(
    id: &str,
    work: impl std::future::Future<Output = Result<ship::Summary, Box<Failure>>>,
) -> Result<ship::Summary, Box<Failure>> {
    say(&format!("FC Invoke Start RequestId: {id}"));
    let result = work.await;
    report(id, &result);
    say(&format!("FC Invoke End RequestId: {id}"));
    result
}

/// A failed invocation: FC's `errorType`, the stage that failed, the cause, and what the
/// invocation had done until then.
#[derive(Debug)]
pub struct Failure {
    pub error_type: &'static str,
    /// `event`, `config`, `credentials`, `pull`, `decode` or `send`.
    pub stage: &'static str,
    pub message: String,
    pub summary: ship::Summary,
}

/// The one JSON line each invocation prints (README "Result of an invocation", docs/observability.md).
#[derive(serde::Serialize)]
struct SummaryLine<'a> {
    event: &'static str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(flatten)]
    summary: &'a ship::Summary,
}

/// Prints what an invocation did: on failure one `ERROR` line naming the stage and the
/// cause, then in every case one JSON summary line.
pub fn report(id: &str, result: &Result<ship::Summary, Box<Failure>>) {
    let summary = match result {
        Ok(summary) => summary,
        Err(f) => &f.summary,
    };
    for warning in &summary.warnings {
        let warning = warning.replace(['\n', '\r'], " ");
        say(&format!("WARN RequestId: {id} {warning}"));
    }
    let line = match result {
        Ok(summary) => SummaryLine {
            event: "sls-syslog.invocation",
            outcome: "ok",
            stage: None,
            error_type: None,
            error: None,
            summary,
        },
        Err(f) => {
            let message = f.message.replace(['\n', '\r'], " ");
            say(&format!(
                "ERROR RequestId: {id} {} ({} stage): {message}",
                f.error_type, f.stage
            ));
            SummaryLine {
                event: "sls-syslog.invocation",
                outcome: "failed",
                stage: Some(f.stage),
                error_type: Some(f.error_type),
                error: Some(&f.message),
                summary: &f.summary,
            }
        }
    };
    say(&serde_json::to_string(&line).unwrap_or_default());
}

/// `POST /invoke`: reads the event body, then [`run_event`] with the credentials and the
/// function timeout of the request's `x-fc-*` headers.
async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    id: &str,
    start: Instant,
) -> Result<ship::Summary, Box<Failure>> {
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_EVENT_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let summary = ship::Summary {
                request_id: id.to_string(),
                ..ship::Summary::default()
            };
            return Err(failed(
                "InvalidEvent",
                "event",
                format!("the event body could not be read or is over {MAX_EVENT_BYTES} bytes"),
                &summary,
                start,
            ));
        }
    };
    let credentials = credentials(headers, |k| std::env::var(k).ok());
    let (timeout, timeout_warning) = function_timeout(headers);
    let mut result = run_event(app, &bytes, credentials, timeout, id, start).await;
    if let Some(warning) = timeout_warning {
        match &mut result {
            Ok(summary) => summary.warnings.insert(0, warning),
            Err(f) => f.summary.warnings.insert(0, warning),
        }
    }
    result
}

/// A failure with what was done until then (`summary`, its duration since `start`).
fn failed(
    error_type: &'static str,
    stage: &'static str,
    message: String,
    summary: &ship::Summary,
    start: Instant,
) -> Box<Failure> {
    let mut summary = summary.clone();
    summary.duration_ms = start.elapsed().as_millis() as u64;
    Box::new(Failure {
        error_type,
        stage,
        message,
        summary,
    })
}

/// One invocation once its event is read: parses the event, takes `credentials` (the
/// `x-fc-*` headers' or the environment's), applies the trigger's parameters and ships the
/// range before `timeout` after `start` (less a margin). What `POST /invoke` and
/// `sls-syslog invoke` both run.
pub async fn run_event(
    app: &App,
    event: &[u8],
    credentials: Result<Credentials, String>,
    timeout: Duration,
    id: &str,
    start: Instant,
) -> Result<ship::Summary, Box<Failure>> {
    let mut summary = ship::Summary {
        request_id: id.to_string(),
        ..ship::Summary::default()
    };
    let fail = |error_type, stage, message: String, summary: &ship::Summary| {
        failed(error_type, stage, message, summary, start)
    };
    let event =
        Event::parse(event).map_err(|e| fail("InvalidEvent", "event", e.to_string(), &summary))?;
    summary.project = event.project.clone();
    summary.logstore = event.logstore.clone();
    summary.shard = Some(event.shard);
    summary.begin_cursor = event.begin_cursor.clone();
    summary.end_cursor = event.end_cursor.clone();
    summary.warnings.extend(event.parameter_warning.clone());
    let credentials =
        credentials.map_err(|e| fail("CredentialsError", "credentials", e, &summary))?;
    let inv = Invocation {
        request_id: id.to_string(),
        event,
        credentials,
        deadline: ship::deadline(start, timeout),
    };
    // A trigger's functionParameter overrides the environment for its invocations.
    let overridden;
    let settings = if inv.event.parameter.is_empty() {
        &*app.settings
    } else {
        overridden = app
            .settings
            .with_overrides(&inv.event.parameter)
            .map_err(|e| fail("InvalidParameter", "config", e.to_string(), &summary))?;
        &overridden
    };
    let warnings = summary.warnings;
    let with_warnings = |mut s: ship::Summary| {
        s.warnings.splice(0..0, warnings.iter().cloned());
        s
    };
    ship::run(&inv, settings, &app.http, &app.pool)
        .await
        .map(with_warnings)
        .map_err(|f| {
            Box::new(Failure {
                error_type: f.error.error_type(),
                stage: f.error.stage.name(),
                message: f.error.message,
                summary: with_warnings(f.summary),
            })
        })
}

async fn initialize(headers: HeaderMap) -> StatusCode {
    let id = request_id(&headers);
    say(&format!("FC Initialize Start RequestId: {id}"));
    say(&format!("FC Initialize End RequestId: {id}"));
    StatusCode::OK
}

async fn lifecycle() -> StatusCode {
    StatusCode::OK
}

/// The instance is about to be destroyed: close receiver connections cleanly.
async fn pre_stop(State(app): State<App>) -> StatusCode {
    app.pool
        .close_all(Instant::now() + Duration::from_secs(2))
        .await;
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn listen_port_order() {
        assert_eq!(listen_port(env(&[])), Ok(9000));
        assert_eq!(listen_port(env(&[("FC_SERVER_PORT", "9001")])), Ok(9001));
        assert_eq!(
            listen_port(env(&[
                ("FC_SERVER_PORT", "9001"),
                ("FC_CUSTOM_LISTEN_PORT", "9002")
            ])),
            Ok(9002)
        );
        assert!(listen_port(env(&[("FC_CUSTOM_LISTEN_PORT", "x")])).is_err());
    }

    fn headers(vars: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in vars {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const ENV_TRIPLE: &[(&str, &str)] = &[
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.env-id"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "env-token"),
    ];

    #[test]
    fn complete_header_credentials_come_first() {
        let h = headers(&[
            ("x-fc-access-key-id", "STS.h"),
            ("x-fc-access-key-secret", "h-secret"),
            ("x-fc-security-token", "h-token"),
        ]);
        let c = credentials(&h, env(ENV_TRIPLE)).unwrap();
        assert_eq!(c.access_key_id, "STS.h");
        assert_eq!(c.access_key_secret.expose(), "h-secret");
        assert_eq!(c.security_token.unwrap().expose(), "h-token");
        // A long-term key pair needs no token.
        let h = headers(&[
            ("x-fc-access-key-id", "LTAI-h"),
            ("x-fc-access-key-secret", "h-secret"),
        ]);
        let c = credentials(&h, env(ENV_TRIPLE)).unwrap();
        assert_eq!(c.access_key_id, "LTAI-h");
        assert!(c.security_token.is_none());
    }

    #[test]
    fn an_sts_key_pair_without_its_token_gives_way_to_the_environment() {
        // custom.debian11/12: FC sends the role's key pair but no x-fc-security-token.
        let h = headers(&[
            ("x-fc-access-key-id", "STS.h"),
            ("x-fc-access-key-secret", "h-secret"),
        ]);
        let c = credentials(&h, env(ENV_TRIPLE)).unwrap();
        assert_eq!(c.access_key_id, "STS.env-id");
        assert_eq!(c.access_key_secret.expose(), "env-secret");
        assert_eq!(c.security_token.unwrap().expose(), "env-token");
        // No headers at all: the environment.
        let c = credentials(&HeaderMap::new(), env(ENV_TRIPLE)).unwrap();
        assert_eq!(c.access_key_id, "STS.env-id");
        // A token header alone, or a secret alone, is not a set either.
        let h = headers(&[("x-fc-security-token", "h-token")]);
        assert_eq!(
            credentials(&h, env(ENV_TRIPLE)).unwrap().access_key_id,
            "STS.env-id"
        );
    }

    #[test]
    fn neither_source_complete_names_what_each_lacks_and_no_value() {
        let h = headers(&[
            ("x-fc-access-key-id", "STS.h"),
            ("x-fc-access-key-secret", "h-secret-value"),
        ]);
        let e = env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.env-id"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret-value"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "  "),
        ]);
        let err = credentials(&h, e).unwrap_err();
        assert!(
            err.contains("the x-fc-* request headers lack x-fc-security-token"),
            "{err}"
        );
        assert!(
            err.contains("the environment lacks ALIBABA_CLOUD_SECURITY_TOKEN"),
            "{err}"
        );
        for value in ["STS.h", "h-secret-value", "STS.env-id", "env-secret-value"] {
            assert!(!err.contains(value), "{value} leaked: {err}");
        }
        let err = credentials(&HeaderMap::new(), env(&[])).unwrap_err();
        for name in [
            "x-fc-access-key-id",
            "x-fc-access-key-secret",
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        ] {
            assert!(err.contains(name), "{name}: {err}");
        }
        let only_id = env(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-x")]);
        let err = credentials(&HeaderMap::new(), only_id).unwrap_err();
        assert!(
            err.contains("lacks ALIBABA_CLOUD_ACCESS_KEY_SECRET") && !err.contains("LTAI-x"),
            "{err}"
        );
    }

    #[test]
    fn timeout_header() {
        let mut h = HeaderMap::new();
        assert_eq!(function_timeout(&h), (DEFAULT_TIMEOUT, None));
        h.insert("x-fc-function-timeout", HeaderValue::from_static("3"));
        assert_eq!(function_timeout(&h), (Duration::from_secs(3), None));
        for bad in ["-1", "abc", "0", "1e9"] {
            h.insert("x-fc-function-timeout", HeaderValue::from_static(bad));
            let (timeout, warning) = function_timeout(&h);
            assert_eq!(timeout, DEFAULT_TIMEOUT, "{bad}");
            let warning = warning.unwrap_or_default();
            assert!(
                warning.contains(&format!("{bad:?}")) && warning.contains("60 s assumed"),
                "{bad}: {warning}"
            );
        }
    }
}
