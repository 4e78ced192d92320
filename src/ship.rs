//! The pipeline of one invocation: pull the shard range from SLS, flatten, format, frame and
//! send every log, and report what was done.
//!
//! Pulling batch n+1 overlaps with formatting and sending batch n through a bounded channel,
//! so memory stays flat. Logs are sent in cursor order. The delivery rule: the invocation
//! succeeds only when every log of the range was written to the receiver and flushed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::buffers;
use crate::config::Settings;
use crate::record;
use crate::sls::wire::{self, WireError};
use crate::sls::{self, Credentials, Pull, SlsError};
use crate::syslog::fill::{fill, Framed};
use crate::syslog::format::Origin;
use crate::syslog::{Batch, Framing, Pool, Protocol, SendError, Sender};
use crate::trigger::Event;

/// Everything one invocation needs.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    pub event: Event,
    pub credentials: Credentials,
    /// When the work must be finished (a margin before the function timeout).
    pub deadline: Instant,
}

/// What an invocation did, returned as the `/invoke` result.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub request_id: String,
    pub project: String,
    pub logstore: String,
    /// `None` (`null`) when the event could not be read.
    pub shard: Option<u32>,
    pub begin_cursor: String,
    pub end_cursor: String,
    /// PullLogs calls that succeeded.
    pub pulls: u64,
    pub log_groups: u64,
    pub logs: u64,
    /// Response bytes received from SLS (compressed).
    pub bytes_pulled: u64,
    /// The same, decompressed.
    pub bytes_decoded: u64,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    /// Messages cut to `SYSLOG_MAX_MESSAGE_BYTES`.
    pub truncated: u64,
    /// Failed PullLogs attempts that were retried.
    pub pull_retries: u64,
    /// Batches written again after a failed write or a lost connection.
    pub send_retries: u64,
    /// Messages written a second time after a reconnect (at-least-once delivery).
    pub frames_resent: u64,
    /// Bytes of messages the receiver's TCP acknowledged (TCP and TLS; 0 over UDP). On
    /// success every byte sent once; on failure, how far delivery was confirmed.
    pub bytes_confirmed: u64,
    /// The shard's data ended before the end cursor: a pull answered no log groups and left
    /// the cursor where it was (SLS does so at the tail of a shard). Everything up to there
    /// was shipped; the range is done.
    pub ended_before_end_cursor: bool,
    /// The cursor the data ended at, when it ended before the end cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at_cursor: Option<String>,
    pub duration_ms: u64,
    /// What went as configured but deserves a look (printed as `WARN` lines too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Where the pipeline failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Pull,
    Decode,
    Send,
}

impl Stage {
    /// The name in log lines: `pull`, `decode`, `send`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Pull => "pull",
            Stage::Decode => "decode",
            Stage::Send => "send",
        }
    }
}

/// A failed invocation: the stage and a message that says what to look at.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ShipError {
    pub stage: Stage,
    pub message: String,
}

/// A failed invocation with what it had done before failing.
#[derive(Debug)]
pub struct Failed {
    pub error: ShipError,
    pub summary: Summary,
}

impl ShipError {
    /// The `errorType` of the FC error body.
    pub fn error_type(&self) -> &'static str {
        match self.stage {
            Stage::Pull => "PullError",
            Stage::Decode => "DecodeError",
            Stage::Send => "SendError",
        }
    }

    fn pull(e: SlsError) -> ShipError {
        let stage = match e {
            SlsError::BadResponse { .. } => Stage::Decode,
            _ => Stage::Pull,
        };
        ShipError {
            stage,
            message: e.to_string(),
        }
    }

    fn send(e: SendError) -> ShipError {
        ShipError {
            stage: Stage::Send,
            message: e.to_string(),
        }
    }
}

/// Pull results in flight between the puller and the sender.
const QUEUE_DEPTH: usize = 1;

/// What the puller hands to the sender.
enum Pulled {
    Batch(Pull),
    Failed(SlsError),
    /// The end cursor was reached: the range is complete.
    Done,
    /// A pull at this cursor answered no log groups and the same cursor: the shard's data
    /// ends here, before the end cursor, and the range is complete too.
    EndedAt(String),
}

