//! End-to-end throughput benchmark: SLS test server → the function (`sls-syslog serve`, a
//! child process, invoked over HTTP exactly as FC does) → a receiver that counts and checks
//! every frame, all on loopback. For each transport (tcp, tls, udp) and body (kv, json, cef, leef)
//! it reports, for the function process alone: logs/s, CPU-µs per log (all its threads, from
//! /proc/PID/task/*/schedstat), peak RSS (VmHWM) and how soon after exec it accepts requests.
//! Then, on the same data and receiver, Alibaba's reference Python function (benches/reference.py).
//!
//! ```text
//! cargo bench --bench throughput                    # the whole matrix, 100k and 1M logs
//! cargo bench --bench throughput -- --quick         # tcp kv only, 100k logs
//! cargo bench --bench throughput -- --only tls-kv --logs 100000   # one scenario
//! cargo bench --bench throughput -- --logs 200000 --runs 5 --no-reference
//! cargo bench --bench throughput -- --shapes        # peak RSS by log-group shape
//! cargo bench --bench throughput -- --udp-rsyslog   # UDP received by a default rsyslog, by rate
//! ```
//!
//! Figures are medians over `--runs` invocations of the same range in one function process
//! (the first one included: it connects and, for TLS, does the handshake).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sls_syslog::devkit::sample;
use sls_syslog::devkit::sls_server::{self, Account, SlsServer};
use sls_syslog::sls::proto::LogGroup;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};

const LOGSTORE: &str = "bench-logstore";
const LOGS_PER_GROUP: usize = 10;
/// The function binary: this build's, or `SLS_SYSLOG_BIN` (e.g. the static musl build that
/// is deployed, `dist/sls-syslog`).
fn bin() -> String {
    std::env::var("SLS_SYSLOG_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sls-syslog").into())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Tcp,
    Tls,
    Udp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Udp => "udp",
        }
    }
}

