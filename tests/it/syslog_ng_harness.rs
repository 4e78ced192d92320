//! Proves the syslog-ng receiver harness works, using only std sockets and the `openssl s_client`
//! CLI (no project code), and pins down what syslog-ng 3.38 renders:
//!
//! * `timestamp` is `${ISODATE}` with 6 fraction digits and a numeric offset: the sender's
//!   `2024-03-05T07:08:09.123456Z` comes back as `2024-03-05T07:08:09.123456+00:00`,
//!   `…09Z` as `…09.000000+00:00`, `…09.5+02:00` as `…09.500000+02:00`.
//! * NILVALUE PROCID / MSGID / STRUCTURED-DATA come back as `""`; `sd` is `Null` then.
//! * `pri`, `facility`, `severity` and `port` are numbers.
//! * A UTF-8 BOM at the start of MSG is stripped from `msg` but kept in `rawmsg`; LF and
//!   non-ASCII UTF-8 inside an octet-counted MSG are kept byte for byte.
//! * Only the one SP separating STRUCTURED-DATA from MSG is dropped: `- -  x` gives `msg` `" x"`.
//! * A trailing LF of a UDP datagram is stripped.
//! * The `syslog()` TCP port accepts octet counting only: an LF-framed frame is lost, the
//!   connection is closed and the internal log says `Invalid frame header`.

use crate::support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::send::{
    check_instances_are_independent, check_restart_keeps_ports_and_output, connect, find,
    octet_counted, s_client, send_udp, WAIT,
};
use support::syslog_ng::{NgReceived, SyslogNg};

fn by_host<'a>(got: &'a [NgReceived], hostname: &str) -> &'a NgReceived {
    find(got, hostname, |r| r.hostname == hostname)
}

