//! Proves the rsyslog receiver harness works, using only std sockets (no project code).

use crate::support;

use std::io::Write;
use std::thread::sleep;
use std::time::Duration;

use support::rsyslog::{Received, Rsyslog};
use support::send::{
    check_instances_are_independent, check_restart_keeps_ports_and_output, connect, find,
    octet_counted, s_client, send_udp, WAIT,
};

fn by_host<'a>(got: &'a [Received], hostname: &str) -> &'a Received {
    find(got, hostname, |r| r.hostname == hostname)
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
    let mut conn = connect(rx.tcp_port());
    conn.write_all(&octet_counted(m1)).unwrap();
    conn.write_all(&octet_counted(m2)).unwrap();
    conn.write_all(format!("{m3}\n").as_bytes()).unwrap();
    conn.flush().unwrap();
    // Wait for the TCP messages first, so the file order is deterministic.
    let got = rx.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{got:#?}");

    let m4 = "<134>1 2024-03-05T07:08:09.000001Z host4 app4 99 M1 - udp message";
    send_udp(rx.udp_port(), m4);
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
    let mut conn = connect(rx.tcp_port());
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
    check_restart_keeps_ports_and_output(&mut rx);
}

#[test]
fn instances_are_independent() {
    let (Some(a), Some(b)) = (Rsyslog::start(), Rsyslog::start()) else {
        return;
    };
    check_instances_are_independent(&a, &b);
}

fn by_input<'a>(got: &'a [Received], input: &str) -> &'a Received {
    find(got, format_args!("input {input}"), |r| r.input == input)
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
