//! Message bodies (MSG), one writer per `SYSLOG_MESSAGE_FORMAT`:
//!
//! - `kv`: the reference function's `||key=value` for every field but `__time__`, in SDK
//!   order, so existing SIEM parsers keep working (the separator is configurable);
//! - `json`: one object with every field (`__time__` and `__time_ns_part__` as numbers);
//! - `cef`: ArcSight CEF 0 (header escaping of `\` and `|`, extension escaping of `\`, `=`,
//!   CR and LF, as the CEF Implementation Standard says);
//! - `leef`: IBM QRadar LEEF 2.0 with a chosen delimiter and `devTime`/`devTimeFormat`.
//!
//! The fields written are chosen by [`FieldFilter`] (`SYSLOG_INCLUDE_FIELDS`,
//! `SYSLOG_EXCLUDE_FIELDS`).

use std::borrow::Cow;

use super::frame::write_decimal;
use super::header::{put_digits, put_time};
use crate::record::{Record, Value};
use crate::time::Utc;

/// Exact names and `prefix*` patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns(Vec<String>);

impl Patterns {
    /// A comma-separated list; blanks are ignored.
    pub fn parse(list: &str) -> Patterns {
        Patterns(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, key: &str) -> bool {
        self.0.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => p == key,
        })
    }
}

/// Which fields a body carries: all, or the included ones, minus the excluded ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldFilter {
    pub include: Patterns,
    pub exclude: Patterns,
}

impl FieldFilter {
    /// Whether every field is kept (no include or exclude list).
    #[inline(always)]
    pub fn keeps_all(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    #[inline(always)]
    pub fn keeps(&self, key: &str) -> bool {
        self.keeps_all() || self.keeps_listed(key)
    }

    #[inline(never)]
    fn keeps_listed(&self, key: &str) -> bool {
        (self.include.is_empty() || self.include.matches(key)) && !self.exclude.matches(key)
    }
}

/// Appends `value` as text.
#[inline]
pub fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Text(t) => out.extend_from_slice(t.as_bytes()),
        Value::Number(n) => write_decimal(out, u64::from(*n)),
    }
}

/// `||key=value…` (with `separator` in place of `||`), every kept field but `__time__`.
pub fn write_kv(out: &mut Vec<u8>, record: &Record<'_>, separator: &str, filter: &FieldFilter) {
    for (key, value) in &record.fields {
        if key == "__time__" || !filter.keeps(key) {
            continue;
        }
        kv_key(out, separator, key);
        write_value(out, value);
    }
}

/// `||key=` of a kv body (with `separator` in place of `||`): the value comes next.
#[inline(always)]
pub fn kv_key(out: &mut Vec<u8>, separator: &str, key: &str) {
    out.extend_from_slice(separator.as_bytes());
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
}

/// `||key=value` of a kv body (with `separator` in place of `||`).
#[inline(always)]
pub fn kv_pair(out: &mut Vec<u8>, separator: &str, key: &str, value: &str) {
    kv_key(out, separator, key);
    out.extend_from_slice(value.as_bytes());
}

/// `{"key": value, …}` for every kept field, in order.
pub fn write_json(out: &mut Vec<u8>, record: &Record<'_>, filter: &FieldFilter) {
    out.push(b'{');
    let mut first = true;
    for (key, value) in record.fields.iter().filter(|(k, _)| filter.keeps(k)) {
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(out, key);
        out.push(b':');
        match value {
            Value::Text(t) => json_string(out, t),
            Value::Number(n) => write_decimal(out, u64::from(*n)),
        }
    }
    out.push(b'}');
}

/// Which bytes a writer replaces.
type Special = [bool; 256];

/// A [`Special`] table of `bytes`, plus the control characters when `controls`.
const fn special(bytes: &[u8], controls: bool) -> Special {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    let mut c = 0;
    while controls && c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t
}

