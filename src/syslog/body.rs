//! Message bodies. `kv` is the reference function's: `||key=value` for every field of the
//! flattened log except `__time__`, in SDK order, so existing SIEM parsers keep working.

use std::io::Write;

use crate::record::{Record, Value};

/// Appends the `kv` body of `record`.
pub fn write_kv(out: &mut Vec<u8>, record: &Record<'_>) {
    for (key, value) in &record.fields {
        if key == "__time__" {
            continue;
        }
        out.extend_from_slice(b"||");
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        match value {
            Value::Text(t) => out.extend_from_slice(t.as_bytes()),
            // Writing to a Vec cannot fail.
            Value::Number(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn kv_body_matches_the_reference() {
        let record = Record {
            time: 1_700_000_000,
            time_ns: 123_456_789,
            fields: vec![
                (Cow::Borrowed("__time__"), Value::Number(1_700_000_000)),
                (
                    Cow::Borrowed("__topic__"),
                    Value::Text(Cow::Borrowed("topic-a")),
                ),
                (Cow::Borrowed("__source__"), Value::Text(Cow::Borrowed(""))),
                (
                    Cow::Borrowed("__time_ns_part__"),
                    Value::Number(123_456_789),
                ),
                (
                    Cow::Borrowed("__tag__:__hostname__"),
                    Value::Text(Cow::Borrowed("host-1")),
                ),
                (Cow::Borrowed("msg"), Value::Text(Cow::Borrowed("a=b\nc"))),
            ],
        };
        let mut out = Vec::new();
        write_kv(&mut out, &record);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "||__topic__=topic-a||__source__=||__time_ns_part__=123456789||__tag__:__hostname__=host-1||msg=a=b\nc"
        );
    }
}
