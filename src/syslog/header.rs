//! RFC 5424 header parts: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA`
//! (assembled by [`format`](super::format)).
//!
//! Every field is present; empty ones are the NILVALUE `-`. Header fields are cleaned to
//! PRINTUSASCII (bytes 33–126; anything else becomes `_`) and cut to their RFC lengths
//! (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32). TIMESTAMP is UTC with microseconds:
//! `2023-11-14T22:13:20.123456Z`.

use crate::time::Utc;

/// RFC 5424 field length limits.
pub const HOSTNAME_MAX: usize = 255;
pub const APP_NAME_MAX: usize = 48;
pub const PROCID_MAX: usize = 128;
pub const MSGID_MAX: usize = 32;

/// Writes the start of headers: `<PRI>` and the timestamp, RFC 5424
/// `YYYY-MM-DDThh:mm:ss.ffffffZ` (nanoseconds truncated to microseconds, as RFC 5424 allows
/// at most six fraction digits; an out-of-range nanosecond part is clamped) or RFC 3164
/// `Mmm dd hh:mm:ss`. The calendar date is worked out only when the day changes (the logs
/// of a pull are mostly of one day) and `<PRI>` only when the PRI does.
#[derive(Debug, Default, Clone)]
pub struct Timestamps {
    /// Days since the epoch of the dates (`None` before the first).
    day: Option<u32>,
    /// `YYYY-MM-DD`.
    date: [u8; 10],
    /// `Mmm dd` (the day padded with a space).
    legacy_date: [u8; 6],
    /// The PRI of `pri_text` (`None` before the first).
    pri: Option<u16>,
    /// `<PRI>`, `pri_len` bytes.
    pri_text: [u8; 8],
    pri_len: usize,
}

impl Timestamps {
    /// `<PRI>`.
    pub fn write_pri(&mut self, out: &mut Vec<u8>, pri: u16) {
        if self.pri != Some(pri) {
            // At most five digits: `<` + digits + `>` fits the eight bytes.
            let mut buf = itoa::Buffer::new();
            let digits = buf.format(pri).as_bytes();
            self.pri_text[0] = b'<';
            self.pri_text[1..=digits.len()].copy_from_slice(digits);
            self.pri_text[digits.len() + 1] = b'>';
            self.pri_len = digits.len() + 2;
            self.pri = Some(pri);
        }
        out.extend_from_slice(&self.pri_text[..self.pri_len]);
    }

    /// The dates of `day`, worked out when it is not the last one's.
    fn day(&mut self, day: u32) {
        if self.day == Some(day) {
            return;
        }
        let t = Utc::from_unix(i64::from(day) * 86_400);
        put_digits(&mut self.date[0..4], t.year as u32);
        self.date[4] = b'-';
        put_digits(&mut self.date[5..7], t.month);
        self.date[7] = b'-';
        put_digits(&mut self.date[8..10], t.day);
        self.legacy_date[..3].copy_from_slice(t.month_abbr().as_bytes());
        self.legacy_date[3] = b' ';
        put_digits(&mut self.legacy_date[4..6], t.day);
        if t.day < 10 {
            self.legacy_date[4] = b' ';
        }
        self.day = Some(day);
    }

    /// The RFC 5424 timestamp.
    pub fn write(&mut self, out: &mut Vec<u8>, time: u32, time_ns: u32) {
        let (day, second) = (time / 86_400, time % 86_400);
        self.day(day);
        let micros = time_ns.min(999_999_999) / 1000;
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        buf[..10].copy_from_slice(&self.date);
        put_time(&mut buf[11..19], second);
        put_digits(&mut buf[20..26], micros);
        out.extend_from_slice(&buf);
    }

    /// The RFC 3164 timestamp.
    pub fn write_legacy(&mut self, out: &mut Vec<u8>, time: u32) {
        let (day, second) = (time / 86_400, time % 86_400);
        self.day(day);
        let mut buf = *b"Mmm dd 00:00:00";
        buf[..6].copy_from_slice(&self.legacy_date);
        put_time(&mut buf[7..15], second);
        out.extend_from_slice(&buf);
    }
}

/// `hh:mm:ss` of the `second` of a day into `slot` (8 bytes).
pub(crate) fn put_time(slot: &mut [u8], second: u32) {
    put_digits(&mut slot[0..2], second / 3600);
    slot[2] = b':';
    put_digits(&mut slot[3..5], second / 60 % 60);
    slot[5] = b':';
    put_digits(&mut slot[6..8], second % 60);
}

