//! A real syslog-ng receiver for integration tests.
//!
//! Each [`SyslogNg`] runs its own `syslog-ng -F` (foreground) in a fresh temporary directory with
//! its own config, persist file, control socket, pid file and free 127.0.0.1 ports, one per
//! source. Every received message becomes one JSON line (`$(format-json …)`) in
//! `out/messages.jsonl`; [`SyslogNg::wait_for`] parses that file into [`NgReceived`] values.
//! syslog-ng's own `internal()` messages go to `out/internal.log` ([`SyslogNg::internal_log`]).
//!
//! | `input` | driver                                            | framing                       | port accessor          |
//! |---------|---------------------------------------------------|-------------------------------|------------------------|
//! | `tcp`   | `syslog(transport("tcp"))`                        | RFC 6587 octet counting only  | [`SyslogNg::tcp_port`] |
//! | `lf`    | `network(transport("tcp") flags(syslog-protocol))`| LF (non-transparent) only     | [`SyslogNg::lf_port`]  |
//! | `udp`   | `syslog(transport("udp"))`                        | one datagram per message      | [`SyslogNg::udp_port`] |
//! | `tls`   | `syslog(transport("tls"))`, `peer-verify(optional-untrusted)` | octet counting only | [`SyslogNg::tls_port`] |
//!
//! The TLS server certificate (`pki/server.pem`, SAN `DNS:localhost`, `IP:127.0.0.1`) is signed
//! by a fresh per-instance CA ([`SyslogNg::ca_pem`]) made with the `openssl` CLI. Clients are
//! not required to present a certificate.
//!
//! syslog-ng is not installed as a package (on Debian 12 `syslog-ng-core` conflicts with
//! rsyslog): `scripts/install-syslog-ng` (run by `.ci/run` and, as root, by `scripts/test`)
//! installs its libraries and unpacks the `.deb` into `/opt/sls-syslog-test/syslog-ng`, or into
//! `$SYSLOG_NG_ROOT` when that is set; this harness runs it from there with `LD_LIBRARY_PATH`
//! and `--module-path`. The config has no `system()`/`unix-*()` source, and `-f`, `-R`, `-c`,
//! `-p` keep everything inside the temp dir, so it never touches `/dev/log` or `/var/lib`.
//! Instances are fully independent, so tests may run in parallel.
//!
//! What syslog-ng 3.38 (Debian 12) does with the fields, verified empirically by
//! `tests/syslog_ng_harness.rs`:
//!
//! * `pri`, `facility`, `severity` and `port` are JSON **numbers** (`int()` casts); everything
//!   else is a string.
//! * `timestamp` is `${ISODATE}` with `frac-digits(6)`: always 6 fraction digits and a numeric
//!   offset. `…09.123456Z` becomes `…09.123456+00:00`, `…09Z` becomes `…09.000000+00:00`,
//!   `….5+02:00` becomes `….500000+02:00` (the sender's offset is kept, `Z` turns into `+00:00`).
//! * NILVALUE procid, msgid and structured_data are `""` (not `"-"` as in rsyslog).
//! * The single SP between STRUCTURED-DATA and MSG is a separator: `msg` does not start with it,
//!   a second SP is kept (`- -  x` gives `" x"`).
//! * A UTF-8 BOM at the start of MSG is **stripped** from `msg` (it stays in `rawmsg`); LF and
//!   UTF-8 in an octet-counted MSG are kept byte for byte. A trailing LF of a UDP datagram is
//!   stripped.
//! * `rawmsg` is the frame without the octet count / framing LF.
//! * `sd` is syslog-ng's parse of STRUCTURED-DATA (`{"id": {"param": "value"}}`), `Null` when
//!   there is none.
//! * The `syslog()` TCP and TLS sources are strict: an LF-framed frame makes syslog-ng log
//!   `Invalid frame header; header=''` and close the connection; that message and everything
//!   after it on the connection is lost. A frame larger than `log-msg-size(65536)` closes the
//!   connection too (`Incoming frame larger than log_msg_size()`); a frame of exactly 65536
//!   bytes (without the count) is accepted. (Checked here on TCP; the same for TLS is from
//!   shared/research/syslog.md §6.4.)
//! * A frame syslog-ng cannot parse as RFC 5424 (e.g. no STRUCTURED-DATA field) is not
//!   dropped: it is delivered as syslog-ng's own message with pri 43 (syslog.err), app_name
//!   `syslog-ng`, hostname `127.0.0.1`, msg `Error processing log message: <the frame, with
//!   >@< at the error position>` and `rawmsg` `""`.
//! * Not re-checked here (shared/research/syslog.md §6.4): syslog-ng cuts APP-NAME to 48,
//!   PROCID to 128 and MSGID to 32 characters, and rejects a HOSTNAME of 300 characters.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long syslog-ng may take to bind its ports.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long syslog-ng may take to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often files and sockets are polled.
const POLL: Duration = Duration::from_millis(20);
/// How many times `start` picks new ports when another process took one in the meantime.
const START_ATTEMPTS: usize = 5;