/// Appends `s`, each byte marked in `special` replaced by `replace(byte)`, the runs of other
/// bytes copied whole (found by one table lookup per byte).
#[inline]
fn write_replacing(
    out: &mut Vec<u8>,
    s: &[u8],
    special: &Special,
    replace: impl Fn(u8) -> &'static [u8],
) {
    let mut rest = s;
    while let Some(i) = rest.iter().position(|&b| special[usize::from(b)]) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(replace(rest[i]));
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// `\u00XX` for each control character.
static JSON_CONTROL: [[u8; 6]; 32] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 6]; 32];
    let mut i = 0;
    while i < 32 {
        t[i] = [b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// A JSON string (RFC 8259 §7: `"`, `\` and control characters escaped).
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    static SPECIAL: Special = special(b"\"\\", true);
    out.push(b'"');
    write_replacing(out, s.as_bytes(), &SPECIAL, |b| match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        _ => &JSON_CONTROL[usize::from(b & 0x1f)],
    });
    out.push(b'"');
}

/// CEF header settings, already escaped where they are constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cef {
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub event_class: String,
    pub event_class_field: Option<String>,
    pub name: String,
    pub name_field: Option<String>,
    pub severity: String,
    pub severity_field: Option<String>,
}

/// String-typed keys of the ArcSight extension dictionary that SLS fields keep when named
/// the same (sorted: looked up by binary search). Typed keys (addresses such as `src`, ports, counts, times) are left out: a log
/// value need not fit their type, and ArcSight would misparse it.
const CEF_KEYS: &[&str] = &[
    "act",
    "app",
    "cat",
    "cs1",
    "cs1Label",
    "cs2",
    "cs2Label",
    "cs3",
    "cs3Label",
    "cs4",
    "cs4Label",
    "cs5",
    "cs5Label",
    "cs6",
    "cs6Label",
    "destinationServiceName",
    "deviceDirection",
    "deviceExternalId",
    "deviceFacility",
    "deviceInboundInterface",
    "deviceOutboundInterface",
    "deviceProcessName",
    "dhost",
    "dntdom",
    "dpriv",
    "dproc",
    "duid",
    "duser",
    "dvchost",
    "externalId",
    "fileHash",
    "fileId",
    "filePath",
    "filePermission",
    "fileType",
    "flexString1",
    "flexString1Label",
    "flexString2",
    "flexString2Label",
    "fname",
    "msg",
    "outcome",
    "proto",
    "reason",
    "request",
    "requestClientApplication",
    "requestContext",
    "requestCookies",
    "requestMethod",
    "shost",
    "sntdom",
    "spriv",
    "sproc",
    "suid",
    "suser",
];

/// The CEF extension key for an SLS field: the field name itself when it is an ArcSight
/// dictionary key, else a custom key `sls` + the name's letters and digits in camel case
/// (`remote_addr` → `slsRemoteAddr`, `__tag__:__hostname__` → `slsTagHostname`).
pub fn cef_key(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len() + 3);
    write_cef_key(&mut out, field);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`cef_key`]`(field)`; returns whether it is a custom (`sls…`) key.
fn write_cef_key(out: &mut Vec<u8>, field: &str) -> bool {
    // Dictionary keys are letters and digits only.
    if field.bytes().all(|b| b.is_ascii_alphanumeric()) && CEF_KEYS.binary_search(&field).is_ok() {
        out.extend_from_slice(field.as_bytes());
        return false;
    }
    let start = out.len();
    out.extend_from_slice(b"sls");
    // The parts between non-alphanumeric characters are ASCII letters and digits.
    for part in field.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Some((first, rest)) = part.as_bytes().split_first() {
            out.push(first.to_ascii_uppercase());
            out.extend_from_slice(rest);
        }
    }
    if out.len() == start + 3 {
        out.extend_from_slice(b"Field");
    }
    true
}

