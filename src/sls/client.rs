//! PullLogs: one signed GET per batch, with bounded, jittered retries.

use std::time::{Duration, Instant};

use hyper::header::{self, HeaderMap, HeaderValue};

use super::codec;
use super::endpoint::Endpoint;
use super::http::{Http, HttpError, Origin};
use super::sign;
use crate::buffers;
use crate::secret::Secret;
use crate::time::Utc;

/// Access key and, for STS, the security token.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

/// What a PullLogs call returns.
#[derive(Debug)]
pub struct Pull {
    /// The cursor this pull started at (that of its first log group).
    pub cursor: String,
    /// `x-log-cursor`: where the next pull starts.
    pub next_cursor: String,
    /// `x-log-count`: log groups in the body.
    pub group_count: usize,
    /// The decompressed `LogGroupList` bytes (give the buffer back to [`buffers`] when done).
    pub body: Vec<u8>,
    /// Bytes received on the wire (compressed).
    pub wire_bytes: usize,
    /// Attempts that failed and were retried before this one succeeded.
    pub retries: u32,
}

/// A failed SLS call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SlsError {
    /// SLS answered with an error document.
    #[error("SLS answered HTTP {status} {code}: {message} (request id {request_id})")]
    Server {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// The request did not get an answer.
    #[error("cannot reach SLS: {0}")]
    Network(String),
    /// The request could not be built (a bad endpoint or credential): retrying cannot help.
    #[error("cannot send the SLS request: {0}")]
    Request(String),
    /// A 200 answer that is not a valid PullLogs response.
    #[error("invalid PullLogs response (request id {request_id}): {reason}")]
    BadResponse { reason: String, request_id: String },
    /// Retries stopped because the invocation deadline would pass.
    #[error("{last}; gave up after {attempts} attempt(s) to finish before the function timeout")]
    Deadline { attempts: u32, last: Box<SlsError> },
    /// Retries stopped after the most attempts one call may make.
    #[error("{last}; gave up after {attempts} attempt(s)")]
    Exhausted { attempts: u32, last: Box<SlsError> },
}

impl From<HttpError> for SlsError {
    fn from(e: HttpError) -> SlsError {
        match e {
            // A request that cannot be made from here is not retried.
            HttpError::Setup(m) => SlsError::Request(m),
            HttpError::Network(m) => SlsError::Network(m),
        }
    }
}

impl SlsError {
    /// Worth trying again: network errors, 5xx, and read-quota 403s.
    pub fn is_retryable(&self) -> bool {
        match self {
            SlsError::Network(_) => true,
            SlsError::Server { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "ReadQuotaExceed"
                            | "ShardReadQuotaExceed"
                            | "ServerBusy"
                            | "InternalServerError"
                            | "RequestTimeout"
                    )
            }
            SlsError::BadResponse { .. }
            | SlsError::Request(_)
            | SlsError::Deadline { .. }
            | SlsError::Exhausted { .. } => false,
        }
    }
}

/// A client for one project at one endpoint.
pub struct Client {
    http: Http,
    origin: Origin,
    host_header: HeaderValue,
    credentials: Credentials,
    user_agent: HeaderValue,
}