/// Where `scripts/install-syslog-ng` unpacks syslog-ng unless `$SYSLOG_NG_ROOT` says otherwise.
pub const DEFAULT_ROOT: &str = "/opt/sls-syslog-test/syslog-ng";

/// One message as syslog-ng rendered it (see the module docs for the exact forms).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NgReceived {
    /// Source: `"tcp"`, `"lf"`, `"udp"` or `"tls"`.
    pub input: String,
    /// The local port the message arrived on (`${DESTPORT}`).
    pub port: u16,
    /// Sender address (`${SOURCEIP}`), `"127.0.0.1"`.
    pub sourceip: String,
    pub pri: i64,
    pub facility: i64,
    pub severity: i64,
    /// `${ISODATE}`: `2024-03-05T07:08:09.123456+00:00` (always 6 digits and an offset).
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    /// `""` for NILVALUE.
    pub procid: String,
    /// `""` for NILVALUE.
    pub msgid: String,
    /// STRUCTURED-DATA as re-rendered by syslog-ng, `""` for NILVALUE.
    pub structured_data: String,
    /// MSG without the separating SP and without a leading BOM.
    pub msg: String,
    /// The whole frame without octet count / framing LF (BOM included).
    pub rawmsg: String,
    /// STRUCTURED-DATA as parsed by syslog-ng: `{"id": {"param": "value"}}`; `Null` when none.
    #[serde(rename = "_SDATA", default)]
    pub sd: serde_json::Value,
}

/// A running syslog-ng receiver. Dropping it stops syslog-ng and removes its directory.
pub struct SyslogNg {
    install: Install,
    dir: PathBuf,
    ports: Ports,
    child: Option<Child>,
}

/// An unpacked syslog-ng tree.
#[derive(Clone)]
struct Install {
    binary: PathBuf,
    /// `usr/lib/syslog-ng` (for `LD_LIBRARY_PATH`).
    lib_dir: PathBuf,
    /// `usr/lib/syslog-ng/<config version>` (for `--module-path`).
    module_dir: PathBuf,
    /// The config version, e.g. `3.38` (the module directory's name), for `@version:`.
    version: String,
}

#[derive(Clone, Copy, Default)]
struct Ports {
    tcp: u16,
    lf: u16,
    udp: u16,
    tls: u16,
}

impl SyslogNg {
    /// Starts syslog-ng in the foreground (`-F`) with its own config and PKI in a fresh temp dir
    /// under `std::env::temp_dir()`, listening on free 127.0.0.1 ports (see the module docs).
    ///
    /// Returns `None` (after printing a loud SKIPPED line with the commands that fix it to
    /// stderr) when the unpacked syslog-ng or the `openssl` CLI is missing and the `CI`
    /// environment variable is not set; panics when it is set. Panics, with syslog-ng's stderr,
    /// when syslog-ng fails to start.
    pub fn start() -> Option<SyslogNg> {
        let install = match find_install() {
            Ok(i) => i,
            Err(why) => return skip(&skip_message(&why)),
        };
        if !openssl_works() {
            return skip(
                "SKIPPED: syslog-ng TLS receiver needs the openssl CLI; install with: \
                 apt-get install -y openssl",
            );
        }
        let dir = fresh_dir();
        for sub in ["var", "out"] {
            fs::create_dir(dir.join(sub)).expect("create syslog-ng test subdirectory");
        }
        make_pki(&dir.join("pki"));
        let mut rx = SyslogNg {
            install,
            dir,
            ports: Ports::default(),
            child: None,
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            rx.ports = Ports {
                tcp: free_port(Proto::Tcp),
                lf: free_port(Proto::Tcp),
                udp: free_port(Proto::Udp),
                tls: free_port(Proto::Tcp),
            };
            rx.write_config();
            match rx.spawn() {
                Ok(()) => return Some(rx),
                Err(Failure::PortTaken(e)) => last_error = e,
                Err(Failure::Fatal(e)) => panic!("{e}"),
            }
        }
        panic!("syslog-ng could not bind its ports after {START_ATTEMPTS} attempts: {last_error}");
    }