/// Escapes a CEF header field: `\` and `|` get a backslash; CR and LF (not allowed in the
/// header) become spaces.
pub fn cef_header(out: &mut Vec<u8>, s: &str) {
    static SPECIAL: Special = special(b"\\|\r\n", false);
    write_replacing(out, s.as_bytes(), &SPECIAL, |b| match b {
        b'\\' => b"\\\\",
        b'|' => b"\\|",
        _ => b" ",
    });
}

/// Escapes a CEF extension value: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r`.
pub fn cef_value(out: &mut Vec<u8>, s: &str) {
    static SPECIAL: Special = special(b"\\=\n\r", false);
    write_replacing(out, s.as_bytes(), &SPECIAL, |b| match b {
        b'\\' => b"\\\\",
        b'=' => b"\\=",
        b'\n' => b"\\n",
        _ => b"\\r",
    });
}

fn text<'r>(record: &'r Record<'_>, field: Option<&str>) -> Option<Cow<'r, str>> {
    let s = match record.get(field?)? {
        Value::Text(t) => Cow::Borrowed(t.as_ref()),
        Value::Number(n) => Cow::Owned(n.to_string()),
    };
    (!s.trim().is_empty()).then_some(s)
}

/// A CEF severity: 0–10 or Unknown/Low/Medium/High/Very-High.
pub fn is_cef_severity(s: &str) -> bool {
    s.parse::<u8>().is_ok_and(|n| n <= 10)
        || matches!(s, "Unknown" | "Low" | "Medium" | "High" | "Very-High")
}

/// `CEF:0|vendor|product|version|class|name|severity|rt=… key=value…`.
pub fn write_cef(out: &mut Vec<u8>, record: &Record<'_>, cef: &Cef, filter: &FieldFilter) {
    out.extend_from_slice(b"CEF:0|");
    for part in [&cef.vendor, &cef.product, &cef.version] {
        cef_header(out, part);
        out.push(b'|');
    }
    let class = text(record, cef.event_class_field.as_deref());
    cef_header(out, class.as_deref().unwrap_or(&cef.event_class));
    out.push(b'|');
    let name = text(record, cef.name_field.as_deref());
    cef_header(out, name.as_deref().unwrap_or(&cef.name));
    out.push(b'|');
    let severity = text(record, cef.severity_field.as_deref()).filter(|s| is_cef_severity(s));
    cef_header(out, severity.as_deref().unwrap_or(&cef.severity));
    out.push(b'|');
    // rt: the log's time in epoch milliseconds.
    let millis =
        u64::from(record.time) * 1000 + u64::from(record.time_ns.min(999_999_999)) / 1_000_000;
    out.extend_from_slice(b"rt=");
    write_decimal(out, millis);
    // Dictionary keys are field names, unique in a record, and never `rt` (not in the
    // dictionary list); custom keys can collide (`remote_addr`, `remote-addr`): a later one
    // gets a number. Where each custom key was written, to compare (no allocation for the
    // first 32).
    let mut custom = [(0usize, 0usize); 32];
    let mut more: Vec<(usize, usize)> = Vec::new();
    let mut n_custom = 0usize;
    let mut keys = CEF_MEMO.with_borrow_mut(std::mem::take);
    for (pos, (key, value)) in record
        .fields
        .iter()
        .filter(|(key, _)| key != "__time__" && key != "__time_ns_part__" && filter.keeps(key))
        .enumerate()
    {
        out.push(b' ');
        let start = out.len();
        if keys.write(out, pos, key) {
            let base_end = out.len();
            let seen = |out: &Vec<u8>, end: usize| {
                let k = &out[start..end];
                custom[..n_custom.min(32)]
                    .iter()
                    .chain(more.iter())
                    .any(|&(s, e)| &out[s..e] == k)
            };
            let mut n = 2;
            while seen(out, out.len()) {
                out.truncate(base_end);
                write_decimal(out, n);
                n += 1;
            }
            if n_custom < 32 {
                custom[n_custom] = (start, out.len());
            } else {
                more.push((start, out.len()));
            }
            n_custom += 1;
        }
        out.push(b'=');
        match value {
            Value::Text(t) => cef_value(out, t),
            Value::Number(n) => write_decimal(out, u64::from(*n)),
        }
    }
    CEF_MEMO.with_borrow_mut(|memo| *memo = keys);
}

