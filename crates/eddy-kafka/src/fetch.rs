//! Fetch (long poll) and ListOffsets.
//!
//! Fetch serves whole stored batches, so a fetch from the middle of a batch returns the whole
//! batch and the client skips the records before its offset, as with Kafka. It answers as soon
//! as `min_bytes` are there, else when an append to any fetched partition brings them, else at
//! `max_wait_ms`. Fetch sessions (KIP-227) are declined (session id 0): every fetch is full.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use eddy_log::LogError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::{code, log_error_code};
use crate::records::{encode_stored, kafka_timestamp};
use crate::server::Broker;

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT_MS: u64 = 30_000;

/// One fetched partition's outcome.
struct Part {
    topic: usize,
    data: PartitionData,
    bytes: usize,
}

/// Answers Fetch, waiting up to `max_wait_ms` for `min_bytes`.
pub(crate) async fn handle(broker: &Arc<Broker>, req: FetchRequest) -> FetchResponse {
    let deadline =
        Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, MAX_WAIT_MS as i32) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    // Subscribed before the first read, so an append between read and wait still wakes us.
    let mut watches = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            if let Ok(p) = u32::try_from(p.partition)
                && let Ok(rx) = broker.log.subscribe(&t.topic, p)
            {
                watches.push(rx);
            }
        }
    }
    let req = Arc::new(req);
    loop {
        let (b, r) = (Arc::clone(broker), Arc::clone(&req));
        let parts = tokio::task::spawn_blocking(move || read_all(&b, &r))
            .await
            .unwrap_or_default();
        let total: usize = parts.iter().map(|p| p.bytes).sum();
        let errored = parts.iter().any(|p| p.data.error_code != code::NONE);
        if total >= min_bytes.max(1) || errored || Instant::now() >= deadline || watches.is_empty()
        {
            return response(&req, parts);
        }
        // Wait for any watched partition to grow, or the deadline.
        let mut waits = JoinSet::new();
        for rx in &watches {
            let mut rx = rx.clone();
            waits.spawn(async move { rx.changed().await.is_ok() });
        }
        let woke = tokio::time::timeout_at(deadline, waits.join_next()).await;
        waits.abort_all();
        for rx in &mut watches {
            rx.borrow_and_update();
        }
        if woke.is_err() {
            let (b, r) = (Arc::clone(broker), Arc::clone(&req));
            let parts = tokio::task::spawn_blocking(move || read_all(&b, &r))
                .await
                .unwrap_or_default();
            return response(&req, parts);
        }
    }
}

fn response(req: &FetchRequest, parts: Vec<Part>) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = req
        .topics
        .iter()
        .map(|t| FetchableTopicResponse::default().with_topic(t.topic.clone()))
        .collect();
    for p in parts {
        if let Some(t) = topics.get_mut(p.topic) {
            t.partitions.push(p.data);
        }
    }
    FetchResponse::default().with_responses(topics)
}

/// Reads every requested partition once, within the request's byte budgets.
fn read_all(broker: &Broker, req: &FetchRequest) -> Vec<Part> {
    let mut budget = usize::try_from(req.max_bytes).unwrap_or(0).max(1);
    let mut first = true;
    let mut out = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        for p in &t.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_aborted_transactions(None);
            let bytes = match read_partition(
                broker,
                &t.topic,
                p.partition,
                p.fetch_offset,
                p.partition_max_bytes,
                budget,
                first,
            ) {
                Ok((records, start, end)) => {
                    data.high_watermark = end as i64;
                    data.last_stable_offset = end as i64;
                    data.log_start_offset = start as i64;
                    let n = records.len();
                    data.records = Some(records.freeze());
                    n
                }
                Err(c) => {
                    data.error_code = c;
                    data.high_watermark = -1;
                    0
                }
            };
            if bytes > 0 {
                first = false;
                budget = budget.saturating_sub(bytes);
            }
            out.push(Part {
                topic: ti,
                data,
                bytes,
            });
        }
    }
    out
}