    /// `syslog(transport("tcp"))`: RFC 6587 octet-counted frames only; an LF-framed frame makes
    /// syslog-ng close the connection (`Invalid frame header`).
    pub fn tcp_port(&self) -> u16 {
        self.ports.tcp
    }

    /// `network(transport("tcp") flags(syslog-protocol))`: RFC 5424 with LF framing (an LF
    /// inside MSG ends the frame).
    pub fn lf_port(&self) -> u16 {
        self.ports.lf
    }

    /// `syslog(transport("udp"))`: one RFC 5424 message per datagram.
    pub fn udp_port(&self) -> u16 {
        self.ports.udp
    }

    /// `syslog(transport("tls"))`: RFC 5425, octet-counted frames only, client certificate
    /// optional (`peer-verify(optional-untrusted)`). The server certificate is for `localhost`
    /// and `127.0.0.1`, signed by [`SyslogNg::ca_pem`].
    pub fn tls_port(&self) -> u16 {
        self.ports.tls
    }

    /// The CA (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("pki").join("ca.pem")
    }

    /// An unrelated CA (PEM) that signed nothing the receiver uses.
    pub fn other_ca_pem(&self) -> PathBuf {
        self.dir.join("pki").join("other-ca.pem")
    }

    /// Polls the output file until at least `n` messages have been parsed or `timeout` passes;
    /// returns all messages parsed so far, in file order. Only complete lines (ending in LF)
    /// count. Panics if a complete line is not a valid record.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<NgReceived> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.read_all();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            sleep(POLL);
        }
    }

    /// syslog-ng's `internal()` messages so far (`out/internal.log`, one per line, e.g.
    /// `… syslog-ng[123]: Invalid frame header; header=''`), or `""` before the first one.
    pub fn internal_log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.internal_log_path()).unwrap_or_default())
            .into_owned()
    }

    /// Polls [`SyslogNg::internal_log`] until it contains `needle` or `timeout` passes; returns
    /// the log either way.
    pub fn wait_for_internal_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.internal_log();
            if log.contains(needle) || Instant::now() >= deadline {
                return log;
            }
            sleep(POLL);
        }
    }

    /// Stops syslog-ng (SIGTERM, then waits for it) and starts it again on the same ports,
    /// appending to the same output files.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(Failure::PortTaken(_)) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(200));
                }
                Err(Failure::PortTaken(e) | Failure::Fatal(e)) => {
                    panic!("syslog-ng restart on the same ports failed: {e}")
                }
            }
        }
    }

    /// Stops syslog-ng: SIGTERM, wait up to 10 s, then SIGKILL. Idempotent. The output files
    /// stay readable until the value is dropped.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }

    fn output_path(&self) -> PathBuf {
        self.dir.join("out").join("messages.jsonl")
    }

    fn internal_log_path(&self) -> PathBuf {
        self.dir.join("out").join("internal.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.join("syslog-ng.stderr")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("syslog-ng.conf")
    }

    fn read_all(&self) -> Vec<NgReceived> {
        let bytes = match fs::read(self.output_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read {}: {e}", self.output_path().display()),
        };
        // Anything after the last LF is a line syslog-ng is still writing.
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => &bytes[..i],
            None => return Vec::new(),
        };
        complete
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(parse_line)
            .collect()
    }

    fn write_config(&self) {
        let conf = CONFIG_TEMPLATE
            .replace("@VERSION@", &self.install.version)
            .replace("@DIR@", &config_string(&self.dir))
            .replace("@TCP_PORT@", &self.ports.tcp.to_string())
            .replace("@LF_PORT@", &self.ports.lf.to_string())
            .replace("@UDP_PORT@", &self.ports.udp.to_string())
            .replace("@TLS_PORT@", &self.ports.tls.to_string());
        fs::write(self.config_path(), conf).expect("write syslog-ng.conf");
    }

    /// syslog-ng's stdout+stderr (startup errors; later messages go to `internal.log`), from
    /// byte `from` on.
    fn read_stderr(&self, from: u64) -> String {
        let bytes = fs::read(self.stderr_path()).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// Spawns syslog-ng and waits until it owns all its ports. syslog-ng binds every source
    /// before it serves any, and the kernel queues connections from then on, so no probe
    /// connection is made (it would only add noise to the internal log, or a failed TLS
    /// handshake).
    fn spawn(&mut self) -> Result<(), Failure> {
        assert!(self.child.is_none(), "syslog-ng is already running");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("open syslog-ng stderr log");
        let stderr_start = stderr.metadata().map(|m| m.len()).unwrap_or(0);
        let stdout = stderr.try_clone().expect("clone stderr log handle");
        let var = self.dir.join("var");
        let mut module_path = std::ffi::OsString::from("--module-path=");
        module_path.push(&self.install.module_dir);
        let child = Command::new(&self.install.binary)
            .args(["-F", "--no-caps", "-f"])
            .arg(self.config_path())
            .arg(module_path)
            .arg("-R")
            .arg(var.join("syslog-ng.persist"))
            .arg("-c")
            .arg(var.join("syslog-ng.ctl"))
            .arg("-p")
            .arg(var.join("syslog-ng.pid"))
            .env("LD_LIBRARY_PATH", &self.install.lib_dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.install.binary.display()));
        let pid = child.id();
        self.child = Some(child);

        let new_stderr = |me: &Self| me.read_stderr(stderr_start);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait syslog-ng") {
                self.child = None;
                let err = new_stderr(self);
                if err.contains("Address already in use") {
                    return Err(Failure::PortTaken(err));
                }
                return Err(Failure::Fatal(format!(
                    "syslog-ng exited early with {status}; stderr:\n{err}\nconfig {}:\n{}",
                    self.config_path().display(),
                    fs::read_to_string(self.config_path()).unwrap_or_default()
                )));
            }
            let p = self.ports;
            if [p.tcp, p.lf, p.tls]
                .into_iter()
                .all(|port| owns_port(pid, Proto::Tcp, port))
                && owns_port(pid, Proto::Udp, p.udp)
            {
                if udp_shared(pid, p.udp) {
                    // Another socket with SO_REUSEADDR is on the same UDP port: datagrams might
                    // go there.
                    self.stop();
                    return Err(Failure::PortTaken(format!(
                        "udp port {} is shared with another process",
                        p.udp
                    )));
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Failure::Fatal(format!(
                    "syslog-ng did not listen on 127.0.0.1 tcp {:?} / udp {} within {:?}; \
                     stderr:\n{}\ninternal log:\n{}",
                    [p.tcp, p.lf, p.tls],
                    p.udp,
                    START_TIMEOUT,
                    new_stderr(self),
                    self.internal_log()
                )));
            }
            sleep(POLL);
        }
    }
}

