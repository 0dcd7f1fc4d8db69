//! One client connection: CONNECT, then packets until DISCONNECT, a protocol error, the
//! keep-alive timeout or server shutdown.
//!
//! PUBLISHes decoded from the bytes of one read are appended together (one log append per
//! stream) and their PUBACKs are written only after that append returned, so an
//! acknowledged message survives `kill -9`. Any other packet first flushes what is
//! pending, which keeps every answer in the order of the requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use eddy_log::Record;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::codec::{self, ConnectCode, FrameError, Hello, Incoming, Outgoing, Reason, Version};
use crate::server::Broker;
use crate::stats::bump;

/// Pending PUBLISHes are appended once they hold this many payload bytes …
const FLUSH_BYTES: usize = 1 << 20;
/// … or this many messages, whichever comes first (bounds memory and ack latency).
const FLUSH_MESSAGES: usize = 512;
/// Longest client id accepted; it becomes a partition key and an event property.
const CLIENT_ID_LEN_MAX: usize = 256;
/// Largest batch handed to one `Log::append` (estimated), far below the log's limit …
pub(crate) const APPEND_CHUNK_BYTES: usize = 4 << 20;
/// … counting this much per record beside its key and value (batch record header).
const RECORD_OVERHEAD_BYTES: usize = 64;
// One chunk may exceed APPEND_CHUNK_BYTES by a single event, itself at most a packet of
// `MAX_PACKET_BYTES_MAX` plus its IoTHub record; all of that must fit one log batch.
const _: () =
    assert!(2 * APPEND_CHUNK_BYTES + 2 * crate::MAX_PACKET_BYTES_MAX < eddy_log::MAX_BATCH_BYTES);
/// Bytes read from the socket at a time (the buffer grows only to hold one whole packet).
const READ_CHUNK: usize = 16 << 10;

/// Distinguishes the ids the server assigns to clients that sent an empty one.
static ASSIGNED_IDS: AtomicU64 = AtomicU64::new(0);
/// Numbers connections, so a session entry is removed only by the connection that owns it.
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Why a connection ended; logged once by [`run`].
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("no CONNECT within {0:?}")]
    ConnectTimeout(Duration),
    #[error("connection refused at CONNECT: {0}")]
    Refused(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("no packet within 1.5 times the keep-alive of {0} s")]
    KeepAlive(u16),
    #[error("the log append failed: {0}")]
    Append(String),
}

/// A decoded PUBLISH waiting for its append.
struct Pending {
    /// Target stream.
    stream: Arc<str>,
    /// Events to append (empty for a refused payload).
    events: Vec<Bytes>,
    /// Packet id to acknowledge (QoS 1).
    pkid: Option<u16>,
    /// The payload was not JSON events: acknowledge as refused, append nothing.
    malformed: bool,
}

/// Serves one connection to its end and logs why it ended.
pub(crate) async fn run(
    broker: Arc<Broker>,
    socket: TcpStream,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let mut conn = Conn {
        broker,
        socket,
        stopped,
        buf: BytesMut::with_capacity(READ_CHUNK),
        out: BytesMut::new(),
        version: Version::V311,
        keep_alive_s: 0,
        client_id: String::new(),
        pending: Vec::new(),
        pending_bytes: 0,
    };
    let result = conn.serve().await;
    let stats = &conn.broker.stats;
    match &result {
        Ok(()) => tracing::debug!(%peer, client_id = conn.client_id, "mqtt client disconnected"),
        Err(ConnError::Io(e)) => {
            tracing::debug!(%peer, client_id = conn.client_id, error = %e, "mqtt connection lost")
        }
        Err(e @ ConnError::Refused(_)) => {
            tracing::info!(%peer, client_id = conn.client_id, error = %e, "mqtt connect refused")
        }
        Err(e) => {
            bump(&stats.protocol_errors, 1);
            tracing::warn!(%peer, client_id = conn.client_id, error = %e, "mqtt connection closed");
        }
    }
    let _ = conn.socket.shutdown().await;
}

struct Conn {
    broker: Arc<Broker>,
    socket: TcpStream,
    /// Turns true when the listener shuts down.
    stopped: watch::Receiver<bool>,
    /// Bytes read and not yet decoded.
    buf: BytesMut,
    /// Encoded answers not yet written.
    out: BytesMut,
    version: Version,
    /// Seconds from the CONNECT; 0 disables the idle timeout.
    keep_alive_s: u16,
    /// The device id: the CONNECT's client id, or the one the server assigned.
    client_id: String,
    pending: Vec<Pending>,
    pending_bytes: usize,
}

