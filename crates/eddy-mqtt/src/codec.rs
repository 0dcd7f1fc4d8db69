//! The frame codec: one view of MQTT 3.1.1 and 5 packets over `rumqttc`'s two packet
//! codecs, so the connection handles a packet the same way whatever the protocol level.
//!
//! Every decode first checks the fixed header (size limit, whole frame present) and tells
//! "need more bytes" ([`Decoded::Incomplete`]) from "bad bytes" ([`FrameError`]).

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};

/// The protocol level a client asked for in its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// What the first bytes of a connection announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hello {
    /// Not a whole frame yet.
    Incomplete,
    /// A CONNECT for a protocol level this server speaks.
    Supported(Version),
    /// A CONNECT for another protocol name or level (e.g. MQTT 3.1's `MQIsdp`, level 3).
    Unsupported {
        /// The protocol name the client sent.
        name: String,
        /// The protocol level the client sent.
        level: u8,
    },
}

/// Why bytes cannot be a packet; the connection is closed after answering what it can.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The remaining length exceeds the configured maximum packet size.
    #[error("packet of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Declared remaining length.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes do not decode as an MQTT packet of the negotiated version.
    #[error("malformed packet: {0}")]
    Malformed(String),
}

/// A packet from a client, reduced to what the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// CONNECT.
    Connect(Connect),
    /// PUBLISH.
    Publish(Publish),
    /// SUBSCRIBE: packet id and the requested (filter, maximum QoS) pairs.
    Subscribe {
        /// Packet identifier to echo in SUBACK.
        pkid: u16,
        /// Topic filters with their requested QoS.
        filters: Vec<(String, u8)>,
    },
    /// UNSUBSCRIBE: packet id and the filters.
    Unsubscribe {
        /// Packet identifier to echo in UNSUBACK.
        pkid: u16,
        /// Topic filters to drop.
        filters: Vec<String>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT (a v5 reason code, 0 for 3.1.1).
    Disconnect,
    /// A packet a client may send but this server ignores (PUBACK, PUBREL, AUTH, …).
    Ignored(&'static str),
    /// A packet only a server sends (CONNACK, SUBACK, …): a protocol error from a client.
    ServerOnly(&'static str),
}

/// The fields of CONNECT the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connect {
    /// Client identifier (may be empty: the server then assigns one).
    pub client_id: String,
    /// Seconds of silence after which the client counts as gone (0 = never).
    pub keep_alive_s: u16,
    /// 3.1.1 clean session / v5 clean start.
    pub clean: bool,
    /// Password, if the client sent one.
    pub password: Option<String>,
}

/// The fields of PUBLISH the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    /// Topic name (empty when a v5 client relies on a topic alias).
    pub topic: String,
    /// 0, 1 or 2.
    pub qos: u8,
    /// Packet identifier (0 for QoS 0).
    pub pkid: u16,
    /// The application message.
    pub payload: Bytes,
    /// Whether a v5 topic alias property is present (this server grants none).
    pub topic_alias: bool,
}

/// How a v5 PUBACK or DISCONNECT answers (3.1.1 has no such codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Accepted.
    Success,
    /// 0x80 Unspecified error (e.g. the log append failed).
    UnspecifiedError,
    /// 0x81 Malformed packet.
    MalformedPacket,
    /// 0x82 Protocol error.
    ProtocolError,
    /// 0x8B Server shutting down.
    ServerShuttingDown,
    /// 0x8D Keep alive timeout.
    KeepAliveTimeout,
    /// 0x8E Session taken over (another connection with the same client id).
    SessionTakenOver,
    /// 0x94 Topic alias invalid.
    TopicAliasInvalid,
    /// 0x95 Packet too large.
    PacketTooLarge,
    /// 0x99 Payload format invalid.
    PayloadFormatInvalid,
    /// 0x9B QoS not supported.
    QoSNotSupported,
}

impl Reason {
    /// What the reason means, for a person reading a client's log.
    fn text(self) -> &'static str {
        match self {
            Reason::Success => "normal disconnection",
            Reason::UnspecifiedError => "the server could not store the message",
            Reason::MalformedPacket => "malformed packet",
            Reason::ProtocolError => "protocol error",
            Reason::ServerShuttingDown => "the server is shutting down",
            Reason::KeepAliveTimeout => "no packet within 1.5 times the keep-alive",
            Reason::SessionTakenOver => "another connection uses this client id",
            Reason::TopicAliasInvalid => "topic aliases are not supported",
            Reason::PacketTooLarge => "packet larger than the maximum packet size",
            Reason::PayloadFormatInvalid => "the payload is not JSON events",
            Reason::QoSNotSupported => "QoS 2 is not supported",
        }
    }
}

