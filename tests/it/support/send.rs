//! Std-only senders for the receiver harness self-tests (`tests/it/*_harness.rs`): they talk to
//! the receivers without any project code.
#![allow(dead_code)]

use std::fmt::{Debug, Display};
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::poll;
use super::rsyslog::Rsyslog;
use super::syslog_ng::SyslogNg;

/// How long a self-test waits for a message, and [`s_client`] for its session.
pub const WAIT: Duration = Duration::from_secs(10);

/// An RFC 6587 octet-counted frame: `MSG-LEN SP SYSLOG-MSG`, length in bytes.
pub fn octet_counted(msg: &str) -> Vec<u8> {
    let mut frame = format!("{} ", msg.len()).into_bytes();
    frame.extend_from_slice(msg.as_bytes());
    frame
}

/// A TCP connection to 127.0.0.1:`port`; panics if it cannot be made.
pub fn connect(port: u16) -> TcpStream {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}/tcp: {e}"))
}

/// Sends `datagram` to 127.0.0.1:`port` over UDP from a fresh socket.
pub fn send_udp(port: u16, datagram: &str) {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
    sock.send_to(datagram.as_bytes(), (Ipv4Addr::LOCALHOST, port))
        .expect("send udp");
}

/// Sends `frame` over TLS to 127.0.0.1:`port` with the `openssl s_client` CLI, verifying the
/// server certificate against `ca` for the name `localhost`, optionally presenting a client
/// certificate `(cert, key)`. Kills s_client after [`WAIT`]. Returns whether
/// s_client succeeded, and its output.
pub fn s_client(
    port: u16,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    frame: &[u8],
) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(ca)
        .args(["-verify_hostname", "localhost", "-verify_return_error"])
        // `-quiet` implies `-ign_eof`; `-no_ign_eof` makes s_client exit at the end of stdin.
        .args(["-quiet", "-no_ign_eof"]);
    if let Some((cert, key)) = client {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client");
    // Closing stdin (dropping it) ends the session.
    child
        .stdin
        .take()
        .expect("s_client stdin")
        .write_all(frame)
        .expect("write to s_client");
    let exited = poll(WAIT, || {
        match child.try_wait().expect("try_wait s_client") {
            Some(_) => Ok(()),
            None => Err(()),
        }
    });
    if exited.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait for s_client");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The first of `got` that `matches`; panics with all of `got` (`no message from <what>`) if
/// there is none.
pub fn find<T: Debug>(got: &[T], what: impl Display, matches: impl Fn(&T) -> bool) -> &T {
    got.iter()
        .find(|r| matches(r))
        .unwrap_or_else(|| panic!("no message from {what} in {got:#?}"))
}

/// What the scenarios below need of a receiver harness.
pub trait Receiver {
    /// The daemon's name, for messages.
    const NAME: &'static str;
    /// The octet-counting TCP port.
    fn tcp(&self) -> u16;
    fn udp(&self) -> u16;
    /// Every TCP port the receiver listens on.
    fn tcp_ports(&self) -> Vec<u16>;
    /// `msg` of every message received so far, after waiting as `wait_for` does.
    fn msgs(&self, n: usize, timeout: Duration) -> Vec<String>;
    fn restart(&mut self);
    fn stop(&mut self);
}

/// `impl Receiver for $ty` by delegating to its inherent methods of the same names.
macro_rules! impl_receiver {
    ($ty:ty, $name:literal, |$rx:ident| $tcp_ports:expr) => {
        impl Receiver for $ty {
            const NAME: &'static str = $name;
            fn tcp(&self) -> u16 {
                self.tcp_port()
            }
            fn udp(&self) -> u16 {
                self.udp_port()
            }
            fn tcp_ports(&self) -> Vec<u16> {
                let $rx = self;
                $tcp_ports
            }
            fn msgs(&self, n: usize, timeout: Duration) -> Vec<String> {
                self.wait_for(n, timeout)
                    .into_iter()
                    .map(|r| r.msg)
                    .collect()
            }
            fn restart(&mut self) {
                <$ty>::restart(self);
            }
            fn stop(&mut self) {
                <$ty>::stop(self);
            }
        }
    };
}

impl_receiver!(Rsyslog, "rsyslogd", |rx| vec![rx.tcp_port()]);
impl_receiver!(SyslogNg, "syslog-ng", |rx| vec![
    rx.tcp_port(),
    rx.lf_port(),
    rx.tls_port()
]);

/// A message before `restart()`, a TCP and a UDP message after it on the same ports, all in
/// the same output; after `stop()` nothing listens and the output is still readable. Returns
/// how long the restart and the stop took.
pub fn check_restart_keeps_ports_and_output<R: Receiver>(rx: &mut R) -> (Duration, Duration) {
    let ports = (rx.tcp_ports(), rx.udp());
    connect(rx.tcp())
        .write_all(&octet_counted(
            "<14>1 2024-03-05T07:08:09Z h - - - - before",
        ))
        .unwrap();
    assert_eq!(rx.msgs(1, WAIT).len(), 1);

    let t = Instant::now();
    rx.restart();
    let restarted = t.elapsed();
    assert_eq!((rx.tcp_ports(), rx.udp()), ports);
    connect(rx.tcp())
        .write_all(&octet_counted(
            "<14>1 2024-03-05T07:08:09Z h - - - - after tcp",
        ))
        .unwrap();
    assert_eq!(rx.msgs(2, WAIT).len(), 2);
    send_udp(rx.udp(), "<14>1 2024-03-05T07:08:09Z h - - - - after udp");
    assert_eq!(rx.msgs(3, WAIT), ["before", "after tcp", "after udp"]);

    let t = Instant::now();
    rx.stop();
    let stopped = t.elapsed();
    for port in ports.0 {
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "{} still listening on {port} after stop()",
            R::NAME
        );
    }
    // The output is still readable after stop.
    assert_eq!(rx.msgs(3, Duration::ZERO).len(), 3);
    (restarted, stopped)
}

/// Two instances have their own ports and their own output.
pub fn check_instances_are_independent<R: Receiver>(a: &R, b: &R) {
    assert_ne!(a.tcp(), b.tcp());
    assert_ne!(a.udp(), b.udp());
    connect(a.tcp())
        .write_all(&octet_counted("<14>1 2024-03-05T07:08:09Z a - - - - to a"))
        .unwrap();
    send_udp(b.udp(), "<14>1 2024-03-05T07:08:09Z b - - - - to b");
    assert_eq!(a.msgs(1, WAIT)[0], "to a");
    assert_eq!(b.msgs(1, WAIT)[0], "to b");
    assert_eq!(a.msgs(2, Duration::from_millis(300)).len(), 1);
    assert_eq!(b.msgs(2, Duration::from_millis(300)).len(), 1);
}
