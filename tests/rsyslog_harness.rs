//! Proves the rsyslog receiver harness works, using only std sockets (no project code).

mod support;

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::rsyslog::{Received, Rsyslog};

const WAIT: Duration = Duration::from_secs(10);

/// An RFC 6587 octet-counted frame: `MSG-LEN SP SYSLOG-MSG`, length in bytes.
fn octet_counted(msg: &str) -> Vec<u8> {
    let mut frame = format!("{} ", msg.len()).into_bytes();
    frame.extend_from_slice(msg.as_bytes());
    frame
}

fn tcp(rx: &Rsyslog) -> TcpStream {
    TcpStream::connect((Ipv4Addr::LOCALHOST, rx.tcp_port())).expect("connect to rsyslog tcp")
}

fn send_udp(rx: &Rsyslog, msg: &str) {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
    sock.send_to(msg.as_bytes(), (Ipv4Addr::LOCALHOST, rx.udp_port()))
        .expect("send udp");
}

fn by_host<'a>(got: &'a [Received], hostname: &str) -> &'a Received {
    got.iter()
        .find(|r| r.hostname == hostname)
        .unwrap_or_else(|| panic!("no message from {hostname} in {got:#?}"))
}

#[test]
fn receives_octet_counted_lf_framed_and_udp() {
    let Some(rx) = Rsyslog::start() else { return };
    assert_ne!(rx.tcp_port(), 0);
    assert_ne!(rx.udp_port(), 0);

    let m1 = "<165>1 2024-03-05T07:08:09.123456Z host1.example.com myapp 4242 ID47 - line1\nline2 é 中文";
    let m2 = r#"<14>1 2024-03-05T07:08:09Z host2 app2 - - [exampleSDID@32473 iut="3" eventSource="App\"x\]"] second"#;
    // Two spaces after the NILVALUE SD: the first is the separator, the second belongs to MSG.
    let m3 = "<13>1 2024-03-05T07:08:09.5+02:00 host3 app3 - - -  leading space kept";
    let mut conn = tcp(&rx);
    conn.write_all(&octet_counted(m1)).unwrap();
    conn.write_all(&octet_counted(m2)).unwrap();
    conn.write_all(format!("{m3}\n").as_bytes()).unwrap();
    conn.flush().unwrap();
    // Wait for the TCP messages first, so the file order is deterministic.
    let got = rx.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{got:#?}");

    let m4 = "<134>1 2024-03-05T07:08:09.000001Z host4 app4 99 M1 - udp message";
    send_udp(&rx, m4);
    let got = rx.wait_for(4, WAIT);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!(
        got.iter().map(|r| r.hostname.as_str()).collect::<Vec<_>>(),
        ["host1.example.com", "host2", "host3", "host4"]
    );

    let r = by_host(&got, "host1.example.com");
    assert_eq!(r.input, "tcp");
    assert_eq!(r.pri, "165");
    assert_eq!(r.facility, "20");
    assert_eq!(r.severity, "5");
    assert_eq!(r.version, "1");
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.123456Z");
    assert_eq!(r.app_name, "myapp");
    assert_eq!(r.procid, "4242");
    assert_eq!(r.msgid, "ID47");
    assert_eq!(r.structured_data, "-");
    assert_eq!(r.sd, serde_json::json!(""));
    assert_eq!(r.msg, "line1\nline2 é 中文");
    assert_eq!(r.rawmsg, m1);

    let r = by_host(&got, "host2");
    assert_eq!(r.input, "tcp");
    assert_eq!((r.pri.as_str(), r.facility.as_str()), ("14", "1"));
    assert_eq!(r.severity, "6");
    assert_eq!(r.timestamp, "2024-03-05T07:08:09Z");
    assert_eq!(r.app_name, "app2");
    assert_eq!(r.procid, "-");
    assert_eq!(r.msgid, "-");
    assert_eq!(
        r.structured_data,
        r#"[exampleSDID@32473 iut="3" eventSource="App\"x\]"]"#
    );
    assert_eq!(
        r.sd,
        serde_json::json!({"exampleSDID@32473": {"iut": "3", "eventSource": "App\"x]"}})
    );
    assert_eq!(r.msg, "second");
    assert_eq!(r.rawmsg, m2);

    let r = by_host(&got, "host3");
    assert_eq!(r.input, "tcp");
    assert_eq!((r.pri.as_str(), r.facility.as_str()), ("13", "1"));
    assert_eq!(r.severity, "5");
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.5+02:00");
    assert_eq!(r.app_name, "app3");
    assert_eq!(r.structured_data, "-");
    assert_eq!(r.msg, " leading space kept");
    assert_eq!(r.rawmsg, m3);

    let r = by_host(&got, "host4");
    assert_eq!(r.input, "udp");
    assert_eq!(r.pri, "134");
    assert_eq!(r.facility, "16");
    assert_eq!(r.severity, "6");
    assert_eq!(r.version, "1");
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.000001Z");
    assert_eq!(r.app_name, "app4");
    assert_eq!(r.procid, "99");
    assert_eq!(r.msgid, "M1");
    assert_eq!(r.structured_data, "-");
    assert_eq!(r.msg, "udp message");
    assert_eq!(r.rawmsg, m4);
}

#[test]
fn empty_msg_and_incomplete_frame() {
    let Some(rx) = Rsyslog::start() else { return };
    let mut conn = tcp(&rx);
    // No SP and no MSG after STRUCTURED-DATA.
    conn.write_all(&octet_counted("<14>1 2024-03-05T07:08:09Z h1 a - - -"))
        .unwrap();
    // A frame whose LF never arrives must not be reported while the connection is open.
    conn.write_all(b"<14>1 2024-03-05T07:08:09Z h2 a - - - no newline yet")
        .unwrap();
    conn.flush().unwrap();
    let got = rx.wait_for(2, Duration::from_secs(2));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].hostname, "h1");
    assert_eq!(got[0].msg, "");
    conn.write_all(b"\n").unwrap();
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].msg, "no newline yet");
}

