#![allow(dead_code)]

pub mod function;
pub mod rsyslog;
pub mod syslog_ng;
