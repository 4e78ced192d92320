//! sls-syslog: a Function Compute custom runtime that ships one SLS shard's cursor range to a
//! SIEM over syslog.
//!
//! Module map, in data-path order:
//! - [`fc`]: the custom-runtime HTTP contract (`/invoke`, `/initialize`, `/pre-stop`, …);
//! - [`trigger`]: the SLS trigger event;
//! - [`sls`]: the hand-written SLS client (endpoint, signing, LZ4, protobuf, PullLogs);
//! - [`record`]: LogGroup → flat records, in the official SDK's order;
//! - [`text`]: the control-byte (CR, LF, tab) check of keys and values;
//! - [`syslog`]: RFC 5424 header, `kv` body, framing and TCP/UDP transport;
//! - [`ship`]: the pipeline of one invocation and its delivery rule;
//! - [`config`]: every environment variable, validated in one place;
//! - [`devkit`]: the local SLS test server, a tiny receiver and the demo (no cloud account);
//! - [`cli`]: the operator commands `check` and `invoke`;
//! - [`buffers`]: large buffers kept across pulls;
//! - [`sys`]: the only `unsafe` code (the `SIOCOUTQ` ioctl, ASCII as `str`); the rest of
//!   the crate denies it.

#![deny(unsafe_code)]

pub mod buffers;
pub mod cli;
pub mod config;
pub mod devkit;
pub mod fc;
pub mod record;
pub mod secret;
pub mod ship;
pub mod sls;
#[allow(unsafe_code)]
pub mod sys;
pub mod syslog;
pub mod text;
pub mod time;
pub mod trigger;

use std::sync::atomic::{AtomicU64, Ordering};

/// A cheap, non-cryptographic random number for retry jitter (xorshift over the clock and a
/// counter).
pub(crate) fn jitter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut x = COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}