/// Decoded bytes a pull aims at: the pull count adapts to the bytes per log group seen, so
/// that the bodies in flight (one being sent, one queued, one arriving) stay a few MiB
/// whether groups hold 10 logs or 4096.
const PULL_BUDGET: usize = 4 << 20;
/// The first pull of a range asks for one log group: nothing is known yet of their size.
const FIRST_PULL: u32 = 1;
/// The count grows at most this many times from one pull to the next, so that a range whose
/// first groups were small does not ask for hundreds of big ones at once.
const PULL_GROWTH: u32 = 8;
/// The formatted messages of a pull are sent in batches of the log groups of about this
/// many decoded bytes (at least one group): the batch and the resend window stay small.
const BATCH_SOURCE_BYTES: usize = 512 << 10;

/// The log groups to ask for in the next pull, after one that asked for `asked` and got
/// `groups` log groups of `bytes` decoded bytes; `max` is `SLS_PULL_COUNT`.
fn next_pull_count(asked: u32, groups: usize, bytes: usize, max: u32) -> u32 {
    let grown = asked.saturating_mul(PULL_GROWTH).min(max);
    if groups == 0 || bytes == 0 {
        return grown.max(1);
    }
    let per_group = bytes.div_ceil(groups);
    let fits = (PULL_BUDGET / per_group).clamp(1, u32::MAX as usize) as u32;
    fits.min(grown).max(1)
}

/// Ships `inv`'s range with `settings`; `http` and `pool` are the process's shared SLS and
/// receiver connections.
pub async fn run(
    inv: &Invocation,
    settings: &Settings,
    http: &sls::Http,
    pool: &Pool,
) -> Result<Summary, Box<Failed>> {
    let started = Instant::now();
    let ev = &inv.event;
    let mut summary = Summary {
        request_id: inv.request_id.clone(),
        project: ev.project.clone(),
        logstore: ev.logstore.clone(),
        shard: Some(ev.shard),
        begin_cursor: ev.begin_cursor.clone(),
        end_cursor: ev.end_cursor.clone(),
        ..Summary::default()
    };
    let result = ship(inv, settings, http, pool, &mut summary).await;
    summary.duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => Ok(summary),
        Err(error) => Err(Box::new(Failed { error, summary })),
    }
}

async fn ship(
    inv: &Invocation,
    settings: &Settings,
    http: &sls::Http,
    pool: &Pool,
    summary: &mut Summary,
) -> Result<(), ShipError> {
    let ev = &inv.event;
    if ev.begin_cursor != ev.end_cursor {
        let client = sls::Client::new(
            http.clone(),
            &ev.endpoint,
            &ev.project,
            inv.credentials.clone(),
        )
        .map_err(ShipError::pull)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let puller = tokio::spawn(pull_range(
            Arc::new(client),
            ev.logstore.clone(),
            ev.shard,
            ev.begin_cursor.clone(),
            ev.end_cursor.clone(),
            settings.pull_count,
            inv.deadline,
            tx,
        ));
        let result = send_all(rx, settings, pool, inv, summary).await;
        puller.abort();
        result?;
    }
    Ok(())
}

/// Pulls `[cursor, end)` batch by batch into `tx` until the next cursor is `end`, or the
/// shard's data ends before it. `max_count` is `SLS_PULL_COUNT`.
#[allow(clippy::too_many_arguments)]
async fn pull_range(
    client: Arc<sls::Client>,
    logstore: String,
    shard: u32,
    mut cursor: String,
    end: String,
    max_count: u32,
    deadline: Instant,
    tx: mpsc::Sender<Pulled>,
) {
    let mut count = FIRST_PULL.min(max_count);
    loop {
        let deadline_std = deadline.into_std();
        let result = client
            .pull_logs(&logstore, shard, &cursor, &end, count, deadline_std)
            .await;
        let pull = match result {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Pulled::Failed(e)).await;
                return;
            }
        };
        let next = pull.next_cursor.clone();
        let at_tail = pull.group_count == 0 && next == cursor;
        let (groups, bytes) = (pull.group_count, pull.body.len());
        if tx.send(Pulled::Batch(pull)).await.is_err() {
            return;
        }
        if next == end {
            let _ = tx.send(Pulled::Done).await;
            return;
        }
        if at_tail {
            let _ = tx.send(Pulled::EndedAt(cursor)).await;
            return;
        }
        // The client refused a next cursor that went back, past the end, or stayed put
        // although log groups came back.
        count = next_pull_count(count, groups, bytes, max_count);
        cursor = next;
    }
}

