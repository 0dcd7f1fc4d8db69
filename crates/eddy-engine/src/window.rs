//! Window assignment and per-window group state for grouped SELECTs.
//!
//! Every window is `(end - size, end]` and is stamped with its end. Tumbling and snapshot
//! windows keep groups per window end ([`Table::Fixed`]); hopping and sliding windows keep
//! one running aggregate per group that events enter and leave ([`Rolling`]), so an
//! event costs one add and one retract however many windows hold it, and output rows cost
//! O(1) each; session windows keep one open session per `OVER (PARTITION BY ...)` key.
//! All state serialises for snapshots, with groups written in key order.

use crate::agg::{AggKind, RetractColumn, RetractState};
use crate::error::EvalError;
use crate::groups::{Groups, decode_into, decode_key, encode, same_key};
use crate::value::Value;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

/// A window definition in ticks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Window {
    Tumbling {
        size: i64,
        offset: i64,
    },
    Hopping {
        size: i64,
        hop: i64,
        offset: i64,
    },
    /// `GROUP BY System.Timestamp()`: events with equal timestamps.
    Snapshot,
    Sliding {
        size: i64,
    },
    /// `max_duration <= 0` means no maximum.
    Session {
        timeout: i64,
        max_duration: i64,
    },
}

/// The first point at or after `t` on the grid `offset + k * step` (`step > 0`); `None`
/// past the datetime range.
fn grid_at_or_after(t: i64, step: i64, offset: i64) -> Option<i64> {
    let a = t as i128 - offset as i128;
    let (step, offset) = (step as i128, offset as i128);
    let k = a.div_euclid(step) + i128::from(a.rem_euclid(step) != 0);
    i64::try_from(k * step + offset).ok()
}

impl Window {
    /// Calls `f` with the end of every fixed window containing time `t`, earliest first.
    fn for_each_end(self, t: i64, mut f: impl FnMut(i64)) {
        match self {
            Window::Tumbling { size, offset } => {
                grid_at_or_after(t, size, offset).into_iter().for_each(f)
            }
            Window::Hopping { size, hop, offset } => {
                let mut end = grid_at_or_after(t, hop, offset);
                while let Some(e) = end.filter(|e| e.saturating_sub(size) < t) {
                    f(e);
                    end = e.checked_add(hop);
                }
            }
            Window::Snapshot => f(t),
            Window::Sliding { .. } | Window::Session { .. } => {}
        }
    }
}

/// Compares group keys with the total value order, so output never depends on hashing.
pub(crate) fn cmp_keys(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Groups by key; serialised as a key-ordered list (JSON maps need string keys).
#[derive(Debug, Clone)]
pub(crate) struct KeyMap<V>(pub HashMap<Box<[Value]>, V>);

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap(HashMap::new())
    }
}

impl<V: Serialize> Serialize for KeyMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<_> = self.0.iter().collect();
        v.sort_unstable_by(|a, b| cmp_keys(a.0, b.0));
        v.serialize(s)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for KeyMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(KeyMap(
            Vec::<(Box<[Value]>, V)>::deserialize(d)?
                .into_iter()
                .collect(),
        ))
    }
}

/// A group of a window that closed: what the SELECT list and HAVING are evaluated on.
pub(crate) struct Closed {
    pub end: i64,
    /// Where its key lies in [`ClosedRows::keys`]: start and length.
    key: (usize, usize),
    pub first: Value,
    /// Where its aggregate results start in [`ClosedRows::results`].
    results: usize,
}

/// Closed groups with their keys and aggregate results in shared buffers, so an output
/// row costs no vector of its own before its SELECT list is evaluated (group keys are
/// decoded straight into the buffer); reused across closes.
#[derive(Default)]
pub(crate) struct ClosedRows {
    pub rows: Vec<Closed>,
    keys: Vec<Value>,
    results: Vec<Value>,
    /// Results per row (every row of one operator has the same aggregates).
    width: usize,
}

fn key_in<'a>(keys: &'a [Value], row: &Closed) -> &'a [Value] {
    keys.get(row.key.0..row.key.0 + row.key.1).unwrap_or(&[])
}

impl ClosedRows {
    /// Appends a closed group, its key (written by `key` at the end of the key buffer)
    /// and its aggregate results (`width` of them).
    pub(crate) fn push(
        &mut self,
        end: i64,
        key: impl FnOnce(&mut Vec<Value>),
        first: Value,
        results: impl Iterator<Item = Value>,
    ) {
        let k = self.keys.len();
        key(&mut self.keys);
        let at = self.results.len();
        self.results.extend(results);
        self.width = self.results.len() - at;
        self.rows.push(Closed {
            end,
            key: (k, self.keys.len() - k),
            first,
            results: at,
        });
    }

    /// The group key of `row`.
    pub(crate) fn key(&self, row: &Closed) -> &[Value] {
        key_in(&self.keys, row)
    }

    /// The aggregate results of `row`.
    pub(crate) fn results(&self, row: &Closed) -> &[Value] {
        self.results
            .get(row.results..row.results + self.width)
            .unwrap_or(&[])
    }

    /// Orders the rows from `from` on by window end, then group key.
    pub(crate) fn sort_from(&mut self, from: usize) {
        let keys = &self.keys;
        if let Some(rows) = self.rows.get_mut(from..) {
            rows.sort_by(|a, b| {
                a.end
                    .cmp(&b.end)
                    .then_with(|| cmp_keys(key_in(keys, a), key_in(keys, b)))
            });
        }
    }

