//! The mechanics shared by the real-receiver harnesses ([`super::rsyslog`], [`super::syslog_ng`]):
//! a [`Daemon`] runs one receiver process in a fresh temporary directory, knows when it listens
//! (via Linux `/proc`: its own TCP/UDP sockets), stops it (SIGTERM, wait, SIGKILL), polls its
//! JSON-lines output, dumps its logs when a test panics and removes the directory on drop.
//! Around it: free ports that are never handed out twice, the "fail unless `SKIP_RECEIVERS`" rule and a
//! throw-away PKI made with the `openssl` CLI.
//!
//! Directory layout, for a daemon with program name `P` and tag `T` (e.g. `rsyslogd` /
//! `rsyslog`): `$TMPDIR/sls-syslog-T-<pid>-<n>-<nanos>/` holding `T.conf` (written by the
//! harness), `P.stderr` (the process's stdout and stderr, appended across restarts) and
//! `out/messages.jsonl` (one JSON record per received message).
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

/// How long a daemon may take to bind its ports.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after SIGTERM (rsyslogd usually needs 1-2 s) before
/// SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often files and sockets are polled.
pub const POLL: Duration = Duration::from_millis(20);
/// How many times a fresh start picks new ports when another process took one meanwhile.
pub const START_ATTEMPTS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Why a start attempt failed.
pub enum Failure {
    /// Another socket took one of the ports between choosing and binding; retry with others.
    PortTaken(String),
    /// Something the harness recognised in the daemon's output that means "not installed"
    /// (e.g. a missing rsyslog module): skip rather than fail.
    Unavailable(String),
    Fatal(String),
}

/// What [`Daemon::spawn`] waits for before the start counts as done.
pub struct Ready<'a> {
    /// TCP ports the process must have in LISTEN state.
    pub tcp: &'a [u16],
    /// The UDP port the process must have bound, and share with no other process.
    pub udp: u16,
    /// When set, a TCP connection to this port must succeed too.
    pub connect: Option<u16>,
    /// Looks at the process's output since this spawn on every poll, with whether it has exited;
    /// a `Some` fails the attempt (the process is stopped first). On exit, `None` gives
    /// [`Failure::Fatal`] with the output and the config.
    pub check_output: &'a dyn Fn(&str, bool) -> Option<Failure>,
}

/// One receiver process and its temporary directory. Dropping it stops the process, prints its
/// logs if the thread is panicking, and removes the directory.
pub struct Daemon {
    /// Program name for messages and the stderr log (`rsyslogd`, `syslog-ng`).
    program: &'static str,
    /// Directory and config name (`rsyslog`, `syslog-ng`).
    tag: &'static str,
    dir: PathBuf,
    /// Further logs to print on panic and in start timeouts: `(label, path)`.
    logs: Vec<(&'static str, PathBuf)>,
    child: Option<Child>,
}

impl Daemon {
    /// A fresh directory `sls-syslog-<tag>-…` under `std::env::temp_dir()` with the
    /// subdirectories `subdirs`; nothing runs yet.
    pub fn new(program: &'static str, tag: &'static str, subdirs: &[&str]) -> Daemon {
        let daemon = Daemon {
            program,
            tag,
            dir: fresh_dir(tag),
            logs: Vec::new(),
            child: None,
        };
        for sub in subdirs {
            fs::create_dir(daemon.dir.join(sub))
                .unwrap_or_else(|e| panic!("create {tag} test subdirectory: {e}"));
        }
        daemon
    }

    /// Also prints the file at `path` (as `<program> <label> (<dir>)`) when a test panics, and
    /// appends it (as `<label>:`) to a start timeout's message.
    pub fn add_log(&mut self, label: &'static str, path: PathBuf) {
        self.logs.push((label, path));
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<tag>.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(format!("{}.conf", self.tag))
    }

    /// Writes `<dir>/<tag>.conf`.
    pub fn write_config(&self, conf: &str) {
        fs::write(self.config_path(), conf)
            .unwrap_or_else(|e| panic!("write {}.conf: {e}", self.tag));
    }

    /// `<dir>/out/messages.jsonl`.
    pub fn output_path(&self) -> PathBuf {
        self.dir.join("out").join("messages.jsonl")
    }

    /// `<dir>/<program>.stderr`.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.join(format!("{}.stderr", self.program))
    }