thread_local! {
    /// The CEF keys of the last messages written on this thread.
    static CEF_MEMO: std::cell::RefCell<KeyMemo> = const { std::cell::RefCell::new(KeyMemo::new()) };
}

/// CEF keys by field position: the logs of a log group (and of a logstore) mostly repeat
/// the same field names in the same order, so the key for the `pos`-th field is usually the
/// one worked out for the previous message, and checking that is one comparison instead of a
/// dictionary search and a camel-case conversion.
#[derive(Default)]
struct KeyMemo {
    /// Field name, CEF key, whether the key is custom.
    slots: Vec<(String, Vec<u8>, bool)>,
}

impl KeyMemo {
    /// Positions remembered at most (a message with more fields converts the rest each time).
    const MAX: usize = 256;

    const fn new() -> KeyMemo {
        KeyMemo { slots: Vec::new() }
    }

    /// Appends the CEF key of `field`, the `pos`-th field written; returns whether it is a
    /// custom key (as [`write_cef_key`]).
    fn write(&mut self, out: &mut Vec<u8>, pos: usize, field: &str) -> bool {
        if let Some((name, key, custom)) = self.slots.get(pos) {
            if name == field {
                out.extend_from_slice(key);
                return *custom;
            }
        }
        let start = out.len();
        let custom = write_cef_key(out, field);
        let key = &out[start..];
        if let Some(slot) = self.slots.get_mut(pos) {
            slot.0.clear();
            slot.0.push_str(field);
            slot.1.clear();
            slot.1.extend_from_slice(key);
            slot.2 = custom;
        } else if pos == self.slots.len() && pos < KeyMemo::MAX {
            self.slots.push((field.to_owned(), key.to_vec(), custom));
        }
        custom
    }
}

/// LEEF 2.0 header settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leef {
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub event_id: String,
    pub event_id_field: Option<String>,
    /// The attribute delimiter.
    pub delimiter: char,
}

/// `SYSLOG_LEEF_DELIMITER`: one character, or its code as `0xHH`/`xHH` (1–4 hex digits), as
/// LEEF 2.0 allows. It must be ASCII (the header announces one byte); `|`, `=`, CR and LF
/// cannot delimit attributes, and neither can what the fixed `devTime` and `devTimeFormat`
/// values contain (letters, digits, space, `:` and `.`): they would be split.
pub fn parse_leef_delimiter(s: &str) -> Option<char> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix('x'));
    let c = match hex {
        Some(h) if (1..=4).contains(&h.len()) && s.chars().count() > 1 => {
            char::from_u32(u32::from_str_radix(h, 16).ok()?)?
        }
        _ => {
            let mut chars = s.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            c
        }
    };
    (c.is_ascii()
        && !c.is_ascii_alphanumeric()
        && !matches!(c, '|' | '=' | '\r' | '\n' | '\0' | ' ' | ':' | '.'))
    .then_some(c)
}

/// How the delimiter is written in the header: itself when printable, else `0xHH`.
fn write_leef_delimiter_header(out: &mut Vec<u8>, d: u8) {
    if d.is_ascii_graphic() {
        out.push(d);
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.extend_from_slice(&[
            b'0',
            b'x',
            HEX[usize::from(d >> 4)],
            HEX[usize::from(d & 15)],
        ]);
    }
}