/// One partition's batches from `offset`: `(kafka batches, log start, high watermark)`.
fn read_partition(
    broker: &Broker,
    topic: &str,
    partition: i32,
    offset: i64,
    partition_max_bytes: i32,
    budget: usize,
    first: bool,
) -> Result<(BytesMut, u64, u64), i16> {
    let stream = broker
        .log
        .stream(topic)
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let info = u32::try_from(partition)
        .ok()
        .and_then(|p| stream.partitions.get(p as usize).copied())
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let offset = u64::try_from(offset).map_err(|_| code::OFFSET_OUT_OF_RANGE)?;
    if offset < info.start_offset || offset > info.end_offset {
        return Err(code::OFFSET_OUT_OF_RANGE);
    }
    let mut out = BytesMut::new();
    // Past the first non-empty partition, an exhausted budget means nothing more (KIP-74).
    if offset == info.end_offset || (!first && budget == 0) {
        return Ok((out, info.start_offset, info.end_offset));
    }
    let max = usize::try_from(partition_max_bytes)
        .unwrap_or(0)
        .max(1)
        .min(budget);
    let batches = match broker.log.read_batches(topic, info.partition, offset, max) {
        Ok(b) => b,
        Err(LogError::OffsetOutOfRange { .. }) => return Err(code::OFFSET_OUT_OF_RANGE),
        Err(e) => {
            tracing::warn!(topic, partition, error = %e, "fetch read failed");
            return Err(log_error_code(&e));
        }
    };
    for b in &batches {
        let before = out.len();
        let may_exceed = before == 0 && first;
        if !may_exceed && before + min_encoded_len(b) > max {
            break;
        }
        if let Err(e) = encode_stored(b, &mut out) {
            tracing::error!(topic, partition, error = %e, "encoding a stored batch failed");
            return Err(code::UNKNOWN_SERVER_ERROR);
        }
        // Only the first batch of the first non-empty partition may exceed the budget (KIP-74):
        // a client sizes its receive buffer from fetch.max.bytes.
        if out.len() > max && !may_exceed {
            out.truncate(before);
            break;
        }
    }
    Ok((out, info.start_offset, info.end_offset))
}

/// A lower bound of a stored batch's encoded size (batch header, and per record its key, value
/// and the smallest record framing), to skip a batch that cannot fit without encoding it.
fn min_encoded_len(b: &eddy_log::StoredBatch) -> usize {
    61 + b
        .records
        .iter()
        .map(|r| 7 + r.value.len() + r.key.as_ref().map_or(0, |k| k.len()))
        .sum::<usize>()
}

