//! Bounded property tests of the invariants the fuzz targets in `fuzz/` check without bound
//! (`scripts/fuzz`), with the same oracle (`sls_syslog::devkit::check_frame`):
//!
//! - the trigger event parser never panics and accepts only usable events;
//! - a PullLogs body (LZ4 or not, any claimed raw size, any bytes) decodes or is refused,
//!   never panics, and flattens like the SDK whenever prost reads it too;
//! - one log of arbitrary keys and values, with every syslog format, body format and framing,
//!   makes exactly one frame that parses back.
//!
//! Each property runs a fixed number of cases (no time limit, no timing assertion).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;

use std::collections::HashMap;

use prost::Message;
use sls_syslog::config::Settings;
use sls_syslog::devkit::check_frame::{
    case_group, check_body, check_case, check_event, check_fill, check_response, model_flatten,
    Case, Outcome,
};
use sls_syslog::sls::proto::{LogGroup, LogGroupList};
use sls_syslog::syslog::format::Origin;

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Nothing is written next to the tests; a failure prints its minimal input.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Bytes a receiver or a parser cares about, and some that are not UTF-8 on their own.
const AWKWARD: &[u8] = b"\n\r\0=|\\\"][{} \t^:;,.-_*@aZ09\xff\xfe\xc3\xa9\xe4\xb8\xad";

/// Short byte strings: arbitrary, or made of awkward bytes, or UTF-8 text.
fn short_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..16),
        vec(select(AWKWARD), 0..16),
        "\\PC{0,12}".prop_map(String::into_bytes),
    ]
}

/// Field keys: the names settings point at, the SDK's own names, or anything.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => select(&[
            "host", "app", "msgid", "level", "facility", "msg", "__time__", "__topic__",
            "__source__", "__time_ns_part__", "__tag__:x", "devTime", "devTimeFormat", "rt",
            "act", "remote_addr", "remote-addr", "",
        ][..])
        .prop_map(|k| k.as_bytes().to_vec()),
        3 => short_bytes(),
    ]
}

/// Values: short ones, or now and then a long one (over the smaller size caps).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => short_bytes(),
        1 => (short_bytes(), 200..8_000usize).prop_map(|(b, n)| {
            let mut v = if b.is_empty() { b"x\n".repeat(n) } else { b.repeat(n) };
            v.truncate(70_000);
            v
        }),
    ]
}

fn opt(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), select(values).prop_map(Some)]
}