/// LEEF defines no escaping: the delimiter, CR and LF inside a value become spaces, and so
/// do `|` in header fields; keys also lose `=` and whitespace.
/// (`also` is ASCII, so no byte of a multi-byte character matches it.)
fn leef_clean(out: &mut Vec<u8>, s: &str, special: &Special) {
    write_replacing(out, s.as_bytes(), special, |_| b" ");
}

/// The [`leef_clean`] table of CR, LF and `also`.
fn leef_special(also: &[u8]) -> Special {
    let mut t = special(b"\r\n", false);
    for &b in also {
        t[usize::from(b)] = true;
    }
    t
}

/// The `devTimeFormat` of [`write_leef`].
pub const LEEF_DEV_TIME_FORMAT: &str = "MMM dd yyyy HH:mm:ss.SSS z";

/// `LEEF:2.0|vendor|product|version|eventID|delimiter|devTime=…^devTimeFormat=…^key=value…`.
pub fn write_leef(out: &mut Vec<u8>, record: &Record<'_>, leef: &Leef, filter: &FieldFilter) {
    let event_id = text(record, leef.event_id_field.as_deref());
    leef_head(out, leef, event_id.as_deref().unwrap_or(&leef.event_id));
    let d = leef.delimiter as u8;
    leef_dev_time(out, d, record.time, record.time_ns);
    let tables = LeefTables::new(d);
    for (key, value) in &record.fields {
        if leef_skips(key) || !filter.keeps(key) {
            continue;
        }
        match value {
            Value::Text(t) => tables.attribute(out, key, t),
            Value::Number(n) => {
                tables.key(out, key);
                write_decimal(out, u64::from(*n));
            }
        }
    }
}

/// `LEEF:2.0|vendor|product|version|eventID|delimiter|`.
pub fn leef_head(out: &mut Vec<u8>, leef: &Leef, event_id: &str) {
    static HEADER: Special = special(b"\r\n|", false);
    out.extend_from_slice(b"LEEF:2.0|");
    for part in [&leef.vendor, &leef.product, &leef.version, event_id] {
        leef_clean(out, part, &HEADER);
        out.push(b'|');
    }
    // ASCII: parse_leef_delimiter accepts nothing else.
    write_leef_delimiter_header(out, leef.delimiter as u8);
    out.push(b'|');
}

/// `devTime=Mmm dd yyyy HH:mm:ss.SSS UTC` + delimiter + `devTimeFormat=…` from the log's
/// time.
pub fn leef_dev_time(out: &mut Vec<u8>, d: u8, time: u32, time_ns: u32) {
    let t = Utc::from_unix(i64::from(time));
    let millis = time_ns.min(999_999_999) / 1_000_000;
    let mut b = *b"devTime=Mmm dd yyyy HH:mm:ss.SSS UTC";
    b[8..11].copy_from_slice(t.month_abbr().as_bytes());
    put_digits(&mut b[12..14], t.day);
    // A u32 of seconds ends in 2106: the year has four digits.
    put_digits(&mut b[15..19], t.year as u32);
    put_time(&mut b[20..28], time % 86_400);
    put_digits(&mut b[29..32], millis);
    out.extend_from_slice(&b);
    out.push(d);
    out.extend_from_slice(b"devTimeFormat=");
    out.extend_from_slice(LEEF_DEV_TIME_FORMAT.as_bytes());
}

/// Fields a LEEF body leaves out: the time ones, written as `devTime` above.
pub fn leef_skips(key: &str) -> bool {
    matches!(
        key,
        "__time__" | "__time_ns_part__" | "devTime" | "devTimeFormat"
    )
}

/// What [`leef_clean`] replaces in LEEF keys and values for one delimiter.
pub struct LeefTables {
    d: u8,
    key: Special,
    value: Special,
}

impl LeefTables {
    pub fn new(d: u8) -> LeefTables {
        LeefTables {
            d,
            key: leef_special(&[d, b'=', b' ', b'\t']),
            value: leef_special(&[d]),
        }
    }

