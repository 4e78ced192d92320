//! An SLS test server that speaks the real PullLogs wire format, for the demo and the tests.
//!
//! It checks what the real service checks on the way in: the `Host` header
//! (`{project}.{endpoint host}`), `x-log-apiversion`, `x-log-signaturemethod`,
//! `x-log-bodyrawsize`, the `Date` (±15 minutes), the STS token and the v1 signature,
//! recomputed from the request as received. It answers with LZ4 raw-block protobuf
//! `LogGroupList` bodies and the real headers (`x-log-cursor`, `x-log-count`,
//! `x-log-bodyrawsize`, `x-log-compresstype`, `x-log-requestid`), and SLS's JSON error
//! documents. Faults (5xx, 403 quota, slow answers) can be injected.
//!
//! Cursors are what SLS uses: base64 of a decimal sequence number. Log group `i` of a shard
//! starts at [`cursor`]`(i)`; the range of a shard of `n` groups is `[cursor(0), cursor(n))`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::sls::proto::LogGroup;
use crate::sls::sign;
use crate::time::parse_http_date;

/// Sequence number of the first log group of every shard (a realistic cursor value).
const CURSOR_BASE: u64 = 1_529_480_209_655_978_000;

/// The cursor of log group `seq`.
pub fn cursor(seq: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode((CURSOR_BASE + seq).to_string())
}

fn parse_cursor(c: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .parse::<u64>()
        .ok()?
        .checked_sub(CURSOR_BASE)
}

/// Who may call, and where.
#[derive(Debug, Clone)]
pub struct Account {
    pub project: String,
    /// The endpoint host clients are given (`127.0.0.1`, `localhost`…): `Host` must be
    /// `{project}.{endpoint_host}`.
    pub endpoint_host: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// When set, requests must carry it as `x-acs-security-token`.
    pub security_token: Option<String>,
}

impl Account {
    /// The demo account the README's curl example uses.
    pub fn demo() -> Account {
        Account {
            project: "demo-project".into(),
            endpoint_host: "127.0.0.1".into(),
            access_key_id: "STS.demo-access-key-id".into(),
            access_key_secret: "demo-access-key-secret".into(),
            security_token: Some("demo-security-token".into()),
        }
    }
}

/// An answer to inject instead of serving data.
#[derive(Debug, Clone)]
pub enum Fault {
    /// An SLS error document with this status and code.
    Error { status: u16, code: String },
    /// Wait this long, then serve normally.
    Delay(Duration),
    /// A proxy's answer: this status with an HTML body.
    Html(u16),
    /// A 200 with no log groups (`x-log-count: 0`, `x-log-bodyrawsize: 0`, empty body) whose
    /// `x-log-cursor` jumps to the requested end cursor, as after a storage upgrade.
    Empty,
}

impl Fault {
    pub fn error(status: u16, code: &str) -> Fault {
        Fault::Error {
            status,
            code: code.into(),
        }
    }
}

struct Shared {
    account: Account,
    /// logstore → shard → log groups, each encoded as a `LogGroupList` field (tag 1).
    stores: HashMap<String, Vec<Vec<Bytes>>>,
    faults: Mutex<VecDeque<Fault>>,
    requests: AtomicU64,
    served_groups: AtomicU64,
}

/// A running test server; it stops when dropped.
pub struct SlsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Log groups to serve: `(logstore, shard, groups)`.
pub type Data = Vec<(String, u32, Vec<LogGroup>)>;

