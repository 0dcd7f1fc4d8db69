//! Window assignment and per-window group state for grouped SELECTs.
//!
//! Every window is `(end - size, end]` and is stamped with its end. Fixed windows
//! (tumbling, hopping, snapshot) keep groups per window end; sliding windows keep each
//! group's recent events and emit whenever an event enters or leaves; session windows
//! keep one open session per `OVER (PARTITION BY ...)` key. All state serialises for
//! snapshots, with group maps written in key order so snapshots are deterministic.

use crate::agg::{AggKind, AggState};
use crate::error::EvalError;
use crate::value::Value;
use hashbrown::HashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};

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

/// One group: its first event (read by non-aggregate expressions) and aggregate states.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    first: Value,
    aggs: Vec<AggState>,
}

impl Group {
    fn new(first: Value, kinds: &[AggKind]) -> Group {
        Group {
            first,
            aggs: kinds.iter().map(|k| AggState::new(*k)).collect(),
        }
    }

    fn update(&mut self, args: &[Value]) -> Result<(), EvalError> {
        let mut result = Ok(());
        for (state, arg) in self.aggs.iter_mut().zip(args) {
            if let Err(e) = state.update(arg) {
                result = Err(e);
            }
        }
        result
    }

    fn finish(self, end: i64, key: Box<[Value]>) -> Closed {
        Closed {
            end,
            key,
            results: self.aggs.iter().map(AggState::result).collect(),
            first: self.first,
        }
    }
}

/// A group of a window that closed: what the SELECT list and HAVING are evaluated on.
pub(crate) struct Closed {
    pub end: i64,
    pub key: Box<[Value]>,
    pub first: Value,
    pub results: Vec<Value>,
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
        windows: BTreeMap<i64, KeyMap<Group>>,
        /// Windows ending at or before this were emitted; late contributions are ignored.
        closed: Option<i64>,
        /// Groups in the last window, to size the next one and skip rehashing.
        #[serde(skip)]
        capacity_hint: usize,
    },
    Sliding {
        groups: KeyMap<SlidingGroup>,
        /// Output instants up to this were emitted.
        closed: Option<i64>,
    },
    Session {
        sessions: KeyMap<Session>,
        /// Sessions that ended during processing, emitted at the next close.
        ended: Vec<(i64, KeyMap<Group>)>,
        closed: Option<i64>,
    },
}

/// A sliding-window group: its events still inside some future window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SlidingGroup {
    first: Value,
    events: VecDeque<(i64, Vec<Value>)>,
}

/// An open session of one partition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    start: i64,
    last: i64,
    groups: KeyMap<Group>,
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
            Window::Sliding { .. } => Table::Sliding {
                groups: KeyMap::default(),
                closed: None,
            },
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
        let groups_ok = |g: &Group| g.aggs.len() == aggs;
        match (self, window) {
            (Table::Sliding { groups, .. }, Window::Sliding { .. }) => groups
                .0
                .values()
                .all(|g| g.events.iter().all(|e| e.1.len() == aggs)),
            (
                Table::Session {
                    sessions, ended, ..
                },
                Window::Session { .. },
            ) => {
                sessions
                    .0
                    .values()
                    .flat_map(|s| s.groups.0.values())
                    .all(groups_ok)
                    && ended.iter().flat_map(|e| e.1.0.values()).all(groups_ok)
            }
            (
                Table::Fixed { windows, .. },
                Window::Tumbling { .. } | Window::Hopping { .. } | Window::Snapshot,
            ) => windows.values().flat_map(|g| g.0.values()).all(groups_ok),
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
        let new_group = || Group::new(e.record.clone(), kinds);
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
                    let groups = &mut windows
                        .entry(end)
                        .or_insert_with(|| KeyMap(HashMap::with_capacity(hint)))
                        .0;
                    let group = match groups.get_mut(e.key) {
                        Some(g) => g,
                        None => groups.entry(e.key.into()).or_insert_with(new_group),
                    };
                    if let Err(err) = group.update(e.args) {
                        result = Err(err);
                    }
                });
                result
            }
            Table::Sliding { groups, closed } => {
                if closed.is_some_and(|c| e.time <= c) {
                    return Ok(());
                }
                // Arguments are checked now, so that a bad event is dropped once, here.
                Group::new(Value::Null, kinds).update(e.args)?;
                let group = groups
                    .0
                    .entry(e.key.into())
                    .or_insert_with(|| SlidingGroup {
                        first: e.record.clone(),
                        events: VecDeque::new(),
                    });
                group.events.push_back((e.time, e.args.to_vec()));
                Ok(())
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
                            groups: KeyMap::default(),
                        };
                        sessions.0.insert(e.partition.into(), s);
                        continue;
                    };
                    let (end, by_max) = s.end(timeout, max_duration);
                    if e.time <= end {
                        s.last = s.last.max(e.time);
                        let group = match s.groups.0.get_mut(e.key) {
                            Some(g) => g,
                            None => s.groups.0.entry(e.key.into()).or_insert_with(new_group),
                        };
                        return group.update(e.args);
                    }
                    let groups = std::mem::take(&mut s.groups);
                    if by_max && !groups.0.is_empty() {
                        // A new session opens at the check instant.
                        *s = Session {
                            start: end,
                            last: end,
                            groups: KeyMap::default(),
                        };
                        ended.push((end, groups));
                    } else {
                        sessions.0.remove(e.partition);
                        if !groups.0.is_empty() {
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
        out: &mut Vec<Closed>,
    ) {
        let start = out.len();
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
                    *capacity_hint = groups.0.len();
                    let from = out.len();
                    out.extend(groups.0.into_iter().map(|(k, g)| g.finish(end, k)));
                    out[from..].sort_unstable_by(|a, b| cmp_keys(&a.key, &b.key));
                }
                *closed = Some(closed.map_or(watermark, |c| c.max(watermark)));
                return;
            }
            Table::Sliding { groups, closed } => {
                let Window::Sliding { size } = window else {
                    return;
                };
                let after = *closed;
                let mut instants = Vec::new();
                for (key, g) in &mut groups.0 {
                    instants.clear();
                    for &(t, _) in &g.events {
                        for i in [t, t.saturating_add(size)] {
                            if i <= watermark && after.is_none_or(|c| i > c) {
                                instants.push(i);
                            }
                        }
                    }
                    instants.sort_unstable();
                    instants.dedup();
                    for &end in &instants {
                        let mut group = Group::new(g.first.clone(), kinds);
                        let mut any = false;
                        for (t, args) in &g.events {
                            if *t > end.saturating_sub(size) && *t <= end {
                                any = true;
                                // Arguments were checked in `add`; only a bigint SUM overflow
                                // can fail here, and then the sum stays at its last value.
                                let _ = group.update(args);
                            }
                        }
                        if any {
                            out.push(group.finish(end, key.clone()));
                        }
                    }
                    while g
                        .events
                        .front()
                        .is_some_and(|(t, _)| t.saturating_add(size) <= watermark)
                    {
                        g.events.pop_front();
                    }
                }
                groups.0.retain(|_, g| !g.events.is_empty());
                *closed = Some(closed.map_or(watermark, |c| c.max(watermark)));
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
                        if groups.0.is_empty() {
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
                            groups: KeyMap::default(),
                        };
                    }
                });
                for (end, groups) in finished {
                    out.extend(groups.0.into_iter().map(|(k, g)| g.finish(end, k)));
                }
                *closed = Some(closed.map_or(watermark, |c| c.max(watermark)));
            }
        }
        out[start..].sort_by(|a, b| a.end.cmp(&b.end).then_with(|| cmp_keys(&a.key, &b.key)));
    }
}