#[test]
fn receives_tcp_lf_udp_and_tls() {
    let Some(rx) = SyslogNg::start() else { return };
    let ports = [rx.tcp_port(), rx.lf_port(), rx.tls_port()];
    assert!(ports.iter().all(|&p| p != 0), "{ports:?}");
    assert_ne!(rx.udp_port(), 0);
    assert!(
        ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2],
        "{ports:?}"
    );
    assert!(rx.ca_pem().is_file());

    let sd = r#"[exampleSDID@32473 iut="3" eventSource="App"]"#;
    // Octet-counted, with BOM, LF and non-ASCII UTF-8 in MSG.
    let m1 = format!(
        "<165>1 2024-03-05T07:08:09.123456Z host1.example.com myapp 4242 ID47 {sd} \
         \u{feff}line1\nline2 é 中文"
    );
    // Two spaces after the NILVALUE SD: the first is the separator, the second belongs to MSG.
    let m2 = "<14>1 2024-03-05T07:08:09Z host2 app2 - - -  leading space kept";
    let mut conn = connect(rx.tcp_port());
    conn.write_all(&octet_counted(&m1)).unwrap();
    conn.write_all(&octet_counted(m2)).unwrap();
    conn.flush().unwrap();
    // Wait for each transport in turn, so the file order is deterministic.
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:#?}");

    // The same as m1, LF-framed (so no LF inside MSG), to the network() port.
    let m3 = format!(
        "<165>1 2024-03-05T07:08:09.5+02:00 host3.example.com myapp 4242 ID47 {sd} \
         \u{feff}line1 line2 é 中文"
    );
    let mut lf = connect(rx.lf_port());
    lf.write_all(format!("{m3}\n").as_bytes()).unwrap();
    lf.flush().unwrap();
    let got = rx.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{got:#?}");

    let m4 = "<134>1 2024-03-05T07:08:09.000001Z host4 app4 99 M1 - udp message";
    send_udp(rx.udp_port(), &format!("{m4}\n"));
    let got = rx.wait_for(4, WAIT);
    assert_eq!(got.len(), 4, "{got:#?}");

    let m5 = "<86>1 2024-03-05T07:08:09.1-05:30 host5 tlsapp 7 TLS1 [a@1 k=\"v\"][b@2 x=\"y\"] \
              \u{feff}über\nTLS";
    let (ok, out) = s_client(rx.tls_port(), &rx.ca_pem(), None, &octet_counted(m5));
    assert!(ok, "s_client failed:\n{out}");
    let got = rx.wait_for(5, WAIT);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(
        got.iter().map(|r| r.hostname.as_str()).collect::<Vec<_>>(),
        [
            "host1.example.com",
            "host2",
            "host3.example.com",
            "host4",
            "host5"
        ]
    );

    let r = by_host(&got, "host1.example.com");
    assert_eq!((r.input.as_str(), r.port), ("tcp", rx.tcp_port()));
    assert_eq!(r.sourceip, "127.0.0.1");
    assert_eq!((r.pri, r.facility, r.severity), (165, 20, 5));
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.123456+00:00");
    assert_eq!(r.app_name, "myapp");
    assert_eq!(r.procid, "4242");
    assert_eq!(r.msgid, "ID47");
    assert_eq!(r.structured_data, sd);
    assert_eq!(
        r.sd,
        serde_json::json!({"exampleSDID@32473": {"iut": "3", "eventSource": "App"}})
    );
    // The BOM is gone from MSG but not from RAWMSG.
    assert_eq!(r.msg, "line1\nline2 é 中文");
    assert_eq!(r.rawmsg, m1);

    let r = by_host(&got, "host2");
    assert_eq!((r.input.as_str(), r.port), ("tcp", rx.tcp_port()));
    assert_eq!((r.pri, r.facility, r.severity), (14, 1, 6));
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.000000+00:00");
    assert_eq!(r.app_name, "app2");
    assert_eq!((r.procid.as_str(), r.msgid.as_str()), ("", ""));
    assert_eq!(r.structured_data, "");
    assert_eq!(r.sd, serde_json::Value::Null);
    assert_eq!(r.msg, " leading space kept");
    assert_eq!(r.rawmsg, m2);

    let r = by_host(&got, "host3.example.com");
    assert_eq!((r.input.as_str(), r.port), ("lf", rx.lf_port()));
    assert_eq!(r.sourceip, "127.0.0.1");
    assert_eq!((r.pri, r.facility, r.severity), (165, 20, 5));
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.500000+02:00");
    assert_eq!(r.app_name, "myapp");
    assert_eq!(r.procid, "4242");
    assert_eq!(r.msgid, "ID47");
    assert_eq!(r.structured_data, sd);
    assert_eq!(r.msg, "line1 line2 é 中文");
    assert_eq!(r.rawmsg, m3);

    let r = by_host(&got, "host4");
    assert_eq!((r.input.as_str(), r.port), ("udp", rx.udp_port()));
    assert_eq!(r.sourceip, "127.0.0.1");
    assert_eq!((r.pri, r.facility, r.severity), (134, 16, 6));
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.000001+00:00");
    assert_eq!(r.app_name, "app4");
    assert_eq!(r.procid, "99");
    assert_eq!(r.msgid, "M1");
    assert_eq!(r.structured_data, "");
    // The datagram's trailing LF is stripped.
    assert_eq!(r.msg, "udp message");
    assert_eq!(r.rawmsg, m4);

    let r = by_host(&got, "host5");
    assert_eq!((r.input.as_str(), r.port), ("tls", rx.tls_port()));
    assert_eq!(r.sourceip, "127.0.0.1");
    assert_eq!((r.pri, r.facility, r.severity), (86, 10, 6));
    assert_eq!(r.timestamp, "2024-03-05T07:08:09.100000-05:30");
    assert_eq!(r.app_name, "tlsapp");
    assert_eq!(r.procid, "7");
    assert_eq!(r.msgid, "TLS1");
    assert_eq!(r.structured_data, r#"[a@1 k="v"][b@2 x="y"]"#);
    assert_eq!(
        r.sd,
        serde_json::json!({"a@1": {"k": "v"}, "b@2": {"x": "y"}})
    );
    assert_eq!(r.msg, "über\nTLS");
    assert_eq!(r.rawmsg, m5);

    assert_eq!(rx.wait_for(6, Duration::from_millis(300)).len(), 5);
}

#[test]
fn syslog_tcp_port_rejects_lf_framing() {
    let Some(rx) = SyslogNg::start() else { return };
    let mut conn = connect(rx.tcp_port());
    conn.write_all(&octet_counted(
        "<14>1 2024-03-05T07:08:09Z h1 app - - - octet first",
    ))
    .unwrap();
    conn.write_all(b"<14>1 2024-03-05T07:08:09Z h2 app - - - lf framed\n")
        .unwrap();
    // Written before syslog-ng has read the LF frame, so the write itself succeeds.
    let _ = conn.write_all(&octet_counted(
        "<14>1 2024-03-05T07:08:09Z h3 app - - - octet after",
    ));
    let log = rx.wait_for_internal_log("Invalid frame header", WAIT);
    assert!(log.contains("Invalid frame header"), "{log}");
    // syslog-ng closed the connection: EOF or a reset.
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(conn.read(&mut buf), Ok(0) | Err(_)),
        "connection still open"
    );
    let got = rx.wait_for(2, Duration::from_millis(500));
    assert_eq!(
        got.iter().map(|r| r.msg.as_str()).collect::<Vec<_>>(),
        ["octet first"],
        "{got:#?}"
    );

    // The port itself keeps working for the next connection.
    connect(rx.tcp_port())
        .write_all(&octet_counted(
            "<14>1 2024-03-05T07:08:09Z h4 app - - - new connection",
        ))
        .unwrap();
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].msg, "new connection");
}

