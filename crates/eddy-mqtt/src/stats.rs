//! Counters of the MQTT listener, read by the server's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every connection of one listener; all monotonic except `open`.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Connections accepted by CONNACK and still open.
    pub(crate) open: AtomicU64,
    /// CONNECTs accepted since start.
    pub(crate) accepted: AtomicU64,
    /// CONNECTs refused (bad credentials, unsupported version, bad client id).
    pub(crate) refused: AtomicU64,
    /// PUBLISH packets received.
    pub(crate) messages: AtomicU64,
    /// Events appended to the log.
    pub(crate) events: AtomicU64,
    /// PUBLISH payloads refused as not JSON events (nothing appended).
    pub(crate) malformed: AtomicU64,
    /// Connections closed for a protocol violation, a bad frame or a keep-alive timeout.
    pub(crate) protocol_errors: AtomicU64,
}

/// A consistent-enough copy of [`MqttStats`] for rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MqttStatsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections refused at CONNECT since start.
    pub connections_refused: u64,
    /// PUBLISH packets received.
    pub messages_received: u64,
    /// Events appended to streams.
    pub events_appended: u64,
    /// Payloads refused as malformed.
    pub malformed_payloads: u64,
    /// Connections closed for protocol errors or timeouts.
    pub protocol_errors: u64,
}

impl MqttStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> MqttStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MqttStatsSnapshot {
            connections_open: get(&self.open),
            connections_accepted: get(&self.accepted),
            connections_refused: get(&self.refused),
            messages_received: get(&self.messages),
            events_appended: get(&self.events),
            malformed_payloads: get(&self.malformed),
            protocol_errors: get(&self.protocol_errors),
        }
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
