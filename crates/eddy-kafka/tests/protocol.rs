//! Hand-built frames against an in-process broker: bad input gets the Kafka answer (an error
//! code, or a closed connection where no parseable answer exists), and the broker keeps serving;
//! plus group requests no installed client sends (LeaveGroup v3 by instance id).

use std::sync::Arc;
use std::time::Duration;

use eddy_kafka::{KafkaConfig, serve};
use eddy_log::{Log, LogConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const API_VERSIONS: i16 = 18;
const UNSUPPORTED_VERSION: i16 = 35;

struct TestBroker {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(config: KafkaConfig) -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, log, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestBroker {
        addr,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

/// `size | api key | version | correlation id | client id (v1 header) | body`.
fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&4i16.to_be_bytes());
    frame.extend_from_slice(b"test");
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// Reads one response frame; `None` when the broker closed the connection instead.
async fn response(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let read = async {
        let mut size = [0u8; 4];
        conn.read_exact(&mut size).await.ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        conn.read_exact(&mut body).await.ok()?;
        Some(body)
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("broker answered or closed in time")
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// ApiVersions v0 answer: correlation id, error code and the `(key, min, max)` list.
fn parse_api_versions_v0(b: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let corr = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let error = i16_at(b, 4);
    let n = i32::from_be_bytes([b[6], b[7], b[8], b[9]]) as usize;
    let apis = (0..n)
        .map(|i| {
            (
                i16_at(b, 10 + 6 * i),
                i16_at(b, 12 + 6 * i),
                i16_at(b, 14 + 6 * i),
            )
        })
        .collect();
    (corr, error, apis)
}

async fn api_versions_v0_works(addr: std::net::SocketAddr) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(&request(API_VERSIONS, 0, 1, &[]))
        .await
        .unwrap();
    let (corr, error, apis) = parse_api_versions_v0(&response(&mut conn).await.expect("answer"));
    assert_eq!((corr, error), (1, 0));
    assert!(apis.contains(&(API_VERSIONS, 0, 3)));
    assert!(
        apis.contains(&(0, 3, 9)),
        "Produce 3..=9 advertised: {apis:?}"
    );
}

#[tokio::test]
async fn too_new_api_versions_gets_unsupported_version_with_the_real_ranges() {
    let b = start(KafkaConfig::default()).await;
    let mut conn = TcpStream::connect(b.addr).await.unwrap();
    conn.write_all(&request(API_VERSIONS, 99, 42, &[]))
        .await
        .unwrap();
    let (corr, error, apis) = parse_api_versions_v0(&response(&mut conn).await.expect("v0 answer"));
    assert_eq!((corr, error), (42, UNSUPPORTED_VERSION));
    assert_eq!(apis.len(), eddy_kafka::SUPPORTED_APIS.len());
    // The same connection goes on: the client retries with a version it shares.
    conn.write_all(&request(API_VERSIONS, 0, 43, &[]))
        .await
        .unwrap();
    assert_eq!(
        parse_api_versions_v0(&response(&mut conn).await.unwrap()).1,
        0
    );
}

#[tokio::test]
async fn unknown_apis_bad_frames_and_garbage_close_only_their_connection() {
    let b = start(KafkaConfig {
        max_frame_bytes: 1 << 20,
        ..KafkaConfig::default()
    })
    .await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown api key", request(1000, 0, 1, &[])),
        ("too-new produce", request(0, 99, 1, &[])),
        ("oversized frame", (64i32 << 20).to_be_bytes().to_vec()),
        ("negative size", (-1i32).to_be_bytes().to_vec()),
        // Metadata v1 claiming 5 topics and carrying none.
        ("truncated body", request(3, 1, 1, &5i32.to_be_bytes())),
        ("short header", vec![0, 0, 0, 3, 0, 18, 0]),
    ];
    // A connection opened first keeps working while the others are closed.
    let mut survivor = TcpStream::connect(b.addr).await.unwrap();
    for (what, bytes) in cases {
        let mut conn = TcpStream::connect(b.addr).await.unwrap();
        conn.write_all(&bytes).await.unwrap();
        assert!(
            response(&mut conn).await.is_none(),
            "{what}: connection must be closed"
        );
    }
    survivor
        .write_all(&request(API_VERSIONS, 0, 9, &[]))
        .await
        .unwrap();
    assert_eq!(
        parse_api_versions_v0(&response(&mut survivor).await.unwrap()).0,
        9
    );
    api_versions_v0_works(b.addr).await;
}

#[tokio::test]
async fn shutdown_stops_the_listener_and_its_connections() {
    let mut b = start(KafkaConfig::default()).await;
    let mut idle = TcpStream::connect(b.addr).await.unwrap();
    api_versions_v0_works(b.addr).await;
    b.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), &mut b.task)
        .await
        .expect("serve returned")
        .unwrap();
    assert!(
        response(&mut idle).await.is_none(),
        "open connections are closed"
    );
    assert!(
        TcpStream::connect(b.addr).await.is_err(),
        "listener is gone"
    );
}