/// CONNACK outcomes, mapped onto each version's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectCode {
    /// Accepted.
    Accepted,
    /// 3.1.1: 0x01 unacceptable protocol version; v5: 0x84.
    UnsupportedVersion,
    /// 3.1.1: 0x02 identifier rejected; v5: 0x85.
    ClientIdRejected,
    /// 3.1.1: 0x05 not authorized; v5: 0x87.
    NotAuthorized,
}

/// A packet the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// CONNACK; on v5 success it also announces the server's limits.
    ConnAck {
        /// Outcome.
        code: ConnectCode,
        /// The identifier the server assigned when the client sent none (v5 only).
        assigned_client_id: Option<String>,
        /// Largest packet the server accepts (v5 only).
        max_packet_bytes: u32,
    },
    /// PUBACK with a v5 reason.
    PubAck {
        /// Packet identifier of the PUBLISH.
        pkid: u16,
        /// v5 reason code.
        reason: Reason,
    },
    /// SUBACK: per filter, the granted QoS or `None` for a refused filter.
    SubAck {
        /// Packet identifier of the SUBSCRIBE.
        pkid: u16,
        /// One entry per filter.
        granted: Vec<Option<u8>>,
    },
    /// UNSUBACK for `count` filters.
    UnsubAck {
        /// Packet identifier of the UNSUBSCRIBE.
        pkid: u16,
        /// How many filters the UNSUBSCRIBE named.
        count: usize,
    },
    /// PINGRESP.
    PingResp,
    /// A server-initiated DISCONNECT (v5 only; 3.1.1 just closes).
    Disconnect(Reason),
}

/// Reads the protocol name and level of the CONNECT at the start of `buf` without consuming
/// it, so the connection can pick the codec of that version.
pub(crate) fn hello(buf: &[u8], max_packet_bytes: usize) -> Result<Hello, FrameError> {
    match m4::check(buf.iter(), max_packet_bytes) {
        Ok(_) => {}
        Err(e) => return v4_error(e, max_packet_bytes).map(|()| Hello::Incomplete),
    }
    if buf.first().map(|b| b >> 4) != Some(1) {
        return Err(FrameError::Malformed(
            "the first packet must be CONNECT".into(),
        ));
    }
    // The remaining length takes 1 to 4 bytes, each but the last with the top bit set.
    let header = 1 + buf[1..]
        .iter()
        .take(4)
        .position(|b| b & 0x80 == 0)
        .map_or(4, |i| i + 1);
    let body = &buf[header..];
    let malformed = || FrameError::Malformed("CONNECT too short for its protocol name".into());
    let name_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or_else(malformed)?,
        *body.get(1).ok_or_else(malformed)?,
    ]));
    let name = body.get(2..2 + name_len).ok_or_else(malformed)?;
    let level = *body.get(2 + name_len).ok_or_else(malformed)?;
    let name = String::from_utf8_lossy(name).into_owned();
    Ok(match (name.as_str(), level) {
        ("MQTT", 4) => Hello::Supported(Version::V311),
        ("MQTT", 5) => Hello::Supported(Version::V5),
        _ => Hello::Unsupported { name, level },
    })
}

/// Decodes the next packet of `buf` (consuming it), or `None` when the frame is incomplete.
pub(crate) fn decode(
    version: Version,
    buf: &mut BytesMut,
    max_packet_bytes: usize,
) -> Result<Option<Incoming>, FrameError> {
    match version {
        Version::V311 => match v4::Packet::read(buf, max_packet_bytes) {
            Ok(packet) => Ok(Some(from_v4(packet))),
            Err(e) => v4_error(e, max_packet_bytes).map(|()| None),
        },
        Version::V5 => {
            // rumqttc wants a body on every v5 DISCONNECT, but a bare one (remaining length
            // 0) is the common "normal disconnection".
            if buf.starts_with(&[0xE0, 0x00]) {
                let _ = buf.split_to(2);
                return Ok(Some(Incoming::Disconnect));
            }
            let max = u32::try_from(max_packet_bytes).unwrap_or(u32::MAX);
            match v5::Packet::read(buf, Some(max)) {
                Ok(packet) => Ok(Some(from_v5(packet))),
                Err(m5::Error::InsufficientBytes(_)) => Ok(None),
                Err(m5::Error::PayloadSizeLimitExceeded { pkt_size, .. }) => {
                    Err(FrameError::TooLarge {
                        size: pkt_size,
                        max: max_packet_bytes,
                    })
                }
                Err(e) => Err(FrameError::Malformed(e.to_string())),
            }
        }
    }
}