/// Answers ListOffsets: -2 earliest, -1 latest, -3 the newest record (v7), else the first
/// offset whose producer timestamp (CreateTime, what consumers see) is at or after it.
pub(crate) async fn list_offsets(
    broker: &Arc<Broker>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let b = Arc::clone(broker);
    tokio::task::spawn_blocking(move || {
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let r = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            // Encoding refuses a set field the version lacks (v4 added it).
                            .with_leader_epoch(if version >= 4 { 0 } else { -1 });
                        match lookup(&b, &t.name, p.partition_index, p.timestamp) {
                            Ok((offset, ts)) => r.with_offset(offset).with_timestamp(ts),
                            Err(c) => r.with_error_code(c).with_offset(-1).with_timestamp(-1),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    })
    .await
    .unwrap_or_default()
}

/// `(offset, timestamp)` for one ListOffsets query; offset -1 when no record qualifies.
fn lookup(broker: &Broker, topic: &str, partition: i32, timestamp: i64) -> Result<(i64, i64), i16> {
    let stream = broker
        .log
        .stream(topic)
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let info = u32::try_from(partition)
        .ok()
        .and_then(|p| stream.partitions.get(p as usize).copied())
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let time_at = |offset: u64| -> Result<Option<i64>, i16> {
        match broker.log.read(topic, info.partition, offset, 1) {
            Ok(r) => Ok(r.first().map(kafka_timestamp)),
            Err(e) => Err(log_error_code(&e)),
        }
    };
    match timestamp {
        -2 => Ok((info.start_offset as i64, -1)),
        -1 => Ok((info.end_offset as i64, -1)),
        -3 if info.end_offset > info.start_offset => {
            let last = info.end_offset - 1;
            Ok((last as i64, time_at(last)?.unwrap_or(-1)))
        }
        t if t < 0 => Ok((-1, -1)),
        t => first_at_or_after(broker, topic, info, t),
    }
}

/// The first record whose timestamp (the producer's, as consumers see it: CreateTime) is at
/// or after `t`, as Kafka answers. Producer timestamps need not grow with offsets, so this
/// scans the partition batch by batch instead of binary searching.
fn first_at_or_after(
    broker: &Broker,
    topic: &str,
    info: eddy_log::PartitionInfo,
    t: i64,
) -> Result<(i64, i64), i16> {
    let mut offset = info.start_offset;
    while offset < info.end_offset {
        let batches = broker
            .log
            .read_batches(topic, info.partition, offset, 1 << 20)
            .map_err(|e| log_error_code(&e))?;
        let Some(last) = batches.last() else { break };
        let next = last.base_offset + last.records.len() as u64;
        for r in batches.iter().flat_map(|b| &b.records) {
            let ts = kafka_timestamp(r);
            if r.offset >= offset && ts >= t {
                return Ok((r.offset as i64, ts));
            }
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok((-1, -1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::RecordBatchDecoder;

    fn fetch_request(offset: i64, max_wait_ms: i32) -> FetchRequest {
        FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    }

    fn append(broker: &Broker, n: usize) {
        let records: Vec<_> = (0..n)
            .map(|i| eddy_log::Record {
                timestamp_ms: 1,
                key: None,
                value: Bytes::from(format!("v{i}")),
                headers: Vec::new(),
            })
            .collect();
        broker.log.append("t", 0, &records).unwrap();
    }

    fn offsets(resp: &FetchResponse) -> Vec<i64> {
        let mut records = resp.responses[0].partitions[0]
            .records
            .clone()
            .unwrap_or_default();
        RecordBatchDecoder::decode_all(&mut records)
            .unwrap()
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect()
    }

    #[tokio::test]
    async fn fetch_from_mid_batch_returns_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::for_test(dir.path());
        broker.log.create_stream("t", 1).unwrap();
        append(&broker, 5);
        let resp = handle(&broker, fetch_request(2, 0)).await;
        assert_eq!(offsets(&resp), [0, 1, 2, 3, 4]);
        assert_eq!(resp.responses[0].partitions[0].high_watermark, 5);
        let beyond = handle(&broker, fetch_request(9, 0)).await;
        assert_eq!(
            beyond.responses[0].partitions[0].error_code,
            code::OFFSET_OUT_OF_RANGE
        );
    }

    #[tokio::test]
    async fn response_stays_within_fetch_max_bytes_past_the_first_batch() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::for_test(dir.path());
        broker.log.create_stream("t", 1).unwrap();
        // Two batches of ~600 KB; fetch.max.bytes 1 MB: only the first may be served.
        for _ in 0..2 {
            let big = eddy_log::Record {
                timestamp_ms: 1,
                key: None,
                value: Bytes::from(vec![7u8; 600_000]),
                headers: Vec::new(),
            };
            broker.log.append("t", 0, &[big]).unwrap();
        }
        let mut req = fetch_request(0, 0);
        req.max_bytes = 1_000_000;
        req.topics[0].partitions[0].partition_max_bytes = 20_000_000;
        let resp = handle(&broker, req).await;
        assert_eq!(offsets(&resp), [0]);
        let len = resp.responses[0].partitions[0]
            .records
            .as_ref()
            .map_or(0, |r| r.len());
        assert!((600_000..1_000_000).contains(&len), "{len}");
    }

    #[tokio::test]
    async fn long_poll_answers_when_an_append_arrives_not_at_max_wait() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::for_test(dir.path());
        broker.log.create_stream("t", 1).unwrap();
        let b = Arc::clone(&broker);
        // max_wait is 30 s; the test's 10 s bound only holds if the append wakes the fetch.
        let mut fetch = tokio::spawn(async move { handle(&b, fetch_request(0, 30_000)).await });
        // Nothing to return yet, so the fetch must still be waiting (it cannot finish early).
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut fetch)
                .await
                .is_err()
        );
        append(&broker, 3);
        let resp = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .expect("woken by the append")
            .unwrap();
        assert_eq!(offsets(&resp), [0, 1, 2]);
    }
}
