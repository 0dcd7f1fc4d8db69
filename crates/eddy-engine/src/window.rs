//! Window assignment and per-window group state for grouped SELECTs.
//!
//! Every window is `(end - size, end]` and is stamped with its end. Tumbling and snapshot
//! windows keep groups per window end ([`Table::Fixed`]); hopping and sliding windows keep
//! one running aggregate per group that events enter and leave ([`Rolling`]), so an
//! event costs one add and one retract however many windows hold it, and output rows cost
//! O(1) each; session windows keep one open session per `OVER (PARTITION BY ...)` key.
//! All state serialises for snapshots, with groups written in key order.

use crate::agg::{AggKind, RetractState};
use crate::error::EvalError;
use crate::groups::Groups;
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
    /// Shared, so that a group emitted at every hop does not copy its key each time.
    pub key: Arc<[Value]>,
    pub first: Value,
    /// Where its aggregate results start in [`ClosedRows::results`].
    results: usize,
}

/// Closed groups with their aggregate results in one shared buffer, so an output row
/// costs no vector of its own before its SELECT list is evaluated; reused across closes.
#[derive(Default)]
pub(crate) struct ClosedRows {
    pub rows: Vec<Closed>,
    results: Vec<Value>,
    /// Results per row (every row of one operator has the same aggregates).
    width: usize,
}

impl ClosedRows {
    /// Appends a closed group and its aggregate results (`width` of them).
    pub(crate) fn push(
        &mut self,
        end: i64,
        key: Arc<[Value]>,
        first: Value,
        results: impl Iterator<Item = Value>,
    ) {
        let at = self.results.len();
        self.results.extend(results);
        self.width = self.results.len() - at;
        self.rows.push(Closed {
            end,
            key,
            first,
            results: at,
        });
    }

    /// The aggregate results of `row`.
    pub(crate) fn results(&self, row: &Closed) -> &[Value] {
        self.results
            .get(row.results..row.results + self.width)
            .unwrap_or(&[])
    }

    /// Empties the buffer, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
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
            } => {
                let Window::Session {
                    timeout,
                    max_duration,
                } = window
                else {
                    return;
                };
                let mut finished = std::mem::take(ended);
                sessions.0.retain(|_, s| {
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
                });
                for (end, groups) in finished {
                    groups.finish(end, out);
                }
                *closed = Some(closed.map_or(watermark, |c| c.max(watermark)));
            }
        }
        out.rows[start..].sort_by(|a, b| a.end.cmp(&b.end).then_with(|| cmp_keys(&a.key, &b.key)));
    }
}

/// One group of a [`Rolling`] table.
#[derive(Debug, Clone)]
struct RollingGroup {
    key: Arc<[Value]>,
    first: Value,
    /// Running aggregates over the events inside the window; empty until built (after a
    /// restore they are rebuilt from the events inside).
    states: Vec<RetractState>,
    /// Events inside.
    len: usize,
    /// Sequence number of the oldest event inside (numbers count every event entered).
    front_seq: u64,
    /// Events of this group still waiting to enter.
    pending: u32,
    /// Marked for output at the instant being processed (sliding windows).
    dirty: bool,
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
#[derive(Debug, Clone, Default)]
pub(crate) struct Rolling {
    /// Aggregates per event: the stride of the argument queues.
    aggs: usize,
    /// Whether every group's `states` is built (false after a restore).
    built: bool,
    slots: Vec<Option<RollingGroup>>,
    free: Vec<u32>,
    /// Group ids, hashed by the key their slot holds (so the key is stored once).
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    pending: VecDeque<(i64, u32)>,
    pending_args: VecDeque<Value>,
    inside: VecDeque<(i64, u32)>,
    /// Arguments of the events in `inside`, `aggs` per event. Events leave in `inside`
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
}

impl Rolling {
    fn group(&mut self, id: u32) -> Option<&mut RollingGroup> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The id of the group of `key`.
    fn find(&self, key: &[Value]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.index
            .find(hash, |&id| slot_key(slots, id).is_some_and(|k| k == key))
            .copied()
    }