impl Conn {
    async fn serve(&mut self) -> Result<(), ConnError> {
        self.connect().await?;
        let stats = Arc::clone(&self.broker.stats);
        bump(&stats.accepted, 1);
        bump(&stats.open, 1);
        let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let taken_over = self.broker.take_over(&self.client_id, conn);
        let result = self.session(&taken_over).await;
        self.broker.release(&self.client_id, conn);
        stats.open.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// Waits for CONNECT, checks version, credentials and client id, answers CONNACK.
    async fn connect(&mut self) -> Result<(), ConnError> {
        let timeout = self.broker.config.connect_timeout;
        let deadline = Instant::now() + timeout;
        let max = self.broker.config.max_packet_bytes;
        self.version = loop {
            match codec::hello(&self.buf, max)? {
                Hello::Supported(version) => break version,
                Hello::Unsupported { name, level } => {
                    // MQTT 3.1.1 §3.2.2.3: answer 0x01 and close; a v3.1 client reads it too.
                    self.refuse(ConnectCode::UnsupportedVersion).await?;
                    return Err(ConnError::Refused(format!(
                        "unsupported protocol {name:?} level {level}"
                    )));
                }
                Hello::Incomplete => {
                    match tokio::time::timeout_at(deadline, self.read()).await {
                        Ok(read) => read?,
                        Err(_) => return Err(ConnError::ConnectTimeout(timeout)),
                    };
                }
            }
        };
        let Some(Incoming::Connect(connect)) = codec::decode(self.version, &mut self.buf, max)?
        else {
            return Err(ConnError::Protocol(
                "the first packet must be CONNECT".into(),
            ));
        };
        if let Some(token) = &self.broker.config.auth_token {
            let given = connect.password.as_deref().unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                self.client_id = connect.client_id;
                self.refuse(ConnectCode::NotAuthorized).await?;
                return Err(ConnError::Refused("wrong or missing password".into()));
            }
        }
        let mut assigned = None;
        if connect.client_id.is_empty() {
            // 3.1.1 §3.1.3.1: an empty id is only allowed with a clean session.
            if self.version == Version::V311 && !connect.clean {
                self.refuse(ConnectCode::ClientIdRejected).await?;
                return Err(ConnError::Refused(
                    "empty client id without clean session".into(),
                ));
            }
            let n = ASSIGNED_IDS.fetch_add(1, Ordering::Relaxed);
            let id = format!("eddy-{}-{n}", now_ms());
            self.client_id = id.clone();
            assigned = Some(id);
        } else if connect.client_id.len() > CLIENT_ID_LEN_MAX {
            self.refuse(ConnectCode::ClientIdRejected).await?;
            return Err(ConnError::Refused(format!(
                "client id longer than {CLIENT_ID_LEN_MAX} bytes"
            )));
        } else {
            self.client_id = connect.client_id;
        }
        self.keep_alive_s = connect.keep_alive_s;
        self.send(Outgoing::ConnAck {
            code: ConnectCode::Accepted,
            assigned_client_id: assigned,
            max_packet_bytes: u32::try_from(max).unwrap_or(u32::MAX),
        });
        self.write_out().await?;
        tracing::debug!(client_id = self.client_id, version = ?self.version, "mqtt client connected");
        Ok(())
    }

    async fn refuse(&mut self, code: ConnectCode) -> Result<(), ConnError> {
        bump(&self.broker.stats.refused, 1);
        self.send(Outgoing::ConnAck {
            code,
            assigned_client_id: None,
            max_packet_bytes: 0,
        });
        self.write_out().await
    }

