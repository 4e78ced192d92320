//! PullLogs response decoding on arbitrary bytes: the LZ4 block (or uncompressed body) with
//! an arbitrary claimed `x-log-bodyrawsize`, then the `LogGroupList` reader and the record
//! flattening, compared with prost and the SDK model when both readers accept the body
//! (`sls_syslog::devkit::check_frame::check_response`).
//!
//! Never panics, and the shipping path (decode + flatten) never allocates beyond what the
//! body can hold: one allocation is at most a small multiple of what an LZ4 block of the
//! body's size can decode to (`codec::lz4_max_decoded`), however large the claimed size.
//!
//! Input: 1 mode byte, 4 bytes of claimed raw size (little endian), then the body.
//! - mode % 4 == 0: `lz4`, the claimed size;
//! - 1: uncompressed (`""`), the claimed size;
//! - 2: uncompressed, the body's real size (the protobuf reader gets the bytes as they are);
//! - 3: the body LZ4-compressed here, then decoded with its real size (a round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sls_syslog_devkit::alloc::{largest_allocation, Tracking};
use sls_syslog::devkit::check_frame::check_response;
use sls_syslog::sls::codec;

#[global_allocator]
static GLOBAL: Tracking = Tracking;

fuzz_target!(|data: &[u8]| {
    let [mode, a, b, c, d, body @ ..] = data else {
        return;
    };
    let claimed = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
    let compressed;
    let (body, compress_type, raw_size): (&[u8], &str, usize) = match mode % 4 {
        0 => (body, "lz4", claimed),
        1 => (body, "", claimed),
        2 => (body, "", body.len()),
        _ => {
            compressed = lz4_flex::block::compress(body);
            (&compressed, "LZ4", body.len())
        }
    };
    // The shipping path alone (decode, then flatten) is measured: the oracle's prost
    // decoding (used only by tests and the SLS test server) is not.
    let (largest, shipped) = largest_allocation(|| ship_path(body, compress_type, raw_size));
    // The decoded body is one allocation of `raw_size` (only when the body can hold it); a
    // record's field list is a small multiple of the bytes of its log.
    let decoded = raw_size.min(codec::lz4_max_decoded(body.len()));
    let cap = 64 * decoded.max(body.len()) + (1 << 16);
    assert!(
        largest <= cap,
        "allocated {largest} bytes at once for a {}-byte body claiming {raw_size}",
        body.len()
    );
    match check_response(body, compress_type, raw_size) {
        Err(e) => panic!("{e}"),
        Ok(None) if mode % 4 == 3 => panic!("our own LZ4 block was refused"),
        Ok(records) => {
            if let (Some(n), Some(m)) = (records, shipped) {
                assert_eq!(n, m, "records counted twice differ");
            }
        }
    }
});

/// What `ship` does with a PullLogs body: decode it, then flatten every log. The number of
/// records, `None` when the body was refused.
fn ship_path(body: &[u8], compress_type: &str, raw_size: usize) -> Option<usize> {
    let decoded =
        codec::decode_body(bytes::Bytes::copy_from_slice(body), compress_type, raw_size).ok()?;
    let mut records = 0;
    sls_syslog::record::for_each_in_body(&decoded, |_, _| records += 1).ok()?;
    Some(records)
}