#[test]
fn lf_port_splits_at_every_lf() {
    let Some(rx) = SyslogNg::start() else { return };
    let mut conn = connect(rx.lf_port());
    conn.write_all(b"<14>1 2024-03-05T07:08:09Z h1 app - - - one\n<14>1 2024-03-05T07:08:09Z h2 app - - - two\n")
        .unwrap();
    let got = rx.wait_for(2, WAIT);
    assert_eq!(
        got.iter()
            .map(|r| (r.hostname.as_str(), r.msg.as_str()))
            .collect::<Vec<_>>(),
        [("h1", "one"), ("h2", "two")]
    );
}

#[test]
fn tls_certificate_does_not_verify_against_the_other_ca() {
    let Some(rx) = SyslogNg::start() else { return };
    let frame = octet_counted("<14>1 2024-03-05T07:08:09Z h app - - - wrong ca");
    let (ok, out) = s_client(rx.tls_port(), &rx.other_ca_pem(), None, &frame);
    assert!(
        !ok,
        "s_client verified the server against the other CA:\n{out}"
    );
    assert_eq!(rx.wait_for(1, Duration::from_millis(500)).len(), 0);
}

#[test]
fn restart_keeps_ports_and_output_file() {
    let t = Instant::now();
    let Some(mut rx) = SyslogNg::start() else {
        return;
    };
    let started = t.elapsed();
    let (restarted, stopped) = check_restart_keeps_ports_and_output(&mut rx);
    eprintln!("syslog-ng start {started:?}, restart {restarted:?}, stop {stopped:?}");
}

#[test]
fn instances_are_independent() {
    let (Some(a), Some(b)) = (SyslogNg::start(), SyslogNg::start()) else {
        return;
    };
    check_instances_are_independent(&a, &b);
}

#[test]
fn unparsable_and_oversize_frames() {
    let Some(rx) = SyslogNg::start() else { return };
    let mut conn = connect(rx.tcp_port());
    // No STRUCTURED-DATA field: not RFC 5424, so syslog-ng delivers its own error message.
    conn.write_all(&octet_counted(
        "<14>1 2024-03-05T07:08:09Z h1 app - - no-sd-field",
    ))
    .unwrap();
    let got = rx.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{got:#?}");
    let r = &got[0];
    assert_eq!(r.input, "tcp");
    assert_eq!((r.pri, r.facility, r.severity), (43, 5, 3));
    assert_eq!(r.app_name, "syslog-ng");
    assert_eq!(r.hostname, "127.0.0.1");
    assert!(
        r.msg
            .starts_with("Error processing log message: <14>1 2024-03-05T07:08:09Z h1 app"),
        "{r:#?}"
    );
    assert_eq!(r.rawmsg, "");

    // A frame above log-msg-size(65536) closes the connection; it and later frames are lost.
    let big = format!(
        "<14>1 2024-03-05T07:08:09Z h2 app - - - {}",
        "x".repeat(100_000)
    );
    let _ = conn.write_all(&octet_counted(&big));
    let _ = conn.write_all(&octet_counted(
        "<14>1 2024-03-05T07:08:09Z h3 app - - - after big",
    ));
    let log = rx.wait_for_internal_log("Incoming frame larger than log_msg_size()", WAIT);
    assert!(
        log.contains("Incoming frame larger than log_msg_size()"),
        "{log}"
    );
    assert_eq!(rx.wait_for(2, Duration::from_millis(500)).len(), 1);

    // 65536 bytes of frame (without the octet count) is still accepted.
    let head = "<14>1 2024-03-05T07:08:09Z h4 app - - - ";
    let max = format!("{head}{}", "y".repeat(65_536 - head.len()));
    connect(rx.tcp_port())
        .write_all(&octet_counted(&max))
        .unwrap();
    let got = rx.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].hostname, "h4");
    assert_eq!(got[1].rawmsg.len(), 65_536);
}