struct Options {
    pipeline_only: bool,
    logs: Vec<usize>,
    runs: usize,
    quick: bool,
    reference: bool,
    /// `--only TRANSPORT-BODY` (e.g. `tls-kv`): that scenario alone.
    only: Option<String>,
    /// `--shapes`: only the log-group shapes (memory bounded by bytes).
    shapes: bool,
    /// `--udp-rsyslog [RATES]`: only UDP into a default rsyslog at these rates.
    udp_rates: Option<Vec<u32>>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        pipeline_only: false,
        logs: vec![100_000, 1_000_000],
        runs: 5,
        quick: false,
        reference: true,
        only: None,
        shapes: false,
        udp_rates: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => {
                o.quick = true;
                o.logs = vec![100_000];
            }
            "--no-reference" => o.reference = false,
            "--only" => o.only = Some(args.next().ok_or("--only needs e.g. tls-kv")?),
            "--pipeline" => o.pipeline_only = true,
            "--shapes" => o.shapes = true,
            "--udp-rsyslog" => {
                o.udp_rates = Some(vec![10_000, 20_000, 30_000, 40_000, 60_000, 0]);
            }
            "--rates" => {
                let v = args.next().ok_or("--rates needs e.g. 10000,20000")?;
                o.udp_rates = Some(
                    v.split(',')
                        .map(|n| n.parse().map_err(|_| format!("--rates: {n:?}")))
                        .collect::<Result<_, _>>()?,
                );
            }
            "--logs" => {
                let v = args.next().ok_or("--logs needs a number")?;
                o.logs = v
                    .split(',')
                    .map(|n| n.parse().map_err(|_| format!("--logs: {n:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--runs" => {
                o.runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a positive number")?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(opts)) {
        eprintln!("throughput: {e}");
        std::process::exit(1);
    }
}

/// What the receiver saw.
#[derive(Default)]
struct Counts {
    frames: AtomicU64,
    bytes: AtomicU64,
    bad: AtomicU64,
}

impl Counts {
    fn reset(&self) {
        self.frames.store(0, Ordering::SeqCst);
        self.bytes.store(0, Ordering::SeqCst);
        self.bad.store(0, Ordering::SeqCst);
    }

    fn frame(&self, msg: &[u8]) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(msg.len() as u64, Ordering::Relaxed);
        // Every frame must be one whole syslog message: `<PRI>` first, valid UTF-8.
        if msg.first() != Some(&b'<') || std::str::from_utf8(msg).is_err() {
            self.bad.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Splits a TCP byte stream into frames (octet-counted or LF-terminated, per frame, as
/// rsyslog tells them apart) and counts them.
async fn count_stream<R: tokio::io::AsyncRead + Unpin>(mut r: R, counts: Arc<Counts>) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut start = 0usize;
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let rest = &buf[start..];
            if rest.is_empty() {
                break;
            }
            if rest[0].is_ascii_digit() {
                let Some(sp) = rest.iter().position(|&b| b == b' ') else {
                    break;
                };
                let Some(len) = std::str::from_utf8(&rest[..sp])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    counts.bad.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                if rest.len() < sp + 1 + len {
                    break;
                }
                counts.frame(&rest[sp + 1..sp + 1 + len]);
                start += sp + 1 + len;
            } else {
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    break;
                };
                counts.frame(&rest[..nl]);
                start += nl + 1;
            }
        }
        buf.drain(..start);
        start = 0;
    }
}

struct Receiver {
    port: u16,
    counts: Arc<Counts>,
    /// The CA file the function is given, for TLS.
    ca: Option<PathBuf>,
}

async fn start_receiver(transport: Transport, pki: &Path) -> Result<Receiver, String> {
    let counts = Arc::new(Counts::default());
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    match transport {
        Transport::Udp => {
            let sock = UdpSocket::bind(any).await.map_err(|e| e.to_string())?;
            let port = sock.local_addr().map_err(|e| e.to_string())?.port();
            let c = counts.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = sock.recv(&mut buf).await {
                    c.frame(&buf[..n]);
                }
            });
            Ok(Receiver {
                port,
                counts,
                ca: None,
            })
        }
        Transport::Tcp | Transport::Tls => {
            let listener = TcpListener::bind(any).await.map_err(|e| e.to_string())?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let acceptor = if transport == Transport::Tls {
                Some(tls_acceptor(pki)?)
            } else {
                None
            };
            let c = counts.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let c = c.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match acceptor {
                            None => count_stream(stream, c).await,
                            Some(a) => {
                                if let Ok(tls) = a.accept(stream).await {
                                    count_stream(tls, c).await;
                                }
                            }
                        }
                    });
                }
            });
            Ok(Receiver {
                port,
                counts,
                ca: (transport == Transport::Tls).then(|| pki.join("ca.pem")),
            })
        }
    }
}

/// A throw-away CA and a server certificate for 127.0.0.1, made with the `openssl` CLI.
fn make_pki(dir: &Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e} (apt-get install openssl)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bench CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ])
}

