//! The SLS trigger event (research/fc-runtime.md §2.1), parsed and validated. A missing or
//! mistyped field is an error that names it.
//!
//! ```json
//! {"parameter": {}, "source": {"endpoint": "http://cn-shanghai-intranet.log.aliyuncs.com",
//!  "projectName": "p", "logstoreName": "l", "shardId": 0,
//!  "beginCursor": "MTUy…", "endCursor": "MTUy…"},
//!  "jobName": "…", "taskId": "…", "cursorTime": 1529486425}
//! ```

use serde_json::{Map, Value};

use crate::sls::endpoint::{Endpoint, EndpointError};

/// One shard's cursor range to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub endpoint: Endpoint,
    pub project: String,
    pub logstore: String,
    pub shard: u32,
    /// Inclusive.
    pub begin_cursor: String,
    /// Exclusive.
    pub end_cursor: String,
    pub job_name: Option<String>,
    pub task_id: Option<String>,
    pub cursor_time: Option<i64>,
    /// The trigger's `functionParameter`: an object, or a string holding one.
    pub parameter: Map<String, Value>,
    /// Why a `parameter` that is not an object was taken as no overrides.
    pub parameter_warning: Option<String>,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    #[error("the event is not a JSON object")]
    NotObject,
    #[error("the event has no field {0}")]
    Missing(&'static str),
    #[error("the event field {field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("the event field source.endpoint: {0}")]
    Endpoint(#[from] EndpointError),
}

impl Event {
    /// Parses the raw `/invoke` body.
    pub fn parse(body: &[u8]) -> Result<Event, EventError> {
        let root: Value =
            serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
        let root = root.as_object().ok_or(EventError::NotObject)?;
        let source = match root.get("source") {
            None | Some(Value::Null) => return Err(EventError::Missing("source")),
            Some(Value::Object(o)) => o,
            Some(_) => {
                return Err(EventError::Invalid {
                    field: "source",
                    problem: "must be an object".into(),
                })
            }
        };
        let endpoint = Endpoint::parse(required_str(source, "endpoint", "source.endpoint")?)?;
        let project = name(source, "projectName", "source.projectName")?;
        let logstore = name(source, "logstoreName", "source.logstoreName")?;
        let shard = match source.get("shardId") {
            None | Some(Value::Null) => return Err(EventError::Missing("source.shardId")),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| EventError::Invalid {
                    field: "source.shardId",
                    problem: format!("must be a non-negative integer, not {v}"),
                })?,
        };
        let begin_cursor = cursor(source, "beginCursor", "source.beginCursor")?;
        let end_cursor = cursor(source, "endCursor", "source.endCursor")?;
        let (parameter, parameter_warning) = parameter(root.get("parameter"));
        Ok(Event {
            endpoint,
            project,
            logstore,
            shard,
            begin_cursor,
            end_cursor,
            job_name: optional_str(root, "jobName"),
            task_id: optional_str(root, "taskId"),
            cursor_time: root.get("cursorTime").and_then(Value::as_i64),
            parameter,
            parameter_warning,
        })
    }
}

/// The overrides in a trigger's `parameter`. The console lets users type the function
/// parameter as text and the FC API types `functionParameter` as a JSON string, so a string
/// holding a JSON object is parsed as one. Anything else (other text, a number, an array…)
/// means no overrides, with a warning saying why; a missing parameter or `null` means none,
/// silently.
fn parameter(value: Option<&Value>) -> (Map<String, Value>, Option<String>) {
    let ignored = |what: &str| {
        Some(format!(
            "the trigger parameter is {what}, not a JSON object of settings: ignored, the \
             function's environment applies"
        ))
    };
    match value {
        None | Some(Value::Null) => (Map::new(), None),
        Some(Value::Object(o)) => (o.clone(), None),
        Some(Value::String(s)) if s.trim().is_empty() => (Map::new(), None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => (o, None),
            Ok(Value::Null) => (Map::new(), None),
            Ok(other) => (
                Map::new(),
                ignored(&format!("a string holding {}", kind(&other))),
            ),
            Err(_) => (Map::new(), ignored("a string that is not JSON")),
        },
        Some(other) => (Map::new(), ignored(kind(other))),
    }
}

/// What a JSON value is, in words.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a str, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(EventError::Missing(field)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(EventError::Invalid {
            field,
            problem: "is empty".into(),
        }),
        Some(Value::String(s)) => Ok(s.trim()),
        Some(v) => Err(EventError::Invalid {
            field,
            problem: format!("must be a string, not {v}"),
        }),
    }
}

/// Project and logstore names: SLS allows lower-case letters, digits, `-` and `_`.
fn name(obj: &Map<String, Value>, key: &str, field: &'static str) -> Result<String, EventError> {
    let s = required_str(obj, key, field)?;
    if s.len() > 128
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(EventError::Invalid {
            field,
            problem: format!("{s:?} is not a valid SLS name"),
        });
    }
    Ok(s.to_string())
}

/// Cursors are base64 text; anything else cannot be one.
fn cursor(obj: &Map<String, Value>, key: &str, field: &'static str) -> Result<String, EventError> {
    let s = required_str(obj, key, field)?;
    if s.len() > 1024
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
    {
        return Err(EventError::Invalid {
            field,
            problem: format!("{s:?} is not a cursor"),
        });
    }
    Ok(s.to_string())
}