impl Drop for SyslogNg {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let err = self.read_stderr(0);
            if !err.trim().is_empty() {
                eprintln!("syslog-ng stderr ({}):\n{err}", self.dir.display());
            }
            let log = self.internal_log();
            if !log.trim().is_empty() {
                eprintln!("syslog-ng internal log ({}):\n{log}", self.dir.display());
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

enum Failure {
    /// Another socket took one of the ports between choosing and binding; retry with others.
    PortTaken(String),
    Fatal(String),
}

#[derive(Clone, Copy)]
enum Proto {
    Tcp,
    Udp,
}

// - `$(substr ${SOURCE} 2)` turns the source names `s_tcp`, … into `tcp`, ….
// - `int()` makes numbers; `--key .SDATA.*` adds the parsed SD as `_SDATA`.
// - `frac-digits(6)`: the default 0 would drop fractional seconds from `${ISODATE}`.
// - `dns-cache(no)` silences a startup warning about `use-dns(no)`.
// - `flags(flow-control)`: slow the senders down instead of dropping messages when the file
//   destination's queue is full.
// - `max-connections()`: the default is 10 per source, too few for parallel senders;
//   `log-iw-size()` is divided among the connections, hence raised with it.
const CONFIG_TEMPLATE: &str = r#"@version: @VERSION@
options {
  keep-hostname(yes); keep-timestamp(yes); use-dns(no); dns-cache(no); chain-hostnames(no);
  log-msg-size(65536); frac-digits(6); stats-freq(0);
};
source s_tcp {
  syslog(ip("127.0.0.1") port(@TCP_PORT@) transport("tcp") flags(store-raw-message)
         max-connections(200) log-iw-size(20000));
};
source s_lf {
  network(ip("127.0.0.1") port(@LF_PORT@) transport("tcp") flags(syslog-protocol, store-raw-message)
          max-connections(200) log-iw-size(20000));
};
source s_udp {
  syslog(ip("127.0.0.1") port(@UDP_PORT@) transport("udp") flags(store-raw-message));
};
source s_tls {
  syslog(ip("127.0.0.1") port(@TLS_PORT@) transport("tls") flags(store-raw-message)
         max-connections(200) log-iw-size(20000)
         tls(key-file("@DIR@/pki/server.key") cert-file("@DIR@/pki/server.pem")
             ca-file("@DIR@/pki/ca.pem") peer-verify(optional-untrusted)));
};
destination d_json {
  file("@DIR@/out/messages.jsonl" template("$(format-json
        input=\"$(substr ${SOURCE} 2)\" port=int(${DESTPORT}) sourceip=${SOURCEIP}
        pri=int(${PRI}) facility=int(${FACILITY_NUM}) severity=int(${SEVERITY_NUM})
        timestamp=${ISODATE} hostname=${HOST} app_name=${PROGRAM} procid=${PID} msgid=${MSGID}
        structured_data=${SDATA} msg=${MSG} rawmsg=${RAWMSG} --key .SDATA.*)\n"));
};
log { source(s_tcp); source(s_lf); source(s_udp); source(s_tls); destination(d_json); flags(flow-control); };
source s_int { internal(); };
destination d_int { file("@DIR@/out/internal.log"); };
log { source(s_int); destination(d_int); };
"#;

/// Prints a loud SKIPPED line, or panics when `CI` is set.
fn skip(message: &str) -> Option<SyslogNg> {
    if ci() {
        panic!("{message} (CI is set, so this is an error)");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "\n=== {message} ===\n");
    None
}

fn skip_message(why: &str) -> String {
    let root = install_root();
    let env = if root == Path::new(DEFAULT_ROOT) {
        String::new()
    } else {
        format!("SYSLOG_NG_ROOT={} ", root.display())
    };
    format!(
        "SKIPPED: syslog-ng receiver not available ({why}); create it as root with: \
         {env}scripts/install-syslog-ng   (= apt-get install -y --no-install-recommends \
         libivykis0 libnet1 libpcre3 libwrap0 && cd \"$(mktemp -d)\" && \
         apt-get download syslog-ng-core && dpkg-deb -x syslog-ng-core_*.deb {})",
        root.display()
    )
}

/// `$SYSLOG_NG_ROOT` if set, else [`DEFAULT_ROOT`].
fn install_root() -> PathBuf {
    std::env::var_os("SYSLOG_NG_ROOT")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from)
}

/// The unpacked syslog-ng at `$SYSLOG_NG_ROOT`, else [`DEFAULT_ROOT`], if it is complete and
/// runs (its shared libraries are installed).
fn find_install() -> Result<Install, String> {
    let root = install_root();
    let binary = root.join("usr/sbin/syslog-ng");
    if !binary.is_file() {
        return Err(format!("{} not found", binary.display()));
    }
    let lib_dir = root.join("usr/lib/syslog-ng");
    // The module directory is named after the config version (`3.38`).
    let module_dir = fs::read_dir(&lib_dir)
        .map_err(|e| format!("{}: {e}", lib_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|d| d.join("libafsocket.so").is_file())
        .ok_or_else(|| {
            format!(
                "no module directory with libafsocket.so in {}",
                lib_dir.display()
            )
        })?;
    let version = module_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let out = Command::new(&binary)
        .arg("--version")
        .env("LD_LIBRARY_PATH", &lib_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed ({}): {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Install {
        binary,
        lib_dir,
        module_dir,
        version,
    })
}

fn openssl_works() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes `dir` with a self-signed CA, a server certificate for `localhost`/`127.0.0.1` signed by
/// it, and an unrelated second CA, using the `openssl` CLI (RSA 2048, valid 365 days). The key
/// generations run in parallel.
fn make_pki(dir: &Path) {
    fs::create_dir(dir).expect("create pki directory");
    let d = dir
        .to_str()
        .unwrap_or_else(|| panic!("temp dir {} is not UTF-8", dir.display()));
    let args = |line: String| -> Vec<String> {
        line.split_whitespace()
            .map(|a| a.replace('~', " ").replace("@D@", d))
            .collect()
    };
    // `~` stands for a space inside one argument; `@D@` for the directory.
    let ca = |name: &str, cn: &str| {
        args(format!(
            "req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN={cn} \
             -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign \
             -keyout @D@/{name}.key -out @D@/{name}.pem"
        ))
    };
    run_openssl_parallel(vec![
        ca("ca", "Test~Syslog~CA"),
        ca("other-ca", "Other~Test~Syslog~CA"),
        args(
            "req -newkey rsa:2048 -nodes -subj /CN=localhost \
             -keyout @D@/server.key -out @D@/server.csr"
                .to_owned(),
        ),
    ]);
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\n",
    )
    .expect("write certificate extensions");
    run_openssl_parallel(vec![args(
        "x509 -req -in @D@/server.csr -CA @D@/ca.pem -CAkey @D@/ca.key -set_serial 2 \
         -days 365 -extfile @D@/server.ext -out @D@/server.pem"
            .to_owned(),
    )]);
    for key in ["ca.key", "other-ca.key", "server.key"] {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join(key), fs::Permissions::from_mode(0o600))
            .expect("chmod 600 private key");
    }
}

/// Runs `openssl` once per argument list, all at the same time; panics with its output if one
/// fails.
fn run_openssl_parallel(runs: Vec<Vec<String>>) {
    let children: Vec<_> = runs
        .into_iter()
        .map(|args| {
            let child = Command::new("openssl")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn openssl: {e}"));
            (args, child)
        })
        .collect();
    for (args, child) in children {
        let out = child.wait_with_output().expect("wait for openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn parse_line(line: &[u8]) -> NgReceived {
    let text = String::from_utf8_lossy(line);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("syslog-ng output line is not a valid record ({e}): {text}"))
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "sls-syslog-syslog-ng-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create {}: {e}", dir.display()),
        }
    }
}