    /// Delimiter + `key=`.
    pub fn key(&self, out: &mut Vec<u8>, key: &str) {
        out.push(self.d);
        leef_clean(out, key, &self.key);
        out.push(b'=');
    }

    /// An attribute's value.
    pub fn value(&self, out: &mut Vec<u8>, value: &str) {
        leef_clean(out, value, &self.value);
    }

    /// Delimiter + `key=value`.
    pub fn attribute(&self, out: &mut Vec<u8>, key: &str, value: &str) {
        self.key(out, key);
        self.value(out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn record(fields: &[(&'static str, &'static str)]) -> Record<'static> {
        let mut r = Record {
            time: 1_700_000_000,
            time_ns: 123_456_789,
            fields: vec![
                (Cow::Borrowed("__time__"), Value::Number(1_700_000_000)),
                (
                    Cow::Borrowed("__time_ns_part__"),
                    Value::Number(123_456_789),
                ),
            ],
        };
        for (k, v) in fields {
            r.fields
                .push((Cow::Borrowed(*k), Value::Text(Cow::Borrowed(*v))));
        }
        r
    }

    fn s(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn kv_body_matches_the_reference() {
        let r = record(&[
            ("__topic__", "topic-a"),
            ("__source__", ""),
            ("msg", "a=b\nc"),
        ]);
        let mut out = Vec::new();
        write_kv(&mut out, &r, "||", &FieldFilter::default());
        assert_eq!(
            s(out),
            "||__time_ns_part__=123456789||__topic__=topic-a||__source__=||msg=a=b\nc"
        );
    }

    #[test]
    fn include_and_exclude_with_prefix_wildcards() {
        let r = record(&[
            ("__tag__:a", "1"),
            ("__tag__:b", "2"),
            ("level", "INFO"),
            ("msg", "m"),
        ]);
        let f = FieldFilter {
            include: Patterns::default(),
            exclude: Patterns::parse("__tag__:*, __time_ns_part__"),
        };
        let mut out = Vec::new();
        write_kv(&mut out, &r, " ", &f);
        assert_eq!(s(out), " level=INFO msg=m");
        let f = FieldFilter {
            include: Patterns::parse("__tag__:*,msg"),
            exclude: Patterns::parse("__tag__:b"),
        };
        let mut out = Vec::new();
        write_kv(&mut out, &r, "||", &f);
        assert_eq!(s(out), "||__tag__:a=1||msg=m");
    }

    #[test]
    fn json_parses_back_to_the_record() {
        let r = record(&[("msg", "quote \" backslash \\ nl \n 中文"), ("empty", "")]);
        let mut out = Vec::new();
        write_json(&mut out, &r, &FieldFilter::default());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["__time__"], 1_700_000_000);
        assert_eq!(v["__time_ns_part__"], 123_456_789);
        assert_eq!(v["msg"], "quote \" backslash \\ nl \n 中文");
        assert_eq!(v["empty"], "");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4);
    }

    /// The four examples of the CEF Implementation Standard's escaping section.
    #[test]
    fn cef_escaping_follows_the_standards_examples() {
        let mut h = Vec::new();
        cef_header(&mut h, "detected a | in message");
        assert_eq!(s(h), "detected a \\| in message");
        let mut h = Vec::new();
        cef_header(&mut h, "detected a \\ in packet");
        assert_eq!(s(h), "detected a \\\\ in packet");
        let mut h = Vec::new();
        cef_header(&mut h, "detected a = in message");
        assert_eq!(
            s(h),
            "detected a = in message",
            "= needs no escape in the header"
        );
        let mut v = Vec::new();
        cef_value(&mut v, "blocked a | ");
        assert_eq!(s(v), "blocked a | ", "| needs no escape in the extension");
        let mut v = Vec::new();
        cef_value(&mut v, "blocked a \\");
        assert_eq!(s(v), "blocked a \\\\");
        let mut v = Vec::new();
        cef_value(&mut v, "blocked a =");
        assert_eq!(s(v), "blocked a \\=");
        let mut v = Vec::new();
        cef_value(&mut v, "Detected a threat.\n No action needed.\r");
        assert_eq!(s(v), "Detected a threat.\\n No action needed.\\r");
    }

