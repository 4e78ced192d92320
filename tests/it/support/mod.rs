#![allow(dead_code)]

pub mod call;
pub mod collector;
pub mod daemon;
pub mod function;
pub mod proxy;
pub mod rsyslog;
pub mod send;
pub mod syslog_ng;
pub mod tls_sink;
