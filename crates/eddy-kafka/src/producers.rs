//! Idempotent producers: id allocation (InitProducerId) and per-partition sequence checks.
//!
//! State is in memory. Ids start at the start time in ms × 1024, so a restarted broker never
//! hands out an id of an earlier run. The first time an id of an earlier run writes to a
//! partition, its state is rebuilt from the producer marks on the partition's recent batches
//! (see `records.rs`), so a retry that spans a broker restart is still recognised.
//! See `docs/internals/kafka.md`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::code;

/// Batches remembered per producer and partition: Kafka clients keep at most 5 in flight.
const REMEMBERED_BATCHES: usize = 5;

/// One appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy)]
struct SeqBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: u64,
}

/// A batch of an earlier run, rebuilt from the log: `(epoch, first sequence, last sequence,
/// base offset)`, oldest first.
pub(crate) type Recovered = (i16, i32, i32, u64);

#[derive(Debug)]
struct PartitionSeqs {
    epoch: i16,
    batches: VecDeque<SeqBatch>,
}

/// Where `(producer id, lower-case topic, partition)` stands.
type Key = (i64, String, u32);

/// What to do with a batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// Next in sequence (or the first seen): append it.
    Append,
    /// A retry of an appended batch: answer with its original base offset, append nothing.
    Duplicate(u64),
}

/// Producer ids and the sequences each has appended per partition.
pub(crate) struct Producers {
    /// Ids below this were handed out by an earlier run.
    first_id: i64,
    next_id: AtomicI64,
    /// One entry per producer and partition. The outer lock is held only to find the entry;
    /// the entry's lock is held across check + append + record, so a producer's batches to one
    /// partition are judged against the state their predecessors left, while other producers
    /// and partitions append in parallel.
    seqs: Mutex<HashMap<Key, Arc<Mutex<PartitionSeqs>>>>,
}

