//! Local stand-ins for the cloud, so the function can be run and tested without an account:
//! - [`sls_server`]: an SLS test server speaking the real PullLogs wire format (v1 signature
//!   and `Host` checked, LZ4 protobuf bodies, real headers, injectable faults);
//! - [`sample`]: realistic sample logs (Unicode, multi-line values, nanosecond times);
//! - [`receiver`]: a minimal syslog TCP receiver that prints or collects frames;
//! - [`demo`]: the three above plus the function, invoked over HTTP as FC does;
//! - [`check_frame`]: the oracle of the fuzz targets and property tests (message, body,
//!   frame parsed back).
//!
//! The counting allocator that tests and fuzz targets measure allocations with lives in the
//! `sls-syslog-devkit` crate (`devkit/`), outside the shipped binary.

pub mod check_frame;
pub mod demo;
pub mod receiver;
pub mod sample;
pub mod sls_server;