#[tokio::test]
async fn invalid_config_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), LogConfig::default()).unwrap());
    let config = KafkaConfig {
        auto_create_partitions: 0,
        ..KafkaConfig::default()
    };
    assert!(serve(listener, log, config, async {}).await.is_err());
}

/// Appends a Kafka (non-flexible) string; `None` is the null string.
fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&(s.len() as i16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

/// Reads a Kafka (non-flexible) string at `*at`, advancing it.
fn take_str(b: &[u8], at: &mut usize) -> String {
    let n = i16_at(b, *at) as usize;
    let s = String::from_utf8(b[*at + 2..*at + 2 + n].to_vec()).unwrap();
    *at += 2 + n;
    s
}

/// JoinGroup v5 for group `g` with a static instance id; returns (error, generation, member id).
async fn join_static(conn: &mut TcpStream, member_id: &str, instance: &str) -> (i16, i32, String) {
    let mut body = Vec::new();
    put_str(&mut body, Some("g"));
    body.extend_from_slice(&10_000i32.to_be_bytes()); // session timeout
    body.extend_from_slice(&10_000i32.to_be_bytes()); // rebalance timeout
    put_str(&mut body, Some(member_id));
    put_str(&mut body, Some(instance));
    put_str(&mut body, Some("consumer"));
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, Some("range"));
    body.extend_from_slice(&0i32.to_be_bytes()); // empty metadata
    conn.write_all(&request(11, 5, 7, &body)).await.unwrap();
    let r = response(conn).await.expect("JoinGroup answer");
    // correlation id, throttle time, error, generation, protocol name, leader, member id.
    let error = i16_at(&r, 8);
    let generation = i32::from_be_bytes([r[10], r[11], r[12], r[13]]);
    let mut at = 14;
    take_str(&r, &mut at);
    take_str(&r, &mut at);
    (error, generation, take_str(&r, &mut at))
}

/// LeaveGroup v3 for group `g`: each member's error code, in request order.
async fn leave_v3(conn: &mut TcpStream, members: &[(&str, Option<&str>)]) -> Vec<i16> {
    let mut body = Vec::new();
    put_str(&mut body, Some("g"));
    body.extend_from_slice(&(members.len() as i32).to_be_bytes());
    for (id, instance) in members {
        put_str(&mut body, Some(id));
        put_str(&mut body, *instance);
    }
    conn.write_all(&request(13, 3, 8, &body)).await.unwrap();
    let r = response(conn).await.expect("LeaveGroup answer");
    // correlation id, throttle time, error, members: (member id, instance id, error).
    assert_eq!(i16_at(&r, 8), 0, "top-level error");
    let n = i32::from_be_bytes([r[10], r[11], r[12], r[13]]) as usize;
    let mut at = 14;
    (0..n)
        .map(|_| {
            take_str(&r, &mut at);
            take_str(&r, &mut at);
            at += 2;
            i16_at(&r, at - 2)
        })
        .collect()
}

#[tokio::test]
async fn static_members_are_fenced_and_leave_by_instance_id() {
    let b = start(KafkaConfig {
        group_initial_rebalance_delay_ms: 0,
        ..KafkaConfig::default()
    })
    .await;
    let mut conn = TcpStream::connect(b.addr).await.unwrap();
    // A static member gets its id at once (no MEMBER_ID_REQUIRED round trip).
    let (error, generation, first) = join_static(&mut conn, "", "inst-1").await;
    assert_eq!((error, generation), (0, 1));
    assert!(!first.is_empty());
    // The same instance again (a restart): a new member id takes over, the old one is fenced.
    let (error, _, second) = join_static(&mut conn, "", "inst-1").await;
    assert_eq!(error, 0);
    assert_ne!(second, first);
    let (error, _, _) = join_static(&mut conn, &first, "inst-1").await;
    assert_eq!(error, 82, "FENCED_INSTANCE_ID");
    let codes = leave_v3(
        &mut conn,
        &[
            (&first, Some("inst-1")),
            ("", Some("nobody")),
            ("", Some("inst-1")),
        ],
    )
    .await;
    assert_eq!(codes, vec![82, 25, 0], "fenced, UNKNOWN_MEMBER_ID, left");
    // Gone: its member id is unknown now.
    let (error, _, _) = join_static(&mut conn, &second, "inst-1").await;
    assert_eq!(error, 25);
}