    /// Orders the rows from `from` on (all of one window end) by group key.
    fn sort_keys_from(&mut self, from: usize) {
        let keys = &self.keys;
        if let Some(rows) = self.rows.get_mut(from..) {
            rows.sort_unstable_by(|a, b| cmp_keys(key_in(keys, a), key_in(keys, b)));
        }
    }

    /// Appends `v` to the key of every row from `from` on (a window's id); a key not at
    /// the end of the buffer is copied there first.
    pub(crate) fn extend_keys_from(&mut self, from: usize, v: &Value) {
        let ClosedRows { rows, keys, .. } = self;
        for row in rows.iter_mut().skip(from) {
            let (start, len) = row.key;
            let at = keys.len();
            if start + len == at {
                keys.push(v.clone());
                row.key = (start, len + 1);
            } else {
                keys.extend_from_within(start..(start + len).min(at));
                keys.push(v.clone());
                row.key = (at, keys.len() - at);
            }
        }
    }

    /// Empties the buffers, keeping their memory.
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
        self.keys.clear();
        self.results.clear();
    }
}

/// One event as a group sees it.
pub(crate) struct Input<'a> {
    pub time: i64,
    /// `OVER (PARTITION BY ...)` values of a session window (empty otherwise).
    pub partition: &'a [Value],
    pub key: &'a [Value],
    /// Aggregate arguments.
    pub args: &'a [Value],
    /// The event when groups keep their first one, else NULL.
    pub record: &'a Value,
}

/// Per-window state of a grouped SELECT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Table {
    Fixed {
        windows: BTreeMap<i64, Groups>,
        /// Windows ending at or before this were emitted; late contributions are ignored.
        closed: Option<i64>,
        /// Groups in the last window, to size the next one and skip rehashing.
        #[serde(skip)]
        capacity_hint: usize,
    },
    /// Hopping and sliding windows: running aggregates that events enter and leave.
    Rolling(Box<Rolling>),
    Session {
        sessions: KeyMap<Session>,
        /// Sessions that ended during processing, emitted at the next close.
        ended: Vec<(i64, Groups)>,
        closed: Option<i64>,
        /// No open session ends before this (a lower bound: events only push ends
        /// later), so a close before it need not visit every session; `None` when
        /// unknown (after a restore).
        #[serde(skip)]
        earliest_end: Option<i64>,
    },
}

/// An open session of one partition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    start: i64,
    last: i64,
    groups: Groups,
}

impl Session {
    /// When the session ends unless an event extends it, and whether the maximum
    /// duration (checked at multiples of it) rather than the timeout ends it.
    fn end(&self, timeout: i64, max_duration: i64) -> (i64, bool) {
        let by_timeout = self.last.saturating_add(timeout);
        if max_duration <= 0 {
            return (by_timeout, false);
        }
        let check = grid_at_or_after(
            self.start.saturating_add(max_duration).saturating_add(1),
            max_duration,
            0,
        );
        match check {
            Some(c) if c < by_timeout => (c, true),
            _ => (by_timeout, false),
        }
    }
}

impl Table {
    /// Empty state for `window`.
    pub(crate) fn new(window: Window) -> Table {
        match window {
            Window::Sliding { .. } | Window::Hopping { .. } => Table::Rolling(Box::default()),
            Window::Session { .. } => Table::Session {
                sessions: KeyMap::default(),
                ended: Vec::new(),
                closed: None,
                earliest_end: None,
            },
            _ => Table::Fixed {
                windows: BTreeMap::new(),
                closed: None,
                capacity_hint: 0,
            },
        }
    }

    /// Whether this state fits `window` (a snapshot of another query does not).
    pub(crate) fn fits(&self, window: Window, aggs: usize) -> bool {
        let groups_ok = |g: &Groups| g.fits(aggs);
        match (self, window) {
            (Table::Rolling(r), Window::Sliding { .. } | Window::Hopping { .. }) => {
                // A table that never saw an event does not know its width yet.
                r.aggs == aggs || (r.slots.is_empty() && r.pending.is_empty())
            }
            (
                Table::Session {
                    sessions, ended, ..
                },
                Window::Session { .. },
            ) => {
                sessions.0.values().all(|s| groups_ok(&s.groups))
                    && ended.iter().all(|e| groups_ok(&e.1))
            }
            (Table::Fixed { windows, .. }, Window::Tumbling { .. } | Window::Snapshot) => {
                windows.values().all(groups_ok)
            }
            _ => false,
        }
    }

    /// Adds one event (events arrive in time order).
    pub(crate) fn add(
        &mut self,
        window: Window,
        kinds: &[AggKind],
        e: &Input,
    ) -> Result<(), EvalError> {
        match self {
            Table::Fixed {
                windows,
                closed,
                capacity_hint,
            } => {
                let mut result = Ok(());
                window.for_each_end(e.time, |end| {
                    if closed.is_some_and(|c| end <= c) {
                        return;
                    }
                    let hint = *capacity_hint;
                    let groups = windows
                        .entry(end)
                        .or_insert_with(|| Groups::with_capacity(hint));
                    if let Err(err) = groups.add(e.key, e.record, kinds, e.args) {
                        result = Err(err);
                    }
                });
                result
            }
            Table::Rolling(r) => r.add(window, kinds, e),
            Table::Session {
                sessions,
                ended,
                closed,
                earliest_end,
            } => {
                let Window::Session {
                    timeout,
                    max_duration,
                } = window
                else {
                    return Ok(());
                };
                if closed.is_some_and(|c| e.time <= c) {
                    return Ok(());
                }
                loop {
                    let Some(s) = sessions.0.get_mut(e.partition) else {
                        let s = Session {
                            start: e.time,
                            last: e.time,
                            groups: Groups::default(),
                        };
                        let (end, _) = s.end(timeout, max_duration);
                        *earliest_end = earliest_end.map(|e| e.min(end));
                        sessions.0.insert(e.partition.into(), s);
                        continue;
                    };
                    let (end, by_max) = s.end(timeout, max_duration);
                    if e.time <= end {
                        s.last = s.last.max(e.time);
                        return s.groups.add(e.key, e.record, kinds, e.args);
                    }
                    let groups = std::mem::take(&mut s.groups);
                    if by_max && !groups.is_empty() {
                        // A new session opens at the check instant.
                        *s = Session {
                            start: end,
                            last: end,
                            groups: Groups::default(),
                        };
                        let (next, _) = s.end(timeout, max_duration);
                        *earliest_end = earliest_end.map(|e| e.min(next));
                        ended.push((end, groups));
                    } else {
                        sessions.0.remove(e.partition);
                        if !groups.is_empty() {
                            ended.push((end, groups));
                        }
                    }
                }
            }
        }
    }