fn tls_acceptor(pki: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(pki.join("server.pem"))
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(pki.join("server.key")).map_err(|e| e.to_string())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| e.to_string())?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// CPU time of every live thread of `pid`, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Minor page faults of the whole process (field 10 of /proc/PID/stat): memory the
/// process had to be given again, each a trip into the kernel that zeroes a page.
fn minor_faults(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name may hold spaces: count fields after its closing ')'.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Function {
    child: Child,
    port: u16,
    startup: Duration,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_function(
    http: &reqwest::Client,
    env: &[(&str, String)],
    log: &Path,
) -> Result<Function, String> {
    let port = free_port()?;
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let bin = bin();
    let child = Command::new(&bin)
        .arg("serve")
        .env_clear()
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        // glibc allocator tuning (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_…), to experiment.
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_")))
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    let mut f = Function {
        child,
        port,
        startup: Duration::ZERO,
    };
    let url = format!("http://127.0.0.1:{port}/initialize");
    loop {
        if let Ok(r) = http.post(&url).send().await {
            if r.status().is_success() {
                f.startup = t0.elapsed();
                return Ok(f);
            }
        }
        if t0.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "the function did not answer (see {})",
                log.display()
            ));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn event(endpoint: &str, groups: usize) -> String {
    serde_json::json!({
        "parameter": {},
        "source": {
            "endpoint": endpoint,
            "projectName": Account::demo().project,
            "logstoreName": LOGSTORE,
            "shardId": 0,
            "beginCursor": sls_server::cursor(0),
            "endCursor": sls_server::cursor(groups as u64),
        },
        "jobName": "bench",
        "taskId": "bench",
        "cursorTime": sample::BASE_TIME,
    })
    .to_string()
}

struct Run {
    logs: u64,
    pulls: u64,
    frames: u64,
    wall: Duration,
    cpu_ns: u64,
    faults: u64,
}

async fn invoke(
    http: &reqwest::Client,
    f: &Function,
    body: &str,
    rx: &Receiver,
    expect: u64,
    exact: bool,
) -> Result<Run, String> {
    let acct = Account::demo();
    rx.counts.reset();
    let pid = f.child.id();
    let cpu0 = cpu_ns(pid);
    let faults0 = minor_faults(pid);
    let t0 = Instant::now();
    let resp = http
        .post(format!("http://127.0.0.1:{}/invoke", f.port))
        .header("x-fc-request-id", "bench")
        .header("x-fc-access-key-id", &acct.access_key_id)
        .header("x-fc-access-key-secret", &acct.access_key_secret)
        .header(
            "x-fc-security-token",
            acct.security_token.clone().unwrap_or_default(),
        )
        .header("x-fc-function-timeout", "600")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("invoke: {e}"))?;
    let wall = t0.elapsed();
    let cpu = cpu_ns(pid).saturating_sub(cpu0);
    let faults = minor_faults(pid).saturating_sub(faults0);
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("invoke failed: {status} {text}"));
    }
    let summary: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let logs = summary["logs"].as_u64().unwrap_or(0);
    if logs != expect {
        return Err(format!("shipped {logs} logs, expected {expect}"));
    }
    // Wait for the receiver to drain what is still in flight (bounded).
    let until = Instant::now() + Duration::from_secs(if exact { 30 } else { 1 });
    while rx.counts.frames.load(Ordering::SeqCst) < expect && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let frames = rx.counts.frames.load(Ordering::SeqCst);
    let bad = rx.counts.bad.load(Ordering::SeqCst);
    if bad != 0 {
        return Err(format!("the receiver saw {bad} malformed frames"));
    }
    if exact && frames != expect {
        return Err(format!(
            "the receiver got {frames} frames, expected {expect}"
        ));
    }
    Ok(Run {
        logs,
        pulls: summary["pulls"].as_u64().unwrap_or(0),
        frames,
        wall,
        cpu_ns: cpu,
        faults,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Data {
    sls: SlsServer,
    groups: usize,
}

async fn serve_data(groups: &[LogGroup]) -> Result<Data, String> {
    let sls = SlsServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Account::demo(),
        vec![(LOGSTORE.to_string(), 0, groups.to_vec())],
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Data {
        sls,
        groups: groups.len(),
    })
}

fn header() {
    println!(
        "{:<28} {:>9} {:>12} {:>12} {:>13} {:>14} {:>11} {:>10}",
        "scenario",
        "logs",
        "logs/s",
        "CPU µs/log",
        "peak RSS MiB",
        "faults/1k logs",
        "startup ms",
        "received"
    );
}

async fn run(opts: Options) -> Result<(), String> {
    let http = reqwest::Client::new();
    let tmp = std::env::temp_dir().join(format!("sls-syslog-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    // Removed however `run` ends: after --pipeline-only and after an error too.
    let _cleanup = RemoveOnDrop(tmp.clone());
    let pki = tmp.join("pki");
    std::fs::create_dir_all(&pki).map_err(|e| e.to_string())?;
    make_pki(&pki)?;

    if opts.shapes {
        return shapes(&http, &tmp, opts.runs).await;
    }
    if let Some(rates) = &opts.udp_rates {
        return udp_rsyslog(&http, &tmp, rates, opts.logs[0]).await;
    }
    pipeline(opts.runs)?;
    if opts.pipeline_only {
        return Ok(());
    }
    let max_logs = opts.logs.iter().copied().max().unwrap_or(100_000);
    eprintln!("generating {max_logs} sample logs…");
    let base = sample::groups(
        100_000usize.min(max_logs) / LOGS_PER_GROUP,
        LOGS_PER_GROUP,
        7,
    );
    let all: Vec<LogGroup> = base
        .iter()
        .cycle()
        .take(max_logs / LOGS_PER_GROUP)
        .cloned()
        .collect();

    println!(
        "sls-syslog throughput: RFC 5424, {LOGS_PER_GROUP} logs per log group, default pull sizes, \
         {} runs per scenario (medians); function = one `sls-syslog serve` process",
        opts.runs
    );
    header();
    let mut scenarios: Vec<(Transport, &str, usize)> = Vec::new();
    for &n in &opts.logs {
        if let Some(only) = &opts.only {
            let (t, body) = only.split_once('-').unwrap_or((only, "kv"));
            let t = [Transport::Tcp, Transport::Tls, Transport::Udp]
                .into_iter()
                .find(|x| x.name() == t);
            let body = ["kv", "json", "cef", "leef"]
                .into_iter()
                .find(|b| *b == body);
            let (Some(t), Some(body)) = (t, body) else {
                return Err(format!("--only {only:?}: use tcp|tls|udp-kv|json|cef|leef"));
            };
            scenarios.push((t, body, n));
        } else if opts.quick || n > 100_000 {
            scenarios.push((Transport::Tcp, "kv", n));
        } else {
            for t in [Transport::Tcp, Transport::Tls, Transport::Udp] {
                for body in ["kv", "json", "cef", "leef"] {
                    scenarios.push((t, body, n));
                }
            }
        }
    }
    for (transport, body, n) in scenarios {
        let data = serve_data(&all[..n / LOGS_PER_GROUP]).await?;
        let rx = start_receiver(transport, &pki).await?;
        let mut env = vec![
            ("SYSLOG_HOST", "127.0.0.1".to_string()),
            ("SYSLOG_PORT", rx.port.to_string()),
            ("SYSLOG_PROTOCOL", transport.name().to_string()),
            ("SYSLOG_MESSAGE_FORMAT", body.to_string()),
            ("SYSLOG_HOSTNAME", "bench-host".to_string()),
            ("SYSLOG_APP_NAME", "sls-syslog".to_string()),
        ];
        if let Some(ca) = &rx.ca {
            env.push(("SYSLOG_TLS_CA", ca.display().to_string()));
        }
        let log = tmp.join(format!("function-{}-{body}-{n}.log", transport.name()));
        let f = start_function(&http, &env, &log).await?;
        eprintln!(
            "function pid {} ({} {body} {n})",
            f.child.id(),
            transport.name()
        );
        let ev = event(&data.sls.endpoint(), data.groups);
        let mut rates = Vec::new();
        let mut cpus = Vec::new();
        let mut received = Vec::new();
        let mut faults = Vec::new();
        for _ in 0..opts.runs {
            let r = invoke(&http, &f, &ev, &rx, n as u64, transport != Transport::Udp).await?;
            rates.push(r.logs as f64 / r.wall.as_secs_f64());
            cpus.push(r.cpu_ns as f64 / 1000.0 / r.logs as f64);
            received.push(r.frames as f64 / r.logs as f64 * 100.0);
            faults.push(r.faults as f64 * 1000.0 / r.logs as f64);
        }
        let peak = status_kib(f.child.id(), "VmHWM:") as f64 / 1024.0;
        println!(
            "{:<28} {:>9} {:>12.0} {:>12.3} {:>13.1} {:>14.1} {:>11.1} {:>9.1}%",
            format!("sls-syslog {} {body}", transport.name()),
            n,
            median(rates),
            median(cpus),
            peak,
            median(faults),
            f.startup.as_secs_f64() * 1000.0,
            median(received),
        );
        drop(f);
    }

    if opts.reference {
        let n = opts.logs.iter().copied().min().unwrap_or(100_000);
        reference(&all[..n / LOGS_PER_GROUP], &tmp, &pki).await?;
    }
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CPU cost of the in-memory stages alone (decode and flatten a decompressed PullLogs
/// body of 10,000 logs, format and frame every log into one batch), per body format, on
/// this thread: no I/O, no runtime.
fn pipeline(runs: usize) -> Result<(), String> {
    use prost::Message;
    use sls_syslog::config::Settings;
    use sls_syslog::record::Body;
    use sls_syslog::syslog::fill::{fill, Framed};
    use sls_syslog::syslog::format::Origin;
    use sls_syslog::syslog::Batch;
    let body = sls_syslog::sls::proto::LogGroupList {
        log_groups: sample::groups(1000, LOGS_PER_GROUP, 7),
    }
    .encode_to_vec();
    let logs = 1000 * LOGS_PER_GROUP;
    println!(
        "in-memory stages, one thread, {logs} logs ({:.0} bytes of protobuf per log), median of {runs}:",
        body.len() as f64 / logs as f64
    );
    // The formats with default settings, and kv with the header's HOSTNAME from a tag.
    for (format, label, host_field) in [
        ("kv", "kv", None),
        ("json", "json", None),
        ("cef", "cef", None),
        ("leef", "leef", None),
        (
            "kv",
            "kv, HOSTNAME from a tag",
            Some("__tag__:__hostname__"),
        ),
    ] {
        let settings = Settings::from_lookup(|k| match k {
            "SYSLOG_HOST" => Some("127.0.0.1".into()),
            "SYSLOG_MESSAGE_FORMAT" => Some(format.into()),
            "SYSLOG_HOSTNAME" => Some("bench-host".into()),
            "SYSLOG_HOSTNAME_FIELD" => host_field.map(Into::into),
            _ => None,
        })
        .map_err(|e| e.to_string())?;
        let origin = Origin {
            project: "p",
            logstore: LOGSTORE,
            shard: 0,
            cursor: "MTUyOTQ4MDIwOTY1NTk3ODAwMA==",
        };
        let mut batch = Batch::default();
        let mut scratch = Vec::new();
        let framed = Framed {
            framing: Some(settings.framing),
            max: settings.max_message_bytes,
        };
        let mut per_log = Vec::new();
        for _ in 0..runs.max(3) {
            let t0 = Instant::now();
            batch.clear();
            let parsed = Body::parse(&body).map_err(|e| e.to_string())?;
            let filled = fill(
                &mut batch,
                &mut scratch,
                &parsed,
                &settings.formatter,
                framed,
                &origin,
                true,
            )
            .map_err(|e| e.to_string())?;
            per_log.push(t0.elapsed().as_nanos() as f64 / logs as f64);
            assert_eq!(filled.logs as usize, logs);
        }
        println!(
            "  {label:<24} {:>6.0} ns/log  ({:.0} bytes framed per log)",
            median(per_log),
            batch.buf.len() as f64 / logs as f64
        );
    }
    Ok(())
}

/// The reference Python function over the same range, to the same kind of receiver.
async fn reference(groups: &[LogGroup], tmp: &Path, pki: &Path) -> Result<(), String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::env::var("REFERENCE_DOC")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            manifest.join("../shared/reference/alibaba-doc-fc-sls-to-siem-syslog.txt")
        });
    let deps = Command::new("python3")
        .args(["-c", "import aliyun.log, pysyslogclient"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !doc.exists() || !deps {
        println!(
            "reference Python function: skipped ({}; needs {} and `pip install aliyun-log-python-sdk pysyslogclient`)",
            if doc.exists() { "Python modules missing" } else { "document not found" },
            doc.display()
        );
        return Ok(());
    }
    let data = serve_data(groups).await?;
    let rx = start_receiver(Transport::Tcp, pki).await?;
    let n = (groups.len() * LOGS_PER_GROUP) as u64;
    let ev_file = tmp.join("reference-event.json");
    std::fs::write(&ev_file, event(&data.sls.endpoint(), data.groups))
        .map_err(|e| e.to_string())?;
    let acct = Account::demo();
    let script = manifest.join("benches/reference.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(&doc)
        .arg(&ev_file)
        .env("SYSLOG_HOST", "127.0.0.1")
        .env("SYSLOG_PORT", rx.port.to_string())
        .env("SYSLOG_PROTOCOL", "tcp")
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &acct.access_key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", &acct.access_key_secret)
        .env(
            "ALIBABA_CLOUD_SECURITY_TOKEN",
            acct.security_token.clone().unwrap_or_default(),
        );
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the reference function failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let until = Instant::now() + Duration::from_secs(5);
    let mut last = u64::MAX;
    // It has no end-of-delivery signal: wait until the frame count stops moving.
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rx.counts.frames.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    let m: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .unwrap_or_default(),
    )
    .map_err(|e| format!("reference output: {e}"))?;
    let cpu_s = m["cpu_s"].as_f64().unwrap_or(0.0);
    let wall_s = m["wall_s"].as_f64().unwrap_or(0.0);
    let peak_mib = m["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    let frames = rx.counts.frames.load(Ordering::SeqCst);
    let bad = rx.counts.bad.load(Ordering::SeqCst);
    println!(
        "{:<28} {:>9} {:>12.0} {:>12.3} {:>13.1} {:>14} {:>11} {:>9.1}%",
        "reference python tcp kv",
        n,
        n as f64 / wall_s,
        cpu_s * 1e6 / n as f64,
        peak_mib,
        "-",
        "-",
        frames as f64 / n as f64 * 100.0,
    );
    println!(
        "  (reference: {frames} frames for {n} logs, {bad} not starting with `<PRI>`: it splits multi-line values into several frames)"
    );
    Ok(())
}

/// `n` log groups of `logs` sample logs each, every log with an extra `payload` field of
/// `payload` bytes of hex that compresses about as badly as real data.
fn shaped_groups(n: usize, logs: usize, payload: usize, seed: u64) -> Vec<LogGroup> {
    let mut groups = sample::groups(n, logs, seed);
    if payload > 0 {
        let mut x = seed | 1;
        for g in &mut groups {
            for l in &mut g.logs {
                let hex: String = (0..payload / 16 + 1)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect();
                l.contents.push(sls_syslog::sls::proto::Content {
                    key: bytes::Bytes::from_static(b"payload"),
                    value: bytes::Bytes::from(hex[..payload].to_string()),
                });
            }
        }
    }
    groups
}

/// Peak RSS of the function by log-group shape, at default settings, over TCP kv to the
/// counting receiver: memory must be bounded by bytes whatever the shape.
async fn shapes(http: &reqwest::Client, tmp: &Path, runs: usize) -> Result<(), String> {
    let pki = tmp.join("pki");
    println!(
        "sls-syslog memory by log-group shape: tcp kv, default settings, {runs} runs per shape (medians)"
    );
    println!(
        "{:<34} {:>9} {:>11} {:>7} {:>12} {:>13} {:>8}",
        "shape", "logs", "decoded MB", "pulls", "CPU µs/log", "peak RSS MiB", "received"
    );
    let shapes: [(&str, usize, usize, usize); 3] = [
        ("1M logs, 50 per group", 20_000, 50, 0),
        ("100 groups x 4096 logs", 100, 4096, 0),
        ("20 groups near 5 MB (4096 x 1.2 KB)", 20, 4096, 1000),
    ];
    for (name, n, logs, payload) in shapes {
        eprintln!("generating {name}…");
        let groups = shaped_groups(n, logs, payload, 11);
        let decoded: usize = groups.iter().map(prost::Message::encoded_len).sum();
        let data = serve_data(&groups).await?;
        drop(groups);
        let rx = start_receiver(Transport::Tcp, &pki).await?;
        let env = vec![
            ("SYSLOG_HOST", "127.0.0.1".to_string()),
            ("SYSLOG_PORT", rx.port.to_string()),
            ("SYSLOG_HOSTNAME", "bench-host".to_string()),
        ];
        let log = tmp.join(format!("function-shape-{n}-{logs}.log"));
        let f = start_function(http, &env, &log).await?;
        let ev = event(&data.sls.endpoint(), data.groups);
        let total = (n * logs) as u64;
        let (mut cpus, mut received) = (Vec::new(), Vec::new());
        let mut pulls = 0;
        for _ in 0..runs {
            let r = invoke(http, &f, &ev, &rx, total, true).await?;
            cpus.push(r.cpu_ns as f64 / 1000.0 / r.logs as f64);
            received.push(r.frames as f64 / r.logs as f64 * 100.0);
            pulls = r.pulls;
        }
        let peak = status_kib(f.child.id(), "VmHWM:") as f64 / 1024.0;
        println!(
            "{:<34} {:>9} {:>11.0} {:>7} {:>12.3} {:>13.1} {:>7.1}%",
            name,
            total,
            decoded as f64 / 1e6,
            pulls,
            median(cpus),
            peak,
            median(received)
        );
    }
    Ok(())
}

/// UDP into a real rsyslogd with a default `imudp` input (no tuning: the kernel's default
/// socket buffer) writing every message to a file: how many of `logs` messages it keeps at
/// each `SYSLOG_UDP_RATE` (0: unpaced). What the default rate was chosen by.
async fn udp_rsyslog(
    http: &reqwest::Client,
    tmp: &Path,
    rates: &[u32],
    logs: usize,
) -> Result<(), String> {
    let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("rsyslogd not found: apt-get install rsyslog")?;
    let groups = sample::groups(logs / LOGS_PER_GROUP, LOGS_PER_GROUP, 7);
    let data = serve_data(&groups).await?;
    let ev = event(&data.sls.endpoint(), data.groups);
    println!(
        "UDP into a default rsyslog imudp ({}), {logs} logs of ~{} bytes a message, one run per rate:",
        rsyslogd,
        groups.iter().map(prost::Message::encoded_len).sum::<usize>() / logs
    );
    println!(
        "{:>12} {:>10} {:>10} {:>10} {:>9}",
        "rate msg/s", "sent", "received", "received%", "wall s"
    );
    for &rate in rates {
        let dir = tmp.join(format!("rsyslog-{rate}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.local_addr().map_err(|e| e.to_string())?.port()
        };
        let out = dir.join("messages");
        std::fs::write(
            dir.join("rsyslog.conf"),
            format!(
                "global(workDirectory=\"{d}\")\nmodule(load=\"imudp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 *.* action(type=\"omfile\" file=\"{o}\")\n",
                d = dir.display(),
                o = out.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut daemon = Command::new(rsyslogd)
            .args(["-n", "-f"])
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("rsyslogd: {e}"))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let env = vec![
            ("SYSLOG_HOST", "127.0.0.1".to_string()),
            ("SYSLOG_PORT", port.to_string()),
            ("SYSLOG_PROTOCOL", "udp".to_string()),
            ("SYSLOG_UDP_RATE", rate.to_string()),
            ("SYSLOG_HOSTNAME", "bench-host".to_string()),
        ];
        let f = start_function(http, &env, &dir.join("function.log")).await?;
        let rx = start_receiver(Transport::Udp, &tmp.join("pki")).await?;
        let r = invoke(http, &f, &ev, &rx, logs as u64, false).await;
        // Let rsyslog write what it has, then count the lines.
        let mut last = usize::MAX;
        let mut lines = 0;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            lines = std::fs::read(&out)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0);
            if lines == last {
                break;
            }
            last = lines;
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        let r = r?;
        println!(
            "{:>12} {:>10} {:>10} {:>9.3}% {:>9.2}",
            if rate == 0 {
                "unpaced".to_string()
            } else {
                rate.to_string()
            },
            r.logs,
            lines,
            lines as f64 / r.logs as f64 * 100.0,
            r.wall.as_secs_f64()
        );
    }
    Ok(())
}