/// Settings: every format, body and framing, caps, header fields from log fields, SD,
/// separators, delimiters, field selection and header constants.
fn vars() -> impl Strategy<Value = (Vec<(String, String)>, bool)> {
    (
        (
            select(&["rfc5424", "rfc3164"][..]),
            select(&["kv", "json", "cef", "leef"][..]),
            select(&["lf", "octet-counting"][..]),
            any::<bool>(),
            opt(&["480", "481", "700", "2048", "65536"]),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            opt(&["||", " ", "\n", "=", "|", "é"]),
            opt(&["^", "\t", "0x09", "x5E", "~", ";", "#"]),
            opt(&["msg,host", "__tag__:*", "__*", "devTime,rt"]),
            opt(&["__tag__:*", "msg", "__time__"]),
            opt(&[
                "web 01",
                "é中",
                "",
                "a-very-long-host-name-that-goes-on-and-on-and-on",
            ]),
            opt(&["nginx", "my app:1", "é"]),
            opt(&["E1", "x y", "é"]),
            opt(&["Ven|dor\\", "x\ny"]),
        ),
    )
        .prop_map(
            |(
                (format, body, framing, udp, max, from_fields, sd),
                (sep, delim, include, exclude, host, app, msgid, vendor),
            )| {
                let mut v: Vec<(&str, &str)> = vec![
                    ("SYSLOG_FORMAT", format),
                    ("SYSLOG_MESSAGE_FORMAT", body),
                    ("SYSLOG_FRAMING", framing),
                ];
                let optional = [
                    ("SYSLOG_MAX_MESSAGE_BYTES", max),
                    ("SYSLOG_KV_SEPARATOR", sep),
                    ("SYSLOG_LEEF_DELIMITER", delim),
                    ("SYSLOG_INCLUDE_FIELDS", include),
                    ("SYSLOG_EXCLUDE_FIELDS", exclude),
                    ("SYSLOG_HOSTNAME", host),
                    ("SYSLOG_APP_NAME", app),
                    ("SYSLOG_MSGID", msgid),
                    ("SYSLOG_CEF_VENDOR", vendor),
                    ("SYSLOG_LEEF_VENDOR", vendor),
                ];
                v.extend(optional.iter().filter_map(|(k, x)| x.map(|x| (*k, x))));
                if from_fields {
                    v.extend([
                        ("SYSLOG_HOSTNAME_FIELD", "host"),
                        ("SYSLOG_APP_NAME_FIELD", "app"),
                        ("SYSLOG_MSGID_FIELD", "msgid"),
                        ("SYSLOG_SEVERITY_FIELD", "level"),
                        ("SYSLOG_FACILITY_FIELD", "facility"),
                        ("SYSLOG_CEF_NAME_FIELD", "msg"),
                        ("SYSLOG_CEF_SEVERITY_FIELD", "level"),
                        ("SYSLOG_LEEF_EVENT_ID_FIELD", "msgid"),
                    ]);
                }
                if sd {
                    v.push(("SYSLOG_SD_ID", "sls@32473"));
                }
                let v = v
                    .into_iter()
                    .map(|(k, x)| (k.to_string(), x.to_string()))
                    .collect();
                (v, udp)
            },
        )
}

fn pairs(
    k: impl Strategy<Value = Vec<u8>>,
    v: impl Strategy<Value = Vec<u8>>,
    n: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    vec((k, v), n)
}

fn case() -> impl Strategy<Value = Case> {
    (
        vars(),
        any::<u32>(),
        prop_oneof![Just(None), Just(Some(0)), any::<u32>().prop_map(Some)],
        proptest::option::of(short_bytes()),
        proptest::option::of(short_bytes()),
        pairs(short_bytes(), short_bytes(), 0..3),
        pairs(key(), value(), 0..10),
        ("\\PC{0,8}", "[a-z0-9_-]{1,8}", any::<u32>(), "\\PC{0,12}"),
    )
        .prop_map(
            |((vars, udp), time, time_ns, topic, source, tags, contents, origin)| Case {
                vars,
                udp,
                time,
                time_ns,
                topic,
                source,
                tags,
                contents,
                project: origin.0,
                logstore: origin.1,
                shard: origin.2,
                cursor: origin.3,
            },
        )
}

/// Bodies of several groups of several logs, with awkward bytes in every string and keys
/// that repeat the SDK's own names.
fn group_list() -> impl Strategy<Value = LogGroupList> {
    vec(
        (
            proptest::option::of(short_bytes()),
            proptest::option::of(short_bytes()),
            pairs(short_bytes(), short_bytes(), 0..3),
            vec(
                (
                    any::<u32>(),
                    proptest::option::of(any::<u32>()),
                    pairs(key(), short_bytes(), 0..6),
                ),
                0..4,
            ),
        ),
        0..4,
    )
    .prop_map(|groups| LogGroupList {
        log_groups: groups
            .into_iter()
            .map(|(topic, source, tags, logs)| {
                let mut group = LogGroup::default();
                for (time, time_ns, contents) in logs {
                    let one = case_group(&Case {
                        time,
                        time_ns,
                        topic: topic.clone(),
                        source: source.clone(),
                        tags: tags.clone(),
                        contents,
                        ..Case::default()
                    });
                    group.topic = one.topic;
                    group.source = one.source;
                    group.log_tags = one.log_tags;
                    group.logs.extend(one.logs);
                }
                group
            })
            .collect(),
    })
}