    /// Indexes group `id`, whose slot is filled.
    fn index_insert(&mut self, id: u32) {
        let Rolling {
            index,
            hasher,
            slots,
            ..
        } = self;
        let Some(key) = slot_key(slots, id) else {
            return;
        };
        let hash = hasher.hash_one(key);
        index.insert_unique(hash, id, |&g| {
            hasher.hash_one(slot_key(slots, g).unwrap_or(&[]))
        });
    }

    /// Builds missing aggregate states (a fresh table or a restored one).
    fn build(&mut self, kinds: &[AggKind]) {
        if self.built {
            return;
        }
        self.aggs = kinds.len();
        let mut entered: HashMap<u32, u64> = HashMap::new();
        for g in self.slots.iter_mut().flatten() {
            g.states = kinds.iter().map(|k| RetractState::new(*k)).collect();
        }
        for (i, (_, id)) in self.inside.iter().enumerate() {
            let Some(g) = self.slots.get_mut(*id as usize).and_then(Option::as_mut) else {
                continue;
            };
            let n = entered.entry(*id).or_default();
            let seq = g.front_seq + *n;
            *n += 1;
            for (j, state) in g.states.iter_mut().enumerate() {
                if let Some(v) = self.inside_args.get(i * kinds.len() + j) {
                    state.add(v, seq);
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
        let id = match self.find(e.key) {
            Some(id) => id,
            None => {
                let group = RollingGroup {
                    key: Arc::from(e.key),
                    first: e.record.clone(),
                    states: kinds.iter().map(|k| RetractState::new(*k)).collect(),
                    len: 0,
                    front_seq: 0,
                    pending: 0,
                    dirty: false,
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.slots[id as usize] = Some(group);
                        id
                    }
                    None => {
                        self.slots.push(Some(group));
                        (self.slots.len() - 1) as u32
                    }
                };
                self.index_insert(id);
                self.unordered.push(id);
                id
            }
        };
        // A hopping window's event at or before the next window end to emit is in that
        // window whatever comes before it closes: it enters now, without queueing.
        if let Window::Hopping { hop, offset, .. } = window
            && self.pending.is_empty()
            && self.inside.back().is_none_or(|b| b.0 <= e.time)
            && let Some(closed) = self.closed
            && grid_at_or_after(closed.saturating_add(1), hop, offset).is_some_and(|n| e.time <= n)
        {
            self.enter_args(e.time, id, e.args.iter().cloned());
            return Ok(());
        }
        if let Some(g) = self.group(id) {
            g.pending += 1;
        }
        let n = self.aggs;
        if self.pending.back().is_none_or(|b| b.0 <= e.time) {
            self.pending.push_back((e.time, id));
            self.pending_args.extend(e.args.iter().cloned());
        } else {
            // Events come in time order except rows of a step; keep the queue sorted.
            let at = self.pending.partition_point(|p| p.0 <= e.time);
            self.pending.insert(at, (e.time, id));
            for (j, v) in e.args.iter().enumerate() {
                self.pending_args.insert(at * n + j, v.clone());
            }
        }
        Ok(())
    }

    /// Moves the oldest pending event inside its group's window.
    fn enter(&mut self) {
        let Some((t, id)) = self.pending.pop_front() else {
            return;
        };
        let n = self.aggs.min(self.pending_args.len());
        let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            self.pending_args.drain(..n);
            return;
        };
        g.pending = g.pending.saturating_sub(1);
        let seq = g.front_seq + g.len as u64;
        for state in &mut g.states {
            if let Some(v) = self.pending_args.pop_front() {
                state.add(&v, seq);
                self.inside_args.push_back(v);
            }
        }
        self.entered(t, id);
    }

    /// Bookkeeping after group `id` took an event at `t`.
    fn entered(&mut self, t: i64, id: u32) {
        let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        g.len += 1;
        if g.len == 1 {
            self.live += 1;
        }
        if !g.dirty {
            g.dirty = true;
            self.dirty.push(id);
        }
        self.inside.push_back((t, id));
    }

    /// Adds an event at `t` with `args` to group `id`'s window.
    fn enter_args(&mut self, t: i64, id: u32, args: impl IntoIterator<Item = Value>) {
        let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let seq = g.front_seq + g.len as u64;
        for (state, v) in g.states.iter_mut().zip(args) {
            state.add(&v, seq);
            self.inside_args.push_back(v);
        }
        self.entered(t, id);
    }

    /// Takes the oldest event inside out of its group's window.
    fn leave(&mut self) {
        let Some((_, id)) = self.inside.pop_front() else {
            return;
        };
        let n = self.aggs.min(self.inside_args.len());
        let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            self.inside_args.drain(..n);
            return;
        };
        let seq = g.front_seq;
        for state in &mut g.states {
            if let Some(v) = self.inside_args.pop_front() {
                state.retract(&v, seq);
            }
        }
        g.front_seq += 1;
        g.len = g.len.saturating_sub(1);
        if g.len == 0 {
            self.live = self.live.saturating_sub(1);
        }
        if !g.dirty {
            g.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Emits the groups in `ids` that hold events, at `end`, in key order; forgets groups
    /// with nothing inside or pending.
    fn emit(&mut self, ids: &[u32], end: i64, out: &mut ClosedRows) {
        let from = out.rows.len();
        for &id in ids {
            if let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
                g.dirty = false;
            }
            self.emit_group(id, end, out);
        }
        if out.rows.len() - from > 1 {
            out.rows[from..].sort_unstable_by(|a, b| cmp_keys(&a.key, &b.key));
        }
    }

    /// Writes group `id`'s row at `end` when it holds events, or forgets the group when it
    /// holds nothing and nothing is pending; returns whether it was forgotten.
    fn emit_group(&mut self, id: u32, end: i64, out: &mut ClosedRows) -> bool {
        let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return false;
        };
        if g.len > 0 {
            out.push(
                end,
                g.key.clone(),
                g.first.clone(),
                g.states.iter().map(RetractState::result),
            );
            return false;
        }
        if g.pending == 0
            && let Some(g) = self.slots[id as usize].take()
        {
            let hash = self.hasher.hash_one(&g.key[..]);
            if let Ok(entry) = self.index.find_entry(hash, |&i| i == id) {
                entry.remove();
            }
            self.free.push(id);
            return true;
        }
        false
    }