    /// The process's stdout+stderr log, from byte `from` on.
    pub fn read_stderr(&self, from: u64) -> String {
        let bytes = fs::read(self.stderr_path()).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// Polls the output file until at least `n` records have been parsed or `timeout` passes;
    /// returns all records parsed so far, in file order. Only complete lines (ending in LF)
    /// count. Panics if a complete line is not a valid `T`.
    pub fn wait_for<T: DeserializeOwned>(&self, n: usize, timeout: Duration) -> Vec<T> {
        poll(timeout, || {
            let got = self.read_all();
            if got.len() >= n {
                Ok(got)
            } else {
                Err(got)
            }
        })
        .unwrap_or_else(|got| got)
    }

    fn read_all<T: DeserializeOwned>(&self) -> Vec<T> {
        let path = self.output_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read {}: {e}", path.display()),
        };
        // Anything after the last LF is a line the daemon is still writing.
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => &bytes[..i],
            None => return Vec::new(),
        };
        complete
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| {
                // rsyslog may emit invalid UTF-8 (e.g. for a 7-digit TIME-SECFRAC); keep the
                // line usable.
                let text = String::from_utf8_lossy(line);
                serde_json::from_str(&text).unwrap_or_else(|e| {
                    panic!(
                        "{} output line is not a valid record ({e}): {text}",
                        self.tag
                    )
                })
            })
            .collect()
    }

    /// Runs `cmd` in the directory (stdin closed, stdout and stderr appended to
    /// [`Daemon::stderr_path`]) and waits up to [`START_TIMEOUT`] until it is [`Ready`].
    /// On any failure the process is stopped (or has exited).
    pub fn spawn(&mut self, mut cmd: Command, ready: &Ready) -> Result<(), Failure> {
        let program = self.program;
        assert!(self.child.is_none(), "{program} is already running");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .unwrap_or_else(|e| panic!("open {program} stderr log: {e}"));
        let stderr_start = stderr.metadata().map(|m| m.len()).unwrap_or(0);
        let stdout = stderr.try_clone().expect("clone stderr log handle");
        let child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", Path::new(cmd.get_program()).display()));
        let pid = child.id();
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait() {
                let err = self.read_stderr(stderr_start);
                return Err((ready.check_output)(&err, true)
                    .unwrap_or_else(|| self.exited_early(status, &err)));
            }
            let err = self.read_stderr(stderr_start);
            if let Some(failure) = (ready.check_output)(&err, false) {
                self.stop();
                return Err(failure);
            }
            if listens(pid, ready) {
                if udp_shared(pid, ready.udp) {
                    // Another socket with SO_REUSEADDR (e.g. another receiver) is on the same UDP
                    // port: datagrams might go there.
                    self.stop();
                    return Err(Failure::PortTaken(format!(
                        "udp port {} is shared with another process",
                        ready.udp
                    )));
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                let mut message = format!(
                    "{program} did not listen on 127.0.0.1 tcp {:?} / udp {} within {:?}; \
                     stderr:\n{}",
                    ready.tcp,
                    ready.udp,
                    START_TIMEOUT,
                    self.read_stderr(stderr_start)
                );
                for (label, path) in &self.logs {
                    message.push_str(&format!("\n{label}:\n{}", read_lossy(path)));
                }
                return Err(Failure::Fatal(message));
            }
            sleep(POLL);
        }
    }

    fn exited_early(&self, status: ExitStatus, err: &str) -> Failure {
        Failure::Fatal(format!(
            "{} exited early with {status}; stderr:\n{err}\nconfig {}:\n{}",
            self.program,
            self.config_path().display(),
            fs::read_to_string(self.config_path()).unwrap_or_default()
        ))
    }

    /// The exit status once the process has exited (then it is forgotten); `None` while it runs.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("child");
        let status = child
            .try_wait()
            .unwrap_or_else(|e| panic!("try_wait {}: {e}", self.program))?;
        self.child = None;
        Some(status)
    }

    /// Stops the process: SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let dir = self.dir.display();
            let err = self.read_stderr(0);
            if !err.trim().is_empty() {
                eprintln!("{} stderr ({dir}):\n{err}", self.program);
            }
            for (label, path) in &self.logs {
                let log = read_lossy(path);
                if !log.trim().is_empty() {
                    eprintln!("{} {label} ({dir}):\n{log}", self.program);
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs `attempt` (pick ports, write the config, [`Daemon::spawn`]) until it succeeds, at most
/// [`START_ATTEMPTS`] times while it fails with [`Failure::PortTaken`]. Returns the message of
/// a [`Failure::Unavailable`]; panics on [`Failure::Fatal`] and when the attempts run out.
pub fn start_with_free_ports(
    program: &str,
    mut attempt: impl FnMut() -> Result<(), Failure>,
) -> Result<(), String> {
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS {
        match attempt() {
            Ok(()) => return Ok(()),
            Err(Failure::PortTaken(e)) => last_error = e,
            Err(Failure::Unavailable(e)) => return Err(e),
            Err(Failure::Fatal(e)) => panic!("{e}"),
        }
    }
    panic!("{program} could not bind its ports after {START_ATTEMPTS} attempts: {last_error}");
}

/// Runs `spawn` again on the same ports until it succeeds. The ports are unprotected while the
/// daemon is down; this retries for up to [`START_TIMEOUT`] in case a lingering socket still
/// holds one, then panics.
pub fn restart_on_same_ports(program: &str, mut spawn: impl FnMut() -> Result<(), Failure>) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match spawn() {
            Ok(()) => return,
            Err(Failure::PortTaken(_)) if Instant::now() < deadline => {
                sleep(Duration::from_millis(200));
            }
            Err(Failure::PortTaken(e) | Failure::Unavailable(e) | Failure::Fatal(e)) => {
                panic!("{program} restart on the same ports failed: {e}")
            }
        }
    }
}