    /// Packets after CONNECT, until the client or the server ends the session.
    async fn session(&mut self, taken_over: &Notify) -> Result<(), ConnError> {
        let keep_alive = self.keep_alive_s;
        // 3.1.1 §3.1.2.10 / 5 §3.1.2.10: one and a half keep-alive periods of silence.
        let idle = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
        loop {
            let max = self.broker.config.max_packet_bytes;
            loop {
                let packet = match codec::decode(self.version, &mut self.buf, max) {
                    Ok(Some(packet)) => packet,
                    Ok(None) => break,
                    Err(e) => {
                        let reason = match e {
                            FrameError::TooLarge { .. } => Reason::PacketTooLarge,
                            FrameError::Malformed(_) => Reason::MalformedPacket,
                        };
                        self.close_with(reason).await?;
                        return Err(e.into());
                    }
                };
                if let Incoming::Publish(publish) = packet {
                    if let Err(e) = self.publish(publish) {
                        self.close_with(e.0).await?;
                        return Err(ConnError::Protocol(e.1));
                    }
                    if self.pending_bytes >= FLUSH_BYTES || self.pending.len() >= FLUSH_MESSAGES {
                        self.flush().await?;
                    }
                    continue;
                }
                self.flush().await?;
                match packet {
                    Incoming::Publish(_) => {}
                    Incoming::Subscribe { pkid, filters } => {
                        // Granted (at most QoS 1) but nothing is delivered: eddy is the
                        // ingestion end; commands to devices are not sent (see the design note).
                        let granted = filters
                            .iter()
                            .map(|(filter, qos)| {
                                codec::valid_filter(filter).then_some((*qos).min(1))
                            })
                            .collect();
                        self.send(Outgoing::SubAck { pkid, granted });
                    }
                    Incoming::Unsubscribe { pkid, filters } => self.send(Outgoing::UnsubAck {
                        pkid,
                        count: filters.len(),
                    }),
                    Incoming::PingReq => self.send(Outgoing::PingResp),
                    Incoming::Disconnect => {
                        self.write_out().await?;
                        return Ok(());
                    }
                    Incoming::Ignored(name) => {
                        tracing::debug!(
                            client_id = self.client_id,
                            packet = name,
                            "mqtt packet ignored"
                        );
                    }
                    Incoming::Connect(_) => {
                        self.close_with(Reason::ProtocolError).await?;
                        return Err(ConnError::Protocol("a second CONNECT".into()));
                    }
                    Incoming::ServerOnly(name) => {
                        self.close_with(Reason::ProtocolError).await?;
                        return Err(ConnError::Protocol(format!(
                            "{name} is sent by servers only"
                        )));
                    }
                }
            }
            self.flush().await?;
            let mut stopped = self.stopped.clone();
            let read = async {
                match idle {
                    Some(idle) => match tokio::time::timeout(idle, self.read()).await {
                        Ok(read) => read,
                        Err(_) => Err(ConnError::KeepAlive(keep_alive)),
                    },
                    None => self.read().await,
                }
            };
            let woken = tokio::select! {
                read = read => Ok(read),
                _ = stopped.wait_for(|s| *s) => Err(Reason::ServerShuttingDown),
                () = taken_over.notified() => Err(Reason::SessionTakenOver),
            };
            match woken {
                Ok(Ok(())) => {}
                Ok(Err(e @ ConnError::KeepAlive(_))) => {
                    self.close_with(Reason::KeepAliveTimeout).await?;
                    return Err(e);
                }
                Ok(Err(e)) => return Err(e),
                Err(reason) => {
                    // What was read is answered; then the connection ends without error.
                    self.close_with(reason).await?;
                    if reason == Reason::SessionTakenOver {
                        tracing::info!(
                            client_id = self.client_id,
                            "mqtt session taken over by a new connection"
                        );
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Queues one PUBLISH for the next append, or says how to close the connection.
    fn publish(&mut self, publish: codec::Publish) -> Result<(), (Reason, String)> {
        let stats = &self.broker.stats;
        bump(&stats.messages, 1);
        if publish.qos > 1 {
            // MQTT 5 §3.2.2.3.4: CONNACK announced Maximum QoS 1, so QoS 2 is a protocol error
            // (0x9B); 3.1.1 has no way to refuse it but closing the connection.
            return Err((Reason::QoSNotSupported, "QoS 2 is not supported".into()));
        }
        if publish.topic_alias || publish.topic.is_empty() {
            return Err((
                Reason::TopicAliasInvalid,
                "topic aliases are not granted; the topic name must not be empty".into(),
            ));
        }
        let stream: Arc<str> = Arc::from(self.broker.config.routes.stream_for(&publish.topic));
        let pkid = (publish.qos == 1).then_some(publish.pkid);
        let enqueued = enqueued_time();
        match crate::events::to_events(&publish.payload, &self.client_id, &enqueued) {
            Ok(events) => {
                self.pending_bytes += events.iter().map(Bytes::len).sum::<usize>();
                self.pending.push(Pending {
                    stream,
                    events,
                    pkid,
                    malformed: false,
                });
            }
            Err(e) => {
                bump(&stats.malformed, 1);
                tracing::warn!(
                    client_id = self.client_id,
                    topic = publish.topic,
                    error = %e,
                    "mqtt payload is not JSON events; not appended"
                );
                self.pending.push(Pending {
                    stream,
                    events: Vec::new(),
                    pkid,
                    malformed: true,
                });
            }
        }
        Ok(())
    }

    /// Appends pending PUBLISHes, queues their PUBACKs, and writes every queued answer.
    async fn flush(&mut self) -> Result<(), ConnError> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.pending_bytes = 0;
            let broker = Arc::clone(&self.broker);
            let key = Bytes::from(self.client_id.clone());
            let (pending, results) = tokio::task::spawn_blocking(move || {
                let results = append_all(&broker, &key, &pending);
                (pending, results)
            })
            .await
            .map_err(|e| ConnError::Append(e.to_string()))?;
            for (p, result) in pending.iter().zip(results) {
                let reason = match (&result, p.malformed) {
                    (Ok(()), false) => Reason::Success,
                    // v5 answers 0x99. 3.1.1 has no negative PUBACK: the refused payload is
                    // acknowledged (taken and dropped) so the client does not resend it forever.
                    (Ok(()), true) => Reason::PayloadFormatInvalid,
                    (Err(e), _) => {
                        if self.version == Version::V311 {
                            // No PUBACK: closing makes the client resend after reconnecting.
                            self.write_out().await?;
                            return Err(ConnError::Append(e.clone()));
                        }
                        Reason::UnspecifiedError
                    }
                };
                if let Some(pkid) = p.pkid {
                    self.send(Outgoing::PubAck { pkid, reason });
                }
            }
        }
        self.write_out().await
    }

    /// Flushes, then (v5) sends DISCONNECT with `reason`; the caller closes the socket.
    async fn close_with(&mut self, reason: Reason) -> Result<(), ConnError> {
        self.flush().await?;
        self.send(Outgoing::Disconnect(reason));
        self.write_out().await
    }

    fn send(&mut self, packet: Outgoing) {
        codec::encode(self.version, &packet, &mut self.out);
    }

    async fn write_out(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.socket.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more bytes; end of stream is an error (the client left without DISCONNECT).
    async fn read(&mut self) -> Result<(), ConnError> {
        self.buf.reserve(READ_CHUNK);
        let n = self.socket.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(ConnError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client closed the connection",
            )));
        }
        Ok(())
    }
}

/// Appends the events of `pending`, in batches of at most `APPEND_CHUNK_BYTES` into the
/// partition of the device's key; returns one result per pending PUBLISH. Blocking (write,
/// maybe fsync).
fn append_all(broker: &Broker, key: &Bytes, pending: &[Pending]) -> Vec<Result<(), String>> {
    let mut results: Vec<Result<(), String>> = vec![Ok(()); pending.len()];
    let now = now_ms();
    let mut streams: Vec<&Arc<str>> = Vec::new();
    for p in pending.iter().filter(|p| !p.events.is_empty()) {
        if !streams.contains(&&p.stream) {
            streams.push(&p.stream);
        }
    }
    for stream in streams {
        let members: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].stream == *stream && !pending[i].events.is_empty())
            .collect();
        let info = match broker
            .log
            .stream(stream)
            .map_or_else(|| broker.log.get_or_create_stream(stream), Ok)
        {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(stream = %stream, error = %e, "mqtt target stream unavailable");
                for &i in &members {
                    results[i] = Err(e.to_string());
                }
                continue;
            }
        };
        let partitions = info.partitions.len() as u32;
        let mut chunk = Chunk {
            stream: &info.name,
            partition: eddy_log::partition_for_key(Some(key), partitions, 0),
            records: Vec::new(),
            members: Vec::new(),
            bytes: 0,
        };
        for &i in &members {
            for event in &pending[i].events {
                let size = event.len() + key.len() + RECORD_OVERHEAD_BYTES;
                if !chunk.records.is_empty() && chunk.bytes + size > APPEND_CHUNK_BYTES {
                    chunk.append(broker, &mut results);
                }
                chunk.bytes += size;
                chunk.records.push(Record {
                    timestamp_ms: now,
                    key: Some(key.clone()),
                    value: event.clone(),
                    headers: Vec::new(),
                });
                if chunk.members.last() != Some(&i) {
                    chunk.members.push(i);
                }
            }
        }
        chunk.append(broker, &mut results);
    }
    results
}