    /// Moves every window ending at or before `watermark` into `out`, ordered by end
    /// then group key; `kinds` rebuilds sliding-window aggregates.
    pub(crate) fn close(
        &mut self,
        window: Window,
        kinds: &[AggKind],
        watermark: i64,
        out: &mut ClosedRows,
    ) {
        let start = out.rows.len();
        match self {
            Table::Fixed {
                windows,
                closed,
                capacity_hint,
            } => {
                while let Some(entry) = windows.first_entry() {
                    if *entry.key() > watermark {
                        break;
                    }
                    let (end, groups) = entry.remove_entry();
                    *capacity_hint = groups.len();
                    groups.finish(end, out);
                }
                *closed = Some(closed.map_or(watermark, |c| c.max(watermark)));
                return;
            }
            Table::Rolling(r) => {
                r.close(window, kinds, watermark, out);
                return;
            }
            Table::Session {
                sessions,
                ended,
                closed,
                earliest_end,
            } => {
                let Window::Session {
                    timeout,
                    max_duration,
                } = window
                else {
                    return;
                };
                if earliest_end.is_none_or(|e| e <= watermark) {
                    let mut earliest = i64::MAX;
                    sessions.0.retain(|_, s| {
                        let keep = end_sessions(s, timeout, max_duration, watermark, ended);
                        if keep {
                            earliest = earliest.min(s.end(timeout, max_duration).0);
                        }
                        keep
                    });
                    *earliest_end = Some(earliest);
                }
                // Draining keeps the buffer's memory for the next close.
                for (end, groups) in ended.drain(..) {
                    groups.finish(end, out);
                }
                *closed = Some(closed.map_or(watermark, |c| c.max(watermark)));
            }
        }
        out.sort_from(start);
    }
}

/// Moves the sessions of `s` that end at or before `watermark` into `finished`; returns
/// whether `s` stays open.
fn end_sessions(
    s: &mut Session,
    timeout: i64,
    max_duration: i64,
    watermark: i64,
    finished: &mut Vec<(i64, Groups)>,
) -> bool {
    loop {
        let (end, by_max) = s.end(timeout, max_duration);
        if end > watermark {
            return true;
        }
        let groups = std::mem::take(&mut s.groups);
        if groups.is_empty() {
            return false;
        }
        finished.push((end, groups));
        if !by_max {
            return false;
        }
        // A new session opens at the check instant.
        *s = Session {
            start: end,
            last: end,
            groups: Groups::default(),
        };
    }
}

/// Bookkeeping of one [`Rolling`] slot; its key, first event and aggregate states live
/// in the table's flat arrays at the same index.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Events inside.
    len: u64,
    /// Sequence number of the oldest event inside (numbers count every event entered).
    front_seq: u64,
    /// Events of this group still waiting to enter.
    pending: u32,
    /// Whether a group holds the slot (else it is free).
    used: bool,
    /// Marked for output at the instant being processed (sliding windows).
    dirty: bool,
}

/// Whether the argument queues keep `kind`'s argument: COUNT(*)'s is always TRUE.
fn kept(kind: &AggKind) -> bool {
    *kind != AggKind::CountStar
}

/// Hopping and sliding windows over running aggregates: each event is added once when
/// it enters and retracted once when it leaves, so a window costs O(1) per event and per
/// output row instead of being recomputed from the events it holds.
///
/// Events wait in `pending` (time order) until the watermark reaches them; `inside`
/// lists the events in the current windows in time order, which is also the order they
/// leave in. Hopping windows emit every group with events inside at each window end;
/// sliding windows emit the groups whose content changed at each instant an event enters
/// or leaves.
///
/// Groups live in flat arrays indexed by a slot id, as in [`Groups`]: keys encoded into
/// one byte buffer, one [`RetractColumn`] per aggregate, first events only when the
/// query reads them. Slots of groups with nothing inside or pending are reused; the key
/// buffer is compacted when most of it belongs to forgotten groups.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rolling {
    /// Aggregates per event.
    aggs: usize,
    /// The aggregates, known from the first add or close.
    kinds: Vec<AggKind>,
    /// Whether `kinds` is known; until then (after a restore) the argument queues hold
    /// all `aggs` arguments of an event, afterwards only the [`kept`] ones.
    ready: bool,
    /// Arguments per event in the queues.
    stride: usize,
    /// Whether `columns` holds every group's state (false after a restore of groups
    /// without states: they are rebuilt from the events inside).
    built: bool,
    slots: Vec<Slot>,
    /// Where each slot's encoded key lies in `key_bytes` (start, length).
    key_at: Vec<(u32, u32)>,
    key_bytes: Vec<u8>,
    /// Bytes of `key_bytes` no group refers to any more.
    key_garbage: usize,
    /// First event per slot; empty while no group kept one.
    firsts: Vec<Value>,
    /// One per aggregate, indexed by slot.
    columns: Vec<RetractColumn>,
    free: Vec<u32>,
    /// Slot ids, hashed by their encoded key.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    pending: VecDeque<(i64, u32)>,
    pending_args: VecDeque<Value>,
    inside: VecDeque<(i64, u32)>,
    /// Arguments of the events in `inside`, `stride` per event. Events leave in `inside`
    /// order, which within a group is the order they entered: one queue for every group
    /// keeps entering and leaving sequential in memory.
    inside_args: VecDeque<Value>,
    /// Groups with at least one event inside.
    live: usize,
    /// Output instants up to this were emitted; later events at or before it are ignored.
    closed: Option<i64>,
    /// Reused between instants.
    dirty: Vec<u32>,
    /// Hopping windows: groups in key order, so that emitting every group at every hop
    /// needs no sort; `unordered` holds groups created since it was last merged.
    order: Vec<u32>,
    unordered: Vec<u32>,
    /// Room for decoding keys.
    scratch: Vec<Value>,
}