impl Producers {
    /// Starts ids above every id an earlier run of this broker could have handed out.
    pub fn new() -> Producers {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let first_id = now_ms.saturating_mul(1024);
        Producers {
            first_id,
            next_id: AtomicI64::new(first_id),
            seqs: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh producer id (epoch 0).
    pub fn allocate(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `append` for the batch unless the sequence says it is a duplicate or out of order;
    /// `append` returns the base offset it got. `recover` is called once per producer and
    /// partition for ids of an earlier run, to rebuild their state from the log. `Err` is a
    /// Kafka error code.
    pub fn append_in_sequence<E>(
        &self,
        key: Key,
        epoch: i16,
        base_seq: i32,
        count: i32,
        recover: impl FnOnce() -> Vec<Recovered>,
        append: impl FnOnce() -> Result<u64, E>,
    ) -> Result<Result<u64, E>, i16> {
        let last_seq = base_seq.wrapping_add(count - 1);
        let producer = key.0;
        let mut fresh = false;
        let entry = Arc::clone(self.seqs.lock().entry(key).or_insert_with(|| {
            fresh = true;
            Arc::new(Mutex::new(PartitionSeqs {
                epoch,
                batches: VecDeque::new(),
            }))
        }));
        let mut state = entry.lock();
        if fresh && producer < self.first_id {
            for (e, first_seq, last_seq, base_offset) in recover() {
                if e != state.epoch {
                    state.epoch = e;
                    state.batches.clear();
                }
                if state.batches.len() == REMEMBERED_BATCHES {
                    state.batches.pop_front();
                }
                state.batches.push_back(SeqBatch {
                    first_seq,
                    last_seq,
                    base_offset,
                });
            }
            tracing::debug!(
                producer,
                batches = state.batches.len(),
                "producer state recovered from the log"
            );
        }
        let check = match Some(&*state).filter(|s| !s.batches.is_empty()) {
            None => SeqCheck::Append,
            Some(s) if epoch < s.epoch => return Err(code::INVALID_PRODUCER_EPOCH),
            Some(s) if epoch > s.epoch => {
                if base_seq != 0 {
                    return Err(code::OUT_OF_ORDER_SEQUENCE_NUMBER);
                }
                SeqCheck::Append
            }
            Some(s) => {
                if let Some(b) = s
                    .batches
                    .iter()
                    .find(|b| b.first_seq == base_seq && b.last_seq == last_seq)
                {
                    SeqCheck::Duplicate(b.base_offset)
                } else {
                    let expected = s.batches.back().map_or(0, |b| {
                        if b.last_seq == i32::MAX {
                            0
                        } else {
                            b.last_seq + 1
                        }
                    });
                    if base_seq != expected {
                        return Err(code::OUT_OF_ORDER_SEQUENCE_NUMBER);
                    }
                    SeqCheck::Append
                }
            }
        };
        if let SeqCheck::Duplicate(offset) = check {
            tracing::debug!(
                producer,
                base_seq,
                "duplicate batch acknowledged without append"
            );
            return Ok(Ok(offset));
        }
        let base_offset = match append() {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        if state.epoch != epoch {
            state.epoch = epoch;
            state.batches.clear();
        }
        if state.batches.len() == REMEMBERED_BATCHES {
            state.batches.pop_front();
        }
        state.batches.push_back(SeqBatch {
            first_seq: base_seq,
            last_seq,
            base_offset,
        });
        Ok(Ok(base_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        (5, "t".into(), 0)
    }

    fn append(p: &Producers, epoch: i16, seq: i32, count: i32, offset: u64) -> Result<u64, i16> {
        p.append_in_sequence(key(), epoch, seq, count, Vec::new, || Ok::<_, ()>(offset))
            .map(|r| r.unwrap())
    }

    #[test]
    fn retries_are_deduplicated_and_gaps_rejected() {
        let p = Producers::new();
        assert_eq!(append(&p, 0, 0, 3, 100), Ok(100));
        assert_eq!(append(&p, 0, 3, 2, 103), Ok(103));
        // A retry of the first batch gets its original offset and appends nothing.
        assert_eq!(append(&p, 0, 0, 3, 999), Ok(100));
        assert_eq!(
            append(&p, 0, 9, 1, 105),
            Err(code::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(append(&p, 0, 5, 1, 105), Ok(105));
    }

    #[test]
    fn epochs_fence_old_producers_and_restart_sequences() {
        let p = Producers::new();
        assert_eq!(append(&p, 1, 0, 1, 0), Ok(0));
        assert_eq!(append(&p, 0, 1, 1, 1), Err(code::INVALID_PRODUCER_EPOCH));
        assert_eq!(
            append(&p, 2, 4, 1, 1),
            Err(code::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(append(&p, 2, 0, 1, 1), Ok(1));
        assert_ne!(p.allocate(), p.allocate());
    }

    #[test]
    fn ids_of_an_earlier_run_get_their_state_back_from_the_log() {
        let p = Producers::new();
        let recovered = || vec![(3, 0, 4, 50), (3, 5, 9, 55)];
        // A retry of the last batch before the restart: its original offset, no append.
        let dup = p.append_in_sequence(key(), 3, 5, 5, recovered, || Ok::<_, ()>(999));
        assert_eq!(dup, Ok(Ok(55)));
        // Recovery runs once; the next batch continues the sequence.
        let next = p.append_in_sequence(
            key(),
            3,
            10,
            1,
            || panic!("recovered twice"),
            || Ok::<_, ()>(60),
        );
        assert_eq!(next, Ok(Ok(60)));
        // Ids of this run have nothing to recover.
        let own = (p.allocate(), "t".to_string(), 0);
        let r = p.append_in_sequence(
            own,
            0,
            0,
            1,
            || panic!("own id recovered"),
            || Ok::<_, ()>(1),
        );
        assert_eq!(r, Ok(Ok(1)));
    }
}