/// `Ok(())` for "need more bytes", the frame error otherwise.
fn v4_error(e: m4::Error, max: usize) -> Result<(), FrameError> {
    match e {
        m4::Error::InsufficientBytes(_) => Ok(()),
        m4::Error::PayloadSizeLimitExceeded(size) => Err(FrameError::TooLarge { size, max }),
        e => Err(FrameError::Malformed(e.to_string())),
    }
}

fn from_v4(packet: v4::Packet) -> Incoming {
    match packet {
        v4::Packet::Connect(c) => Incoming::Connect(Connect {
            client_id: c.client_id,
            keep_alive_s: c.keep_alive,
            clean: c.clean_session,
            password: c.login.map(|l| l.password),
        }),
        v4::Packet::Publish(p) => Incoming::Publish(Publish {
            topic: p.topic,
            qos: p.qos as u8,
            pkid: p.pkid,
            payload: p.payload,
            topic_alias: false,
        }),
        v4::Packet::Subscribe(s) => Incoming::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, f.qos as u8))
                .collect(),
        },
        v4::Packet::Unsubscribe(u) => Incoming::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => Incoming::PingReq,
        v4::Packet::Disconnect => Incoming::Disconnect,
        v4::Packet::PubAck(_) => Incoming::Ignored("PUBACK"),
        v4::Packet::PubRec(_) => Incoming::Ignored("PUBREC"),
        v4::Packet::PubRel(_) => Incoming::Ignored("PUBREL"),
        v4::Packet::PubComp(_) => Incoming::Ignored("PUBCOMP"),
        v4::Packet::ConnAck(_) => Incoming::ServerOnly("CONNACK"),
        v4::Packet::SubAck(_) => Incoming::ServerOnly("SUBACK"),
        v4::Packet::UnsubAck(_) => Incoming::ServerOnly("UNSUBACK"),
        v4::Packet::PingResp => Incoming::ServerOnly("PINGRESP"),
    }
}

fn from_v5(packet: v5::Packet) -> Incoming {
    match packet {
        v5::Packet::Connect(c, _will, login) => Incoming::Connect(Connect {
            client_id: c.client_id,
            keep_alive_s: c.keep_alive,
            clean: c.clean_start,
            password: login.map(|l| l.password),
        }),
        v5::Packet::Publish(p) => Incoming::Publish(Publish {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            qos: p.qos as u8,
            pkid: p.pkid,
            payload: p.payload,
            topic_alias: p
                .properties
                .as_ref()
                .is_some_and(|props| props.topic_alias.is_some()),
        }),
        v5::Packet::Subscribe(s) => Incoming::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, f.qos as u8))
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => Incoming::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq(_) => Incoming::PingReq,
        v5::Packet::Disconnect(_) => Incoming::Disconnect,
        v5::Packet::PubAck(_) => Incoming::Ignored("PUBACK"),
        v5::Packet::PubRec(_) => Incoming::Ignored("PUBREC"),
        v5::Packet::PubRel(_) => Incoming::Ignored("PUBREL"),
        v5::Packet::PubComp(_) => Incoming::Ignored("PUBCOMP"),
        v5::Packet::Auth(_) => Incoming::Ignored("AUTH"),
        v5::Packet::ConnAck(_) => Incoming::ServerOnly("CONNACK"),
        v5::Packet::SubAck(_) => Incoming::ServerOnly("SUBACK"),
        v5::Packet::UnsubAck(_) => Incoming::ServerOnly("UNSUBACK"),
        v5::Packet::PingResp(_) => Incoming::ServerOnly("PINGRESP"),
    }
}

/// Appends `packet`, encoded for `version`, to `out`. Packets with no 3.1.1 form (a
/// server DISCONNECT) encode to nothing there.
pub(crate) fn encode(version: Version, packet: &Outgoing, out: &mut BytesMut) {
    let result = match version {
        Version::V311 => to_v4(packet).map_or(Ok(0), |p| {
            p.write(out, usize::MAX).map_err(|e| e.to_string())
        }),
        Version::V5 => to_v5(packet).write(out, None).map_err(|e| e.to_string()),
    };
    // Every packet built here is small and well-formed; a failure would be a bug in this
    // module, so it is logged rather than brought down the connection.
    if let Err(e) = result {
        tracing::error!(error = %e, ?packet, "mqtt packet failed to encode");
    }
}

