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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::daemon::{
    config_string, free_port, make_pki, openssl_works, restart_on_same_ports, skip,
    start_with_free_ports, Daemon, Failure, Proto, Ready,
};

const SKIP_MESSAGE: &str = "rsyslogd not found; install with: apt-get install -y rsyslog";
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
    daemon: Daemon,
    tcp_port: u16,
    udp_port: u16,
    /// Only for instances from [`Rsyslog::start_tls`].
    tls: Option<TlsPorts>,
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
    /// When rsyslogd is not installed: panics, or with `SKIP_RECEIVERS=1` returns `None` after
    /// a loud SKIPPED line on stderr.
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
    /// When rsyslogd, its gtls/ossl netstream driver modules or the `openssl` CLI are missing:
    /// panics, or with `SKIP_RECEIVERS=1` returns `None` after a loud SKIPPED line.
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
        let mut rx = Rsyslog {
            binary,
            daemon: Daemon::new("rsyslogd", "rsyslog", &["work", "out"]),
            tcp_port: 0,
            udp_port: 0,
            tls: None,
        };
        if tls {
            make_pki(&rx.daemon.dir().join("pki"), true);
        }
        let started = start_with_free_ports("rsyslogd", || {
            rx.tcp_port = free_port(Proto::Tcp);
            rx.udp_port = free_port(Proto::Udp);
            rx.tls = tls.then(|| TlsPorts {
                gtls: free_port(Proto::Tcp),
                ossl: free_port(Proto::Tcp),
                mtls: free_port(Proto::Tcp),
            });
            rx.write_config();
            rx.spawn()
        });
        match started {
            Ok(()) => Some(rx),
            // The module directory was not where `module_dir` looked.
            Err(e) => skip(&format!(
                "{}\n{e}",
                missing_tls_message(&["a netstream driver module"])
            )),
        }
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
        self.daemon.dir().join("pki").join(name)
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
        self.daemon.wait_for(n, timeout)
    }

    /// Stops rsyslogd (SIGTERM, then waits for it) and starts it again on the same ports (TLS
    /// ports and PKI included), appending to the same output file.
    pub fn restart(&mut self) {
        self.stop();
        restart_on_same_ports("rsyslogd", || self.spawn());
    }

    /// Stops rsyslogd: SIGTERM, wait up to 10 s, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    fn write_config(&self) {
        let tls_inputs = match self.tls {
            None => String::new(),
            Some(t) => TLS_INPUTS_TEMPLATE
                .replace("@GTLS_PORT@", &t.gtls.to_string())
                .replace("@OSSL_PORT@", &t.ossl.to_string())
                .replace("@MTLS_PORT@", &t.mtls.to_string()),
        };
        self.daemon.write_config(
            &CONFIG_TEMPLATE
                .replace("@TLS_INPUTS@", &tls_inputs)
                .replace("@DIR@", &config_string(self.daemon.dir()))
                .replace("@TCP_PORT@", &self.tcp_port.to_string())
                .replace("@UDP_PORT@", &self.udp_port.to_string()),
        );
    }

    /// Spawns rsyslogd and waits until it owns all its ports and the plain TCP port accepts
    /// connections. (The TLS ports are only checked for LISTEN state: a bare connect would make
    /// rsyslogd log a failed handshake. All imtcp listeners are set up before any serves.)
    fn spawn(&mut self) -> Result<(), Failure> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-n")
            .arg("-f")
            .arg(self.daemon.config_path())
            .arg("-i")
            .arg(self.daemon.dir().join("work").join("rsyslogd.pid"));
        let tcp = self.tcp_ports();
        let udp = self.udp_port;
        let check_output = |err: &str, exited: bool| {
            if exited {
                None
            } else if err.contains("could not load module 'lmnsd_") {
                // rsyslogd keeps running without any imtcp input.
                Some(Failure::Unavailable(err.to_owned()))
            } else if err.contains("Address already in use") || err.contains("Could not create") {
                Some(Failure::PortTaken(format!(
                    "ports tcp {tcp:?} / udp {udp}: {err}"
                )))
            } else {
                None
            }
        };
        let ready = Ready {
            tcp: &tcp,
            udp,
            connect: Some(self.tcp_port),
            check_output: &check_output,
        };
        self.daemon.spawn(cmd, &ready)
    }
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

fn missing_tls_message(missing: &[&str]) -> String {
    let rsyslog = if missing.contains(&"rsyslogd") {
        "rsyslog "
    } else {
        ""
    };
    format!(
        "TLS receiver needs {}; install with: apt-get install -y {rsyslog}{TLS_PACKAGES}",
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