/// Formats and sends every pulled batch; connects on the first log.
async fn send_all(
    mut rx: mpsc::Receiver<Pulled>,
    settings: &Settings,
    pool: &Pool,
    inv: &Invocation,
    summary: &mut Summary,
) -> Result<(), ShipError> {
    let deadline = inv.deadline;
    let formatter = &settings.formatter;
    let framing: Option<Framing> = match settings.protocol {
        Protocol::Tcp | Protocol::Tls => Some(settings.framing),
        Protocol::Udp => None,
    };
    let mut delivery = Delivery {
        settings,
        pool,
        sender: None,
        unconfirmed: VecDeque::new(),
        spare: Vec::new(),
    };
    // The batches are the largest buffers of an invocation: take the largest spares.
    let mut batch = Batch::with_buffer(buffers::take(usize::MAX));
    let mut scratch = Vec::with_capacity(4096);

    loop {
        let pull = match rx.recv().await {
            Some(Pulled::Batch(pull)) => pull,
            Some(Pulled::Failed(e)) => return Err(ShipError::pull(e)),
            Some(Pulled::Done) => break,
            Some(Pulled::EndedAt(cursor)) => {
                summary.ended_before_end_cursor = true;
                summary.warnings.push(format!(
                    "the shard's data ended at cursor {cursor}, before the end cursor {}: SLS answered no log groups and the same cursor; everything up to there was shipped",
                    summary.end_cursor
                ));
                summary.ended_at_cursor = Some(cursor);
                break;
            }
            None => {
                return Err(ShipError {
                    stage: Stage::Pull,
                    message: "pulling stopped before the end cursor was reached".into(),
                })
            }
        };
        summary.pulls += 1;
        summary.pull_retries += u64::from(pull.retries);
        summary.bytes_pulled += pull.wire_bytes as u64;
        summary.bytes_decoded += pull.body.len() as u64;
        if pull.body.is_empty() {
            if pull.group_count != 0 {
                return Err(decode_error(format!(
                    "x-log-count says {} log groups but the body is empty",
                    pull.group_count
                )));
            }
            buffers::give(pull.body);
            continue;
        }
        let not_a_list =
            |e: WireError| decode_error(format!("the PullLogs body is not a LogGroupList: {e}"));
        let groups = wire::count_groups(&pull.body).map_err(not_a_list)?;
        if groups != pull.group_count {
            return Err(decode_error(format!(
                "x-log-count says {} log groups but the body has {groups}",
                pull.group_count,
            )));
        }
        let framed = Framed {
            framing,
            max: settings.max_message_bytes,
        };
        for (first, range) in wire::pieces(&pull.body, BATCH_SOURCE_BYTES).map_err(not_a_list)? {
            let body = record::Body::parse(&pull.body[range]).map_err(not_a_list)?;
            let cursor = sls::cursor_after(&pull.cursor, first as u64);
            let origin = Origin {
                project: &summary.project,
                logstore: &summary.logstore,
                shard: inv.event.shard,
                cursor: cursor.as_deref().unwrap_or(&pull.cursor),
            };
            batch.clear();
            let filled = fill(
                &mut batch,
                &mut scratch,
                &body,
                formatter,
                framed,
                &origin,
                true,
            )
            .map_err(not_a_list)?;
            summary.log_groups += body.groups() as u64;
            summary.logs += filled.logs;
            summary.truncated += filled.truncated;
            if !batch.is_empty() {
                delivery.send(&mut batch, deadline, summary).await?;
            }
        }
        buffers::give(pull.body);
    }
    delivery.confirm(deadline, summary).await?;
    if let Some(sender) = delivery.sender.take() {
        pool.give_back(sender);
    }
    Ok(())
}

