//! A hostile `x-log-bodyrawsize` must not make the function allocate what it claims: the
//! size is checked against the 256 MiB limit and against what the received LZ4 block can hold
//! before the output buffer is allocated. Measured with a global allocator that records the
//! largest single allocation made on the test's own thread (the tests run everything on a
//! current-thread runtime, so the HTTP client's work is on that thread too).

#[path = "it/support/mod.rs"]
mod support;

use bytes::Bytes;
use sls_syslog::devkit::sls_server::{cursor, Account, Fault};
use sls_syslog::secret::Secret;
use sls_syslog::sls::codec::{self, CodecError};
use sls_syslog::sls::{Client, Credentials, Endpoint, SlsError};
use sls_syslog_devkit::alloc::{largest_allocation, largest_allocation_async, Tracking};
use support::function::start_sls;

#[global_allocator]
static GLOBAL: Tracking = Tracking;

const MIB: usize = 1 << 20;

#[test]
fn the_tracker_sees_a_real_decode() {
    let raw = vec![b'x'; 4 * MIB];
    let block = Bytes::from(lz4_flex::block::compress(&raw));
    let (largest, out) = largest_allocation(|| codec::decode_body(block, "lz4", raw.len()));
    assert_eq!(out.unwrap().len(), 4 * MIB);
    assert!(largest >= 4 * MIB, "{largest}");
}

#[test]
fn hostile_raw_sizes_allocate_nothing_of_their_size() {
    let block = Bytes::from(lz4_flex::block::compress(&[b'y'; 4096]));
    for claim in [
        4usize << 30,
        usize::MAX,
        codec::MAX_RAW_SIZE + 1,
        codec::MAX_RAW_SIZE,
        200 * MIB,
        codec::lz4_max_decoded(block.len()) + 1,
    ] {
        let (largest, out) = largest_allocation(|| codec::decode_body(block.clone(), "lz4", claim));
        assert!(
            matches!(
                out,
                Err(CodecError::TooLarge(_) | CodecError::Impossible { .. })
            ),
            "{claim}: {out:?}"
        );
        assert!(
            largest < 64 * 1024,
            "claim {claim}: allocated {largest} bytes"
        );
    }
    // Uncompressed: the size must match the body, nothing is allocated either.
    let (largest, out) =
        largest_allocation(|| codec::decode_body(Bytes::from_static(b"abc"), "", 200 * MIB));
    assert!(out.is_err());
    assert!(largest < 64 * 1024, "{largest}");
}

#[tokio::test]
async fn a_pull_with_a_hostile_raw_size_allocates_nothing_of_its_size() {
    let groups = sls_syslog::devkit::sample::groups(3, 10, 1);
    let sls = start_sls(vec![("a".into(), 0, groups)]).await;
    let acct = Account::demo();
    let client = Client::new(
        sls_syslog::sls::Http::new(),
        &Endpoint::parse(&sls.endpoint()).unwrap(),
        &acct.project,
        Credentials {
            access_key_id: acct.access_key_id.clone(),
            access_key_secret: Secret::new(acct.access_key_secret.clone()),
            security_token: acct.security_token.clone().map(Secret::new),
        },
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for (claim, needle) in [
        (4u64 << 30, "is larger than the"),
        (200 << 20, "lz4 block can hold"),
    ] {
        sls.inject([Fault::RawSize(claim)]);
        let (largest, out) = largest_allocation_async(client.pull_logs(
            "a",
            0,
            &cursor(0),
            &cursor(3),
            1000,
            deadline,
        ))
        .await;
        match out {
            Err(e @ SlsError::BadResponse { .. }) => {
                assert!(e.to_string().contains(needle), "{e}")
            }
            other => panic!("{claim}: {other:?}"),
        }
        assert!(largest < MIB, "claim {claim}: allocated {largest} bytes");
    }
    // The same pull, answered honestly, decodes.
    let pull = client
        .pull_logs("a", 0, &cursor(0), &cursor(3), 1000, deadline)
        .await
        .unwrap();
    assert_eq!(pull.group_count, 3);
}