    /// Emits every group holding events at `end`, in key order, and forgets groups with
    /// nothing inside or pending (hopping windows).
    fn emit_all(&mut self, end: i64, out: &mut ClosedRows) {
        if !self.unordered.is_empty() {
            let slots = &self.slots;
            let key = |id: &u32| slots[*id as usize].as_ref().map(|g| &g.key[..]);
            let cmp = |a: &u32, b: &u32| match (key(a), key(b)) {
                (Some(a), Some(b)) => cmp_keys(a, b),
                _ => Ordering::Equal,
            };
            self.unordered.retain(|id| key(id).is_some());
            self.unordered.sort_unstable_by(cmp);
            let mut merged = Vec::with_capacity(self.order.len() + self.unordered.len());
            let (mut i, mut j) = (0, 0);
            while i < self.order.len() && j < self.unordered.len() {
                if cmp(&self.order[i], &self.unordered[j]) != Ordering::Greater {
                    merged.push(self.order[i]);
                    i += 1;
                } else {
                    merged.push(self.unordered[j]);
                    j += 1;
                }
            }
            merged.extend_from_slice(&self.order[i..]);
            merged.extend_from_slice(&self.unordered[j..]);
            self.order = merged;
            self.unordered.clear();
        }
        let mut freed = false;
        for i in 0..self.order.len() {
            freed |= self.emit_group(self.order[i], end, out);
        }
        if freed {
            let slots = &self.slots;
            self.order.retain(|id| slots[*id as usize].is_some());
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
                for id in self.dirty.drain(..) {
                    if let Some(g) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
                        g.dirty = false;
                    }
                }
                self.emit_all(end, out);
                self.closed = Some(end);
            },
            _ => {}
        }
        self.closed = Some(self.closed.map_or(watermark, |c| c.max(watermark)));
    }
}