#[test]
fn restart_keeps_ports_and_output_file() {
    let Some(mut rx) = Rsyslog::start() else {
        return;
    };
    let (tcp_port, udp_port) = (rx.tcp_port(), rx.udp_port());
    tcp(&rx)
        .write_all(&octet_counted(
            "<14>1 2024-03-05T07:08:09Z h - - - - before",
        ))
        .unwrap();
    assert_eq!(rx.wait_for(1, WAIT).len(), 1);

    rx.restart();
    assert_eq!((rx.tcp_port(), rx.udp_port()), (tcp_port, udp_port));
    tcp(&rx)
        .write_all(&octet_counted(
            "<14>1 2024-03-05T07:08:09Z h - - - - after tcp",
        ))
        .unwrap();
    assert_eq!(rx.wait_for(2, WAIT).len(), 2);
    send_udp(&rx, "<14>1 2024-03-05T07:08:09Z h - - - - after udp");
    let got = rx.wait_for(3, WAIT);
    let msgs: Vec<&str> = got.iter().map(|r| r.msg.as_str()).collect();
    assert_eq!(msgs, ["before", "after tcp", "after udp"]);

    rx.stop();
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, tcp_port)).is_err(),
        "rsyslogd still listening after stop()"
    );
    // The output is still readable after stop.
    assert_eq!(rx.wait_for(3, Duration::ZERO).len(), 3);
}

#[test]
fn instances_are_independent() {
    let (Some(a), Some(b)) = (Rsyslog::start(), Rsyslog::start()) else {
        return;
    };
    assert_ne!(a.tcp_port(), b.tcp_port());
    assert_ne!(a.udp_port(), b.udp_port());
    tcp(&a)
        .write_all(&octet_counted("<14>1 2024-03-05T07:08:09Z a - - - - to a"))
        .unwrap();
    send_udp(&b, "<14>1 2024-03-05T07:08:09Z b - - - - to b");
    assert_eq!(a.wait_for(1, WAIT)[0].msg, "to a");
    assert_eq!(b.wait_for(1, WAIT)[0].msg, "to b");
    assert_eq!(a.wait_for(2, Duration::from_millis(300)).len(), 1);
    assert_eq!(b.wait_for(2, Duration::from_millis(300)).len(), 1);
}

/// Sends `frame` over TLS to 127.0.0.1:`port` with the `openssl s_client` CLI, verifying the
/// server certificate against `ca` for the name `localhost`, optionally presenting a client
/// certificate. Returns whether s_client succeeded, and its output.
fn s_client(port: u16, ca: &Path, client: Option<(&Path, &Path)>, frame: &[u8]) -> (bool, String) {
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
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait s_client").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait for s_client");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn by_input<'a>(got: &'a [Received], input: &str) -> &'a Received {
    got.iter()
        .find(|r| r.input == input)
        .unwrap_or_else(|| panic!("no message from input {input} in {got:#?}"))
}