fn to_v4(packet: &Outgoing) -> Option<v4::Packet> {
    Some(match packet {
        Outgoing::ConnAck { code, .. } => v4::Packet::ConnAck(v4::ConnAck::new(
            match code {
                ConnectCode::Accepted => v4::ConnectReturnCode::Success,
                ConnectCode::UnsupportedVersion => v4::ConnectReturnCode::RefusedProtocolVersion,
                ConnectCode::ClientIdRejected => v4::ConnectReturnCode::BadClientId,
                ConnectCode::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
            },
            false,
        )),
        Outgoing::PubAck { pkid, .. } => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Outgoing::SubAck { pkid, granted } => v4::Packet::SubAck(v4::SubAck::new(
            *pkid,
            granted
                .iter()
                .map(|g| match g {
                    Some(0) => v4::SubscribeReasonCode::Success(m4::QoS::AtMostOnce),
                    Some(_) => v4::SubscribeReasonCode::Success(m4::QoS::AtLeastOnce),
                    None => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Outgoing::UnsubAck { pkid, .. } => v4::Packet::UnsubAck(v4::UnsubAck::new(*pkid)),
        Outgoing::PingResp => v4::Packet::PingResp,
        Outgoing::Disconnect(_) => return None,
    })
}

fn to_v5(packet: &Outgoing) -> v5::Packet {
    match packet {
        Outgoing::ConnAck {
            code,
            assigned_client_id,
            max_packet_bytes,
        } => {
            let accepted = *code == ConnectCode::Accepted;
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: false,
                code: match code {
                    ConnectCode::Accepted => v5::ConnectReturnCode::Success,
                    ConnectCode::UnsupportedVersion => {
                        v5::ConnectReturnCode::UnsupportedProtocolVersion
                    }
                    ConnectCode::ClientIdRejected => {
                        v5::ConnectReturnCode::ClientIdentifierNotValid
                    }
                    ConnectCode::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
                },
                properties: accepted.then(|| v5::ConnAckProperties {
                    session_expiry_interval: None,
                    receive_max: None,
                    // QoS 2 is not offered; a client sending it anyway is disconnected.
                    max_qos: Some(1),
                    retain_available: Some(0),
                    max_packet_size: Some(*max_packet_bytes),
                    assigned_client_identifier: assigned_client_id.clone(),
                    topic_alias_max: None,
                    reason_string: None,
                    user_properties: Vec::new(),
                    wildcard_subscription_available: None,
                    subscription_identifiers_available: Some(0),
                    shared_subscription_available: Some(0),
                    server_keep_alive: None,
                    response_information: None,
                    server_reference: None,
                    authentication_method: None,
                    authentication_data: None,
                }),
            })
        }
        Outgoing::PubAck { pkid, reason } => v5::Packet::PubAck(v5::PubAck {
            pkid: *pkid,
            reason: match reason {
                Reason::Success => v5::PubAckReason::Success,
                Reason::PayloadFormatInvalid => v5::PubAckReason::PayloadFormatInvalid,
                _ => v5::PubAckReason::UnspecifiedError,
            },
            properties: None,
        }),
        Outgoing::SubAck { pkid, granted } => v5::Packet::SubAck(v5::SubAck {
            pkid: *pkid,
            return_codes: granted
                .iter()
                .map(|g| match g {
                    Some(0) => v5::SubscribeReasonCode::Success(m5::QoS::AtMostOnce),
                    Some(_) => v5::SubscribeReasonCode::Success(m5::QoS::AtLeastOnce),
                    None => v5::SubscribeReasonCode::TopicFilterInvalid,
                })
                .collect(),
            properties: None,
        }),
        Outgoing::UnsubAck { pkid, count } => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *pkid,
            // No subscription is kept, so every filter is answered as a success.
            reasons: vec![v5::UnsubAckReason::Success; *count],
            properties: None,
        }),
        Outgoing::PingResp => v5::Packet::PingResp(v5::PingResp),
        // rumqttc 0.25 miscounts a DISCONNECT without properties (and one with empty ones),
        // so every server DISCONNECT carries a reason string, which clients log anyway.
        Outgoing::Disconnect(reason) => v5::Packet::Disconnect(v5::Disconnect {
            reason_code: match reason {
                Reason::Success => v5::DisconnectReasonCode::NormalDisconnection,
                Reason::UnspecifiedError => v5::DisconnectReasonCode::UnspecifiedError,
                Reason::MalformedPacket => v5::DisconnectReasonCode::MalformedPacket,
                Reason::ProtocolError => v5::DisconnectReasonCode::ProtocolError,
                Reason::ServerShuttingDown => v5::DisconnectReasonCode::ServerShuttingDown,
                Reason::KeepAliveTimeout => v5::DisconnectReasonCode::KeepAliveTimeout,
                Reason::SessionTakenOver => v5::DisconnectReasonCode::SessionTakenOver,
                Reason::TopicAliasInvalid => v5::DisconnectReasonCode::TopicAliasInvalid,
                Reason::PacketTooLarge => v5::DisconnectReasonCode::PacketTooLarge,
                Reason::PayloadFormatInvalid => v5::DisconnectReasonCode::PayloadFormatInvalid,
                Reason::QoSNotSupported => v5::DisconnectReasonCode::QoSNotSupported,
            },
            properties: Some(v5::DisconnectProperties {
                session_expiry_interval: None,
                reason_string: Some(reason.text().to_string()),
                user_properties: Vec::new(),
                server_reference: None,
            }),
        }),
    }
}

