#![allow(dead_code)]

pub mod function;
pub mod rsyslog;
