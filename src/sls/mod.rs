//! Hand-written client for the part of the Simple Log Service API this function needs:
//! PullLogs over one shard's cursor range.
//!
//! - [`endpoint`]: where to connect and which `Host` to send;
//! - [`sign`]: the v1 (`hmac-sha1`) request signature;
//! - [`codec`]: the raw LZ4 block / uncompressed response body;
//! - [`proto`]: the `LogGroupList` protobuf messages, values kept as bytes;
//! - [`client`]: the request itself, its errors and its retries.

pub mod client;
pub mod codec;
pub mod endpoint;
pub mod proto;
pub mod sign;

pub use client::{Client, Credentials, Pull, SlsError};
pub use endpoint::Endpoint;