    fn cef() -> Cef {
        Cef {
            vendor: "Alibaba Cloud".into(),
            product: "SLS".into(),
            version: "1.0".into(),
            event_class: "sls-log".into(),
            event_class_field: Some("event_id".into()),
            name: "SLS log".into(),
            name_field: None,
            severity: "5".into(),
            severity_field: Some("sev".into()),
        }
    }

    #[test]
    fn cef_message_with_mapped_and_custom_keys() {
        let r = record(&[
            ("src", "10.0.0.1"),
            ("remote_addr", "1.2.3.4"),
            ("__tag__:__hostname__", "h|1"),
            ("msg", "a=b\nc"),
            ("event_id", "4625"),
            ("sev", "High"),
            ("日志", "x"),
        ]);
        let mut out = Vec::new();
        write_cef(&mut out, &r, &cef(), &FieldFilter::default());
        assert_eq!(
            s(out),
            "CEF:0|Alibaba Cloud|SLS|1.0|4625|SLS log|High|rt=1700000000123 slsSrc=10.0.0.1 \
             slsRemoteAddr=1.2.3.4 slsTagHostname=h|1 msg=a\\=b\\nc slsEventId=4625 slsSev=High \
             slsField=x"
        );
        let r = record(&[("sev", "11")]);
        let mut out = Vec::new();
        write_cef(&mut out, &r, &cef(), &FieldFilter::default());
        assert!(
            s(out).starts_with("CEF:0|Alibaba Cloud|SLS|1.0|sls-log|SLS log|5|"),
            "invalid severity falls back"
        );
    }

    #[test]
    fn cef_keys_never_collide() {
        let r = record(&[
            ("a_b", "1"),
            ("a-b", "2"),
            ("rt", "x"),
            ("src", "s"),
            ("act", "y"),
            ("_act", "z"),
        ]);
        let mut out = Vec::new();
        write_cef(&mut out, &r, &cef(), &FieldFilter::default());
        let out = s(out);
        assert!(
            out.ends_with(" slsAB=1 slsAB2=2 slsRt=x slsSrc=s act=y slsAct=z"),
            "{out}"
        );
        assert_eq!(out.matches(" rt=").count() + out.matches("|rt=").count(), 1);
    }

    /// Keys remembered by position from one message to the next: fields that move, change,
    /// appear and disappear still get their own key, and collisions are still numbered.
    #[test]
    fn cef_keys_stay_right_when_the_fields_change_between_messages() {
        let messages: [&[(&'static str, &'static str)]; 6] = [
            &[("status", "200"), ("remote_addr", "a"), ("msg", "m")],
            &[("status", "200"), ("remote_addr", "a"), ("msg", "m")],
            &[("msg", "m"), ("status", "200"), ("remote_addr", "a")],
            &[("remote-addr", "b"), ("remote_addr", "a")],
            &[
                ("remote_addr", "a"),
                ("remote-addr", "b"),
                ("x", "1"),
                ("y", "2"),
            ],
            &[("act", "1")],
        ];
        for fields in messages {
            let mut out = Vec::new();
            write_cef(&mut out, &record(fields), &cef(), &FieldFilter::default());
            let out = s(out);
            let mut expected = String::new();
            let mut seen: Vec<String> = Vec::new();
            for (k, v) in fields {
                let mut key = cef_key(k);
                if key.starts_with("sls") {
                    let base = key.clone();
                    let mut n = 2;
                    while seen.contains(&key) {
                        key = format!("{base}{n}");
                        n += 1;
                    }
                    seen.push(key.clone());
                }
                expected.push_str(&format!(" {key}={v}"));
            }
            assert!(out.ends_with(&expected), "{out} should end with {expected}");
        }
    }

