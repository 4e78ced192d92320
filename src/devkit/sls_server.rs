//! An SLS test server that speaks the real PullLogs wire format, for the demo and the tests.
//!
//! It checks what the real service checks on the way in: the `Host` header
//! (`{project}.{endpoint host}`), `x-log-apiversion`, `x-log-signaturemethod`,
//! `x-log-bodyrawsize`, the `Date` (±15 minutes), the STS token and the v1 signature,
//! recomputed from the request as received. It answers with LZ4 raw-block protobuf
//! `LogGroupList` bodies and the real headers (`x-log-cursor`, `x-log-count`,
//! `x-log-bodyrawsize`, `x-log-compresstype`, `x-log-requestid`), and SLS's JSON error
//! documents. Faults can be injected: error documents (5xx, 403 quota, 401…), slow answers,
//! responses that lie (a wrong `x-log-bodyrawsize`, corrupt LZ4, bytes that are not a
//! `LogGroupList`, a missing or wrong `x-log-cursor`) and broken connections (reset or closed
//! in the middle of the body, a body that stalls), the last through a thin wrapper around
//! every accepted connection that is transparent until a fault arms it.
//!
//! Cursors are what SLS uses: base64 of a decimal sequence number. Log group `i` of a shard
//! starts at [`cursor`]`(i)`; the range of a shard of `n` groups is `[cursor(0), cursor(n))`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::sls::proto::LogGroup;
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
    /// The demo account the curl example (docs/cli.md) uses.
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
    /// A 200 with no log groups whose `x-log-cursor` is the request cursor: what SLS answers
    /// at the tail of a shard's data.
    Tail,

    // The faults below answer a PullLogs request with the data it asks for, damaged.
    /// The data, with `x-log-bodyrawsize` this many bytes off the real decoded size.
    RawSizeOff(i64),
    /// The data, with this `x-log-bodyrawsize` (a hostile 4 GiB, say).
    RawSize(u64),
    /// The data, with bytes of the LZ4 block overwritten (headers unchanged).
    CorruptLz4,
    /// LZ4 of bytes that are not a `LogGroupList`, with consistent headers.
    NotProtobuf,
    /// The data without an `x-log-cursor` header.
    NoCursor,
    /// The data, with `x-log-cursor` set to the request cursor moved by this many log groups
    /// (`0`: the cursor does not advance; negative: it goes backwards) instead of the real
    /// next cursor.
    NextCursor(i64),
    /// The data's headers (`Content-Length` of the whole body), half the body, then the
    /// connection is reset (TCP RST).
    ResetMidBody,
    /// The data's headers (`Content-Length` of the whole body), half the body, then the
    /// connection is closed (FIN).
    TruncatedBody,
    /// The data's headers and half the body, then nothing for this long, then the rest.
    StalledBody(Duration),
    /// The data, but `Content-Length` says this many bytes; after the real body the
    /// connection stays open, silent.
    ContentLength(u64),
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
    /// End cursors past the data are accepted, and a pull at the end of the data answers as
    /// SLS does at a shard's tail (see [`SlsServer::end_data_early`]).
    open_end: AtomicBool,
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
            open_end: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            served_groups: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/logstores/{logstore}/shards/{shard}", get(shard_get))
            .fallback(|| async { sls_error(404, "NotFound", "no such API", "-") })
            .with_state(shared.clone());
        let listener = FaultListener(TcpListener::bind(addr).await?);
        let addr = listener.0.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<Wire>()).await;
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

    /// From now on, accept trigger ranges whose end cursor lies past the data served, and
    /// answer a pull at the end of the data with no log groups and the request cursor, as the
    /// real service does at the tail of a shard (instead of refusing the end cursor).
    pub fn end_data_early(&self) {
        self.shared.open_end.store(true, Ordering::Relaxed);
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

/// The v1 signature the service expects for a request as this server received it, built
/// from research/sls-api.md §4.1 on its own (ring's HMAC, not the client's `sign` module,
/// so that a mistake there cannot be repeated here): checked against the SDKs' published
/// vectors in the tests below. `params` are the decoded query parameters.
fn v1_signature(
    secret: &str,
    method: &str,
    headers: &HeaderMap,
    path: &str,
    params: &[(String, String)],
) -> String {
    // `x-log-*` and `x-acs-*` headers by lower-case name; the Python SDK adds `x-log-date`
    // after signing, so the service evidently leaves it out, and so does this server.
    let mut canonical: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("")))
        .filter(|(k, _)| (k.starts_with("x-log-") || k.starts_with("x-acs-")) && k != "x-log-date")
        .collect();
    canonical.sort();
    let mut text = format!(
        "{method}\n{}\n{}\n{}\n",
        header(headers, "content-md5"),
        header(headers, "content-type"),
        header(headers, "date")
    );
    for (k, v) in canonical {
        text += &format!("{k}:{v}\n");
    }
    text += path;
    if !params.is_empty() {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text += "?";
        text += &query.join("&");
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, text.as_bytes()))
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
    let expected = v1_signature(&acct.access_key_secret, "GET", headers, path, params);
    if signature.as_bytes() != expected.as_bytes() {
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
    ConnectInfo(wire): ConnectInfo<Wire>,
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
    // A fault that damages the data served below.
    let mut data_fault = None;
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
        Some(f @ (Fault::Empty | Fault::Tail)) => {
            let next = match f {
                Fault::Tail => param("cursor"),
                _ => param("end_cursor"),
            };
            return empty_answer(next.unwrap_or(""), &rid);
        }
        Some(damage) => data_fault = Some(damage),
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
            let open_end = shared.open_end.load(Ordering::Relaxed);
            let end = match param("end_cursor") {
                None => len,
                Some(c) => {
                    match parse_cursor(c).filter(|&e| (open_end || e <= len) && e >= start) {
                        Some(e) => e.min(len),
                        None => {
                            return sls_error(
                                400,
                                "InvalidCursor",
                                "The end cursor is invalid",
                                &rid,
                            )
                        }
                    }
                }
            };
            if open_end && start == len && param("end_cursor").and_then(parse_cursor) != Some(len) {
                // The tail of the shard's data, short of the end cursor.
                return empty_answer(param("cursor").unwrap_or(""), &rid);
            }
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
            let lz4 = header(&headers, "accept-encoding")
                .split(',')
                .any(|e| e.trim() == "lz4");
            let (raw, mut raw_size) = match data_fault {
                Some(Fault::NotProtobuf) => {
                    // Field 1 (a LogGroup) with wire type 7, which does not exist.
                    let junk = Bytes::from_static(b"\x0f\xff\xffnot a LogGroupList at all");
                    let n = junk.len() as u64;
                    (junk, n)
                }
                _ => {
                    let n = raw.len() as u64;
                    (raw.freeze(), n)
                }
            };
            let mut body = if lz4 && raw_size > 0 {
                Bytes::from(lz4_flex::block::compress(&raw))
            } else {
                raw
            };
            let mut next = Some(cursor(stop));
            match data_fault {
                Some(Fault::RawSizeOff(d)) => raw_size = raw_size.saturating_add_signed(d),
                Some(Fault::RawSize(n)) => raw_size = n,
                Some(Fault::CorruptLz4) => body = corrupt(&body),
                Some(Fault::NoCursor) => next = None,
                Some(Fault::NextCursor(d)) => {
                    next = Some(cursor(start.saturating_add_signed(d)));
                }
                Some(Fault::ResetMidBody) => wire.arm(Cut::Reset, body.len()),
                Some(Fault::TruncatedBody) => wire.arm(Cut::Close, body.len()),
                Some(Fault::StalledBody(d)) => wire.arm(Cut::Stall(d), body.len()),
                Some(Fault::ContentLength(n)) => wire.arm(Cut::Declare(n), body.len()),
                _ => {}
            }
            let mut resp = (StatusCode::OK, body).into_response();
            let h = resp.headers_mut();
            let mut set = |k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            set("content-type", "application/x-protobuf".into());
            if let Some(next) = next {
                set("x-log-cursor", next);
            }
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

/// A 200 with no log groups and `next` as `x-log-cursor`.
fn empty_answer(next: &str, rid: &str) -> Response {
    let mut resp = (StatusCode::OK, Bytes::new()).into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-log-cursor", next),
        ("x-log-count", "0"),
        ("x-log-bodyrawsize", "0"),
        ("x-log-compresstype", "lz4"),
        ("x-log-requestid", rid),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    resp
}

/// An LZ4 block whose last two thirds are overwritten: the first sequences are intact, then
/// literal lengths run past the end and match offsets point nowhere. (Overwriting only a few
/// bytes can land inside a run of literals of a small block, which then decodes.)
fn corrupt(block: &[u8]) -> Bytes {
    let mut out = block.to_vec();
    let from = out.len() / 3;
    for b in out.iter_mut().skip(from) {
        *b = 0xff;
    }
    Bytes::from(out)
}

/// Accepts connections wrapped in [`FaultIo`].
struct FaultListener(TcpListener);

impl axum::serve::Listener for FaultListener {
    type Io = FaultIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FaultIo, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let io = FaultIo {
            inner: stream,
            wire: Wire::default(),
            plan: None,
            queued: Vec::new(),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// What happens to a connection once part of a response body has gone out.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// TCP RST (`SO_LINGER` 0, then close).
    Reset,
    /// Close (FIN).
    Close,
    /// Write nothing for this long, then go on.
    Stall(Duration),
    /// Not a cut: the header block goes out with `content-length` rewritten to this.
    Declare(u64),
}

/// A cut, armed by a request handler for the next response on its connection.
struct Plan {
    cut: Cut,
    /// `\r\n\r\n` bytes matched so far: the body starts after the header block.
    header_end: u8,
    /// Body bytes still to write before the cut.
    pass: usize,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Plan {
    /// The next state of the `\r\n\r\n` matcher after byte `b`.
    fn header_step(matched: u8, b: u8) -> u8 {
        match (matched, b) {
            (4, _) => 4,
            (0 | 2, b'\r') | (1 | 3, b'\n') => matched + 1,
            (_, b'\r') => 1,
            _ => 0,
        }
    }

    /// How many bytes of `buf` go out before the cut.
    fn allowance(&self, buf: &[u8]) -> usize {
        let (mut matched, mut pass) = (self.header_end, self.pass);
        for (i, &b) in buf.iter().enumerate() {
            if matched < 4 {
                matched = Plan::header_step(matched, b);
            } else if pass == 0 {
                return i;
            } else {
                pass -= 1;
            }
        }
        buf.len()
    }

    /// Accounts for `written` bytes sent.
    fn consume(&mut self, written: &[u8]) {
        for &b in written {
            if self.header_end < 4 {
                self.header_end = Plan::header_step(self.header_end, b);
            } else {
                self.pass = self.pass.saturating_sub(1);
            }
        }
    }
}

/// A connection's handle for handlers (through `ConnectInfo`): arms a [`Cut`].
#[derive(Clone, Default)]
struct Wire(Arc<WireSlot>);

#[derive(Default)]
struct WireSlot {
    armed: AtomicBool,
    plan: Mutex<Option<Plan>>,
}

impl Wire {
    /// The response about to be written (a body of `body_len` bytes) is cut after half of
    /// its body.
    fn arm(&self, cut: Cut, body_len: usize) {
        if let Ok(mut p) = self.0.plan.lock() {
            *p = Some(Plan {
                cut,
                header_end: 0,
                pass: body_len / 2,
                stall: None,
            });
            self.0.armed.store(true, Ordering::Release);
        }
    }
}

impl Connected<axum::serve::IncomingStream<'_, FaultListener>> for Wire {
    fn connect_info(stream: axum::serve::IncomingStream<'_, FaultListener>) -> Wire {
        stream.io().wire.clone()
    }
}

/// A TCP connection that writes through unchanged until a [`Plan`] is armed.
struct FaultIo {
    inner: TcpStream,
    wire: Wire,
    plan: Option<Plan>,
    /// Bytes accepted from hyper, rewritten, still to be sent.
    queued: Vec<u8>,
}

impl FaultIo {
    /// Sends [`FaultIo::queued`]; ready when it is empty.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.queued.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.queued) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.queued.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// `head` (a response's header block) with its `content-length` value replaced by `n`.
fn declare_length(head: &[u8], n: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("content-length: {n}\r\n"));
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        if this.plan.is_none() && this.wire.0.armed.swap(false, Ordering::AcqRel) {
            this.plan = this.wire.0.plan.lock().ok().and_then(|mut p| p.take());
        }
        let Some(plan) = this.plan.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if let Cut::Declare(n) = plan.cut {
            // hyper hands over its whole header block in one write.
            let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            if let Some(head_len) = head_len.filter(|_| plan.header_end == 0) {
                this.queued = declare_length(&buf[..head_len], n);
                this.queued.extend_from_slice(&buf[head_len..]);
                this.plan = None;
                // Sent later, by this call's successors or by the flush.
                let _ = this.drain(cx)?;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        // How much of `buf` may go out before the cut.
        let allowed = plan.allowance(buf);
        if allowed > 0 {
            let written = match Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            plan.consume(&buf[..written]);
            return Poll::Ready(Ok(written));
        }
        match plan.cut {
            Cut::Reset => {
                let _ = this.inner.set_zero_linger();
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
            Cut::Close => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
            // Only when the header block was not found: write through.
            Cut::Declare(_) => {
                this.plan = None;
                Pin::new(&mut this.inner).poll_write(cx, buf)
            }
            Cut::Stall(d) => {
                let sleep = plan
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(d)));
                if Future::poll(sleep.as_mut(), cx).is_pending() {
                    return Poll::Pending;
                }
                this.plan = None;
                Pin::new(&mut this.inner).poll_write(cx, buf)
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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

    /// `(secret, method, headers, path, decoded params, expected signature)` from
    /// research/sls-api.md §4.1: the Go SDK's and the Rust sign crate's published vectors,
    /// and the Python SDK's PullLogs/GetCursor vectors.
    #[test]
    fn the_signature_check_matches_the_sdk_vectors() {
        const GO_DATE: &str = "Mon, 3 Jan 2010 08:33:47 GMT";
        const RUST_DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
        const PY_DATE: &str = "Mon, 09 Nov 2015 06:11:16 GMT";
        const MD5: &str = "CE688F8D1AC3ED309BA9BE0A5ABAFCE5";
        const CURSOR: &str = "MTU0NzQ3MDY4MjM3NjUxMzQ0Ng==";
        let base = [
            ("x-log-apiversion", "0.6.0"),
            ("x-log-signaturemethod", "hmac-sha1"),
        ];
        let pull = [
            ("x-log-apiversion", "0.6.0"),
            ("x-log-bodyrawsize", "0"),
            ("x-log-signaturemethod", "hmac-sha1"),
        ];
        type Vector<'a> = (
            &'a str,
            &'a str,
            Vec<(&'a str, &'a str)>,
            &'a str,
            Vec<(&'a str, &'a str)>,
            &'a str,
        );
        let with = |extra: &[(&'static str, &'static str)], h: &[(&'static str, &'static str)]| {
            let mut all = h.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let vectors: Vec<Vector<'_>> = vec![
            (
                "mockAccessKeySecret",
                "GET",
                with(&[("Date", GO_DATE)], &pull),
                "/logstores",
                vec![],
                "Rwm6cTKzoti4HWoe+GKcb6Kv07E=",
            ),
            (
                "test-access-key",
                "POST",
                with(
                    &[
                        ("Date", RUST_DATE),
                        ("Content-MD5", MD5),
                        ("Content-Type", "application/json"),
                    ],
                    &base,
                ),
                "/logstores/test-logstore",
                vec![("type", "log"), ("offset", "0"), ("line", "100")],
                "4pL2xZJERC3tPKtRiHh9+nMG3tI=",
            ),
            (
                "test-access-key",
                "POST",
                with(
                    &[
                        ("Date", RUST_DATE),
                        ("Content-MD5", MD5),
                        ("Content-Type", "application/json"),
                        ("x-acs-security-token", "test-security-token"),
                    ],
                    &base,
                ),
                "/logstores/test/shards/2",
                vec![
                    ("type", "log"),
                    ("count", "1000"),
                    ("cursor", "MTczNzY2OTAzNjAxNzIxODQ1NA=="),
                ],
                "K3rw5WXRe77aZ/meSyEa8NNUYFc=",
            ),
            (
                "testAccessKeySecret",
                "GET",
                with(&[("Date", PY_DATE)], &pull),
                "/logstores/my-logstore/shards/0",
                vec![
                    ("type", "log"),
                    ("cursor", CURSOR),
                    ("count", "1000"),
                    ("end_cursor", "MTU0NzQ3MDY4MjM3NjUxMzQ1Ng=="),
                ],
                "OHolSDBS9INyYde3Auw6DTX7sKg=",
            ),
            (
                "testAccessKeySecret",
                "GET",
                with(
                    &[
                        ("Date", PY_DATE),
                        ("x-acs-security-token", "testSecurityToken"),
                        // Added after signing by the Python SDK: not signed.
                        ("x-log-date", PY_DATE),
                    ],
                    &pull,
                ),
                "/logstores/my-logstore/shards/0",
                vec![("type", "log"), ("cursor", CURSOR), ("count", "100")],
                "VJFL4f3ThygW7NYbFr0baPF5LdU=",
            ),
            (
                "testAccessKeySecret",
                "GET",
                with(&[("Date", PY_DATE)], &pull),
                "/logstores/my-logstore/shards/0",
                vec![
                    ("type", "log"),
                    ("cursor", CURSOR),
                    ("count", "1000"),
                    ("pullMode", "scan_on_stream"),
                    ("query", "* | where level = 'ERROR'"),
                ],
                "E+JKT9K10rtEQLGDaH5sDfwCGB4=",
            ),
            (
                "testAccessKeySecret",
                "GET",
                with(
                    &[("Date", PY_DATE), ("Content-Type", "application/json")],
                    &pull,
                ),
                "/logstores/my-logstore/shards/0",
                vec![("type", "cursor"), ("from", "1700000000")],
                "5UlzK6Vu6XpTb9FUAf2+6KgRBqM=",
            ),
        ];
        for (secret, method, headers, path, params, want) in vectors {
            let mut map = HeaderMap::new();
            for (k, v) in headers {
                map.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_static(v),
                );
            }
            let params: Vec<(String, String)> = params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(
                v1_signature(secret, method, &map, path, &params),
                want,
                "{method} {path}"
            );
        }
    }
}
