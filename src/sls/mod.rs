//! Hand-written client for the part of the Simple Log Service API this function needs:
//! PullLogs over one shard's cursor range.
//!
//! - [`endpoint`]: where to connect and which `Host` to send;
//! - [`sign`]: the v1 (`hmac-sha1`) request signature;
//! - [`codec`]: the raw LZ4 block / uncompressed response body;
//! - [`proto`]: the `LogGroupList` protobuf messages, values kept as bytes;
//! - [`client`]: the request itself, its errors and its retries;
//! - [`http`]: the HTTP/1.1 connections it goes over.

pub mod client;
pub mod codec;
pub mod endpoint;
pub mod http;
pub mod proto;
pub mod sign;
pub mod wire;

pub use client::{Client, Credentials, Pull, SlsError};
pub use endpoint::Endpoint;
pub use http::Http;

use base64::Engine;

/// The cursor `n` log groups after `cursor`. SLS cursors are base64 of a decimal sequence
/// number (research/sls-api.md §2.3; the Go SDK derives per-group cursors the same way);
/// `None` when `cursor` is not of that form.
pub fn cursor_after(cursor: &str, n: u64) -> Option<String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = engine.decode(cursor).ok()?;
    let seq: u64 = std::str::from_utf8(&raw).ok()?.parse().ok()?;
    Some(engine.encode(seq.checked_add(n)?.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_cursors_follow_the_go_sdk_vector() {
        // research/sls-api.md §2.1: read_last_cursor 1729070618428044655 and 3 groups.
        let first = "MTcyOTA3MDYxODQyODA0NDY1Mw==";
        assert_eq!(super::cursor_after(first, 0).as_deref(), Some(first));
        assert_eq!(
            super::cursor_after(first, 1).as_deref(),
            Some("MTcyOTA3MDYxODQyODA0NDY1NA==")
        );
        assert_eq!(
            super::cursor_after(first, 2).as_deref(),
            Some("MTcyOTA3MDYxODQyODA0NDY1NQ==")
        );
        assert_eq!(super::cursor_after("not a cursor", 1), None);
    }
}
