#![allow(dead_code)]

pub mod rsyslog;