/// Attempts to write one batch, or to have everything confirmed (reconnecting in between),
/// before the invocation fails; the pauses between them (0.2, 0.4, 0.8, 1.6, then 2 s) also
/// stop at the deadline.
const SEND_ATTEMPTS: u32 = 8;

/// The delivery rule for one invocation: at least once, to the last byte TCP can vouch for.
///
/// Every batch is written and flushed on a connection checked for a receiver-side close just
/// before. A batch stays in [`Delivery::unconfirmed`] until the receiver's TCP has
/// acknowledged its last byte (the kernel's count of unacknowledged bytes, [`Sender`]'s
/// `acknowledged`); when a write fails or the connection was lost, a new connection carries
/// those batches again, then the current one. At the end every byte must be acknowledged and
/// the connection still healthy a moment later ([`Sender::confirm`]), else the same resend
/// happens. A receiver may see a log twice; one that acknowledged bytes and then lost them
/// cannot be told apart by any TCP sender (docs/delivery.md). UDP has no acknowledgements:
/// nothing is kept.
struct Delivery<'a> {
    settings: &'a Settings,
    pool: &'a Pool,
    sender: Option<Sender>,
    /// Batches written on the current connection that its receiver's TCP has not
    /// acknowledged in full, oldest first, each with the connection's byte count at its end.
    unconfirmed: VecDeque<(u64, Batch)>,
    /// Acknowledged batches, emptied, for reuse.
    spare: Vec<Batch>,
}

impl Delivery<'_> {
    /// Writes `batch`; `batch` is handed back empty (its buffer is kept until acknowledged,
    /// and a spare one takes its place).
    async fn send(
        &mut self,
        batch: &mut Batch,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), ShipError> {
        self.attempt(Some(batch), deadline, summary).await?;
        summary.frames_sent += batch.len() as u64;
        summary.bytes_sent += batch.buf.len() as u64;
        let Some(sender) = self.sender.as_ref() else {
            unreachable!("a batch was just written")
        };
        if sender.is_stream() {
            let spare = self.spare.pop().unwrap_or_default();
            let written = std::mem::replace(batch, spare);
            self.unconfirmed.push_back((sender.written(), written));
            if let Some(acknowledged) = sender.acknowledged() {
                self.confirmed_up_to(acknowledged, summary);
            }
        }
        batch.clear();
        Ok(())
    }

    /// Waits until the receiver's TCP has acknowledged everything written, resending what it
    /// had not on a new connection when the one in use fails.
    async fn confirm(&mut self, deadline: Instant, summary: &mut Summary) -> Result<(), ShipError> {
        if self.sender.is_none() && self.unconfirmed.is_empty() {
            return Ok(());
        }
        self.attempt(None, deadline, summary).await?;
        self.confirmed_up_to(u64::MAX, summary);
        Ok(())
    }

    /// Moves the batches acknowledged up to byte `acknowledged` of the connection out of the
    /// resend window.
    fn confirmed_up_to(&mut self, acknowledged: u64, summary: &mut Summary) {
        while let Some((end, _)) = self.unconfirmed.front() {
            if *end > acknowledged {
                break;
            }
            if let Some((_, mut done)) = self.unconfirmed.pop_front() {
                summary.bytes_confirmed += done.buf.len() as u64;
                done.clear();
                self.spare.push(done);
            }
        }
    }

    /// Writes `batch` (or, with `None`, waits for every byte to be acknowledged), retrying on
    /// a new connection as [`SEND_ATTEMPTS`] says.
    async fn attempt(
        &mut self,
        batch: Option<&Batch>,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), ShipError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.try_once(batch, deadline, summary).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.sender = None;
                    let pause =
                        Duration::from_millis(100 << attempt.min(5)).min(Duration::from_secs(2));
                    if !e.is_retryable()
                        || attempt >= SEND_ATTEMPTS
                        || Instant::now() + pause >= deadline
                    {
                        return Err(ShipError::send(e));
                    }
                    summary.send_retries += 1;
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn try_once(
        &mut self,
        batch: Option<&Batch>,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), SendError> {
        let s = self.settings;
        let reused = self.sender.as_mut().is_some_and(Sender::is_open);
        if !reused {
            let new = self
                .pool
                .take(&s.host, s.port, s.protocol, s.tls.as_ref(), deadline)
                .await?;
            self.sender = Some(new);
        }
        let Some(sender) = self.sender.as_mut() else {
            unreachable!("a sender was just set")
        };
        sender.pace(s.udp_rate);
        if !reused {
            // The connection that carried these is gone: they may not all have arrived.
            for (end, unconfirmed) in &mut self.unconfirmed {
                sender.send_batch(unconfirmed, deadline).await?;
                *end = sender.written();
                summary.frames_resent += unconfirmed.len() as u64;
            }
        }
        match batch {
            Some(batch) => sender.send_batch(batch, deadline).await,
            None => sender.confirm(deadline).await,
        }
    }
}

