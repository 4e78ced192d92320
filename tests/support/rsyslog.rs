//! A real rsyslogd receiver for integration tests.
//!
//! Each [`Rsyslog`] runs its own `rsyslogd -n` (foreground) in a fresh temporary directory with
//! its own config, pid file, work directory and free 127.0.0.1 ports: one `imtcp` input
//! (octet-counted and LF-framed frames are autodetected per frame) and one `imudp` input. Every
//! received message becomes one JSON line in `out/messages.jsonl`; [`Rsyslog::wait_for`] parses
//! that file into [`Received`] values.
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

/// One message as rsyslog parsed it. Every property is the string rsyslog rendered.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    /// Input name: `"tcp"` or `"udp"`.
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
    child: Option<Child>,
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
            if ci() {
                panic!("{SKIP_MESSAGE} (CI is set, so this is an error)");
            }
            // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
            let _ = writeln!(std::io::stderr(), "\n=== {SKIP_MESSAGE} ===\n");
            return None;
        };
        let dir = fresh_dir();
        for sub in ["work", "out"] {
            fs::create_dir(dir.join(sub)).expect("create rsyslog test subdirectory");
        }
        let mut rx = Rsyslog {
            binary,
            dir,
            tcp_port: 0,
            udp_port: 0,
            child: None,
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            rx.tcp_port = free_port(Proto::Tcp);
            rx.udp_port = free_port(Proto::Udp);
            rx.write_config();
            match rx.spawn() {
                Ok(()) => return Some(rx),
                Err(Failure::PortTaken(e)) => last_error = e,
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

    /// Stops rsyslogd (SIGTERM, then waits for it) and starts it again on the same ports,
    /// appending to the same output file.
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
                Err(Failure::PortTaken(e) | Failure::Fatal(e)) => {
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
        let conf = CONFIG_TEMPLATE
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

    /// Spawns rsyslogd and waits until it owns both ports and the TCP port accepts connections.
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
            if err.contains("Address already in use") || err.contains("Could not create") {
                self.stop();
                return Err(Failure::PortTaken(format!(
                    "ports tcp {} / udp {}: {err}",
                    self.tcp_port, self.udp_port
                )));
            }
            if owns_port(pid, Proto::Tcp, self.tcp_port)
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
                    "rsyslogd did not listen on 127.0.0.1 tcp {} / udp {} within {:?}; stderr:\n{}",
                    self.tcp_port,
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