impl SlsServer {
    /// Binds `addr` (use port 0 for a free one) and serves `data` for `account`.
    pub async fn start(
        addr: SocketAddr,
        account: Account,
        data: Data,
    ) -> std::io::Result<SlsServer> {
        let mut stores: HashMap<String, Vec<Vec<Bytes>>> = HashMap::new();
        for (logstore, shard, groups) in data {
            let shards = stores.entry(logstore).or_default();
            if shards.len() <= shard as usize {
                shards.resize(shard as usize + 1, Vec::new());
            }
            shards[shard as usize] = groups.iter().map(encode_group).collect();
        }
        let shared = Arc::new(Shared {
            account,
            stores,
            faults: Mutex::new(VecDeque::new()),
            requests: AtomicU64::new(0),
            served_groups: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/logstores/{logstore}/shards/{shard}", get(shard_get))
            .fallback(|| async { sls_error(404, "NotFound", "no such API", "-") })
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SlsServer { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to put in a trigger event: `http://{endpoint_host}:{port}`.
    pub fn endpoint(&self) -> String {
        format!(
            "http://{}:{}",
            self.shared.account.endpoint_host,
            self.addr.port()
        )
    }

    /// Answers the next requests with `faults`, in order, before serving normally again.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        if let Ok(mut q) = self.shared.faults.lock() {
            q.extend(faults);
        }
    }

    /// PullLogs/GetCursor requests received (including refused ones).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Log groups served.
    pub fn served_groups(&self) -> u64 {
        self.shared.served_groups.load(Ordering::Relaxed)
    }
}

fn encode_group(g: &LogGroup) -> Bytes {
    let mut buf = BytesMut::with_capacity(g.encoded_len() + 8);
    prost::encoding::message::encode(1, g, &mut buf);
    buf.freeze()
}

fn next_request_id(shared: &Shared) -> String {
    format!(
        "5F{:022X}",
        shared.requests.fetch_add(1, Ordering::Relaxed) + 1
    )
}

fn sls_error(status: u16, code: &str, message: &str, request_id: &str) -> Response {
    let body = serde_json::json!({"errorCode": code, "errorMessage": message}).to_string();
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-log-requestid", v);
    }
    resp
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Checks what the real service checks before anything else; `Err` is the error status,
/// code and message.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    params: &[(String, String)],
) -> Result<(), (u16, &'static str, String)> {
    let acct = &shared.account;
    let expected_host = format!("{}.{}", acct.project, acct.endpoint_host);
    let host = header(headers, "host");
    if host.is_empty() {
        return Err((400, "MissingHost", "Host header is required".to_string()));
    }
    if host != expected_host {
        let message = format!(
            "Host {host:?} does not name a project on this server (expected {expected_host:?})"
        );
        return Err((404, "ProjectNotExist", message));
    }
    if header(headers, "x-log-apiversion") != "0.6.0" {
        return Err((
            400,
            "InvalidAPIVersion",
            "x-log-apiversion must be 0.6.0".to_string(),
        ));
    }
    if header(headers, "x-log-signaturemethod") != "hmac-sha1" {
        return Err((
            400,
            "InvalidSignatureMethod",
            "x-log-signaturemethod must be hmac-sha1".to_string(),
        ));
    }
    if header(headers, "x-log-bodyrawsize") != "0" {
        return Err((
            400,
            "InvalidBodyRawSize",
            "x-log-bodyrawsize must be 0 on a GET".to_string(),
        ));
    }
    let date = header(headers, "date");
    let Some(when) = parse_http_date(date) else {
        return Err((
            400,
            "InvalidDateFormat",
            "Date is not an RFC 1123 GMT date".to_string(),
        ));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - when).abs() > 15 * 60 {
        return Err((
            400,
            "RequestTimeExpired",
            "Date is more than 15 minutes off".to_string(),
        ));
    }
    let auth = header(headers, "authorization");
    let Some((id, signature)) = auth.strip_prefix("LOG ").and_then(|a| a.rsplit_once(':')) else {
        return Err((
            401,
            "Unauthorized",
            "Authorization must be LOG <id>:<signature>".to_string(),
        ));
    };
    if id != acct.access_key_id {
        return Err((
            401,
            "InvalidAccessKeyId",
            "The AccessKeyId is not found".to_string(),
        ));
    }
    if let Some(token) = &acct.security_token {
        if header(headers, "x-acs-security-token") != token {
            return Err((
                401,
                "SecurityTokenExpired",
                "The security token is invalid or expired".to_string(),
            ));
        }
    }
    // The Python SDK adds `x-log-date` after signing (research/sls-api.md §4.1): the service
    // evidently leaves it out of the canonical headers, and so does this server.
    let all_headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.as_str() != "x-log-date")
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected = sign::signature(
        &acct.access_key_secret,
        &sign::string_to_sign(&sign::Request {
            method: "GET",
            content_md5: header(headers, "content-md5"),
            content_type: header(headers, "content-type"),
            date,
            headers: &all_headers,
            path,
            params: &params,
        }),
    );
    if !sign::equal_signatures(signature, &expected) {
        return Err((
            401,
            "SignatureNotMatch",
            "The request signature does not match".to_string(),
        ));
    }
    Ok(())
}