/// Slot `id`'s encoded key.
fn slot_key<'a>(bytes: &'a [u8], at: &[(u32, u32)], id: u32) -> &'a [u8] {
    at.get(id as usize)
        .and_then(|&(s, n)| bytes.get(s as usize..s as usize + n as usize))
        .unwrap_or(&[])
}

impl Rolling {
    fn slot(&mut self, id: u32) -> Option<&mut Slot> {
        self.slots.get_mut(id as usize).filter(|s| s.used)
    }

    /// Group `id`'s key as values.
    fn key(&mut self, id: u32) -> Arc<[Value]> {
        decode_key(
            slot_key(&self.key_bytes, &self.key_at, id),
            &mut self.scratch,
        )
    }

    /// The id of the group of `key`, and whether it is new (then with `first` as its
    /// first event and empty aggregates).
    fn find_or_create(&mut self, key: &[Value], first: &Value) -> Result<(u32, bool), EvalError> {
        // The key is encoded at the end of the buffer: kept there if the group is new.
        let start = self.key_bytes.len();
        for v in key {
            encode(v, &mut self.key_bytes);
        }
        let Rolling {
            index,
            hasher,
            key_bytes,
            key_at,
            ..
        } = self;
        let probe = &key_bytes[start..];
        let hash = hasher.hash_one(probe);
        if let Some(&id) = index.find(hash, |&id| same_key(slot_key(key_bytes, key_at, id), probe))
        {
            key_bytes.truncate(start);
            return Ok((id, false));
        }
        let len = key_bytes.len() - start;
        let (Ok(s), Ok(n)) = (u32::try_from(start), u32::try_from(len)) else {
            key_bytes.truncate(start);
            return Err(EvalError::Overflow);
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let Ok(id) = u32::try_from(self.slots.len()) else {
                    self.key_bytes.truncate(start);
                    return Err(EvalError::Overflow);
                };
                self.slots.push(Slot::default());
                self.key_at.push((0, 0));
                id
            }
        };
        let i = id as usize;
        self.key_at[i] = (s, n);
        self.slots[i] = Slot {
            used: true,
            ..Slot::default()
        };
        for (column, kind) in self.columns.iter_mut().zip(&self.kinds) {
            column.reset(i, *kind);
        }
        if !first.is_null() || i < self.firsts.len() {
            if self.firsts.len() <= i {
                self.firsts.resize(i + 1, Value::Null);
            }
            self.firsts[i] = first.clone();
        }
        let Rolling {
            index,
            hasher,
            key_bytes,
            key_at,
            ..
        } = self;
        index.insert_unique(hash, id, |&g| {
            hasher.hash_one(slot_key(key_bytes, key_at, g))
        });
        Ok((id, true))
    }

    /// The groups among `ids` that still hold their slot, with their keys decoded.
    fn with_keys(&mut self, ids: Vec<u32>) -> Vec<(Arc<[Value]>, u32)> {
        let mut keyed = Vec::with_capacity(ids.len());
        for id in ids {
            if self.slot(id).is_some() {
                keyed.push((self.key(id), id));
            }
        }
        keyed
    }

    /// Frees group `id`'s slot (it holds nothing inside or pending).
    fn forget(&mut self, id: u32) {
        let i = id as usize;
        let bytes = slot_key(&self.key_bytes, &self.key_at, id);
        let hash = self.hasher.hash_one(bytes);
        if let Ok(entry) = self.index.find_entry(hash, |&g| g == id) {
            entry.remove();
        }
        self.key_garbage += bytes.len();
        if let Some(at) = self.key_at.get_mut(i) {
            *at = (0, 0);
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Slot::default();
        }
        // Releases what ordered states and queues hold.
        for (column, kind) in self.columns.iter_mut().zip(&self.kinds) {
            if i < column.len() {
                column.reset(i, *kind);
            }
        }
        if let Some(f) = self.firsts.get_mut(i) {
            *f = Value::Null;
        }
        self.free.push(id);
    }

    /// Rewrites the key buffer without forgotten keys once they are most of it.
    fn compact_keys(&mut self) {
        if self.key_garbage < 4096 || self.key_garbage * 2 < self.key_bytes.len() {
            return;
        }
        let mut bytes = Vec::with_capacity(self.key_bytes.len() - self.key_garbage);
        for (i, slot) in self.slots.iter().enumerate() {
            if !slot.used {
                continue;
            }
            let key = slot_key(&self.key_bytes, &self.key_at, i as u32);
            // Smaller than the old buffer, whose offsets fit.
            let start = bytes.len() as u32;
            bytes.extend_from_slice(key);
            self.key_at[i] = (start, key.len() as u32);
        }
        self.key_bytes = bytes;
        self.key_garbage = 0;
    }

    /// Learns the aggregates on first use: keeps only the [`kept`] arguments in the
    /// queues and builds missing aggregate states (a fresh table or a restored one).
    fn build(&mut self, kinds: &[AggKind]) {
        if self.ready {
            return;
        }
        self.ready = true;
        self.kinds = kinds.to_vec();
        let full = self.aggs;
        self.aggs = kinds.len();
        self.stride = kinds.iter().filter(|k| kept(k)).count();
        if full > 0 && full != self.stride {
            let keep = |q: &mut VecDeque<Value>| {
                *q = std::mem::take(q)
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| kinds.get(i % full).is_some_and(kept))
                    .map(|(_, v)| v)
                    .collect();
            };
            keep(&mut self.inside_args);
            keep(&mut self.pending_args);
        }
        if self.built {
            return;
        }
        self.columns = kinds.iter().map(|k| RetractColumn::new(*k)).collect();
        for i in 0..self.slots.len() {
            for (column, kind) in self.columns.iter_mut().zip(kinds) {
                column.reset(i, *kind);
            }
        }
        let truth = Value::Bit(true);
        let mut entered: HashMap<u32, u64> = HashMap::new();
        let mut all = self.inside_args.iter();
        for (_, id) in self.inside.iter() {
            let mut args = all.by_ref().take(self.stride);
            let Some(slot) = self.slots.get(*id as usize).filter(|s| s.used) else {
                args.for_each(drop);
                continue;
            };
            let n = entered.entry(*id).or_default();
            let seq = slot.front_seq + *n;
            *n += 1;
            for (column, kind) in self.columns.iter_mut().zip(kinds) {
                let v = if kept(kind) {
                    args.next()
                } else {
                    Some(&truth)
                };
                if let Some(v) = v {
                    column.add(*id as usize, v, seq);
                }
            }
        }
        self.built = true;
    }

    fn add(&mut self, window: Window, kinds: &[AggKind], e: &Input) -> Result<(), EvalError> {
        self.build(kinds);
        if self.closed.is_some_and(|c| e.time <= c) {
            return Ok(());
        }
        for (kind, arg) in kinds.iter().zip(e.args) {
            RetractState::check(*kind, arg)?;
        }
        let (id, new) = self.find_or_create(e.key, e.record)?;
        if new {
            self.unordered.push(id);
        }
        let kept_args = || {
            kinds
                .iter()
                .zip(e.args)
                .filter(|(k, _)| kept(k))
                .map(|(_, v)| v.clone())
        };
        // A hopping window's event at or before the next window end to emit is in that
        // window whatever comes before it closes: it enters now, without queueing.
        if let Window::Hopping { hop, offset, .. } = window
            && self.pending.is_empty()
            && self.inside.back().is_none_or(|b| b.0 <= e.time)
            && let Some(closed) = self.closed
            && grid_at_or_after(closed.saturating_add(1), hop, offset).is_some_and(|n| e.time <= n)
        {
            let Some(slot) = self.slot(id) else {
                return Ok(());
            };
            let seq = slot.front_seq + slot.len;
            let truth = Value::Bit(true);
            let mut args = e.args.iter();
            for (column, kind) in self.columns.iter_mut().zip(kinds) {
                let arg = args.next();
                if kept(kind) {
                    if let Some(v) = arg {
                        column.add(id as usize, v, seq);
                        self.inside_args.push_back(v.clone());
                    }
                } else {
                    column.add(id as usize, &truth, seq);
                }
            }
            self.entered(e.time, id);
            return Ok(());
        }
        if let Some(slot) = self.slot(id) {
            slot.pending += 1;
        }
        let n = self.stride;
        if self.pending.back().is_none_or(|b| b.0 <= e.time) {
            self.pending.push_back((e.time, id));
            for v in kept_args() {
                self.pending_args.push_back(v);
            }
        } else {
            // Events come in time order except rows of a step; keep the queue sorted.
            let at = self.pending.partition_point(|p| p.0 <= e.time);
            self.pending.insert(at, (e.time, id));
            for (j, v) in kept_args().enumerate() {
                self.pending_args.insert(at * n + j, v);
            }
        }
        Ok(())
    }

    /// Moves the oldest pending event inside its group's window.
    fn enter(&mut self) {
        let Some((t, id)) = self.pending.pop_front() else {
            return;
        };
        let n = self.stride.min(self.pending_args.len());
        let Some(slot) = self.slots.get_mut(id as usize).filter(|s| s.used) else {
            self.pending_args.drain(..n);
            return;
        };
        slot.pending = slot.pending.saturating_sub(1);
        let seq = slot.front_seq + slot.len;
        let truth = Value::Bit(true);
        for (column, kind) in self.columns.iter_mut().zip(&self.kinds) {
            if kept(kind) {
                if let Some(v) = self.pending_args.pop_front() {
                    column.add(id as usize, &v, seq);
                    self.inside_args.push_back(v);
                }
            } else {
                column.add(id as usize, &truth, seq);
            }
        }
        self.entered(t, id);
    }

    /// Bookkeeping after group `id` took an event at `t`.
    fn entered(&mut self, t: i64, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize).filter(|s| s.used) else {
            return;
        };
        slot.len += 1;
        if slot.len == 1 {
            self.live += 1;
        }
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(id);
        }
        self.inside.push_back((t, id));
    }

    /// Takes the oldest event inside out of its group's window.
    fn leave(&mut self) {
        let Some((_, id)) = self.inside.pop_front() else {
            return;
        };
        let n = self.stride.min(self.inside_args.len());
        let Some(slot) = self.slots.get_mut(id as usize).filter(|s| s.used) else {
            self.inside_args.drain(..n);
            return;
        };
        let seq = slot.front_seq;
        let truth = Value::Bit(true);
        for (column, kind) in self.columns.iter_mut().zip(&self.kinds) {
            if kept(kind) {
                if let Some(v) = self.inside_args.pop_front() {
                    column.retract(id as usize, &v, seq);
                }
            } else {
                column.retract(id as usize, &truth, seq);
            }
        }
        slot.front_seq += 1;
        slot.len = slot.len.saturating_sub(1);
        if slot.len == 0 {
            self.live = self.live.saturating_sub(1);
        }
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Emits the groups in `ids` that hold events, at `end`, in key order; forgets groups
    /// with nothing inside or pending.
    fn emit(&mut self, ids: &[u32], end: i64, out: &mut ClosedRows) {
        let from = out.rows.len();
        for &id in ids {
            if let Some(slot) = self.slot(id) {
                slot.dirty = false;
            }
            self.emit_group(id, end, None, out);
        }
        if out.rows.len() - from > 1 {
            out.sort_keys_from(from);
        }
    }

    /// Writes group `id`'s row at `end` when it holds events (with `key` when already
    /// decoded), or forgets the group when it holds nothing and nothing is pending;
    /// returns whether it was forgotten.
    fn emit_group(
        &mut self,
        id: u32,
        end: i64,
        key: Option<Arc<[Value]>>,
        out: &mut ClosedRows,
    ) -> bool {
        let Some(slot) = self.slots.get(id as usize).filter(|s| s.used).copied() else {
            return false;
        };
        if slot.len > 0 {
            let first = self.firsts.get(id as usize).cloned().unwrap_or(Value::Null);
            let i = id as usize;
            let bytes = slot_key(&self.key_bytes, &self.key_at, id);
            let write_key = |keys: &mut Vec<Value>| match key {
                Some(key) => keys.extend(key.iter().cloned()),
                None => decode_into(bytes, keys),
            };
            out.push(
                end,
                write_key,
                first,
                self.columns.iter().map(|c| c.result(i)),
            );
            return false;
        }
        if slot.pending == 0 {
            self.forget(id);
            return true;
        }
        false
    }

    /// Emits every group holding events at `end`, in key order, and forgets groups with
    /// nothing inside or pending (hopping windows).
    fn emit_all(&mut self, end: i64, out: &mut ClosedRows) {
        // Keys decoded for the merge, in `order`'s order, so rows reuse them.
        let mut keys: Vec<Arc<[Value]>> = Vec::new();
        if !self.unordered.is_empty() {
            let unordered = std::mem::take(&mut self.unordered);
            let order = std::mem::take(&mut self.order);
            let mut fresh = self.with_keys(unordered);
            fresh.sort_unstable_by(|a, b| cmp_keys(&a.0, &b.0));
            let old = self.with_keys(order);
            let mut merged = Vec::with_capacity(old.len() + fresh.len());
            let mut old = old.into_iter().peekable();
            let mut fresh = fresh.into_iter().peekable();
            loop {
                let take_old = match (old.peek(), fresh.peek()) {
                    (Some(a), Some(b)) => cmp_keys(&a.0, &b.0) != Ordering::Greater,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                let next = if take_old { old.next() } else { fresh.next() };
                if let Some(entry) = next {
                    merged.push(entry);
                }
            }
            self.order = merged.iter().map(|e| e.1).collect();
            keys = merged.into_iter().map(|e| e.0).collect();
        }
        let mut keys = keys.into_iter();
        let mut freed = false;
        for i in 0..self.order.len() {
            let key = keys.next();
            freed |= self.emit_group(self.order[i], end, key, out);
        }
        if freed {
            let slots = &self.slots;
            self.order
                .retain(|id| slots.get(*id as usize).is_some_and(|s| s.used));
        }
    }

    fn close(&mut self, window: Window, kinds: &[AggKind], watermark: i64, out: &mut ClosedRows) {
        self.build(kinds);
        match window {
            Window::Sliding { size } => loop {
                let next_in = self.pending.front().map(|p| p.0);
                let next_out = self.inside.front().map(|p| p.0.saturating_add(size));
                let instant = match (next_in, next_out) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => match a.or(b) {
                        Some(i) => i,
                        None => break,
                    },
                };
                if instant > watermark {
                    break;
                }
                while self.pending.front().is_some_and(|p| p.0 == instant) {
                    self.enter();
                }
                while self
                    .inside
                    .front()
                    .is_some_and(|p| p.0.saturating_add(size) <= instant)
                {
                    self.leave();
                }
                let dirty = std::mem::take(&mut self.dirty);
                self.emit(&dirty, instant, out);
                self.dirty = dirty;
                self.dirty.clear();
                self.unordered.clear();
                self.closed = Some(instant);
            },
            Window::Hopping { size, hop, offset } => loop {
                let from = self.closed.map_or(i64::MIN, |c| c.saturating_add(1));
                let start = match (self.live, self.pending.front()) {
                    (0, None) => break,
                    // Nothing inside: go straight to the first window of the next event.
                    (0, Some(p)) => p.0.max(from),
                    _ => from,
                };
                let Some(end) = grid_at_or_after(start, hop, offset) else {
                    break;
                };
                if end > watermark {
                    break;
                }
                while self.pending.front().is_some_and(|p| p.0 <= end) {
                    self.enter();
                }
                while self
                    .inside
                    .front()
                    .is_some_and(|p| p.0.saturating_add(size) <= end)
                {
                    self.leave();
                }
                for id in std::mem::take(&mut self.dirty) {
                    if let Some(slot) = self.slot(id) {
                        slot.dirty = false;
                    }
                }
                self.emit_all(end, out);
                self.closed = Some(end);
            },
            _ => {}
        }
        self.compact_keys();
        self.closed = Some(self.closed.map_or(watermark, |c| c.max(watermark)));
    }

    /// An event's arguments for every aggregate, from the `stride` kept in a queue.
    fn full_args<'a>(&self, kept_args: impl Iterator<Item = &'a Value>) -> Vec<Value> {
        if !self.ready {
            return kept_args.cloned().collect();
        }
        let mut kept_args = kept_args;
        self.kinds
            .iter()
            .map(|k| {
                if kept(k) {
                    kept_args.next().cloned().unwrap_or(Value::Null)
                } else {
                    Value::Bit(true)
                }
            })
            .collect()
    }
}

