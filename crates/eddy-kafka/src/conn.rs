//! One client connection: frames in, responses out, strictly in request order (Kafka clients
//! rely on it), one request at a time as a Kafka broker does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ConnError;
use crate::frame::{header_prefix, split_frame};
use crate::server::Broker;
use crate::{admin, fetch, groups, metadata, produce, versions};

/// Who sent a request, for group member descriptions.
pub(crate) struct Client {
    /// The request header's client id.
    pub client_id: String,
    /// The peer address, as DescribeGroups shows it.
    pub host: String,
}

impl Client {
    /// Built only for the requests that describe their sender (JoinGroup), not per request:
    /// two allocations per produce request otherwise.
    fn of(header: &RequestHeader, peer: SocketAddr) -> Client {
        Client {
            client_id: header
                .client_id
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            host: format!("/{}", peer.ip()),
        }
    }
}

/// Serves one connection until the peer closes it or a frame cannot be answered.
pub(crate) async fn run(broker: Arc<Broker>, mut stream: TcpStream, peer: SocketAddr) {
    if let Err(e) = serve_conn(&broker, &mut stream, peer).await {
        match e {
            ConnError::Io(e) => tracing::debug!(%peer, error = %e, "kafka connection closed"),
            e => tracing::warn!(%peer, error = %e, "closing kafka connection"),
        }
    }
}

async fn serve_conn(
    broker: &Arc<Broker>,
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<(), ConnError> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(8 << 10);
    loop {
        while let Some(frame) = split_frame(&mut buf, broker.config.max_frame_bytes)? {
            if let Some(response) = handle_frame(broker, frame, peer).await? {
                stream.write_all(&response).await?;
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(8 << 10);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// `what` is the API (`ApiKey`'s debug name) or "header".
fn malformed(what: &str, e: impl std::fmt::Display) -> ConnError {
    ConnError::Malformed {
        api: what.to_string(),
        reason: e.to_string(),
    }
}

/// Encodes `size | response header | body`.
fn encode<R: Encodable + HeaderVersion>(
    api: ApiKey,
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Result<Bytes, ConnError> {
    let fail = |e: &dyn std::fmt::Display| ConnError::Encode {
        api: format!("{api:?}"),
        reason: e.to_string(),
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| fail(&e))?;
    response.encode(&mut buf, version).map_err(|e| fail(&e))?;
    let size = i32::try_from(buf.len() - 4).map_err(|e| fail(&e))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Decodes one request, runs its handler and encodes the response (`None`: acks=0 produce).
async fn handle_frame(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    peer: SocketAddr,
) -> Result<Option<Bytes>, ConnError> {
    let prefix = header_prefix(&frame)
        .ok_or_else(|| malformed("header", "frame shorter than a request header"))?;
    let (key, version, corr) = (prefix.api_key, prefix.api_version, prefix.correlation_id);
    let api = ApiKey::try_from(key).map_err(|()| ConnError::Unsupported {
        api_key: key,
        version,
    })?;
    if !versions::is_supported(key, version) {
        if api == ApiKey::ApiVersions {
            tracing::debug!(%peer, version, "ApiVersions version unknown; answering v0 with UNSUPPORTED_VERSION");
            return encode(api, corr, 0, &versions::unsupported()).map(Some);
        }
        return Err(ConnError::Unsupported {
            api_key: key,
            version,
        });
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| malformed("header", e))?;
    macro_rules! call {
        ($req:ty, |$r:ident| $handler:expr) => {{
            let $r = <$req>::decode(&mut frame, version)
                .map_err(|e| malformed(&format!("{api:?}"), e))?;
            let response = $handler;
            encode(api, corr, version, &response).map(Some)
        }};
    }
    match api {
        ApiKey::ApiVersions => call!(ApiVersionsRequest, |r| versions::handle(r)),
        ApiKey::Metadata => call!(MetadataRequest, |r| metadata::handle(broker, r, version)
            .await),
        ApiKey::Produce => {
            let r = ProduceRequest::decode(&mut frame, version)
                .map_err(|e| malformed(&format!("{api:?}"), e))?;
            match produce::handle(broker, r).await {
                Some(response) => encode(api, corr, version, &response).map(Some),
                None => Ok(None),
            }
        }
        ApiKey::InitProducerId => call!(InitProducerIdRequest, |r| produce::init_producer_id(
            broker, r
        )),
        ApiKey::Fetch => call!(FetchRequest, |r| fetch::handle(broker, r).await),
        ApiKey::ListOffsets => call!(ListOffsetsRequest, |r| fetch::list_offsets(
            broker, r, version
        )
        .await),
        ApiKey::FindCoordinator => call!(FindCoordinatorRequest, |r| groups::find_coordinator(
            broker, r, version
        )),
        ApiKey::JoinGroup => call!(JoinGroupRequest, |r| groups::join(
            broker,
            r,
            version,
            &Client::of(&header, peer)
        )
        .await),
        ApiKey::SyncGroup => call!(SyncGroupRequest, |r| groups::sync(broker, r).await),
        ApiKey::Heartbeat => call!(HeartbeatRequest, |r| groups::heartbeat(broker, r)),
        ApiKey::LeaveGroup => call!(LeaveGroupRequest, |r| groups::leave(broker, r, version)),
        ApiKey::DescribeGroups => call!(DescribeGroupsRequest, |r| groups::describe(broker, r)),
        ApiKey::ListGroups => call!(ListGroupsRequest, |r| groups::list(broker, r)),
        ApiKey::OffsetCommit => call!(OffsetCommitRequest, |r| groups::offset_commit(broker, r)
            .await),
        ApiKey::OffsetFetch => call!(OffsetFetchRequest, |r| groups::offset_fetch(broker, r)),
        ApiKey::CreateTopics => call!(CreateTopicsRequest, |r| admin::create_topics(
            broker, r, version
        )
        .await),
        ApiKey::CreatePartitions => call!(CreatePartitionsRequest, |r| {
            admin::create_partitions(broker, r).await
        }),
        ApiKey::DeleteTopics => call!(DeleteTopicsRequest, |r| admin::delete_topics(broker, r)
            .await),
        ApiKey::DescribeConfigs => call!(DescribeConfigsRequest, |r| admin::describe_configs(
            broker, r
        )),
        _ => Err(ConnError::Unsupported {
            api_key: key,
            version,
        }),
    }
}