/// Upper bound on attempts of one call, whatever the deadline.
const MAX_ATTEMPTS: u32 = 12;
/// First retry pause; doubles each time up to [`MAX_BACKOFF`], with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(300);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Longest one attempt may take, so a stalled connection leaves time for a retry.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// `http` is shared by the whole process (idle connections, TLS configuration).
    pub fn new(
        http: Http,
        endpoint: &Endpoint,
        project: &str,
        credentials: Credentials,
    ) -> Result<Client, SlsError> {
        let host_header = HeaderValue::from_str(&endpoint.host_header(project)).map_err(|_| {
            SlsError::Request(format!("project name {project:?} is not a valid host name"))
        })?;
        Ok(Client {
            http,
            origin: endpoint.origin(project),
            host_header,
            credentials,
            user_agent: HeaderValue::from_static(concat!("sls-syslog/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// Pulls up to `count` log groups from `cursor` towards `end_cursor`, retrying what is
    /// retryable until `deadline`.
    pub async fn pull_logs(
        &self,
        logstore: &str,
        shard: u32,
        cursor: &str,
        end_cursor: &str,
        count: u32,
        deadline: Instant,
    ) -> Result<Pull, SlsError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = if remaining.is_zero() {
                Err(SlsError::Network(
                    "no time left before the function timeout".into(),
                ))
            } else {
                let timeout = remaining.min(ATTEMPT_TIMEOUT);
                let pull = self.pull_once(logstore, shard, cursor, end_cursor, count);
                match tokio::time::timeout(timeout, pull).await {
                    Ok(result) => result,
                    Err(_) => Err(SlsError::Network("request timed out".into())),
                }
            };
            match result {
                Ok(mut pull) => {
                    pull.retries = attempt - 1;
                    return Ok(pull);
                }
                Err(e) if e.is_retryable() => {
                    let pause = backoff(attempt);
                    if attempt >= MAX_ATTEMPTS {
                        return Err(SlsError::Exhausted {
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    if Instant::now() + pause + Duration::from_millis(500) >= deadline {
                        return Err(SlsError::Deadline {
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn pull_once(
        &self,
        logstore: &str,
        shard: u32,
        cursor: &str,
        end_cursor: &str,
        count: u32,
    ) -> Result<Pull, SlsError> {
        let path = format!("/logstores/{}/shards/{shard}", encode(logstore));
        let count = count.to_string();
        let params: [(&str, &str); 4] = [
            ("type", "log"),
            ("cursor", cursor),
            ("count", &count),
            ("end_cursor", end_cursor),
        ];
        let mut target = String::with_capacity(path.len() + 128);
        target.push_str(&path);
        for (i, (k, v)) in params.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(k);
            target.push('=');
            target.push_str(&encode(v));
        }

        let date = Utc::now().http_date();
        let token = self
            .credentials
            .security_token
            .as_ref()
            .filter(|t| !t.is_empty());
        let mut signed: Vec<(&str, &str)> = vec![
            ("x-log-apiversion", "0.6.0"),
            ("x-log-bodyrawsize", "0"),
            ("x-log-signaturemethod", "hmac-sha1"),
        ];
        if let Some(t) = token {
            signed.push(("x-acs-security-token", t.expose()));
        }
        let authorization = sign::authorization(
            &self.credentials.access_key_id,
            self.credentials.access_key_secret.expose(),
            &sign::Request {
                method: "GET",
                content_md5: "",
                content_type: "",
                date: &date,
                headers: &signed,
                path: &path,
                params: &params,
            },
        );

        let mut headers = HeaderMap::with_capacity(12);
        headers.insert(header::HOST, self.host_header.clone());
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("lz4"));
        headers.insert(header::DATE, header_value(&date)?);
        for (k, v) in &signed {
            let mut value = header_value(v)?;
            if k.starts_with("x-acs-") {
                value.set_sensitive(true);
            }
            headers.insert(*k, value);
        }
        let mut auth = header_value(&authorization)?;
        auth.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, auth);

        let response = self.http.get(&self.origin, &target, headers).await?;
        let status = response.status;
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-log-requestid").unwrap_or_else(|| "-".into());
        let next_cursor = header("x-log-cursor");
        let group_count = header("x-log-count");
        let raw_size = header("x-log-bodyrawsize");
        let compress_type = header("x-log-compresstype").unwrap_or_default();
        let bad = |reason: String| SlsError::BadResponse {
            reason,
            request_id: request_id.clone(),
        };

        if status != 200 {
            // An error document; a longer answer (a proxy's page) is cut.
            let mut body = Vec::new();
            response.read_body(MAX_ERROR_BODY, &mut body).await?;
            return Err(server_error(status, &body, request_id));
        }
        if let Some(len) = response.content_length() {
            if len > codec::MAX_WIRE_SIZE as u64 {
                return Err(bad(format!(
                    "Content-Length {len} is over the {}-byte limit",
                    codec::MAX_WIRE_SIZE
                )));
            }
        }
        let mut wire = buffers::take(response.content_length().map_or(0, |n| n as usize));
        let complete = response.read_body(codec::MAX_WIRE_SIZE, &mut wire).await?;
        if !complete {
            return Err(bad(format!(
                "the body is over the {}-byte limit",
                codec::MAX_WIRE_SIZE
            )));
        }
        let next_cursor = next_cursor
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("no x-log-cursor header".into()))?;
        let group_count = parse_header_number(group_count, "x-log-count").map_err(bad)?;
        check_progress(cursor, &next_cursor, end_cursor, group_count).map_err(bad)?;
        let raw_size = parse_header_number(raw_size, "x-log-bodyrawsize").map_err(bad)?;
        let wire_bytes = wire.len();
        // Both buffers come from and go back to the process's spares (the decoded one once
        // its logs are formatted): no pull faults in fresh pages.
        let mut body = buffers::take(raw_size);
        let decoded = codec::decode_into(&wire, &compress_type, raw_size, &mut body);
        buffers::give(wire);
        decoded.map_err(|e| bad(e.to_string()))?;
        Ok(Pull {
            cursor: cursor.to_string(),
            next_cursor,
            group_count,
            body,
            wire_bytes,
            retries: 0,
        })
    }
}

/// Bytes of an error answer kept (SLS's error documents are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The sequence number in an SLS cursor (base64 of a decimal number), if it is one.
fn sequence(cursor: &str) -> Option<u64> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&raw).ok()?.parse().ok()
}

/// The next cursor must move from `cursor` towards `end`: one that goes back or passes the
/// end would ship logs twice, or logs of the next range. One that stays put is the end of the
/// shard's data when no log groups came back (SLS answers so at the tail of a shard, and
/// after maintenance), and a server that is stuck when some did. Cursors that are not
/// sequence numbers are only checked for staying put.
fn check_progress(cursor: &str, next: &str, end: &str, groups: usize) -> Result<(), String> {
    if next == end {
        return Ok(());
    }
    if next == cursor {
        if groups == 0 {
            return Ok(());
        }
        return Err(format!(
            "x-log-cursor {next} is the request cursor although {groups} log groups came back: it did not advance towards the end cursor {end}"
        ));
    }
    if let (Some(c), Some(n), Some(e)) = (sequence(cursor), sequence(next), sequence(end)) {
        if n < c {
            return Err(format!(
                "x-log-cursor {next} goes back before the request cursor {cursor}"
            ));
        }
        if n > e && c <= e {
            return Err(format!("x-log-cursor {next} is past the end cursor {end}"));
        }
    }
    Ok(())
}

fn header_value(v: &str) -> Result<HeaderValue, SlsError> {
    HeaderValue::from_str(v).map_err(|_| {
        SlsError::Request(
            "a request header (access key id or security token?) has characters HTTP does not allow"
                .into(),
        )
    })
}

fn parse_header_number(value: Option<String>, name: &str) -> Result<usize, String> {
    let v = value.ok_or_else(|| format!("no {name} header"))?;
    v.trim()
        .parse::<usize>()
        .map_err(|_| format!("{name} is not a number: {v:?}"))
}

/// Parses SLS's `{"errorCode": …, "errorMessage": …}`; anything else (a proxy's HTML page)
/// keeps the HTTP status and the start of the body.
fn server_error(status: u16, body: &[u8], request_id: String) -> SlsError {
    #[derive(serde::Deserialize)]
    struct ErrorDoc {
        #[serde(rename = "errorCode")]
        code: Option<String>,
        #[serde(rename = "errorMessage")]
        message: Option<String>,
    }
    match serde_json::from_slice::<ErrorDoc>(body) {
        Ok(doc) => SlsError::Server {
            status,
            code: one_line(&doc.code.unwrap_or_else(|| "-".into())),
            message: one_line(&doc.message.unwrap_or_default()),
            request_id,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            SlsError::Server {
                status,
                code: "InvalidErrorResponse".into(),
                message: one_line(&text),
                request_id,
            }
        }
    }
}

/// Whitespace runs (line breaks included) folded to one space: an error stays one log line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved characters kept).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Exponential backoff with jitter: attempt 1 → 150..300 ms, 2 → 300..600 ms, … up to 8 s.
fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let jitter = (crate::jitter() % 1000) as u32;
    full / 2 + full / 2 * jitter / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_cursors_like_the_sdks() {
        assert_eq!(
            encode("MTU0NzQ3MDY4MjM3NjUxMzQ0Ng=="),
            "MTU0NzQ3MDY4MjM3NjUxMzQ0Ng%3D%3D"
        );
        assert_eq!(encode("a b/c+é"), "a%20b%2Fc%2B%C3%A9");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let b = backoff(attempt);
            assert!(b >= Duration::from_millis(150) && b <= MAX_BACKOFF, "{b:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(300));
        assert!(backoff(6) >= Duration::from_secs(4));
    }

    #[test]
    fn classifies_retryable_errors() {
        let server = |status, code: &str| SlsError::Server {
            status,
            code: code.into(),
            message: String::new(),
            request_id: "r".into(),
        };
        assert!(server(500, "InternalServerError").is_retryable());
        assert!(server(503, "ServerBusy").is_retryable());
        assert!(server(502, "InvalidErrorResponse").is_retryable());
        assert!(server(403, "ShardReadQuotaExceed").is_retryable());
        assert!(server(403, "ReadQuotaExceed").is_retryable());
        assert!(!server(403, "ProjectForbidden").is_retryable());
        assert!(!server(401, "SignatureNotMatch").is_retryable());
        assert!(!server(400, "InvalidCursor").is_retryable());
        assert!(!server(404, "LogStoreNotExist").is_retryable());
        assert!(SlsError::Network("reset".into()).is_retryable());
    }

    #[test]
    fn parses_error_documents() {
        let e = server_error(
            400,
            br#"{"errorCode":"InvalidCursor","errorMessage":"This cursor is invalid"}"#,
            "RID".into(),
        );
        assert_eq!(
            e.to_string(),
            "SLS answered HTTP 400 InvalidCursor: This cursor is invalid (request id RID)"
        );
        let e = server_error(
            400,
            br#"{"errorCode":"X","errorMessage":"two\nlines"}"#,
            "R".into(),
        );
        assert!(e.to_string().contains("X: two lines"));
        let e = server_error(502, b"<html>\n<b>Bad Gateway</b></html>", "-".into());
        assert!(e
            .to_string()
            .contains("502 InvalidErrorResponse: <html> <b>Bad Gateway</b></html>"));
    }

    #[test]
    fn the_next_cursor_must_move_towards_the_end() {
        let c = |seq: u64| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(seq.to_string())
        };
        assert_eq!(check_progress(&c(10), &c(12), &c(20), 2), Ok(()));
        assert_eq!(check_progress(&c(10), &c(20), &c(20), 10), Ok(()));
        assert!(check_progress(&c(10), &c(10), &c(20), 1)
            .unwrap_err()
            .contains("did not advance"));
        // No groups and an unchanged cursor: the end of the shard's data, not an error.
        assert_eq!(check_progress(&c(10), &c(10), &c(20), 0), Ok(()));
        assert!(check_progress(&c(10), &c(9), &c(20), 0)
            .unwrap_err()
            .contains("goes back"));
        assert!(check_progress(&c(10), &c(21), &c(20), 0)
            .unwrap_err()
            .contains("past the end"));
        // Opaque cursors: only "did not advance" can be told.
        assert_eq!(check_progress("a", "b", "z", 1), Ok(()));
        assert!(check_progress("a", "a", "z", 1).is_err());
        assert_eq!(check_progress("a", "a", "z", 0), Ok(()));
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials {
            access_key_id: "id".into(),
            access_key_secret: Secret::new("topsecret"),
            security_token: Some(Secret::new("tok3n")),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("topsecret") && !s.contains("tok3n"), "{s}");
    }
}