async fn shard_get(
    State(shared): State<Arc<Shared>>,
    Path((logstore, shard)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let rid = next_request_id(&shared);
    if let Err((status, code, message)) = authenticate(&shared, &headers, uri.path(), &params) {
        return sls_error(status, code, &message, &rid);
    }
    let fault = shared.faults.lock().ok().and_then(|mut q| q.pop_front());
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match fault {
        Some(Fault::Error { status, code }) => {
            return sls_error(status, &code, "injected fault", &rid);
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Html(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return (
                status,
                "<html>\n<head><title>502 Bad Gateway</title></head>\n</html>\n",
            )
                .into_response();
        }
        Some(Fault::Empty) => {
            let mut resp = (StatusCode::OK, Bytes::new()).into_response();
            let h = resp.headers_mut();
            for (k, v) in [
                (
                    "x-log-cursor",
                    param("end_cursor").unwrap_or("").to_string(),
                ),
                ("x-log-count", "0".into()),
                ("x-log-bodyrawsize", "0".into()),
                ("x-log-compresstype", "lz4".into()),
                ("x-log-requestid", rid.clone()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            }
            return resp;
        }
        None => {}
    }
    if let Some((k, _)) = params.iter().find(|(k, _)| {
        !matches!(
            k.as_str(),
            "type" | "cursor" | "count" | "end_cursor" | "from" | "query" | "pullMode"
        )
    }) {
        return sls_error(
            400,
            "ParameterInvalid",
            &format!("unknown parameter {k}"),
            &rid,
        );
    }
    let Some(shards) = shared.stores.get(&logstore) else {
        return sls_error(
            404,
            "LogStoreNotExist",
            &format!("logstore {logstore} does not exist"),
            &rid,
        );
    };
    let Some(groups) = shard.parse::<usize>().ok().and_then(|s| shards.get(s)) else {
        return sls_error(
            400,
            "ShardNotExist",
            &format!("Shard {shard} does not exist"),
            &rid,
        );
    };
    let len = groups.len() as u64;
    match param("type") {
        Some("cursor") => {
            let seq = match param("from") {
                Some("begin") => 0,
                Some("end") => len,
                _ => return sls_error(400, "ParameterInvalid", "from must be begin or end", &rid),
            };
            let mut resp = axum::Json(serde_json::json!({"cursor": cursor(seq)})).into_response();
            resp.headers_mut().insert(
                "x-log-requestid",
                HeaderValue::from_str(&rid).unwrap_or(HeaderValue::from_static("-")),
            );
            resp
        }
        Some("log") | Some("logs") => {
            let Some(start) = param("cursor").and_then(parse_cursor).filter(|&s| s <= len) else {
                return sls_error(400, "InvalidCursor", "This cursor is invalid", &rid);
            };
            let end = match param("end_cursor") {
                None => len,
                Some(c) => match parse_cursor(c).filter(|&e| e <= len && e >= start) {
                    Some(e) => e,
                    None => {
                        return sls_error(400, "InvalidCursor", "The end cursor is invalid", &rid)
                    }
                },
            };
            let Some(count) = param("count")
                .and_then(|c| c.parse::<u64>().ok())
                .filter(|c| (1..=1000).contains(c))
            else {
                return sls_error(
                    400,
                    "ParameterInvalid",
                    "ParameterCount should be in [0-1000]",
                    &rid,
                );
            };
            let stop = end.min(start + count);
            let mut raw = BytesMut::new();
            for g in &groups[start as usize..stop as usize] {
                raw.extend_from_slice(g);
            }
            shared
                .served_groups
                .fetch_add(stop - start, Ordering::Relaxed);
            let raw_size = raw.len();
            let lz4 = header(&headers, "accept-encoding")
                .split(',')
                .any(|e| e.trim() == "lz4");
            let body = if lz4 && raw_size > 0 {
                Bytes::from(lz4_flex::block::compress(&raw))
            } else {
                raw.freeze()
            };
            let mut resp = (StatusCode::OK, body).into_response();
            let h = resp.headers_mut();
            let mut set = |k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            set("content-type", "application/x-protobuf".into());
            set("x-log-cursor", cursor(stop));
            set("x-log-count", (stop - start).to_string());
            set("x-log-bodyrawsize", raw_size.to_string());
            if lz4 {
                set("x-log-compresstype", "lz4".into());
            }
            set("x-log-requestid", rid.clone());
            if stop > start {
                set(
                    "x-log-read-last-cursor",
                    (CURSOR_BASE + stop - 1).to_string(),
                );
            }
            resp
        }
        _ => sls_error(400, "ParameterInvalid", "type must be log or cursor", &rid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_base64_decimal() {
        assert_eq!(cursor(0), "MTUyOTQ4MDIwOTY1NTk3ODAwMA==");
        assert_eq!(parse_cursor(&cursor(12345)), Some(12345));
        assert_eq!(parse_cursor("not base64!"), None);
    }
}