#[test]
fn tls_inputs_receive_octet_counted_frames() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let ports = [
        rx.tcp_port(),
        rx.tls_gtls_port(),
        rx.tls_ossl_port(),
        rx.tls_mtls_port(),
    ];
    for (i, a) in ports.iter().enumerate() {
        assert!(ports[i + 1..].iter().all(|b| a != b), "{ports:?}");
    }
    for f in [
        rx.ca_pem(),
        rx.other_ca_pem(),
        rx.client_cert(),
        rx.client_key(),
    ] {
        assert!(f.is_file(), "{} missing", f.display());
    }
    let client = (rx.client_cert(), rx.client_key());
    let cases = [
        ("tls-gtls", rx.tls_gtls_port(), None),
        ("tls-ossl", rx.tls_ossl_port(), None),
        (
            "tls-mtls",
            rx.tls_mtls_port(),
            Some((client.0.as_path(), client.1.as_path())),
        ),
    ];
    for (i, (input, port, cert)) in cases.iter().enumerate() {
        let msg = format!(
            "<165>1 2024-03-05T07:08:09.123456Z host-{input} myapp 4242 ID47 \
             [ex@32473 k=\"v{i}\"] via {input}"
        );
        let (ok, out) = s_client(*port, &rx.ca_pem(), *cert, &octet_counted(&msg));
        assert!(ok, "s_client to {input} failed:\n{out}");
        // One at a time, so a failure names the input.
        let got = rx.wait_for(i + 1, WAIT);
        let r = by_input(&got, input);
        assert_eq!(r.hostname, format!("host-{input}"));
        assert_eq!(r.pri, "165");
        assert_eq!((r.facility.as_str(), r.severity.as_str()), ("20", "5"));
        assert_eq!(r.version, "1");
        assert_eq!(r.timestamp, "2024-03-05T07:08:09.123456Z");
        assert_eq!(r.app_name, "myapp");
        assert_eq!(r.procid, "4242");
        assert_eq!(r.msgid, "ID47");
        assert_eq!(r.structured_data, format!("[ex@32473 k=\"v{i}\"]"));
        assert_eq!(
            r.sd,
            serde_json::json!({"ex@32473": {"k": format!("v{i}")}})
        );
        assert_eq!(r.msg, format!("via {input}"));
        assert_eq!(r.rawmsg, msg);
    }
    assert_eq!(rx.wait_for(4, Duration::from_millis(300)).len(), 3);
}

#[test]
fn mtls_input_refuses_a_client_without_certificate() {
    let Some(mut rx) = Rsyslog::start_tls() else {
        return;
    };
    let frame = octet_counted("<14>1 2024-03-05T07:08:09Z h app - - - no client cert");
    // The TLS 1.3 handshake completes on the client side before the server checks the (absent)
    // certificate, so s_client may or may not report the refusal: only the outcome counts.
    let _ = s_client(rx.tls_mtls_port(), &rx.ca_pem(), None, &frame);
    sleep(Duration::from_millis(1500));
    let got = rx.wait_for(1, Duration::ZERO);
    assert!(got.iter().all(|r| r.input != "tls-mtls"), "{got:#?}");

    // The same input does accept the CA-signed client certificate, also after a restart, which
    // keeps every port.
    let ports = (rx.tls_gtls_port(), rx.tls_ossl_port(), rx.tls_mtls_port());
    rx.restart();
    assert_eq!(
        (rx.tls_gtls_port(), rx.tls_ossl_port(), rx.tls_mtls_port()),
        ports
    );
    let msg = "<14>1 2024-03-05T07:08:09Z h app - - - with client cert";
    let (ok, out) = s_client(
        rx.tls_mtls_port(),
        &rx.ca_pem(),
        Some((&rx.client_cert(), &rx.client_key())),
        &octet_counted(msg),
    );
    assert!(ok, "s_client with client cert failed:\n{out}");
    let got = rx.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].input, "tls-mtls");
    assert_eq!(got[0].msg, "with client cert");
}

#[test]
fn tls_server_certificate_does_not_verify_against_the_other_ca() {
    let Some(rx) = Rsyslog::start_tls() else {
        return;
    };
    let frame = octet_counted("<14>1 2024-03-05T07:08:09Z h app - - - wrong ca");
    for port in [rx.tls_gtls_port(), rx.tls_ossl_port()] {
        let (ok, out) = s_client(port, &rx.other_ca_pem(), None, &frame);
        assert!(
            !ok,
            "s_client verified the server against the other CA:\n{out}"
        );
    }
    assert_eq!(rx.wait_for(1, Duration::from_millis(500)).len(), 0);
}

#[test]
fn plain_instance_has_no_tls() {
    let Some(rx) = Rsyslog::start() else { return };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.tls_gtls_port()));
    assert!(
        r.is_err(),
        "tls_gtls_port() on a start() instance must panic"
    );
}
