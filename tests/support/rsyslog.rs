//! A real rsyslogd receiver for integration tests.
//!
//! Each [`Rsyslog`] runs its own `rsyslogd -n` (foreground) in a fresh temporary directory with
//! its own config, pid file, work directory and free 127.0.0.1 ports: one `imtcp` input
//! (octet-counted and LF-framed frames are autodetected per frame) and one `imudp` input. Every
//! received message becomes one JSON line in `out/messages.jsonl`; [`Rsyslog::wait_for`] parses
//! that file into [`Received`] values.
//!
//! [`Rsyslog::start_tls`] adds three RFC 5425 TLS inputs (imtcp with `streamDriver.mode="1"`) on
//! more free ports, all feeding the same output file, told apart by [`Received::input`]:
//!
//! | input      | driver         | `streamDriver.authMode` | port accessor              |
//! |------------|----------------|-------------------------|----------------------------|
//! | `tls-gtls` | gtls (GnuTLS)  | `anon`                  | [`Rsyslog::tls_gtls_port`] |
//! | `tls-ossl` | ossl (OpenSSL) | `anon`                  | [`Rsyslog::tls_ossl_port`] |
//! | `tls-mtls` | ossl (OpenSSL) | `x509/certvalid`        | [`Rsyslog::tls_mtls_port`] |
//!
//! The server certificate (`pki/server.pem`, SAN `DNS:localhost`, `IP:127.0.0.1`) is signed by a
//! fresh per-instance CA ([`Rsyslog::ca_pem`]). `tls-mtls` refuses a client without a certificate
//! signed by that CA ([`Rsyslog::client_cert`] / [`Rsyslog::client_key`] is one); the ossl driver
//! answers such a client with a TLS `certificate required` alert (TLS 1.3: after the client's
//! handshake already succeeded, so the client only sees it on its next read). gtls negotiates
//! TLS 1.2 by default, ossl TLS 1.3. [`Rsyslog::other_ca_pem`] is an unrelated CA, for "server
//! certificate does not verify" tests. The TLS inputs need the `rsyslog-gnutls`,
//! `rsyslog-openssl` and `openssl` packages; [`Rsyslog::start`] needs none of them.
//!
//! The config loads no `imuxsock`/`imklog` and rsyslogd gets `-f` and `-i`, so it never touches
//! `/dev/log`, `/etc/rsyslog.conf` or the system pid file. Instances are fully independent, so
//! tests may run in parallel.
//!
//! What rsyslog 8.2302 (Debian 12) does with the fields, verified empirically:
//!
//! * The single SP that separates STRUCTURED-DATA from MSG is a separator: `$msg` does **not**
//!   start with it. Only that one SP is removed: `... - -  x` (two spaces) gives `msg` = `" x"`.
//!   A frame that ends right after STRUCTURED-DATA (no SP, no MSG) gives `msg` = `""`.
//! * `msg` keeps LF, TAB, other control characters, a leading BOM and UTF-8 byte for byte, because
//!   the config sets `parser.escapeControlCharactersOnReceive="off"` (the default would turn LF
//!   into `#012`). A trailing LF of a UDP datagram is stripped by imudp. On an LF-framed TCP
//!   connection an LF inside MSG necessarily ends the frame (the rest becomes a junk message).
//! * `timestamp` is TIMESTAMP rendered as RFC 3339 and echoes the sender's precision and offset
//!   exactly: `2024-03-05T07:08:09.123456Z` stays `2024-03-05T07:08:09.123456Z`, `...09Z` stays
//!   `...09Z`, `.1Z` stays `.1Z`, `+02:00` stays `+02:00`.
//! * NILVALUE procid/msgid/structured_data are `"-"`; every property is a JSON string
//!   (`"pri": "165"`); `sd` is mmpstrucdata's parse of STRUCTURED-DATA (`""` when it is `-`).
//! * `rawmsg` is the frame without the octet count (and without the framing LF).
//! * Messages larger than `maxMessageSize` (64 KiB here) are truncated and the remainder is
//!   delivered as a separate bogus message.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long rsyslogd may take to bind its ports.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rsyslogd may take to exit after SIGTERM (it usually needs 1-2 s) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often files and sockets are polled.
const POLL: Duration = Duration::from_millis(20);
/// How many times `start` picks new ports when another process took one in the meantime.
const START_ATTEMPTS: usize = 5;

