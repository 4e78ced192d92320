//! The integration tests, one module per subject, in one test binary (one link instead of
//! one per file). `support/` starts the real peers (rsyslog, syslog-ng, the SLS test server,
//! the reset proxy, a TLS sink) and the function. `tests/hardening_alloc.rs` stays a binary
//! of its own: its counting global allocator would count every other test's allocations.

mod support;

mod binary;
mod cli;
mod delivery;
mod formats;
mod hardening;
mod hardening_concurrency;
mod hardening_secrets;
mod hardening_tls_pool;
mod invoke;
mod properties;
mod real_cloud;
mod rsyslog_harness;
mod sls_http;
mod syslog_ng;
mod syslog_ng_harness;
mod tls;
