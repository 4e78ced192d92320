//! Deterministic, realistic sample logs: web access logs and application logs with 8–12
//! fields, Unicode values, multi-line stack traces and nanosecond time parts.

use bytes::Bytes;

use crate::sls::proto::{Content, Log, LogGroup, LogTag};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The first log's time in the sample data: 2024-03-05T07:08:09Z.
pub const BASE_TIME: u32 = 1_709_622_489;

fn kv(k: &str, v: impl Into<String>) -> Content {
    Content {
        key: Bytes::from(k.to_string()),
        value: Bytes::from(v.into()),
    }
}

const USERS: &[&str] = &[
    "alice",
    "张伟",
    "José Müller",
    "Zoë",
    "山田太郎",
    "admin",
    "Ольга",
];
const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/login",
    "/static/app.js",
    "/api/v1/users/42",
    "/search?q=%E6%97%A5%E5%BF%97",
    "/health",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15",
];
const ACTIONS: &[&str] = &[
    "login",
    "logout",
    "update_profile",
    "delete_order",
    "export_report",
];

/// `groups` log groups of `logs_per_group` logs each, the same for the same `seed`.
pub fn groups(groups: usize, logs_per_group: usize, seed: u64) -> Vec<LogGroup> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut time = BASE_TIME;
    (0..groups)
        .map(|g| {
            let web = g % 2 == 0;
            let host = format!("web-{:02}", rng.below(8));
            let logs = (0..logs_per_group)
                .map(|i| {
                    time += rng.below(2) as u32;
                    let time_ns = if (g * logs_per_group + i) % 7 == 6 {
                        None
                    } else {
                        Some(rng.below(1_000_000_000) as u32)
                    };
                    let contents = if web {
                        access_log(&mut rng)
                    } else {
                        app_log(&mut rng, i)
                    };
                    Log {
                        time,
                        contents,
                        time_ns,
                    }
                })
                .collect();
            LogGroup {
                logs,
                topic: Some(Bytes::from_static(if web {
                    b"nginx-access"
                } else {
                    b"app"
                })),
                source: Some(Bytes::from(format!(
                    "10.0.{}.{}",
                    g % 4,
                    10 + rng.below(200)
                ))),
                log_tags: vec![
                    LogTag {
                        key: Bytes::from_static(b"__hostname__"),
                        value: Bytes::from(host),
                    },
                    LogTag {
                        key: Bytes::from_static(b"__pack_id__"),
                        value: Bytes::from(format!("{:016X}-{:X}", rng.next(), g)),
                    },
                    LogTag {
                        key: Bytes::from_static(b"__receive_time__"),
                        value: Bytes::from((time + 1).to_string()),
                    },
                ],
                ..LogGroup::default()
            }
        })
        .collect()
}

fn access_log(rng: &mut Rng) -> Vec<Content> {
    let status = rng.pick(&["200", "200", "200", "301", "404", "500", "403"]);
    vec![
        kv("remote_addr", format!("203.0.113.{}", rng.below(255))),
        kv("method", rng.pick(&["GET", "GET", "POST", "PUT", "DELETE"])),
        kv("request_uri", rng.pick(PATHS)),
        kv("status", status),
        kv("body_bytes_sent", rng.below(50_000).to_string()),
        kv("request_time", format!("0.{:03}", rng.below(1000))),
        kv("http_user_agent", rng.pick(AGENTS)),
        kv("http_referer", "-"),
        kv("remote_user", rng.pick(USERS)),
        kv("host", "shop.example.com"),
    ]
}

fn app_log(rng: &mut Rng, i: usize) -> Vec<Content> {
    let level = rng.pick(&["INFO", "INFO", "WARN", "ERROR", "DEBUG"]);
    let user = rng.pick(USERS);
    let action = rng.pick(ACTIONS);
    let message = if level == "ERROR" || i % 5 == 4 {
        format!(
            "操作失败 action={action} user={user}\njava.lang.IllegalStateException: order is locked\n\tat com.example.OrderService.delete(OrderService.java:{})\n\tat com.example.Api.handle(Api.java:88)",
            100 + rng.below(300)
        )
    } else {
        format!("user {user} did {action} ✓")
    };
    vec![
        kv("level", level),
        kv("logger", "com.example.OrderService"),
        kv("thread", format!("http-nio-8080-exec-{}", rng.below(16))),
        kv(
            "trace_id",
            format!("{:016x}{:016x}", rng.next(), rng.next()),
        ),
        kv("user", user),
        kv("action", action),
        kv(
            "result",
            if level == "ERROR" {
                "failure"
            } else {
                "success"
            },
        ),
        kv("latency_ms", rng.below(2000).to_string()),
        kv("message", message),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_realistic() {
        let a = groups(4, 5, 7);
        assert_eq!(a, groups(4, 5, 7));
        assert_ne!(a, groups(4, 5, 8));
        let logs: Vec<&Log> = a.iter().flat_map(|g| &g.logs).collect();
        assert_eq!(logs.len(), 20);
        assert!(logs.iter().all(|l| (8..=12).contains(&l.contents.len())));
        let values: Vec<&[u8]> = logs
            .iter()
            .flat_map(|l| l.contents.iter().map(|c| &c.value[..]))
            .collect();
        assert!(values.iter().any(|v| v.contains(&b'\n')));
        assert!(values.iter().any(|v| !v.is_ascii()));
        assert!(logs.iter().any(|l| l.time_ns.is_some()));
        assert!(logs.iter().any(|l| l.time_ns.is_none()));
    }
}