/// A group in a [`RollingSnapshot`]: key, first event, sequence number of the oldest
/// event inside, the events inside as (time, arguments), and the running aggregates
/// (kept exactly: rebuilding them would round floats differently than the run did).
type SnapshotGroup = (
    Box<[Value]>,
    Value,
    u64,
    Vec<(i64, Vec<Value>)>,
    Vec<RetractState>,
);

/// What a snapshot keeps of a [`Rolling`] table, with groups in key order.
#[derive(Serialize, Deserialize)]
struct RollingSnapshot {
    aggs: usize,
    closed: Option<i64>,
    /// Per group: key, first event, sequence number of the oldest event inside, and the
    /// events inside as (time, arguments).
    groups: Vec<SnapshotGroup>,
    /// Events waiting to enter, in time order: (time, group key, arguments).
    pending: Vec<(i64, Box<[Value]>, Vec<Value>)>,
}

impl Serialize for Rolling {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.stride;
        let mut scratch = Vec::new();
        let key = |id: u32, scratch: &mut Vec<Value>| -> Box<[Value]> {
            Box::from(&decode_key(slot_key(&self.key_bytes, &self.key_at, id), scratch)[..])
        };
        let mut inside: HashMap<u32, Vec<(i64, Vec<Value>)>> = HashMap::new();
        let mut all = self.inside_args.iter();
        for (t, id) in self.inside.iter() {
            let chunk: Vec<&Value> = all.by_ref().take(n).collect();
            let args = self.full_args(chunk.into_iter());
            inside.entry(*id).or_default().push((*t, args));
        }
        let mut groups: Vec<SnapshotGroup> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.used)
            .map(|(i, slot)| {
                let id = i as u32;
                let events = inside.remove(&id).unwrap_or_default();
                let states = if self.built {
                    self.columns.iter().filter_map(|c| c.state(i)).collect()
                } else {
                    Vec::new()
                };
                (
                    key(id, &mut scratch),
                    self.firsts.get(i).cloned().unwrap_or(Value::Null),
                    slot.front_seq,
                    events,
                    states,
                )
            })
            .collect();
        groups.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        let mut all = self.pending_args.iter();
        let pending = self
            .pending
            .iter()
            .map(|(t, id)| {
                let key = if self.slots.get(*id as usize).is_some_and(|s| s.used) {
                    key(*id, &mut scratch)
                } else {
                    Box::from([])
                };
                let chunk: Vec<&Value> = all.by_ref().take(n).collect();
                let args = self.full_args(chunk.into_iter());
                (*t, key, args)
            })
            .collect();
        RollingSnapshot {
            aggs: self.aggs,
            closed: self.closed,
            groups,
            pending,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rolling {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let snap = RollingSnapshot::deserialize(d)?;
        let mut r = Rolling {
            aggs: snap.aggs,
            stride: snap.aggs,
            closed: snap.closed,
            built: true,
            ..Rolling::default()
        };
        let mut inside = Vec::new();
        for (key, first, front_seq, events, states) in snap.groups {
            if states.len() != snap.aggs {
                r.built = false;
            } else if r.built {
                if r.columns.is_empty() {
                    r.columns = states.iter().map(RetractColumn::for_state).collect();
                }
                for (column, state) in r.columns.iter_mut().zip(states) {
                    column.push_state(state);
                }
            }
            let (id, new) = r.find_or_create(&key, &first).map_err(D::Error::custom)?;
            if !new {
                return Err(D::Error::custom("a group key twice in one window"));
            }
            if let Some(slot) = r.slot(id) {
                slot.front_seq = front_seq;
                slot.len = events.len() as u64;
            }
            if !events.is_empty() {
                r.live += 1;
            }
            for (t, mut a) in events {
                // Keeps the shared argument queue aligned whatever the snapshot holds.
                a.resize(snap.aggs, Value::Null);
                inside.push((t, id, a));
            }
            r.unordered.push(id);
        }
        if r.slots.is_empty() || !r.built {
            // Rebuilt from the events inside; the width is learnt from the query.
            r.built = false;
            r.columns.clear();
        }
        // Within a group events are in time order; across groups only time matters.
        inside.sort_by_key(|e| e.0);
        for (t, id, args) in inside {
            r.inside.push_back((t, id));
            r.inside_args.extend(args);
        }
        for (t, key, mut args) in snap.pending {
            let (id, new) = r
                .find_or_create(&key, &Value::Null)
                .map_err(D::Error::custom)?;
            if new {
                // A group with only pending events: no states in the snapshot.
                r.built = false;
                r.columns.clear();
                r.unordered.push(id);
            }
            if let Some(slot) = r.slot(id) {
                slot.pending += 1;
            }
            args.resize(snap.aggs, Value::Null);
            r.pending.push_back((t, id));
            r.pending_args.extend(args);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `events` (time, key number, value) to a table, closing at every event's
    /// time, and checks every row against the events inside its window; a snapshot is
    /// taken and restored after `cut` events.
    fn check_rolling(window: Window, size: i64, events: &[(i64, u64, i64)], cut: usize) {
        let kinds = [AggKind::CountStar, AggKind::Sum, AggKind::Max, AggKind::Avg];
        let mut table = Table::new(window);
        let mut out = ClosedRows::default();
        let mut rows = 0;
        let key_of = |k: u64| Value::from(format!("a fairly long group key number {k}").as_str());
        let mut check = |out: &mut ClosedRows, upto: usize| {
            for row in &out.rows {
                // Events are in time order.
                let seen = &events[..upto];
                let from = seen.partition_point(|e| e.0 <= row.end - size);
                let to = seen.partition_point(|e| e.0 <= row.end);
                let inside: Vec<i64> = seen[from..to.max(from)]
                    .iter()
                    .filter(|(_, k, _)| [key_of(*k)][..] == *out.key(row))
                    .map(|e| e.2)
                    .collect();
                let n = inside.len() as i64;
                let sum: i64 = inside.iter().sum();
                let expected = [
                    Value::BigInt(n),
                    Value::BigInt(sum),
                    Value::BigInt(inside.iter().copied().max().unwrap_or(0)),
                    Value::Float(sum as f64 / n as f64),
                ];
                assert_eq!(
                    out.results(row),
                    &expected,
                    "{:?} at {}",
                    out.key(row),
                    row.end
                );
                rows += 1;
            }
            out.clear();
        };
        for (i, &(t, k, v)) in events.iter().enumerate() {
            if i == cut {
                let json = serde_json::to_string(&table).unwrap();
                table = serde_json::from_str(&json).unwrap();
                assert!(table.fits(window, kinds.len()));
            }
            table.close(window, &kinds, t - 1, &mut out);
            check(&mut out, i);
            let args = [
                Value::Bit(true),
                Value::BigInt(v),
                Value::BigInt(v),
                Value::BigInt(v),
            ];
            let input = Input {
                time: t,
                partition: &[],
                key: &[key_of(k)],
                args: &args,
                record: &Value::Null,
            };
            table.add(window, &kinds, &input).unwrap();
        }
        table.close(window, &kinds, i64::MAX / 2, &mut out);
        check(&mut out, events.len());
        assert!(rows > events.len());
        let Table::Rolling(r) = &table else {
            panic!("not a rolling table");
        };
        // Every group was forgotten and its slot freed; the keys were compacted away.
        assert_eq!(r.live, 0);
        assert!(r.slots.iter().all(|s| !s.used));
        assert!(r.key_bytes.len() < 40 * 4096, "{}", r.key_bytes.len());
    }

    /// Keys come and go: 40 live at a time out of 20 000, so slots are reused and the
    /// key buffer is compacted many times.
    fn churning_events() -> Vec<(i64, u64, i64)> {
        (0..20_000i64)
            .flat_map(|i| {
                let k = i as u64;
                [(i * 10, k, i % 7), (i * 10 + 5, k, i % 11 - 3)]
            })
            .chain((0..3000).map(|i| (200_000 + i * 3, (i % 5) as u64, i)))
            .collect()
    }

    #[test]
    fn sliding_windows_reuse_slots_and_compact_keys_without_changing_results() {
        let events = churning_events();
        check_rolling(
            Window::Sliding { size: 100 },
            100,
            &events,
            events.len() / 2,
        );
    }

    #[test]
    fn hopping_windows_reuse_slots_and_compact_keys_without_changing_results() {
        let events = churning_events();
        let window = Window::Hopping {
            size: 100,
            hop: 20,
            offset: 0,
        };
        check_rolling(window, 100, &events, events.len() / 3);
    }

    #[test]
    fn rolling_snapshots_with_count_star_arguments_still_load() {
        // As earlier versions wrote them: every aggregate's argument queued per event,
        // COUNT(*)'s constant TRUE included, and one state per group and aggregate.
        let old = r#"{"Rolling":{"aggs":2,"closed":100,"groups":[[[{"String":"a"}],"Null",0,
            [[90,[{"Bit":true},{"BigInt":2}]],[95,[{"Bit":true},{"BigInt":3}]]],
            [{"Count":2},{"Sum":{"int":5,"float":0.0,"count":2,"floats":0}}]]],
            "pending":[[105,[{"String":"a"}],[{"Bit":true},{"BigInt":4}]]]}}"#;
        let mut table: Table = serde_json::from_str(old).unwrap();
        let expected: serde_json::Value = serde_json::from_str(old).unwrap();
        assert_eq!(serde_json::to_value(&table).unwrap(), expected);
        let window = Window::Sliding { size: 20 };
        let kinds = [AggKind::CountStar, AggKind::Sum];
        assert!(table.fits(window, kinds.len()));
        let mut out = ClosedRows::default();
        table.close(window, &kinds, 120, &mut out);
        let rows: Vec<(i64, &[Value])> = out.rows.iter().map(|r| (r.end, out.results(r))).collect();
        assert_eq!(
            rows,
            [
                (105, &[Value::BigInt(3), Value::BigInt(9)][..]),
                (110, &[Value::BigInt(2), Value::BigInt(7)][..]),
                (115, &[Value::BigInt(1), Value::BigInt(4)][..]),
            ]
        );
        // Written again in the same layout, COUNT(*)'s argument included.
        let json = serde_json::to_value(&table).unwrap();
        assert_eq!(
            json["Rolling"]["groups"][0][3][0][1][0],
            serde_json::json!({"Bit": true})
        );
    }
}
