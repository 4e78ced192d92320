//! One log of arbitrary keys and values (invalid UTF-8, CR/LF, NUL, very long values
//! included) through flattening, the formatter and the framer, with every syslog format,
//! body format and framing, and arbitrary settings: exactly one frame that parses back
//! (`sls_syslog::devkit::check_frame::check_case`).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sls_syslog::devkit::check_frame::{check_case, Case, VARIABLES};

/// A byte string, optionally repeated to make very long values from short inputs.
#[derive(Arbitrary, Debug)]
struct Text {
    bytes: Vec<u8>,
    /// The bytes are repeated `1 + repeat % 2048` times (capped at 256 KiB).
    repeat: u16,
}

impl Text {
    fn get(&self) -> Vec<u8> {
        let n = 1 + usize::from(self.repeat % 2048);
        let mut out = self.bytes.repeat(n);
        out.truncate(256 * 1024);
        out
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    format: bool,
    body: u8,
    octet_counting: bool,
    udp: bool,
    /// `SYSLOG_MAX_MESSAGE_BYTES`: default, or `480 + n`.
    max: Option<u16>,
    /// Header fields, severity and facility from the log fields `host`, `app`, `msgid`,
    /// `level`, `facility`.
    from_fields: bool,
    sd: bool,
    /// More variables: an index into `VARIABLES` and a value.
    vars: Vec<(u8, String)>,
    time: u32,
    time_ns: Option<u32>,
    topic: Option<Vec<u8>>,
    source: Option<Vec<u8>>,
    tags: Vec<(Vec<u8>, Vec<u8>)>,
    contents: Vec<(Vec<u8>, Text)>,
    origin: (String, String, u32, String),
}

fuzz_target!(|input: Input| {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| vars.push((k.to_string(), v.to_string()));
    set(
        "SYSLOG_FORMAT",
        if input.format { "rfc3164" } else { "rfc5424" },
    );
    set(
        "SYSLOG_MESSAGE_FORMAT",
        ["kv", "json", "cef", "leef"][usize::from(input.body % 4)],
    );
    set(
        "SYSLOG_FRAMING",
        if input.octet_counting {
            "octet-counting"
        } else {
            "lf"
        },
    );
    if let Some(n) = input.max {
        set(
            "SYSLOG_MAX_MESSAGE_BYTES",
            &(480 + u32::from(n)).to_string(),
        );
    }
    if input.from_fields {
        set("SYSLOG_HOSTNAME_FIELD", "host");
        set("SYSLOG_APP_NAME_FIELD", "app");
        set("SYSLOG_MSGID_FIELD", "msgid");
        set("SYSLOG_SEVERITY_FIELD", "level");
        set("SYSLOG_FACILITY_FIELD", "facility");
        set("SYSLOG_CEF_NAME_FIELD", "msgid");
        set("SYSLOG_CEF_SEVERITY_FIELD", "level");
        set("SYSLOG_LEEF_EVENT_ID_FIELD", "msgid");
    }
    if input.sd {
        set("SYSLOG_SD_ID", "sls@32473");
    }
    for (i, v) in &input.vars {
        // Later values replace earlier ones.
        let name = VARIABLES[usize::from(*i) % VARIABLES.len()];
        vars.retain(|(k, _)| k != name);
        vars.push((name.to_string(), v.clone()));
    }
    let case = Case {
        vars,
        udp: input.udp,
        time: input.time,
        time_ns: input.time_ns,
        topic: input.topic,
        source: input.source,
        tags: input.tags,
        contents: input
            .contents
            .iter()
            .map(|(k, v)| (k.clone(), v.get()))
            .collect(),
        project: input.origin.0,
        logstore: input.origin.1,
        shard: input.origin.2,
        cursor: input.origin.3,
    };
    if let Err(e) = check_case(&case) {
        panic!("{e}\n{case:?}");
    }
});