proptest! {
    #![proptest_config(config(768))]

    /// Every format × body × framing: one frame that parses back (see the oracle).
    #[test]
    fn one_log_makes_one_frame_that_parses_back(case in case()) {
        match check_case(&case) {
            Ok(_) => {}
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Long values against small caps: cut within the cap on a character (and escape)
    /// boundary, still one frame whose header is whole.
    #[test]
    fn long_values_are_cut_to_one_frame_within_the_cap(
        (vars, udp) in vars(),
        value in (select(AWKWARD), 1_100..5_000usize).prop_map(|(b, n)| vec![b; n]),
        cap in select(&["480", "481", "482", "483", "1000"][..]),
    ) {
        let mut vars = vars;
        // The value must be written: no field selection.
        vars.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "SYSLOG_MAX_MESSAGE_BYTES" | "SYSLOG_INCLUDE_FIELDS" | "SYSLOG_EXCLUDE_FIELDS"
            )
        });
        vars.push(("SYSLOG_MAX_MESSAGE_BYTES".into(), cap.into()));
        let case = Case {
            vars,
            udp,
            time: 1_709_622_489,
            contents: vec![(b"msg".to_vec(), value)],
            ..Case::default()
        };
        match check_case(&case) {
            Ok(Outcome::Checked { truncated }) => prop_assert!(truncated),
            Ok(Outcome::Refused(e)) => prop_assert!(false, "refused: {}", e),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    /// Arbitrary bytes, and valid events with one field replaced by junk: never a panic, and
    /// an accepted event is usable.
    #[test]
    fn the_trigger_parser_never_panics(
        junk in vec(any::<u8>(), 0..256),
        field in select(&["endpoint", "projectName", "logstoreName", "shardId", "beginCursor", "endCursor"][..]),
        replacement in prop_oneof![
            "\\PC{0,40}".prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!({"a": [1]})),
        ],
    ) {
        prop_assert!(check_event(&junk).is_ok(), "{:?}", check_event(&junk));
        let mut event: serde_json::Value =
            serde_json::from_slice(include_bytes!("../../events/sample.json")).unwrap();
        event["source"][field] = replacement;
        let body = event.to_string();
        prop_assert!(check_event(body.as_bytes()).is_ok(), "{:?}", check_event(body.as_bytes()));
    }

    /// Any bytes with any claimed raw size and compression type: decoded to exactly that
    /// size or refused, never a panic; what decodes flattens like the SDK when prost reads it.
    #[test]
    fn any_response_body_decodes_or_is_refused(
        body in vec(any::<u8>(), 0..512),
        compress in select(&["lz4", "LZ4", "", " lz4 ", "zstd"][..]),
        raw_size in prop_oneof![0..2_048usize, any::<u32>().prop_map(|n| n as usize), Just(usize::MAX)],
    ) {
        prop_assert!(check_response(&body, compress, raw_size).is_ok());
        prop_assert!(check_body(&body).is_ok());
    }

    /// Real bodies of several groups and logs (awkward bytes in every string), LZ4-compressed:
    /// every log flattened like the SDK, through the decoder the client uses.
    #[test]
    fn compressed_group_lists_flatten_like_the_sdk(list in group_list()) {
        let raw = list.encode_to_vec();
        let logs: usize = list.log_groups.iter().map(|g| g.logs.len()).sum();
        let block = lz4_flex::block::compress(&raw);
        let records = check_response(&block, "lz4", raw.len());
        prop_assert_eq!(records, Ok(Some(logs)));
        // The model itself: one record per log.
        let modelled: usize = list.log_groups.iter().map(|g| model_flatten(g).len()).sum();
        prop_assert_eq!(modelled, logs);
    }

    /// Whole bodies (repeated and reserved keys, missing and odd nanosecond parts, several
    /// groups with their own cursors) under any settings, kv, JSON or LEEF with constant
    /// header values seven times in eight: the logs written as they are read come out exactly as when each
    /// is formatted from its record.
    #[test]
    fn streamed_bodies_match_their_records(
        list in group_list(),
        (vars, udp) in vars(),
        streamable in prop_oneof![3 => Just(Some("kv")), 2 => Just(Some("json")), 2 => Just(Some("leef")), 1 => Just(None)],
        group_fields in any::<bool>(),
    ) {
        streams_like_records(&list, vars, udp, streamable, group_fields)?;
    }
}

