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
//! `tests/it/syslog_ng_harness.rs`:
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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::daemon::{
    config_string, free_port, make_pki, openssl_works, poll, read_lossy, restart_on_same_ports,
    skip, start_with_free_ports, Daemon, Failure, Proto, Ready,
};

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
    daemon: Daemon,
    ports: Ports,
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
    /// When the unpacked syslog-ng or the `openssl` CLI is missing: panics with the commands
    /// that fix it, or with `SKIP_RECEIVERS=1` returns `None` after a loud SKIPPED line.
    /// Panics, with syslog-ng's stderr, when syslog-ng fails to start.
    pub fn start() -> Option<SyslogNg> {
        let install = match find_install() {
            Ok(i) => i,
            Err(why) => return skip(&skip_message(&why)),
        };
        if !openssl_works() {
            return skip(
                "syslog-ng TLS receiver needs the openssl CLI; install with: \
                 apt-get install -y openssl",
            );
        }
        let mut daemon = Daemon::new("syslog-ng", "syslog-ng", &["var", "out"]);
        daemon.add_log("internal log", internal_log_path(daemon.dir()));
        make_pki(&daemon.dir().join("pki"), false);
        let mut rx = SyslogNg {
            install,
            daemon,
            ports: Ports::default(),
        };
        start_with_free_ports("syslog-ng", || {
            rx.ports = Ports {
                tcp: free_port(Proto::Tcp),
                lf: free_port(Proto::Tcp),
                udp: free_port(Proto::Udp),
                tls: free_port(Proto::Tcp),
            };
            rx.write_config();
            rx.spawn()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Some(rx)
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
        self.daemon.dir().join("pki").join("ca.pem")
    }

    /// An unrelated CA (PEM) that signed nothing the receiver uses.
    pub fn other_ca_pem(&self) -> PathBuf {
        self.daemon.dir().join("pki").join("other-ca.pem")
    }

    /// Polls the output file until at least `n` messages have been parsed or `timeout` passes;
    /// returns all messages parsed so far, in file order. Only complete lines (ending in LF)
    /// count. Panics if a complete line is not a valid record.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<NgReceived> {
        self.daemon.wait_for(n, timeout)
    }

    /// syslog-ng's `internal()` messages so far (`out/internal.log`, one per line, e.g.
    /// `… syslog-ng[123]: Invalid frame header; header=''`), or `""` before the first one.
    pub fn internal_log(&self) -> String {
        read_lossy(&internal_log_path(self.daemon.dir()))
    }

    /// Polls [`SyslogNg::internal_log`] until it contains `needle` or `timeout` passes; returns
    /// the log either way.
    pub fn wait_for_internal_log(&self, needle: &str, timeout: Duration) -> String {
        poll(timeout, || {
            let log = self.internal_log();
            if log.contains(needle) {
                Ok(log)
            } else {
                Err(log)
            }
        })
        .unwrap_or_else(|log| log)
    }

    /// Stops syslog-ng (SIGTERM, then waits for it) and starts it again on the same ports,
    /// appending to the same output files.
    pub fn restart(&mut self) {
        self.stop();
        restart_on_same_ports("syslog-ng", || self.spawn());
    }

    /// Stops syslog-ng: SIGTERM, wait up to 10 s, then SIGKILL. Idempotent. The output files
    /// stay readable until the value is dropped.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    fn write_config(&self) {
        self.daemon.write_config(
            &CONFIG_TEMPLATE
                .replace("@VERSION@", &self.install.version)
                .replace("@DIR@", &config_string(self.daemon.dir()))
                .replace("@TCP_PORT@", &self.ports.tcp.to_string())
                .replace("@LF_PORT@", &self.ports.lf.to_string())
                .replace("@UDP_PORT@", &self.ports.udp.to_string())
                .replace("@TLS_PORT@", &self.ports.tls.to_string()),
        );
    }

    /// Spawns syslog-ng and waits until it owns all its ports. syslog-ng binds every source
    /// before it serves any, and the kernel queues connections from then on, so no probe
    /// connection is made (it would only add noise to the internal log, or a failed TLS
    /// handshake).
    fn spawn(&mut self) -> Result<(), Failure> {
        let var = self.daemon.dir().join("var");
        let mut module_path = std::ffi::OsString::from("--module-path=");
        module_path.push(&self.install.module_dir);
        let mut cmd = Command::new(&self.install.binary);
        cmd.args(["-F", "--no-caps", "-f"])
            .arg(self.daemon.config_path())
            .arg(module_path)
            .arg("-R")
            .arg(var.join("syslog-ng.persist"))
            .arg("-c")
            .arg(var.join("syslog-ng.ctl"))
            .arg("-p")
            .arg(var.join("syslog-ng.pid"))
            .env("LD_LIBRARY_PATH", &self.install.lib_dir);
        let p = self.ports;
        // syslog-ng exits when it cannot bind a port.
        let check_output = |err: &str, exited: bool| {
            (exited && err.contains("Address already in use"))
                .then(|| Failure::PortTaken(err.to_owned()))
        };
        let ready = Ready {
            tcp: &[p.tcp, p.lf, p.tls],
            udp: p.udp,
            connect: None,
            check_output: &check_output,
        };
        self.daemon.spawn(cmd, &ready)
    }
}

fn internal_log_path(dir: &Path) -> PathBuf {
    dir.join("out").join("internal.log")
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

fn skip_message(why: &str) -> String {
    let root = install_root();
    let env = if root == Path::new(DEFAULT_ROOT) {
        String::new()
    } else {
        format!("SYSLOG_NG_ROOT={} ", root.display())
    };
    format!(
        "syslog-ng receiver not available ({why}); create it as root with: \
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
