//! The listener against hand-driven clients: packets are built with `rumqttc`'s codecs (or
//! raw bytes, for what no codec would send) and the answers checked byte for byte where the
//! specifications fix them. Each test runs its own listener over a fresh log.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use eddy_log::{Log, LogConfig};
use eddy_mqtt::{MqttConfig, MqttStats};
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Listener {
    addr: std::net::SocketAddr,
    log: Arc<Log>,
    stats: Arc<MqttStats>,
    /// Dropping (or sending on) it shuts the listener down.
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

async fn listen(config: MqttConfig) -> Listener {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Log::open(dir.path(), LogConfig::default()).expect("log"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(MqttStats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(eddy_mqtt::serve(
        listener,
        log.clone(),
        config,
        stats.clone(),
        None,
        shutdown,
    ));
    Listener {
        addr,
        log,
        stats,
        stop: Some(stop),
        _dir: dir,
    }
}

/// Reads until the peer closes (or 5 s pass); returns every byte received.
async fn read_to_close(socket: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut all)).await;
    all
}

async fn send(socket: &mut TcpStream, bytes: &[u8]) {
    socket.write_all(bytes).await.expect("write");
}

fn v4_connect(id: &str, keep_alive: u16, password: Option<&str>) -> Vec<u8> {
    let mut connect = v4::Connect::new(id);
    connect.keep_alive = keep_alive;
    if let Some(p) = password {
        connect.set_login("user", p);
    }
    let mut out = BytesMut::new();
    v4::Packet::Connect(connect)
        .write(&mut out, usize::MAX)
        .expect("encode");
    out.to_vec()
}

fn v5_connect(id: &str, keep_alive: u16, password: Option<&str>) -> Vec<u8> {
    let connect = v5::Connect {
        keep_alive,
        client_id: id.to_string(),
        clean_start: true,
        properties: None,
    };
    let login = password.map(|p| v5::Login::new("user", p));
    let mut out = BytesMut::new();
    v5::Packet::Connect(connect, None, login)
        .write(&mut out, None)
        .expect("encode");
    out.to_vec()
}

async fn next_v5(socket: &mut TcpStream, buf: &mut BytesMut) -> v5::Packet {
    loop {
        match v5::Packet::read(buf, None) {
            Ok(p) => return p,
            Err(m5::Error::InsufficientBytes(_)) => {
                let n = tokio::time::timeout(Duration::from_secs(5), socket.read_buf(buf))
                    .await
                    .expect("an answer within 5 s")
                    .expect("read");
                assert!(n > 0, "closed early; buffered {buf:?}");
            }
            Err(e) => panic!("bad packet from the server: {e}"),
        }
    }
}

async fn next_v4(socket: &mut TcpStream, buf: &mut BytesMut) -> v4::Packet {
    loop {
        match v4::Packet::read(buf, usize::MAX) {
            Ok(p) => return p,
            Err(m4::Error::InsufficientBytes(_)) => {
                let n = tokio::time::timeout(Duration::from_secs(5), socket.read_buf(buf))
                    .await
                    .expect("an answer within 5 s")
                    .expect("read");
                assert!(n > 0, "closed early; buffered {buf:?}");
            }
            Err(e) => panic!("bad packet from the server: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_gets_unacceptable_protocol_version() {
    let l = listen(MqttConfig::default()).await;
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    let mut connect = vec![0x10, 17, 0, 6];
    connect.extend_from_slice(b"MQIsdp");
    connect.extend_from_slice(&[3, 0x02, 0, 60, 0, 3]);
    connect.extend_from_slice(b"dev");
    send(&mut socket, &connect).await;
    assert_eq!(read_to_close(&mut socket).await, [0x20, 2, 0, 1]);
    assert_eq!(l.stats.snapshot().connections_refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_the_connection_and_the_listener_serves_on() {
    let l = listen(MqttConfig::default()).await;
    for garbage in [
        &[0x30u8, 2, 0, 0][..],                    // PUBLISH before CONNECT
        &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..], // remaining length of five bytes
        &[0x10, 3, 0, 9, b'M'][..],                // protocol name cut short
        &[0xF0, 0][..],                            // reserved packet type
    ] {
        let mut socket = TcpStream::connect(l.addr).await.expect("connect");
        send(&mut socket, garbage).await;
        assert_eq!(read_to_close(&mut socket).await, b"", "{garbage:?}");
    }
    // A v3.1.1 session: a PUBLISH with a truncated topic is malformed, after a good one.
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v4_connect("dev", 0, None)).await;
    let mut buf = BytesMut::new();
    assert!(matches!(
        next_v4(&mut socket, &mut buf).await,
        v4::Packet::ConnAck(v4::ConnAck {
            code: v4::ConnectReturnCode::Success,
            ..
        })
    ));
    send(&mut socket, &[0x30, 4, 0, 10, b'a', b'b']).await;
    assert_eq!(read_to_close(&mut socket).await, b"");
    assert!(l.stats.snapshot().protocol_errors >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_timeout_disconnects_with_0x8d() {
    let l = listen(MqttConfig::default()).await;
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v5_connect("sleepy", 1, None)).await;
    let mut buf = BytesMut::new();
    assert!(matches!(
        next_v5(&mut socket, &mut buf).await,
        v5::Packet::ConnAck(_)
    ));
    let started = std::time::Instant::now();
    let packet = next_v5(&mut socket, &mut buf).await;
    let waited = started.elapsed();
    assert!(
        matches!(&packet, v5::Packet::Disconnect(d) if d.reason_code == v5::DisconnectReasonCode::KeepAliveTimeout),
        "{packet:?}"
    );
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert_eq!(read_to_close(&mut socket).await, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_is_granted_at_most_qos1_and_ping_is_answered() {
    let l = listen(MqttConfig::default()).await;
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v4_connect("dev", 30, None)).await;
    let mut buf = BytesMut::new();
    next_v4(&mut socket, &mut buf).await;
    let mut subscribe = v4::Subscribe::new("devices/dev/commands/#", m4::QoS::ExactlyOnce);
    subscribe.pkid = 3;
    subscribe.add("bad/#/filter".into(), m4::QoS::AtMostOnce);
    let mut out = BytesMut::new();
    v4::Packet::Subscribe(subscribe)
        .write(&mut out, usize::MAX)
        .expect("encode");
    let mut unsubscribe = v4::Unsubscribe::new("devices/dev/commands/#");
    unsubscribe.pkid = 4;
    v4::Packet::Unsubscribe(unsubscribe)
        .write(&mut out, usize::MAX)
        .expect("encode");
    v4::Packet::PingReq
        .write(&mut out, usize::MAX)
        .expect("encode");
    v4::Packet::Disconnect
        .write(&mut out, usize::MAX)
        .expect("encode");
    send(&mut socket, &out).await;
    assert_eq!(
        next_v4(&mut socket, &mut buf).await,
        v4::Packet::SubAck(v4::SubAck::new(
            3,
            vec![
                v4::SubscribeReasonCode::Success(m4::QoS::AtLeastOnce),
                v4::SubscribeReasonCode::Failure
            ]
        ))
    );
    assert_eq!(
        next_v4(&mut socket, &mut buf).await,
        v4::Packet::UnsubAck(v4::UnsubAck::new(4))
    );
    assert_eq!(next_v4(&mut socket, &mut buf).await, v4::Packet::PingResp);
    assert_eq!(read_to_close(&mut socket).await, b"");
    assert_eq!(l.stats.snapshot().protocol_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_and_oversized_packets_end_v5_sessions_with_their_reason() {
    let config = MqttConfig {
        max_packet_bytes: 1024,
        ..MqttConfig::default()
    };
    let l = listen(config).await;
    for (payload, qos, reason) in [
        (
            vec![b'{', b'}'],
            m5::QoS::ExactlyOnce,
            v5::DisconnectReasonCode::QoSNotSupported,
        ),
        (
            vec![b' '; 2000],
            m5::QoS::AtLeastOnce,
            v5::DisconnectReasonCode::PacketTooLarge,
        ),
    ] {
        let mut socket = TcpStream::connect(l.addr).await.expect("connect");
        send(&mut socket, &v5_connect("dev", 30, None)).await;
        let mut buf = BytesMut::new();
        let v5::Packet::ConnAck(ack) = next_v5(&mut socket, &mut buf).await else {
            panic!("no CONNACK");
        };
        let props = ack.properties.expect("CONNACK properties");
        assert_eq!(
            (props.max_qos, props.max_packet_size),
            (Some(1), Some(1024))
        );
        let mut publish = v5::Publish::new("t", qos, payload, None);
        publish.pkid = 1;
        let mut out = BytesMut::new();
        v5::Packet::Publish(publish)
            .write(&mut out, None)
            .expect("encode");
        send(&mut socket, &out).await;
        let packet = next_v5(&mut socket, &mut buf).await;
        assert!(
            matches!(&packet, v5::Packet::Disconnect(d) if d.reason_code == reason),
            "{packet:?}"
        );
    }
    assert_eq!(l.log.streams().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_client_ids_are_checked_at_connect() {
    let config = MqttConfig {
        auth_token: Some("token".into()),
        ..MqttConfig::default()
    };
    let l = listen(config).await;
    // Wrong password: 3.1.1 0x05, v5 0x87.
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v4_connect("dev", 30, Some("nope"))).await;
    assert_eq!(read_to_close(&mut socket).await, [0x20, 2, 0, 5]);
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v5_connect("dev", 30, None)).await;
    let mut buf = BytesMut::new();
    let packet = next_v5(&mut socket, &mut buf).await;
    assert!(
        matches!(&packet, v5::Packet::ConnAck(a) if a.code == v5::ConnectReturnCode::NotAuthorized),
        "{packet:?}"
    );
    // 3.1.1: an empty client id needs a clean session.
    let mut connect = v4::Connect::new("");
    connect.clean_session = false;
    connect.set_login("u", "token");
    let mut out = BytesMut::new();
    v4::Packet::Connect(connect)
        .write(&mut out, usize::MAX)
        .expect("encode");
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &out).await;
    assert_eq!(read_to_close(&mut socket).await, [0x20, 2, 0, 2]);
    // v5: an empty client id is assigned one, which becomes the device id.
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v5_connect("", 30, Some("token"))).await;
    let mut buf = BytesMut::new();
    let v5::Packet::ConnAck(ack) = next_v5(&mut socket, &mut buf).await else {
        panic!("no CONNACK");
    };
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let assigned = ack
        .properties
        .and_then(|p| p.assigned_client_identifier)
        .expect("assigned id");
    let mut publish = v5::Publish::new("t", m5::QoS::AtLeastOnce, r#"{"n":1}"#, None);
    publish.pkid = 9;
    let mut out = BytesMut::new();
    v5::Packet::Publish(publish)
        .write(&mut out, None)
        .expect("encode");
    send(&mut socket, &out).await;
    let packet = next_v5(&mut socket, &mut buf).await;
    assert!(
        matches!(&packet, v5::Packet::PubAck(a) if a.pkid == 9 && a.reason == v5::PubAckReason::Success),
        "{packet:?}"
    );
    let all: Vec<_> = (0..4)
        .flat_map(|p| l.log.read("devices", p, 0, 10).unwrap_or_default())
        .collect();
    assert_eq!(all.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&all[0].value).expect("json");
    assert_eq!(event["IoTHub"]["ConnectionDeviceId"], assigned.as_str());
    assert_eq!(all[0].key.as_deref(), Some(assigned.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_client_id_takes_over() {
    let l = listen(MqttConfig::default()).await;
    let mut first = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut first, &v5_connect("pump-1", 60, None)).await;
    let mut first_buf = BytesMut::new();
    next_v5(&mut first, &mut first_buf).await;
    let mut second = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut second, &v4_connect("pump-1", 60, None)).await;
    let mut second_buf = BytesMut::new();
    next_v4(&mut second, &mut second_buf).await;
    let packet = next_v5(&mut first, &mut first_buf).await;
    assert!(
        matches!(&packet, v5::Packet::Disconnect(d) if d.reason_code == v5::DisconnectReasonCode::SessionTakenOver),
        "{packet:?}"
    );
    assert_eq!(read_to_close(&mut first).await, b"");
    // The new connection goes on.
    let mut out = BytesMut::new();
    v4::Packet::PingReq
        .write(&mut out, usize::MAX)
        .expect("encode");
    send(&mut second, &out).await;
    assert_eq!(
        next_v4(&mut second, &mut second_buf).await,
        v4::Packet::PingResp
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_many_tiny_events_is_appended_in_several_batches() {
    let l = listen(MqttConfig::default()).await;
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    // A long client id makes every record's key count.
    let id = "d".repeat(200);
    send(&mut socket, &v4_connect(&id, 60, None)).await;
    let mut buf = BytesMut::new();
    next_v4(&mut socket, &mut buf).await;
    const EVENTS: usize = 80_000;
    let mut publish = v4::Publish::new("t", m4::QoS::AtLeastOnce, "{}\n".repeat(EVENTS));
    publish.pkid = 5;
    let mut out = BytesMut::new();
    v4::Packet::Publish(publish)
        .write(&mut out, usize::MAX)
        .expect("encode");
    send(&mut socket, &out).await;
    assert_eq!(
        next_v4(&mut socket, &mut buf).await,
        v4::Packet::PubAck(v4::PubAck::new(5))
    );
    let stored: usize = (0..4)
        .map(|p| {
            let mut n = 0;
            while let Ok(records) = l.log.read("devices", p, n as u64, 100_000) {
                if records.is_empty() {
                    break;
                }
                n += records.len();
            }
            n
        })
        .sum();
    assert_eq!(stored, EVENTS);
    assert_eq!(l.stats.snapshot().events_appended, EVENTS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_acknowledges_what_was_read_then_says_goodbye() {
    let mut l = listen(MqttConfig::default()).await;
    let mut socket = TcpStream::connect(l.addr).await.expect("connect");
    send(&mut socket, &v5_connect("dev", 60, None)).await;
    let mut buf = BytesMut::new();
    next_v5(&mut socket, &mut buf).await;
    let mut publish = v5::Publish::new("t", m5::QoS::AtLeastOnce, r#"{"n":1}"#, None);
    publish.pkid = 1;
    let mut out = BytesMut::new();
    v5::Packet::Publish(publish)
        .write(&mut out, None)
        .expect("encode");
    send(&mut socket, &out).await;
    assert!(matches!(
        next_v5(&mut socket, &mut buf).await,
        v5::Packet::PubAck(_)
    ));
    drop(l.stop.take());
    let packet = next_v5(&mut socket, &mut buf).await;
    assert!(
        matches!(&packet, v5::Packet::Disconnect(d) if d.reason_code == v5::DisconnectReasonCode::ServerShuttingDown),
        "{packet:?}"
    );
    assert_eq!(read_to_close(&mut socket).await, b"");
    assert_eq!(l.stats.snapshot().connections_open, 0);
}
