//! Receiver connections kept across warm invocations. Each running invocation takes a
//! connection of its own (FC may run several at once on one instance) and gives it back when
//! its range was delivered; a connection that failed is never given back. `/pre-stop` and
//! SIGTERM close them all cleanly (TLS `close_notify` included).

use std::sync::Mutex;

use tokio::time::Instant;

use super::tls::Tls;
use super::transport::{Protocol, SendError, Sender};

/// Idle connections, most recently used last.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Sender>>,
}

/// More idle connections than this are closed instead of kept.
const MAX_IDLE: usize = 32;

impl Pool {
    /// A kept connection to the destination that is still open, else a new one.
    pub async fn take(
        &self,
        host: &str,
        port: u16,
        protocol: Protocol,
        tls: Option<&Tls>,
        deadline: Instant,
    ) -> Result<Sender, SendError> {
        let key = Sender::key_for(host, port, protocol, tls);
        loop {
            let kept = self.idle.lock().ok().and_then(|mut idle| {
                let i = idle.iter().rposition(|s| s.key() == key)?;
                Some(idle.remove(i))
            });
            match kept {
                Some(mut s) => {
                    if s.is_open() {
                        return Ok(s);
                    }
                    // Closed by the receiver while idle: drop it and look again.
                }
                None => return Sender::connect(host, port, protocol, tls, deadline).await,
            }
        }
    }

    /// Keeps `sender` for a later invocation.
    pub fn give_back(&self, sender: Sender) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
    }

    /// Closes every idle connection; returns how many.
    pub async fn close_all(&self, deadline: Instant) -> usize {
        let all: Vec<Sender> = self
            .idle
            .lock()
            .map(|mut idle| idle.drain(..).collect())
            .unwrap_or_default();
        let n = all.len();
        for s in all {
            let _ = s.finish(deadline).await;
        }
        n
    }

    /// Idle connections held.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}