    /// devTime written digit by digit is what `format!` gives, from 1970 to 2106.
    #[test]
    fn leef_dev_time_matches_format() {
        let times = (0..2000u32)
            .map(|i| i.wrapping_mul(2_147_483).wrapping_add(i * 7919))
            .chain([0, 951_782_400, 1_700_000_000, u32::MAX]);
        for (i, time) in times.enumerate() {
            let ns = [
                0,
                999_999,
                1_000_000,
                123_456_789,
                999_999_999,
                1_500_000_000,
            ][i % 6];
            let mut out = Vec::new();
            leef_dev_time(&mut out, b'^', time, ns);
            let t = Utc::from_unix(i64::from(time));
            let expected = format!(
                "devTime={} {:02} {:04} {:02}:{:02}:{:02}.{:03} UTC^devTimeFormat={LEEF_DEV_TIME_FORMAT}",
                t.month_abbr(),
                t.day,
                t.year,
                t.hour,
                t.minute,
                t.second,
                ns.min(999_999_999) / 1_000_000
            );
            assert_eq!(s(out), expected, "{time} {ns}");
        }
    }

    #[test]
    fn cef_dictionary_is_sorted_for_binary_search() {
        assert!(CEF_KEYS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(cef_key("suser"), "suser");
        assert_eq!(cef_key("flexString2Label"), "flexString2Label");
        assert_eq!(cef_key("remote_addr"), "slsRemoteAddr");
        assert_eq!(cef_key("——"), "slsField");
    }

    #[test]
    fn leef_delimiters() {
        assert_eq!(parse_leef_delimiter("^"), Some('^'));
        assert_eq!(parse_leef_delimiter("0x5E"), Some('^'));
        assert_eq!(parse_leef_delimiter("x5E"), Some('^'));
        assert_eq!(parse_leef_delimiter("x09"), Some('\t'));
        // Found by fuzzing: these occur in devTime/devTimeFormat and would split them.
        for bad in ["x", "H", "0", " ", ":", ".", "0x20", "x41"] {
            assert_eq!(parse_leef_delimiter(bad), None, "{bad:?}");
        }
        assert_eq!(parse_leef_delimiter("|"), None);
        assert_eq!(parse_leef_delimiter("ab"), None);
        assert_eq!(parse_leef_delimiter("é"), None);
        assert_eq!(parse_leef_delimiter("0xE9"), None);
        assert_eq!(parse_leef_delimiter(","), Some(','));
        assert_eq!(parse_leef_delimiter(""), None);
    }

    #[test]
    fn leef_message_follows_the_spec_shape() {
        let r = record(&[
            ("src", "192.0.2.0"),
            ("usrName", "joe^black"),
            ("msg", "l1\nl2"),
        ]);
        let leef = Leef {
            vendor: "Alibaba|Cloud".into(),
            product: "SLS".into(),
            version: "1.0".into(),
            event_id: "41".into(),
            event_id_field: None,
            delimiter: '^',
        };
        let mut out = Vec::new();
        write_leef(&mut out, &r, &leef, &FieldFilter::default());
        assert_eq!(
            s(out),
            "LEEF:2.0|Alibaba Cloud|SLS|1.0|41|^|devTime=Nov 14 2023 22:13:20.123 UTC^\
             devTimeFormat=MMM dd yyyy HH:mm:ss.SSS z^src=192.0.2.0^usrName=joe black^msg=l1 l2"
        );
        let tab = Leef {
            delimiter: '\t',
            ..leef
        };
        let mut out = Vec::new();
        write_leef(&mut out, &record(&[]), &tab, &FieldFilter::default());
        assert!(s(out).starts_with("LEEF:2.0|Alibaba Cloud|SLS|1.0|41|0x09|devTime="));
    }
}