fn optional_str(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{
      "parameter": {},
      "source": {
        "endpoint": "http://cn-shanghai-intranet.log.aliyuncs.com",
        "projectName": "log-com",
        "logstoreName": "log-en",
        "shardId": 0,
        "beginCursor": "MTUyOTQ4MDIwOTY1NTk3ODQ2Mw==",
        "endCursor": "MTUyOTQ4MDIwOTY1NTk3ODQ2NA=="
      },
      "jobName": "1f7043ced683de1a4e3d8d70b5a412843d817a39",
      "taskId": "c2691505-38da-4d1b-998a-f1d4bb8c9994",
      "cursorTime": 1529486425
    }"#;

    #[test]
    fn parses_the_fc3_template() {
        let e = Event::parse(TEMPLATE.as_bytes()).unwrap();
        assert_eq!(e.endpoint.host, "cn-shanghai-intranet.log.aliyuncs.com");
        assert_eq!(e.project, "log-com");
        assert_eq!(e.logstore, "log-en");
        assert_eq!(e.shard, 0);
        assert_eq!(e.begin_cursor, "MTUyOTQ4MDIwOTY1NTk3ODQ2Mw==");
        assert_eq!(e.end_cursor, "MTUyOTQ4MDIwOTY1NTk3ODQ2NA==");
        assert_eq!(
            e.task_id.as_deref(),
            Some("c2691505-38da-4d1b-998a-f1d4bb8c9994")
        );
        assert_eq!(e.cursor_time, Some(1_529_486_425));
    }

    fn with(path: &[&str], value: Option<Value>) -> String {
        let mut v: Value = serde_json::from_str(TEMPLATE).unwrap();
        let mut obj = v.as_object_mut().unwrap();
        for p in &path[..path.len() - 1] {
            obj = obj.get_mut(*p).unwrap().as_object_mut().unwrap();
        }
        let last = path[path.len() - 1];
        match value {
            Some(x) => obj.insert(last.into(), x),
            None => obj.remove(last),
        };
        v.to_string()
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        use serde_json::json;
        let cases: Vec<(String, &str)> = vec![
            (with(&["source"], None), "source"),
            (with(&["source", "endpoint"], None), "source.endpoint"),
            (with(&["source", "projectName"], None), "source.projectName"),
            (
                with(&["source", "logstoreName"], Some(json!(""))),
                "source.logstoreName",
            ),
            (with(&["source", "shardId"], None), "source.shardId"),
            (
                with(&["source", "shardId"], Some(json!(-1))),
                "source.shardId",
            ),
            (
                with(&["source", "shardId"], Some(json!("0"))),
                "source.shardId",
            ),
            (with(&["source", "beginCursor"], None), "source.beginCursor"),
            (
                with(&["source", "endCursor"], Some(json!(5))),
                "source.endCursor",
            ),
            (
                with(&["source", "endCursor"], Some(json!("a b"))),
                "source.endCursor",
            ),
            (
                with(&["source", "endpoint"], Some(json!("ftp://x"))),
                "source.endpoint",
            ),
            (
                with(&["source", "projectName"], Some(json!("a/b"))),
                "source.projectName",
            ),
        ];
        for (body, field) in cases {
            let e = Event::parse(body.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        assert!(matches!(Event::parse(b"{"), Err(EventError::NotJson(_))));
        assert!(matches!(Event::parse(b"[]"), Err(EventError::NotObject)));
        assert!(matches!(Event::parse(b""), Err(EventError::NotJson(_))));
    }

    #[test]
    fn a_parameter_may_be_a_json_string_and_anything_else_means_no_overrides() {
        use serde_json::json;
        let parse = |p: Value| Event::parse(with(&["parameter"], Some(p)).as_bytes()).unwrap();
        let e = parse(json!(r#"{"SYSLOG_PORT": "1514"}"#));
        assert_eq!(e.parameter.get("SYSLOG_PORT"), Some(&json!("1514")));
        assert_eq!(e.parameter_warning, None);
        let e = parse(json!({"SYSLOG_PORT": 1514}));
        assert_eq!(e.parameter.get("SYSLOG_PORT"), Some(&json!(1514)));
        assert_eq!(e.parameter_warning, None);
        for quiet in [json!(null), json!(""), json!("  "), json!("null")] {
            let e = parse(quiet.clone());
            assert!(e.parameter.is_empty(), "{quiet}");
            assert_eq!(e.parameter_warning, None, "{quiet}");
        }
        for (p, words) in [
            (json!("SYSLOG_PORT=1514"), "a string that is not JSON"),
            (json!("[1]"), "a string holding an array"),
            (json!("5"), "a string holding a number"),
            (json!(5), "a number"),
            (json!([1]), "an array"),
            (json!(true), "a boolean"),
        ] {
            let e = parse(p.clone());
            assert!(e.parameter.is_empty(), "{p}");
            let w = e.parameter_warning.unwrap_or_default();
            assert!(w.contains(words) && w.contains("ignored"), "{p}: {w}");
        }
        let e = Event::parse(with(&["parameter"], None).as_bytes()).unwrap();
        assert!(e.parameter.is_empty() && e.parameter_warning.is_none());
    }
}