/// Whether `filter` is a well-formed topic filter (wildcards only as whole levels).
pub(crate) fn valid_filter(filter: &str) -> bool {
    m4::valid_filter(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_bytes(packet: v4::Packet) -> BytesMut {
        let mut out = BytesMut::new();
        packet.write(&mut out, usize::MAX).expect("encode");
        out
    }

    #[test]
    fn hello_tells_versions_apart_and_waits_for_a_whole_frame() {
        let mut connect = v4::Connect::new("dev-1");
        connect.protocol = m4::Protocol::V4;
        let bytes = v4_bytes(v4::Packet::Connect(connect.clone()));
        assert_eq!(
            hello(&bytes, 1024).unwrap(),
            Hello::Supported(Version::V311)
        );
        assert_eq!(hello(&bytes[..5], 1024).unwrap(), Hello::Incomplete);
        connect.protocol = m4::Protocol::V5;
        let bytes = v4_bytes(v4::Packet::Connect(connect));
        assert_eq!(hello(&bytes, 1024).unwrap(), Hello::Supported(Version::V5));
        // MQTT 3.1: name MQIsdp, level 3.
        let mut old = BytesMut::from(&[0x10u8, 12, 0, 6][..]);
        old.extend_from_slice(b"MQIsdp");
        old.extend_from_slice(&[3, 2, 0, 60]);
        assert!(matches!(
            hello(&old, 1024).unwrap(),
            Hello::Unsupported { level: 3, .. }
        ));
    }

    #[test]
    fn garbage_and_oversized_frames_are_errors() {
        assert!(matches!(
            hello(&[0x30, 2, 0, 0], 1024),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            hello(&[0x10, 0xFF, 0xFF, 0x7F], 1024),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            hello(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 1024),
            Err(FrameError::Malformed(_))
        ));
        let mut buf = BytesMut::from(&[0x10u8, 2, 0, 0][..]);
        assert!(decode(Version::V311, &mut buf, 1024).is_err());
    }

    #[test]
    fn bare_v5_disconnect_is_a_disconnect() {
        let mut buf = BytesMut::from(&[0xE0u8, 0x00][..]);
        assert_eq!(
            decode(Version::V5, &mut buf, 1024).unwrap(),
            Some(Incoming::Disconnect)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn v4_publish_round_trips_and_acks_encode() {
        let mut publish = v4::Publish::new("devices/a/telemetry", m4::QoS::AtLeastOnce, "{}");
        publish.pkid = 7;
        let mut buf = v4_bytes(v4::Packet::Publish(publish));
        let Some(Incoming::Publish(p)) = decode(Version::V311, &mut buf, 1024).unwrap() else {
            panic!("not a publish");
        };
        assert_eq!(
            (p.topic.as_str(), p.qos, p.pkid),
            ("devices/a/telemetry", 1, 7)
        );
        let mut out = BytesMut::new();
        encode(
            Version::V311,
            &Outgoing::PubAck {
                pkid: 7,
                reason: Reason::Success,
            },
            &mut out,
        );
        assert_eq!(&out[..], &[0x40, 2, 0, 7]);
        let mut out = BytesMut::new();
        encode(
            Version::V5,
            &Outgoing::PubAck {
                pkid: 7,
                reason: Reason::PayloadFormatInvalid,
            },
            &mut out,
        );
        assert_eq!(&out[..1], &[0x40]);
        assert_eq!(&out[2..5], &[0, 7, 0x99]);
    }

    #[test]
    fn server_disconnect_decodes_back_with_its_reason() {
        let mut out = BytesMut::new();
        encode(
            Version::V5,
            &Outgoing::Disconnect(Reason::KeepAliveTimeout),
            &mut out,
        );
        let Ok(v5::Packet::Disconnect(d)) = v5::Packet::read(&mut out, None) else {
            panic!("not a DISCONNECT");
        };
        assert_eq!(d.reason_code, v5::DisconnectReasonCode::KeepAliveTimeout);
        assert!(out.is_empty(), "trailing bytes {out:?}");
    }
}