const SKIP_MESSAGE: &str = "SKIPPED: rsyslogd not found; install with: apt-get install -y rsyslog";
const TLS_PACKAGES: &str = "rsyslog-gnutls rsyslog-openssl openssl";

/// One message as rsyslog parsed it. Every property is the string rsyslog rendered.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    /// Input name: `"tcp"`, `"udp"`, `"tls-gtls"`, `"tls-ossl"` or `"tls-mtls"`.
    pub input: String,
    pub pri: String,
    pub facility: String,
    pub severity: String,
    pub version: String,
    /// TIMESTAMP as RFC 3339, echoing the sender's precision and offset.
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    /// STRUCTURED-DATA as sent (`"-"` when none).
    pub structured_data: String,
    /// MSG without the separating SP.
    pub msg: String,
    /// The whole frame without octet count / framing LF.
    pub rawmsg: String,
    /// STRUCTURED-DATA as parsed by mmpstrucdata: `{"id": {"param": "value"}}`, or `""` when
    /// there is none.
    #[serde(default)]
    pub sd: serde_json::Value,
}

/// A running rsyslogd receiver. Dropping it stops rsyslogd and removes its directory.
pub struct Rsyslog {
    binary: PathBuf,
    dir: PathBuf,
    tcp_port: u16,
    udp_port: u16,
    /// Only for instances from [`Rsyslog::start_tls`].
    tls: Option<TlsPorts>,
    child: Option<Child>,
}

#[derive(Clone, Copy)]
struct TlsPorts {
    gtls: u16,
    ossl: u16,
    mtls: u16,
}

impl Rsyslog {
    /// Starts rsyslogd in the foreground (`-n`) with its own config in a fresh temp dir under
    /// `std::env::temp_dir()`, listening on free 127.0.0.1 ports: TCP (imtcp, octet-counting and
    /// LF framing autodetected) and UDP (imudp).
    ///
    /// Returns `None` (after printing a loud SKIPPED line to stderr) when rsyslogd is not
    /// installed and the `CI` environment variable is not set; panics when it is set.
    /// Panics, with rsyslogd's stderr, when rsyslogd fails to start.
    pub fn start() -> Option<Rsyslog> {
        let Some(binary) = find_rsyslogd() else {
            return skip(SKIP_MESSAGE);
        };
        Rsyslog::launch(binary, false)
    }

    /// Like [`Rsyslog::start`], plus the three TLS inputs `tls-gtls`, `tls-ossl` and `tls-mtls`
    /// (see the module docs) and a fresh PKI in `pki/` made with the `openssl` CLI.
    ///
    /// Returns `None` (after a loud SKIPPED line) when rsyslogd, its gtls/ossl netstream driver
    /// modules or the `openssl` CLI are missing and `CI` is not set; panics when it is set.
    pub fn start_tls() -> Option<Rsyslog> {
        let binary = find_rsyslogd();
        let mut missing: Vec<&str> = Vec::new();
        if binary.is_none() {
            missing.push("rsyslogd");
        }
        if let Some(dir) = binary.as_deref().and_then(module_dir) {
            for (module, package) in [
                ("lmnsd_gtls.so", "rsyslog-gnutls"),
                ("lmnsd_ossl.so", "rsyslog-openssl"),
            ] {
                if !dir.join(module).is_file() {
                    missing.push(package);
                }
            }
        }
        if !openssl_works() {
            missing.push("openssl (CLI)");
        }
        match binary {
            Some(binary) if missing.is_empty() => Rsyslog::launch(binary, true),
            _ => skip(&missing_tls_message(&missing)),
        }
    }

