//! Produce and InitProducerId.
//!
//! Every acks level is answered after the log append returned, i.e. once the bytes reached the
//! operating system, which survives `kill -9`: with one broker and no replicas, acks=1 and
//! acks=all mean the same. acks=0 gets no response, as the protocol says.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use eddy_log::{FsyncPolicy, PartitionInfo};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
};

use crate::error::{code, log_error_code};
use crate::producers::Recovered;
use crate::records::{decode_produced, producer_mark};
use crate::server::Broker;

/// Milliseconds since the Unix epoch: the arrival time the log stores.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Appends every partition's batch; `None` for acks=0 (no response is sent).
pub(crate) async fn handle(broker: &Arc<Broker>, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks = req.acks;
    let response = if matches!(broker.log.config().fsync, FsyncPolicy::Always) {
        // An fsync per append (milliseconds): off the async workers.
        let broker = Arc::clone(broker);
        tokio::task::spawn_blocking(move || produce_blocking(&broker, req))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "produce task failed");
                ProduceResponse::default()
            })
    } else {
        // A write into the page cache, microseconds: cheaper in place than the hand-off to the
        // blocking pool, which was most of a small produce request's time.
        produce_blocking(broker, req)
    };
    (acks != 0).then_some(response)
}

fn produce_blocking(broker: &Broker, req: ProduceRequest) -> ProduceResponse {
    let valid_acks = matches!(req.acks, -1..=1);
    let transactional = req.transactional_id.is_some();
    let responses = req
        .topic_data
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partition_responses = topic
                .partition_data
                .into_iter()
                .map(|p| {
                    let mut resp = PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(-1);
                    let result = if !valid_acks {
                        Err(code::INVALID_REQUIRED_ACKS)
                    } else if transactional {
                        // Transactions are not implemented; refuse rather than half-apply.
                        Err(code::INVALID_REQUEST)
                    } else {
                        append_partition(broker, &name, p.index, p.records.unwrap_or_default())
                    };
                    match result {
                        Ok((base, start)) => {
                            resp.base_offset = base as i64;
                            resp.log_start_offset = start as i64;
                        }
                        Err(c) => resp.error_code = c,
                    }
                    resp
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

/// Appends one partition's batch; `(base offset, log start offset)` or a Kafka error code.
fn append_partition(
    broker: &Broker,
    topic: &str,
    partition: i32,
    bytes: bytes::Bytes,
) -> Result<(u64, u64), i16> {
    if bytes.len() > broker.config.max_message_bytes {
        return Err(code::MESSAGE_TOO_LARGE);
    }
    let stream = broker
        .log
        .stream(topic)
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let part = u32::try_from(partition)
        .ok()
        .and_then(|p| stream.partitions.get(p as usize))
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    let batch = decode_produced(&bytes, now_ms())?;
    if batch.transactional {
        return Err(code::INVALID_REQUEST);
    }
    let append = || {
        broker
            .log
            .append(topic, part.partition, &batch.records)
            .map(|a| a.base_offset)
    };
    let result = if batch.producer_id >= 0 {
        let key = (
            batch.producer_id,
            topic.to_ascii_lowercase(),
            part.partition,
        );
        broker.producers.append_in_sequence(
            key,
            batch.producer_epoch,
            batch.base_sequence,
            batch.record_count,
            || recover_producer(broker, topic, *part, batch.producer_id),
            append,
        )?
    } else {
        append()
    };
    match result {
        Ok(base) => Ok((base, part.start_offset)),
        Err(e) => {
            tracing::warn!(topic, partition, error = %e, "produce append failed");
            Err(log_error_code(&e))
        }
    }
}

/// Records at the end of a partition searched for a producer's batches after a restart: far
/// more than the 5 batches a client can have in flight, small enough to read in a moment.
const RECOVERY_RECORDS: u64 = 20_000;

/// The batches `producer_id` appended among the last `RECOVERY_RECORDS` of the partition.
fn recover_producer(
    broker: &Broker,
    topic: &str,
    part: PartitionInfo,
    producer_id: i64,
) -> Vec<Recovered> {
    let mut found = Vec::new();
    let mut offset = part
        .end_offset
        .saturating_sub(RECOVERY_RECORDS)
        .max(part.start_offset);
    while offset < part.end_offset {
        let batches = match broker
            .log
            .read_batches(topic, part.partition, offset, 1 << 20)
        {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(topic, partition = part.partition, error = %e, "producer state recovery read failed");
                break;
            }
        };
        for b in &batches {
            if let Some(m) = producer_mark(b).filter(|m| m.producer_id == producer_id) {
                let last = m.base_sequence.wrapping_add(m.record_count - 1);
                found.push((m.epoch, m.base_sequence, last, b.base_offset));
            }
        }
        let next = batches
            .last()
            .map_or(offset, |b| b.base_offset + b.records.len() as u64);
        if next <= offset {
            break;
        }
        offset = next;
    }
    found
}

/// Hands out producer ids; a known id with its epoch asks for an epoch bump (KIP-360), which
/// keeps the id and restarts its sequences.
pub(crate) fn init_producer_id(
    broker: &Broker,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if req.transactional_id.is_some() {
        // Transactions are not implemented.
        return InitProducerIdResponse::default()
            .with_error_code(code::INVALID_REQUEST)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
    }
    let (id, epoch) =
        if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX {
            (req.producer_id.0, req.producer_epoch + 1)
        } else {
            (broker.producers.allocate(), 0)
        };
    tracing::debug!(producer_id = id, epoch, "producer id issued");
    InitProducerIdResponse::default()
        .with_producer_id(id.into())
        .with_producer_epoch(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::encode_stored;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    /// An idempotent producer's batch of `n` records starting at sequence `seq`.
    fn batch(producer_id: i64, seq: i32, n: i32) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: seq + i,
                timestamp: 1000,
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: [(StrBytes::from_static_str("h"), Some(Bytes::new()))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn retry_after_a_restart_is_not_appended_twice() {
        let dir = tempfile::tempdir().unwrap();
        let first = Broker::for_test(dir.path());
        first.log.create_stream("t", 1).unwrap();
        // A producer id of this (soon "earlier") run, far below the next run's first id.
        assert_eq!(
            append_partition(&first, "t", 0, batch(42, 0, 3)),
            Ok((0, 0))
        );
        assert_eq!(
            append_partition(&first, "t", 0, batch(42, 3, 2)),
            Ok((3, 0))
        );
        drop(first);
        let second = Broker::for_test(dir.path());
        // The client did not see the ack of the last batch and retries it after the restart.
        assert_eq!(
            append_partition(&second, "t", 0, batch(42, 3, 2)),
            Ok((3, 0))
        );
        assert_eq!(second.log.stream("t").unwrap().partitions[0].end_offset, 5);
        assert_eq!(
            append_partition(&second, "t", 0, batch(42, 9, 1)),
            Err(code::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            append_partition(&second, "t", 0, batch(42, 5, 1)),
            Ok((5, 0))
        );
        // Kafka consumers never see eddy's bookkeeping headers.
        let stored = second.log.read_batches("t", 0, 0, 1 << 20).unwrap();
        let mut out = BytesMut::new();
        encode_stored(&stored[0], &mut out).unwrap();
        let set = RecordBatchDecoder::decode(&mut out.freeze()).unwrap();
        assert!(
            set.records
                .iter()
                .all(|r| r.headers.len() == 1 && r.timestamp == 1000)
        );
    }
}
