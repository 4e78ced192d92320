//! An in-process syslog receiver that keeps every frame it gets (the project's
//! `devkit::receiver`: octet-counted and LF frames), for tests that check what arrived byte
//! for byte without starting a real daemon.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sls_syslog::devkit::receiver;

use super::function::LOOPBACK;

/// Frames received so far, in arrival order (across all connections).
pub struct Collector {
    addr: SocketAddr,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    /// Listens on a free loopback port.
    pub async fn start() -> Collector {
        let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let sink = frames.clone();
        let addr = receiver::spawn(
            LOOPBACK,
            Arc::new(move |frame| sink.lock().unwrap().push(frame)),
        )
        .await
        .unwrap();
        Collector { addr, frames }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every frame received so far.
    pub fn frames(&self) -> Vec<Vec<u8>> {
        self.frames.lock().unwrap().clone()
    }

    /// Waits until `n` frames arrived or `timeout` passed; returns the frames so far.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let frames = self.frames();
            if frames.len() >= n || start.elapsed() >= timeout {
                return frames;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