    fn launch(binary: PathBuf, tls: bool) -> Option<Rsyslog> {
        let dir = fresh_dir();
        for sub in ["work", "out"] {
            fs::create_dir(dir.join(sub)).expect("create rsyslog test subdirectory");
        }
        let mut rx = Rsyslog {
            binary,
            dir,
            tcp_port: 0,
            udp_port: 0,
            tls: None,
            child: None,
        };
        if tls {
            make_pki(&rx.dir.join("pki"));
        }
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            rx.tcp_port = free_port(Proto::Tcp);
            rx.udp_port = free_port(Proto::Udp);
            rx.tls = tls.then(|| TlsPorts {
                gtls: free_port(Proto::Tcp),
                ossl: free_port(Proto::Tcp),
                mtls: free_port(Proto::Tcp),
            });
            rx.write_config();
            match rx.spawn() {
                Ok(()) => return Some(rx),
                Err(Failure::PortTaken(e)) => last_error = e,
                Err(Failure::MissingModule(e)) => {
                    // The module directory was not where `module_dir` looked.
                    return skip(&format!(
                        "{}\n{e}",
                        missing_tls_message(&["a netstream driver module"])
                    ));
                }
                Err(Failure::Fatal(e)) => panic!("{e}"),
            }
        }
        panic!("rsyslogd could not bind its ports after {START_ATTEMPTS} attempts: {last_error}");
    }

    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    pub fn udp_port(&self) -> u16 {
        self.udp_port
    }

    /// Port of the `tls-gtls` input (GnuTLS, no client authentication).
    /// Panics unless the instance came from [`Rsyslog::start_tls`].
    pub fn tls_gtls_port(&self) -> u16 {
        self.tls_ports().gtls
    }

    /// Port of the `tls-ossl` input (OpenSSL, no client authentication).
    /// Panics unless the instance came from [`Rsyslog::start_tls`].
    pub fn tls_ossl_port(&self) -> u16 {
        self.tls_ports().ossl
    }

    /// Port of the `tls-mtls` input (OpenSSL, `x509/certvalid`: the client must present a
    /// certificate signed by [`Rsyslog::ca_pem`], e.g. [`Rsyslog::client_cert`]).
    /// Panics unless the instance came from [`Rsyslog::start_tls`].
    pub fn tls_mtls_port(&self) -> u16 {
        self.tls_ports().mtls
    }

    /// The CA (PEM) that signed the server and client certificates.
    pub fn ca_pem(&self) -> PathBuf {
        self.pki_file("ca.pem")
    }

    /// An unrelated CA (PEM) that signed nothing the receiver uses.
    pub fn other_ca_pem(&self) -> PathBuf {
        self.pki_file("other-ca.pem")
    }

    /// Client certificate (PEM, CN `sls-syslog-client`, extendedKeyUsage clientAuth) signed by
    /// [`Rsyslog::ca_pem`]; accepted by `tls-mtls`.
    pub fn client_cert(&self) -> PathBuf {
        self.pki_file("client.pem")
    }

    /// Unencrypted PKCS#8 PEM private key (RSA 2048) of [`Rsyslog::client_cert`].
    pub fn client_key(&self) -> PathBuf {
        self.pki_file("client.key")
    }

    fn tls_ports(&self) -> TlsPorts {
        self.tls
            .expect("this Rsyslog has no TLS inputs: start it with Rsyslog::start_tls()")
    }

    fn pki_file(&self, name: &str) -> PathBuf {
        let _ = self.tls_ports();
        self.dir.join("pki").join(name)
    }

    /// Every TCP port (plain and TLS) rsyslogd must listen on.
    fn tcp_ports(&self) -> Vec<u16> {
        let mut ports = vec![self.tcp_port];
        if let Some(t) = self.tls {
            ports.extend([t.gtls, t.ossl, t.mtls]);
        }
        ports
    }

    /// Polls the output file until at least `n` messages have been parsed or `timeout` passes;
    /// returns all messages parsed so far, in file order. Only complete lines (ending in LF)
    /// count. Panics if a complete line is not a valid record.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.read_all();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            sleep(POLL);
        }
    }

    /// Stops rsyslogd (SIGTERM, then waits for it) and starts it again on the same ports (TLS
    /// ports and PKI included), appending to the same output file.
    pub fn restart(&mut self) {
        self.stop();
        // The ports are unprotected while rsyslogd is down; retry briefly in case a lingering
        // socket still holds one, then give up loudly.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(Failure::PortTaken(_)) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(200));
                }
                Err(Failure::PortTaken(e) | Failure::MissingModule(e) | Failure::Fatal(e)) => {
                    panic!("rsyslogd restart on the same ports failed: {e}")
                }
            }
        }
    }

    /// Stops rsyslogd: SIGTERM, wait up to 10 s, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }

    fn output_path(&self) -> PathBuf {
        self.dir.join("out").join("messages.jsonl")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.join("rsyslogd.stderr")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("rsyslog.conf")
    }

    fn read_all(&self) -> Vec<Received> {
        let bytes = match fs::read(self.output_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read {}: {e}", self.output_path().display()),
        };
        // Anything after the last LF is a line rsyslog is still writing.
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
        let dir = config_string(&self.dir);
        let tls_inputs = match self.tls {
            None => String::new(),
            Some(t) => TLS_INPUTS_TEMPLATE
                .replace("@GTLS_PORT@", &t.gtls.to_string())
                .replace("@OSSL_PORT@", &t.ossl.to_string())
                .replace("@MTLS_PORT@", &t.mtls.to_string()),
        };
        let conf = CONFIG_TEMPLATE
            .replace("@TLS_INPUTS@", &tls_inputs)
            .replace("@DIR@", &dir)
            .replace("@TCP_PORT@", &self.tcp_port.to_string())
            .replace("@UDP_PORT@", &self.udp_port.to_string());
        fs::write(self.config_path(), conf).expect("write rsyslog.conf");
    }

    /// rsyslogd's stdout+stderr log, from byte `from` on.
    fn read_stderr(&self, from: u64) -> String {
        let bytes = fs::read(self.stderr_path()).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// Spawns rsyslogd and waits until it owns all its ports and the plain TCP port accepts
    /// connections. (The TLS ports are only checked for LISTEN state: a bare connect would make
    /// rsyslogd log a failed handshake. All imtcp listeners are set up before any serves.)
    fn spawn(&mut self) -> Result<(), Failure> {
        assert!(self.child.is_none(), "rsyslogd is already running");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("open rsyslogd stderr log");
        let stderr_start = stderr.metadata().map(|m| m.len()).unwrap_or(0);
        let stdout = stderr.try_clone().expect("clone stderr log handle");
        let child = Command::new(&self.binary)
            .arg("-n")
            .arg("-f")
            .arg(self.config_path())
            .arg("-i")
            .arg(self.dir.join("work").join("rsyslogd.pid"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        let pid = child.id();
        self.child = Some(child);

        let new_stderr = |me: &Self| me.read_stderr(stderr_start);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait rsyslogd") {
                self.child = None;
                return Err(Failure::Fatal(format!(
                    "rsyslogd exited early with {status}; stderr:\n{}\nconfig {}:\n{}",
                    new_stderr(self),
                    self.config_path().display(),
                    fs::read_to_string(self.config_path()).unwrap_or_default()
                )));
            }
            let err = new_stderr(self);
            if err.contains("could not load module 'lmnsd_") {
                // rsyslogd keeps running without any imtcp input.
                self.stop();
                return Err(Failure::MissingModule(err));
            }
            if err.contains("Address already in use") || err.contains("Could not create") {
                self.stop();
                return Err(Failure::PortTaken(format!(
                    "ports tcp {:?} / udp {}: {err}",
                    self.tcp_ports(),
                    self.udp_port
                )));
            }
            if self
                .tcp_ports()
                .into_iter()
                .all(|port| owns_port(pid, Proto::Tcp, port))
                && owns_port(pid, Proto::Udp, self.udp_port)
                && TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, self.tcp_port)),
                    Duration::from_secs(1),
                )
                .is_ok()
            {
                if udp_shared(pid, self.udp_port) {
                    // Another socket with SO_REUSEADDR (e.g. another rsyslogd) is on the same UDP
                    // port: datagrams might go there.
                    self.stop();
                    return Err(Failure::PortTaken(format!(
                        "udp port {} is shared with another process",
                        self.udp_port
                    )));
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Failure::Fatal(format!(
                    "rsyslogd did not listen on 127.0.0.1 tcp {:?} / udp {} within {:?}; stderr:\n{}",
                    self.tcp_ports(),
                    self.udp_port,
                    START_TIMEOUT,
                    new_stderr(self)
                )));
            }
            sleep(POLL);
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let err = self.read_stderr(0);
            if !err.trim().is_empty() {
                eprintln!("rsyslogd stderr ({}):\n{err}", self.dir.display());
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

enum Failure {
    /// Another socket took one of the ports between choosing and binding; retry with others.
    PortTaken(String),
    /// A netstream driver module (`lmnsd_gtls` / `lmnsd_ossl`) is not installed.
    MissingModule(String),
    Fatal(String),
}

#[derive(Clone, Copy)]
enum Proto {
    Tcp,
    Udp,
}

// Everything is a string (`set $!out!x = $prop` plus `property(name="$!out")`): list templates
// with `datatype="number"` produce invalid JSON for PRI `invld`, and `$timereported` assigned
// directly gives the RFC 3164 form, hence `exec_template`. The named ruleset keeps rsyslogd's
// own internal messages (which go to the default ruleset, which has no actions) out of the file.
const CONFIG_TEMPLATE: &str = r#"global(
  workDirectory="@DIR@/work"
  maxMessageSize="64k"
  parser.escapeControlCharactersOnReceive="off"
  net.enableDNS="off"
)
module(load="imudp")
module(load="imtcp" maxSessions="200")
module(load="mmpstrucdata")