fn decode_error(message: String) -> ShipError {
    ShipError {
        stage: Stage::Decode,
        message,
    }
}

/// The deadline for a function timeout of `timeout` starting at `start`: a margin before it,
/// 5% of the timeout, at least 200 ms and at most 2 s, so that the failure is reported by us
/// and not by the platform killing the request.
pub fn deadline(start: Instant, timeout: Duration) -> Instant {
    let margin = (timeout / 20).clamp(Duration::from_millis(200), Duration::from_secs(2));
    start + timeout.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_confirmed_when_its_last_byte_is_acknowledged() {
        let settings =
            Settings::from_lookup(|k| (k == "SYSLOG_HOST").then(|| "127.0.0.1".to_string()))
                .unwrap();
        let pool = Pool::default();
        let mut d = Delivery {
            settings: &settings,
            pool: &pool,
            sender: None,
            unconfirmed: VecDeque::new(),
            spare: Vec::new(),
        };
        // Two batches of 10 bytes: the first ends at byte 10 of the connection, the next at 20.
        for end in [10, 20] {
            let mut b = Batch::default();
            b.push(Some(crate::syslog::Framing::Lf), b"012345678", 100);
            d.unconfirmed.push_back((end, b));
        }
        let mut summary = Summary::default();
        d.confirmed_up_to(9, &mut summary);
        assert_eq!((d.unconfirmed.len(), summary.bytes_confirmed), (2, 0));
        d.confirmed_up_to(10, &mut summary);
        assert_eq!((d.unconfirmed.len(), summary.bytes_confirmed), (1, 10));
        assert_eq!(d.spare.len(), 1);
        d.confirmed_up_to(u64::MAX, &mut summary);
        assert_eq!((d.unconfirmed.len(), summary.bytes_confirmed), (0, 20));
    }

    #[test]
    fn the_pull_count_follows_the_bytes_per_group() {
        // Small groups: the count grows eightfold a pull, up to SLS_PULL_COUNT.
        assert_eq!(next_pull_count(1, 1, 2_000, 1000), 8);
        assert_eq!(next_pull_count(8, 8, 16_000, 1000), 64);
        assert_eq!(next_pull_count(512, 512, 1 << 20, 1000), 1000);
        assert_eq!(next_pull_count(1, 1, 2_000, 5), 5);
        // 4096-log groups of ~1.7 MB decoded: two a pull; groups near 5 MB: one.
        assert_eq!(next_pull_count(1, 1, 1_700_000, 1000), 2);
        assert_eq!(next_pull_count(2, 2, 10_000_000, 1000), 1);
        // Groups that shrink again: the count follows, growing from where it was.
        assert_eq!(next_pull_count(1, 1, 100_000, 1000), 8);
        // 40 KiB groups: 100 fit in 4 MiB.
        assert_eq!(next_pull_count(1000, 1000, 40_960_000, 1000), 102);
        // Nothing came back (a filter at the source dropped it all): keep growing.
        assert_eq!(next_pull_count(8, 0, 0, 1000), 64);
        assert_eq!(next_pull_count(0, 0, 0, 1000), 1);
    }

    #[test]
    fn deadline_keeps_a_margin() {
        let t0 = Instant::now();
        assert_eq!(
            deadline(t0, Duration::from_secs(60)) - t0,
            Duration::from_secs(58)
        );
        assert_eq!(
            deadline(t0, Duration::from_secs(3)) - t0,
            Duration::from_millis(2800)
        );
        assert_eq!(deadline(t0, Duration::ZERO), t0);
    }
}