/// Writes the last `slot.len()` decimal digits of `n` into `slot`, zero-padded.
pub(crate) fn put_digits(slot: &mut [u8], mut n: u32) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends a header field: PRINTUSASCII only (one `_` per other character), at most `max`
/// characters, `-` when empty.
pub fn write_header_field(out: &mut Vec<u8>, value: &str, max: usize) {
    if value.is_empty() {
        out.push(b'-');
    } else if value.len() <= max && value.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        out.extend_from_slice(value.as_bytes());
    } else {
        out.extend(
            value
                .chars()
                .map(|c| {
                    if ('!'..='~').contains(&c) {
                        c as u8
                    } else {
                        b'_'
                    }
                })
                .take(max),
        );
    }
}

/// [`write_header_field`] into a new string.
pub fn header_field(value: &str, max: usize) -> String {
    let mut out = Vec::with_capacity(value.len().min(max));
    write_header_field(&mut out, value, max);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_utc_with_six_digits() {
        let ts = |t, ns| {
            let mut v = Vec::new();
            Timestamps::default().write(&mut v, t, ns);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(ts(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            ts(1_709_622_489, 123_456_000),
            "2024-03-05T07:08:09.123456Z"
        );
        assert_eq!(ts(1_709_622_489, 999), "2024-03-05T07:08:09.000000Z");
        assert_eq!(ts(1_709_622_489, 1_000), "2024-03-05T07:08:09.000001Z");
        assert_eq!(ts(u32::MAX, u32::MAX), "2106-02-07T06:28:15.999999Z");
    }

    #[test]
    fn one_writer_over_many_days_writes_what_a_fresh_one_does() {
        let mut timestamps = Timestamps::default();
        let times = [
            0,
            86_399,
            86_400,
            1,
            1_709_596_800,
            1_709_682_799,
            1_709_682_800,
        ]
        .into_iter()
        .chain((0..2_000u32).map(|i| 1_700_000_000u32.wrapping_add(i.wrapping_mul(7_919))))
        .chain([u32::MAX, 0]);
        for (i, time) in times.enumerate() {
            let ns = (i as u32).wrapping_mul(123_456_789);
            let (mut fresh, mut reused) = (Vec::new(), Vec::new());
            Timestamps::default().write(&mut fresh, time, ns);
            timestamps.write(&mut reused, time, ns);
            assert_eq!(reused, fresh, "{time}");
        }
    }

    #[test]
    fn pri_and_legacy_timestamps_are_what_formatting_writes() {
        let mut cached = Timestamps::default();
        let times = [
            0,
            86_399,
            86_400,
            1_709_622_489,
            1_709_164_800,
            1_704_067_199,
        ]
        .into_iter()
        .chain((0..500u32).map(|i| 1_700_000_000u32.wrapping_add(i.wrapping_mul(86_413))))
        .chain([u32::MAX]);
        for (i, time) in times.enumerate() {
            let t = Utc::from_unix(i64::from(time));
            let want = format!(
                "{} {:>2} {:02}:{:02}:{:02}",
                t.month_abbr(),
                t.day,
                t.hour,
                t.minute,
                t.second
            );
            let (mut fresh, mut reused) = (Vec::new(), Vec::new());
            Timestamps::default().write_legacy(&mut fresh, time);
            // The same writer for both kinds of timestamp and changing PRIs.
            cached.write(&mut Vec::new(), time.wrapping_add(86_400), 0);
            cached.write_legacy(&mut reused, time);
            assert_eq!(String::from_utf8(fresh).unwrap(), want);
            assert_eq!(String::from_utf8(reused).unwrap(), want);
            let pri = [0, 7, 13, 134, 191][i % 5];
            let mut out = b"x".to_vec();
            cached.write_pri(&mut out, pri);
            assert_eq!(out, format!("x<{pri}>").into_bytes());
        }
    }

    #[test]
    fn header_fields_are_printusascii_within_their_lengths() {
        assert_eq!(header_field("", HOSTNAME_MAX), "-");
        assert_eq!(header_field("my host\tné", HOSTNAME_MAX), "my_host_n_");
        assert_eq!(header_field(&"a".repeat(60), APP_NAME_MAX).len(), 48);
        assert_eq!(
            header_field(&"é".repeat(300), HOSTNAME_MAX),
            "_".repeat(255)
        );
    }
}