/// Calls `attempt` every [`POLL`] until it returns `Ok` or `timeout` has passed (it is always
/// called at least once, and once more at the deadline); returns its last result.
pub fn poll<T, E>(timeout: Duration, mut attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        let result = attempt();
        if result.is_ok() || Instant::now() >= deadline {
            return result;
        }
        sleep(POLL);
    }
}

/// A file's text (lossy UTF-8), `""` when it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

/// For a receiver that is not installed: a failure, unless the run opted out of the real
/// receivers with `SKIP_RECEIVERS=1`; then `None` after a loud `=== SKIPPED … ===` on stderr.
/// A test that finds no receiver must not pass as if it had delivered to one.
pub fn skip<T>(message: &str) -> Option<T> {
    if !skipping_receivers() {
        panic!("{message} (or run with SKIP_RECEIVERS=1 to skip the tests that need it)");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n=== SKIPPED (SKIP_RECEIVERS=1): {message} ===\n"
    );
    None
}

/// Whether `SKIP_RECEIVERS` is set to something other than `""`, `0` or `false`.
pub fn skipping_receivers() -> bool {
    std::env::var("SKIP_RECEIVERS").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A new, empty `sls-syslog-<tag>-<pid>-<n>-<nanos>` under `std::env::temp_dir()`.
pub fn fresh_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "sls-syslog-{tag}-{}-{}-{nanos}",
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

/// A path as the body of a double-quoted config string (RainerScript and syslog-ng alike).
pub fn config_string(path: &Path) -> String {
    let s = path
        .to_str()
        .unwrap_or_else(|| panic!("temp dir {} is not UTF-8", path.display()));
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A port the OS considers free (bind to :0, then release), never handed out twice in this
/// process, so parallel tests cannot pick the same port.
pub fn free_port(proto: Proto) -> u16 {
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

/// Whether process `pid` is [`Ready`] as far as its sockets go.
fn listens(pid: u32, ready: &Ready) -> bool {
    ready
        .tcp
        .iter()
        .all(|&port| owns_port(pid, Proto::Tcp, port))
        && owns_port(pid, Proto::Udp, ready.udp)
        && ready.connect.is_none_or(|port| {
            TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                Duration::from_secs(1),
            )
            .is_ok()
        })
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
pub fn owns_port(pid: u32, proto: Proto, port: u16) -> bool {
    if !Path::new("/proc/net/tcp").exists() {
        // Not Linux: fall back to the other checks (e.g. a TCP connect) alone.
        return true;
    }
    let mine = socket_inodes(pid);
    proc_net(proto).iter().any(|(p, state, inode)| {
        *p == port && mine.contains(inode) && (proto == Proto::Udp || state == "0A")
    })
}

/// Whether some other process also has a UDP socket on `port` (possible with SO_REUSEADDR).
pub fn udp_shared(pid: u32, port: u16) -> bool {
    let mine = socket_inodes(pid);
    proc_net(Proto::Udp)
        .iter()
        .any(|(p, _, inode)| *p == port && !mine.contains(inode))
}

/// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL.
pub fn terminate(mut child: Child) {
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
    let exited = poll(STOP_TIMEOUT, || match child.try_wait() {
        Ok(None) => Err(()),
        _ => Ok(()),
    });
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Whether the `openssl` CLI runs.
pub fn openssl_works() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes `dir` with a self-signed CA (`ca.pem`/`ca.key`), a server certificate for
/// `localhost`/`127.0.0.1` signed by it (`server.pem`/`server.key`), with `with_client` a client
/// certificate (CN `sls-syslog-client`, clientAuth) signed by it too (`client.pem`/`client.key`),
/// and an unrelated second CA (`other-ca.pem`/`other-ca.key`), using the `openssl` CLI (RSA 2048,
/// valid 365 days, keys unencrypted PKCS#8, mode 600). The key generations run in parallel,
/// then the signings.
pub fn make_pki(dir: &Path, with_client: bool) {
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
    let mut keys = vec![
        ca("ca", "Test~Syslog~CA"),
        ca("other-ca", "Other~Test~Syslog~CA"),
        csr("server", "localhost"),
    ];
    if with_client {
        keys.push(csr("client", "sls-syslog-client"));
    }
    run_openssl_parallel(keys);
    let mut signings = vec![sign(
        "server",
        2,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\n",
    )];
    if with_client {
        signings.push(sign(
            "client",
            3,
            "extendedKeyUsage=clientAuth\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\n",
        ));
    }
    run_openssl_parallel(signings);
    let mut private = vec!["ca.key", "other-ca.key", "server.key"];
    if with_client {
        private.push("client.key");
    }
    for key in private {
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