/// Bodies whose logs share one list of keys, as the logs of a real group do, each log with
/// the last one's keys, changed or not: a key replaced, the list cut short or made longer,
/// an earlier key repeated, a content named like the nanosecond part (which only some logs
/// have), or back to the group's first keys.
fn repeating_group_list() -> impl Strategy<Value = LogGroupList> {
    let log = (
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        (0..12usize, 0..8usize, key()),
        vec(short_bytes(), 1..4),
    );
    vec(
        (
            pairs(short_bytes(), short_bytes(), 0..3),
            vec(key(), 0..6),
            vec(log, 1..8),
        ),
        1..4,
    )
    .prop_map(|groups| LogGroupList {
        log_groups: groups
            .into_iter()
            .map(|(tags, base, logs)| {
                let mut group = LogGroup::default();
                // Each log's keys are the last log's, changed (or not, or back to the base).
                let mut keys = base.clone();
                for (time, time_ns, (change, at, other), values) in logs {
                    let at = at % (keys.len() + 1);
                    match change {
                        0 if at < keys.len() => keys[at] = other,
                        1 => keys.truncate(at),
                        2 => keys.insert(at, other),
                        3 if !keys.is_empty() => keys.push(keys[at % keys.len()].clone()),
                        4 => keys.insert(at, b"__time_ns_part__".to_vec()),
                        5 => keys.clone_from(&base),
                        _ => {}
                    }
                    let contents = keys
                        .iter()
                        .cloned()
                        .enumerate()
                        .map(|(i, k)| (k, values[i % values.len()].clone()))
                        .collect();
                    let one = case_group(&Case {
                        time,
                        time_ns,
                        tags: tags.clone(),
                        contents,
                        ..Case::default()
                    });
                    group.log_tags = one.log_tags;
                    group.logs.extend(one.logs);
                }
                group
            })
            .collect(),
    })
}