input(type="imudp" address="127.0.0.1" port="@UDP_PORT@" ruleset="capture" name="udp")
input(type="imtcp" address="127.0.0.1" port="@TCP_PORT@" ruleset="capture" name="tcp")
@TLS_INPUTS@
template(name="ts3339" type="string" string="%timereported:::date-rfc3339%")
template(name="jsonline" type="list") { property(name="$!out") constant(value="\n") }

ruleset(name="capture") {
  action(type="mmpstrucdata" sd_name.lowercase="off")
  set $!out!input = $inputname;
  set $!out!pri = $pri;
  set $!out!facility = $syslogfacility;
  set $!out!severity = $syslogseverity;
  set $!out!version = $protocol-version;
  set $!out!timestamp = exec_template("ts3339");
  set $!out!hostname = $hostname;
  set $!out!app_name = $app-name;
  set $!out!procid = $procid;
  set $!out!msgid = $msgid;
  set $!out!structured_data = $structured-data;
  set $!out!sd = $!rfc5424-sd;
  set $!out!msg = $msg;
  set $!out!rawmsg = $rawmsg;
  action(type="omfile" file="@DIR@/out/messages.jsonl" template="jsonline")
}
"#;

// Per-input `streamDriver.*` parameters (two drivers in one rsyslogd) work in 8.2302. gtls also
// refuses a client without a certificate under `x509/certvalid`, but silently (no alert).
const TLS_INPUTS_TEMPLATE: &str = r#"input(type="imtcp" address="127.0.0.1" port="@GTLS_PORT@" ruleset="capture" name="tls-gtls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile="@DIR@/pki/ca.pem" streamDriver.CertFile="@DIR@/pki/server.pem"
      streamDriver.KeyFile="@DIR@/pki/server.key")
