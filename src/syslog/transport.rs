//! Carrying frames to the receiver: TCP (a batch of frames in one large write) or UDP (one
//! message per datagram). Every operation is bounded by the invocation deadline.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::frame::Batch;

/// The transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        514
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A failure to deliver to the receiver.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to syslog receiver {target} over {protocol}: {detail}")]
    Connect {
        target: String,
        protocol: &'static str,
        detail: String,
    },
    #[error("writing to syslog receiver {target} failed: {detail}")]
    Write { target: String, detail: String },
    #[error("syslog receiver {target} did not accept data before the function timeout")]
    Timeout { target: String },
}

/// Longest wait for a TCP connection, whatever the deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection (or connected UDP socket) to the receiver.
pub struct Sender {
    target: String,
    inner: Inner,
}

enum Inner {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Sender {
    /// Resolves and connects to `host:port`.
    pub async fn connect(
        host: &str,
        port: u16,
        protocol: Protocol,
        deadline: Instant,
    ) -> Result<Sender, SendError> {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let connect_err = |detail: String| SendError::Connect {
            target: target.clone(),
            protocol: protocol.as_str(),
            detail,
        };
        let limit = deadline.min(Instant::now() + CONNECT_TIMEOUT);
        let inner = match protocol {
            Protocol::Tcp => {
                let stream = timeout_at(limit, TcpStream::connect((host, port)))
                    .await
                    .map_err(|_| connect_err("timed out".into()))?
                    .map_err(|e| connect_err(e.to_string()))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| connect_err(e.to_string()))?;
                Inner::Tcp(stream)
            }
            Protocol::Udp => {
                let addr = timeout_at(limit, tokio::net::lookup_host((host, port)))
                    .await
                    .map_err(|_| connect_err("name resolution timed out".into()))?
                    .map_err(|e| connect_err(e.to_string()))?
                    .next()
                    .ok_or_else(|| connect_err("the name has no address".into()))?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| connect_err(e.to_string()))?;
                socket
                    .connect(addr)
                    .await
                    .map_err(|e| connect_err(e.to_string()))?;
                Inner::Udp(socket)
            }
        };
        Ok(Sender { target, inner })
    }

    /// Sends a batch of framed messages: one large write on TCP (flushed before it returns),
    /// one datagram per message on UDP.
    pub async fn send_batch(&mut self, batch: &Batch, deadline: Instant) -> Result<(), SendError> {
        let result = match &mut self.inner {
            Inner::Tcp(stream) => {
                timeout_at(deadline, async {
                    stream.write_all(&batch.buf).await?;
                    stream.flush().await
                })
                .await
            }
            Inner::Udp(socket) => {
                timeout_at(deadline, async {
                    for message in batch.iter() {
                        socket.send(message).await?;
                    }
                    Ok(())
                })
                .await
            }
        };
        self.check(result)
    }

    /// Flushes, closes the sending side and waits briefly for the receiver to close its side:
    /// a receiver that reset the connection (and so may have dropped data) is an error.
    pub async fn finish(mut self, deadline: Instant) -> Result<(), SendError> {
        let target = self.target.clone();
        if let Inner::Tcp(stream) = &mut self.inner {
            let shut = timeout_at(deadline, stream.shutdown()).await;
            Self::outcome(&target, shut)?;
            let wait = deadline.min(Instant::now() + Duration::from_secs(1));
            let mut scratch = [0u8; 512];
            loop {
                match timeout_at(wait, stream.read(&mut scratch)).await {
                    Err(_) | Ok(Ok(0)) => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                        return Err(SendError::Write {
                            target,
                            detail: "the receiver reset the connection; data may have been lost"
                                .into(),
                        })
                    }
                    Ok(Err(_)) => break,
                }
            }
        }
        Ok(())
    }

    fn check(
        &self,
        result: Result<io::Result<()>, tokio::time::error::Elapsed>,
    ) -> Result<(), SendError> {
        Self::outcome(&self.target, result)
    }

    fn outcome(
        target: &str,
        result: Result<io::Result<()>, tokio::time::error::Elapsed>,
    ) -> Result<(), SendError> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Write {
                target: target.to_string(),
                detail: e.to_string(),
            }),
            Err(_) => Err(SendError::Timeout {
                target: target.to_string(),
            }),
        }
    }
}