/// Records of one stream gathered for one `Log::append`.
struct Chunk<'a> {
    stream: &'a str,
    partition: u32,
    records: Vec<Record>,
    /// Indexes of the pending PUBLISHes with events in `records`.
    members: Vec<usize>,
    /// Estimated encoded size of `records`.
    bytes: usize,
}

impl Chunk<'_> {
    /// Appends and empties the chunk; a failure marks its PUBLISHes failed.
    fn append(&mut self, broker: &Broker, results: &mut [Result<(), String>]) {
        if self.records.is_empty() {
            return;
        }
        match broker
            .log
            .append(self.stream, self.partition, &self.records)
        {
            Ok(_) => {
                let events = self.records.len() as u64;
                bump(&broker.stats.events, events);
                if let Some(hook) = &broker.on_append {
                    let bytes = self.records.iter().map(|r| r.value.len() as u64).sum();
                    hook(self.stream, events, bytes);
                }
            }
            Err(e) => {
                tracing::error!(stream = self.stream, error = %e, "mqtt append failed");
                for &i in &self.members {
                    results[i] = Err(e.to_string());
                }
            }
        }
        self.records.clear();
        self.members.clear();
        self.bytes = 0;
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The server's receive time as ASA prints datetimes: `2024-01-01T00:05:00.1234567Z`.
fn enqueued_time() -> String {
    let now = chrono::Utc::now();
    format!(
        "{}.{:07}Z",
        now.format("%Y-%m-%dT%H:%M:%S"),
        now.timestamp_subsec_nanos() / 100
    )
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