/// The key of group `id` when its slot is filled.
fn slot_key(slots: &[Option<RollingGroup>], id: u32) -> Option<&[Value]> {
    slots
        .get(id as usize)
        .and_then(Option::as_ref)
        .map(|g| &g.key[..])
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
        let n = self.aggs;
        let mut inside: HashMap<u32, Vec<(i64, Vec<Value>)>> = HashMap::new();
        let inside_args: Vec<Value> = self.inside_args.iter().cloned().collect();
        for (i, (t, id)) in self.inside.iter().enumerate() {
            let args = inside_args.get(i * n..(i + 1) * n).unwrap_or(&[]).to_vec();
            inside.entry(*id).or_default().push((*t, args));
        }
        let mut groups: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(id, g)| Some((id as u32, g.as_ref()?)))
            .map(|(id, g)| {
                let events = inside.remove(&id).unwrap_or_default();
                (
                    Box::<[Value]>::from(&g.key[..]),
                    g.first.clone(),
                    g.front_seq,
                    events,
                    g.states.clone(),
                )
            })
            .collect();
        groups.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        let args: Vec<Value> = self.pending_args.iter().cloned().collect();
        let pending = self
            .pending
            .iter()
            .enumerate()
            .map(|(i, (t, id))| {
                let key = self.slots.get(*id as usize).and_then(Option::as_ref);
                (
                    *t,
                    key.map_or_else(|| Box::from([]), |g| Box::from(&g.key[..])),
                    args.get(i * n..(i + 1) * n).unwrap_or(&[]).to_vec(),
                )
            })
            .collect();
        RollingSnapshot {
            aggs: n,
            closed: self.closed,
            groups,
            pending,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rolling {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let snap = RollingSnapshot::deserialize(d)?;
        let mut r = Rolling {
            aggs: snap.aggs,
            closed: snap.closed,
            built: true,
            ..Rolling::default()
        };
        let mut inside = Vec::new();
        for (key, first, front_seq, events, states) in snap.groups {
            if states.len() != snap.aggs {
                r.built = false;
            }
            let id = r.slots.len() as u32;
            if !events.is_empty() {
                r.live += 1;
            }
            let len = events.len();
            for (t, mut a) in events {
                // Keeps the shared argument queue aligned whatever the snapshot holds.
                a.resize(snap.aggs, Value::Null);
                inside.push((t, id, a));
            }
            r.unordered.push(id);
            r.slots.push(Some(RollingGroup {
                key: key.into(),
                first,
                states,
                len,
                front_seq,
                pending: 0,
                dirty: false,
            }));
            r.index_insert(id);
        }
        if r.slots.is_empty() {
            // Nothing to rebuild, but the width is learnt from the query on first use.
            r.built = false;
        }
        // Within a group events are in time order; across groups only time matters.
        inside.sort_by_key(|e| e.0);
        for (t, id, args) in inside {
            r.inside.push_back((t, id));
            r.inside_args.extend(args);
        }
        for (t, key, args) in snap.pending {
            let Some(id) = r.find(&key) else {
                r.built = false;
                let id = r.slots.len() as u32;
                r.unordered.push(id);
                r.slots.push(Some(RollingGroup {
                    key: key.into(),
                    first: Value::Null,
                    states: Vec::new(),
                    len: 0,
                    front_seq: 0,
                    pending: 1,
                    dirty: false,
                }));
                r.index_insert(id);
                r.pending.push_back((t, id));
                r.pending_args.extend(args);
                continue;
            };
            if let Some(g) = r.slots[id as usize].as_mut() {
                g.pending += 1;
            }
            r.pending.push_back((t, id));
            r.pending_args.extend(args);
        }
        Ok(r)
    }
}