/// A path as the body of a syslog-ng double-quoted string.
fn config_string(path: &Path) -> String {
    let s = path
        .to_str()
        .unwrap_or_else(|| panic!("temp dir {} is not UTF-8", path.display()));
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A port the OS considers free (bind to :0, then release), never handed out twice in this
/// process, so parallel tests cannot pick the same port.
fn free_port(proto: Proto) -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = match proto {
            Proto::Tcp => TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("bind 127.0.0.1:0/tcp")
                .port(),
            Proto::Udp => UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|s| s.local_addr())
                .expect("bind 127.0.0.1:0/udp")
                .port(),
        };
        let mut set = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if set.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// Socket inodes of the process (Linux `/proc`).
fn socket_inodes(pid: u32) -> HashSet<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect()
}

/// `(local port, state, inode)` of every IPv4 socket of `proto` in the network namespace.
fn proc_net(proto: Proto) -> Vec<(u16, String, String)> {
    let file = match proto {
        Proto::Tcp => "/proc/net/tcp",
        Proto::Udp => "/proc/net/udp",
    };
    let mut text = String::new();
    if File::open(file)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return Vec::new();
    }
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            Some((port, (*cols.get(3)?).to_owned(), (*cols.get(9)?).to_owned()))
        })
        .collect()
}

/// Whether process `pid` holds a listening TCP / bound UDP socket on `port`.
fn owns_port(pid: u32, proto: Proto, port: u16) -> bool {
    let mine = socket_inodes(pid);
    proc_net(proto).iter().any(|(p, state, inode)| {
        *p == port && mine.contains(inode) && (matches!(proto, Proto::Udp) || state == "0A")
    })
}

/// Whether some other process also has a UDP socket on `port` (possible with SO_REUSEADDR).
fn udp_shared(pid: u32, port: u16) -> bool {
    let mine = socket_inodes(pid);
    proc_net(Proto::Udp)
        .iter()
        .any(|(p, _, inode)| *p == port && !mine.contains(inode))
}

fn terminate(mut child: Child) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    const SIGTERM: i32 = 15;
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: plain kill(2) on our own, not yet reaped, child process.
        unsafe {
            kill(pid, SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
}
