//! Proves the rsyslog receiver harness works, using only std sockets (no project code).

mod support;

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::time::Duration;

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