/// Formats `list` under the settings `vars` (with the body format `streamable`, and header
/// values from the group's fields when `group_fields`), streamed and from records: the
/// oracle requires the same bytes.
fn streams_like_records(
    list: &LogGroupList,
    vars: Vec<(String, String)>,
    udp: bool,
    streamable: Option<&str>,
    group_fields: bool,
) -> Result<(), TestCaseError> {
    let mut map: HashMap<String, String> = vars.into_iter().collect();
    if let Some(body) = streamable {
        map.insert("SYSLOG_MESSAGE_FORMAT".into(), body.into());
        map.retain(|k, _| !k.ends_with("_FIELD") || k.starts_with("SYSLOG_CEF"));
        if group_fields {
            // Header values from the group's fields (tag keys include `host`, `level`
            // and `msgid`; a content may be named `__tag__:x`): the logs still stream,
            // but for a content named like one of those tags.
            for (k, v) in [
                ("SYSLOG_HOSTNAME_FIELD", "__tag__:host"),
                ("SYSLOG_APP_NAME_FIELD", "__topic__"),
                ("SYSLOG_MSGID_FIELD", "__tag__:x"),
                ("SYSLOG_SEVERITY_FIELD", "__tag__:level"),
                ("SYSLOG_FACILITY_FIELD", "__source__"),
                ("SYSLOG_LEEF_EVENT_ID_FIELD", "__tag__:msgid"),
            ] {
                map.insert(k.into(), v.into());
            }
        }
    }
    map.insert("SYSLOG_HOST".into(), "127.0.0.1".into());
    map.insert(
        "SYSLOG_PROTOCOL".into(),
        if udp { "udp" } else { "tcp" }.into(),
    );
    let Ok(settings) = Settings::from_lookup(|k| map.get(k).cloned()) else {
        return Ok(());
    };
    let origin = Origin {
        project: "p",
        logstore: "l",
        shard: 2,
        cursor: "MTUyOTQ4MDIwOTY1NTk3ODAwMA==",
    };
    let body = list.encode_to_vec();
    if let Err(e) = check_fill(&settings, &body, &origin) {
        prop_assert!(false, "{}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Logs that repeat their group's keys (which the streaming path checks only from the
    /// first other key on), with the changes real logs have: streamed, they come out
    /// exactly as from their records.
    #[test]
    fn logs_repeating_their_groups_keys_match_their_records(
        list in repeating_group_list(),
        (vars, udp) in vars(),
        streamable in prop_oneof![3 => Just(Some("kv")), 1 => Just(Some("json")), 1 => Just(Some("leef"))],
        group_fields in any::<bool>(),
    ) {
        streams_like_records(&list, vars, udp, streamable, group_fields)?;
    }
}

/// The oracle accepts a plain log in every format, body and framing (so the properties above
/// check something), with awkward bytes in a value and two keys whose CEF keys collide.
#[test]
fn the_oracle_accepts_a_plain_log_everywhere() {
    for format in ["rfc5424", "rfc3164"] {
        for body in ["kv", "json", "cef", "leef"] {
            for (framing, udp) in [("lf", false), ("octet-counting", false), ("lf", true)] {
                let case = Case {
                    vars: [
                        ("SYSLOG_FORMAT", format),
                        ("SYSLOG_MESSAGE_FORMAT", body),
                        ("SYSLOG_FRAMING", framing),
                        ("SYSLOG_SD_ID", "sls@32473"),
                    ]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .to_vec(),
                    udp,
                    time: 1_709_622_489,
                    time_ns: Some(123_456_789),
                    topic: Some(b"t".to_vec()),
                    contents: vec![
                        (b"msg".to_vec(), b"a\nb=c|d\\e\xff]\"".to_vec()),
                        (b"remote_addr".to_vec(), b"1".to_vec()),
                        (b"remote-addr".to_vec(), b"2".to_vec()),
                    ],
                    project: "p".into(),
                    logstore: "l]".into(),
                    cursor: "MTU=".into(),
                    ..Case::default()
                };
                assert_eq!(
                    check_case(&case),
                    Ok(Outcome::Checked { truncated: false }),
                    "{format} {body} {framing} udp={udp}"
                );
            }
        }
    }
}

/// The frame checker catches what it is there to catch.
#[test]
fn the_oracle_refuses_broken_frames() {
    use sls_syslog::devkit::check_frame::check_frame;
    use sls_syslog::syslog::Framing;
    let msg = "aé\nb".as_bytes();
    let lf = Some(Framing::Lf);
    let octets = Some(Framing::OctetCounting);
    assert!(check_frame(lf, msg, b"a\xc3\xa9\\nb\n", 100, false).is_ok());
    assert!(check_frame(lf, msg, b"a\xc3\xa9\nb\n", 100, false).is_err());
    assert!(check_frame(lf, msg, b"a\xc3\xa9\\nb\n", 100, true).is_err());
    assert!(check_frame(octets, msg, b"5 a\xc3\xa9\nb", 100, false).is_ok());
    assert!(check_frame(octets, msg, b"6 a\xc3\xa9\nb", 100, false).is_err());
    assert!(check_frame(octets, msg, b"05 a\xc3\xa9\nb", 100, false).is_err());
    // Cut inside é, cut shorter than needed, over the cap.
    assert!(check_frame(None, msg, b"a", 2, true).is_ok());
    assert!(check_frame(None, msg, b"a\xc3", 2, true).is_err());
    assert!(check_frame(None, msg, b"a", 3, true).is_err());
    assert!(check_frame(None, msg, b"a\xc3\xa9", 2, true).is_err());
    // LF framing: an escape is not split, and counts two bytes.
    assert!(check_frame(lf, msg, b"a\xc3\xa9\n", 4, true).is_ok());
    assert!(check_frame(lf, msg, b"a\xc3\xa9\\\n", 4, true).is_err());
    assert!(check_frame(lf, msg, b"a\xc3\xa9\\n\n", 5, true).is_ok());
}