input(type="imtcp" address="127.0.0.1" port="@OSSL_PORT@" ruleset="capture" name="tls-ossl"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile="@DIR@/pki/ca.pem" streamDriver.CertFile="@DIR@/pki/server.pem"
      streamDriver.KeyFile="@DIR@/pki/server.key")
input(type="imtcp" address="127.0.0.1" port="@MTLS_PORT@" ruleset="capture" name="tls-mtls"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid"
      streamDriver.CAFile="@DIR@/pki/ca.pem" streamDriver.CertFile="@DIR@/pki/server.pem"
      streamDriver.KeyFile="@DIR@/pki/server.key")
"#;

/// Prints a loud SKIPPED line, or panics when `CI` is set.
fn skip(message: &str) -> Option<Rsyslog> {
    if ci() {
        panic!("{message} (CI is set, so this is an error)");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "\n=== {message} ===\n");
    None
}

fn missing_tls_message(missing: &[&str]) -> String {
    let rsyslog = if missing.contains(&"rsyslogd") {
        "rsyslog "
    } else {
        ""
    };
    format!(
        "SKIPPED: TLS receiver needs {}; install with: apt-get install -y {rsyslog}{TLS_PACKAGES}",
        missing.join(", ")
    )
}

/// Where rsyslogd loads its modules from, if it can be found: the directory holding
/// `lmnsd_ptcp.so` (part of the rsyslog package) among the usual places.
fn module_dir(binary: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(prefix) = binary.parent().and_then(Path::parent) {
        candidates.push(prefix.join("lib").join("rsyslog"));
        candidates.push(prefix.join("lib64").join("rsyslog"));
    }
    // Debian puts them in /usr/lib/<multiarch triplet>/rsyslog.
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        candidates.extend(entries.flatten().map(|e| e.path().join("rsyslog")));
    }
    candidates.extend(
        [
            "/usr/lib/rsyslog",
            "/usr/lib64/rsyslog",
            "/usr/local/lib/rsyslog",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|d| d.join("lmnsd_ptcp.so").is_file())
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

/// Makes `dir` with a self-signed CA, a server certificate for `localhost`/`127.0.0.1` and a
/// client certificate, both signed by it, and an unrelated second CA, using the `openssl` CLI
/// (RSA 2048, valid 365 days). The key generations run in parallel, then the two signings.
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
    let csr = |name: &str, cn: &str| {
        args(format!(
            "req -newkey rsa:2048 -nodes -subj /CN={cn} -keyout @D@/{name}.key -out @D@/{name}.csr"
        ))
    };
    // Explicit serials: two parallel `-CAcreateserial` runs would race on ca.srl.
    let sign = |name: &str, serial: u32, ext: &str| {
        fs::write(dir.join(format!("{name}.ext")), ext).expect("write certificate extensions");
        args(format!(
            "x509 -req -in @D@/{name}.csr -CA @D@/ca.pem -CAkey @D@/ca.key -set_serial {serial} \
             -days 365 -extfile @D@/{name}.ext -out @D@/{name}.pem"
        ))
    };
    run_openssl_parallel(vec![
        ca("ca", "Test~Syslog~CA"),
        ca("other-ca", "Other~Test~Syslog~CA"),
        csr("server", "localhost"),
        csr("client", "sls-syslog-client"),
    ]);
    run_openssl_parallel(vec![
        sign(
            "server",
            2,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\n",
        ),
        sign(
            "client",
            3,
            "extendedKeyUsage=clientAuth\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\n",
        ),
    ]);
    for key in ["ca.key", "other-ca.key", "server.key", "client.key"] {
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

fn parse_line(line: &[u8]) -> Received {
    // rsyslog may emit invalid UTF-8 (e.g. for a 7-digit TIME-SECFRAC); keep the line usable.
    let text = String::from_utf8_lossy(line);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("rsyslog output line is not a valid record ({e}): {text}"))
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `$RSYSLOGD` if set, else `rsyslogd` on `PATH`, else `/usr/sbin`, `/sbin` (often not on a
/// non-root user's `PATH`).
fn find_rsyslogd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RSYSLOGD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file())
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
            "sls-syslog-rsyslog-{}-{}-{nanos}",
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

/// A path as a RainerScript string body.
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
    if !Path::new("/proc/net/tcp").exists() {
        // Not Linux: fall back to the TCP connect check alone.
        return true;
    }
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
