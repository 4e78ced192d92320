//! The SLS trigger event parser on arbitrary bytes: never panics, and what it accepts is a
//! usable event (`sls_syslog::devkit::check_frame::check_event`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sls_syslog::devkit::check_frame::check_event;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = check_event(data) {
        panic!("{e}");
    }
});
