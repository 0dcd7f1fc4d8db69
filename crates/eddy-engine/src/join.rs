//! Joins: `FROM a JOIN b ON ... [JOIN c ON ...]`, each JOIN a stage of one pipeline.
//!
//! Every row of the pipeline is a *composite*: a record with one slot per source alias
//! (the FROM source is slot 0, the right side of JOIN k is slot k + 1) plus one hidden
//! event-time field per slot, so `a.x`, `DATEDIFF(unit, a, b)` and unqualified names read
//! it the same way at every stage. An event of the FROM source enters stage 0 as a
//! composite with slot 0 filled; what a stage emits is the left input of the next.
//!
//! - A **stream** stage buffers both sides for as long as its DATEDIFF bound lets them
//!   match a later event. Events arrive in time order, so each pair is found once, when
//!   the later of the two arrives; the pair's time is the later one's. Equalities between
//!   the sides in ON key the buffers (hash lookup). A LEFT OUTER stage emits an unmatched
//!   left row, right slot NULL, once the bound has passed, stamped with that instant.
//! - A **reference** stage looks the left row up in a hash index of the reference
//!   table (built from the ON equalities when the table is set) and evaluates the rest of
//!   ON on each candidate; nothing is buffered and the row keeps its time.
//!
//! Analytic functions (LAG, ISFIRST, ...) run on each source's events before they
//! enter the join: their values follow the composite's time fields, one hidden field per
//! call, filled when its source's slot is (a buffered right event keeps its values
//! beside it), so every row an event joins into reads the same values.
//!
//! DATEDIFF in a join bound (`DATEDIFF(unit, a, b) BETWEEN lo AND hi`, or `<`, `<=`,
//! `>`, `>=`, `=` against integers, AND-ed) compares elapsed time exactly:
//! `lo × unit ≤ time(b) − time(a) ≤ hi × unit`. It does not count unit boundaries as the
//! scalar DATEDIFF does, so a `b` 1 ms before `a` never passes `BETWEEN 0 AND n`.

use crate::error::{EngineError, EvalError};
use crate::expr::{Ctx, Eval, ExprCompiler, truthy, unsupported};
use crate::time::parse_datetime;
use crate::value::{Record, Value};
use crate::window::KeyMap;
use eddy_sql::ast::{BinaryOp, Expr, Ident, JoinKind, JoinTarget, Literal, Select, UnaryOp};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

/// The longest join bound ASA accepts: seven days, in ticks.
const BOUND_TICKS_MAX: i64 = 7 * 864_000_000_000;

/// The hidden field of a composite holding slot `slot`'s event time.
pub(crate) fn time_field(slot: usize) -> String {
    format!("\u{1}time:{slot}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Buffered {
    seq: u64,
    /// The row's own time: the composite's time (left) or the event's (right).
    time: i64,
    record: Value,
    matched: bool,
    /// A right event's analytic values (a left row carries them in its composite).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    analytics: Vec<Value>,
}

/// No row or key: the end of a chain.
const NONE: usize = usize::MAX;

/// A buffered row in a [`Side`]'s slab, linked into its key's chain (oldest first).
#[derive(Debug, Clone)]
struct Row {
    b: Buffered,
    /// Its key's entry in [`Side::keys`].
    key: usize,
    prev: usize,
    next: usize,
}

/// Rows per [`Slab`] chunk.
const CHUNK: usize = 2048;

/// Rows in fixed-size chunks: growing never moves (or copies) the rows already held, so
/// a side that grows for an hour (q3) touches each fresh page once.
#[derive(Debug, Clone, Default)]
struct Slab {
    chunks: Vec<Vec<Option<Row>>>,
    free: Vec<usize>,
}

impl Slab {
    fn get(&self, r: usize) -> Option<&Row> {
        self.chunks.get(r / CHUNK)?.get(r % CHUNK)?.as_ref()
    }

    fn get_mut(&mut self, r: usize) -> Option<&mut Row> {
        self.chunks.get_mut(r / CHUNK)?.get_mut(r % CHUNK)?.as_mut()
    }

    /// Stores `row` in a free place; its index.
    fn insert(&mut self, row: Row) -> usize {
        if let Some(r) = self.free.pop()
            && let Some(slot) = self
                .chunks
                .get_mut(r / CHUNK)
                .and_then(|c| c.get_mut(r % CHUNK))
        {
            *slot = Some(row);
            return r;
        }
        let full = self.chunks.last().is_none_or(|c| c.len() == CHUNK);
        if full {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let base = (self.chunks.len() - 1) * CHUNK;
        match self.chunks.last_mut() {
            Some(c) => {
                c.push(Some(row));
                base + c.len() - 1
            }
            None => NONE,
        }
    }

    fn remove(&mut self, r: usize) -> Option<Row> {
        let row = self.chunks.get_mut(r / CHUNK)?.get_mut(r % CHUNK)?.take()?;
        self.free.push(r);
        Some(row)
    }

    /// Places ever used (held or free).
    #[cfg(test)]
    fn places(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

/// Entries per [`Queue`] chunk.
const QUEUE_CHUNK: usize = 4096;

/// A first-in first-out queue in fixed-size chunks: growing never copies the entries
/// held (a doubling deque copies them all and touches twice the fresh pages, 17 % of
/// Nexmark q3), and the chunk emptied at the front is kept for the back.
#[derive(Debug, Clone)]
struct Queue<T> {
    chunks: VecDeque<Vec<T>>,
    /// Entries already taken from the front chunk.
    head: usize,
    len: usize,
    spare: Option<Vec<T>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue {
            chunks: VecDeque::new(),
            head: 0,
            len: 0,
            spare: None,
        }
    }
}

impl<T: Copy> Queue<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn front(&self) -> Option<&T> {
        self.chunks.front()?.get(self.head)
    }

    fn back(&self) -> Option<&T> {
        // Only the front chunk has taken entries, and it is dropped once all are taken.
        self.chunks.back()?.last().filter(|_| self.len > 0)
    }

    fn push_back(&mut self, v: T) {
        if self.chunks.back().is_none_or(|c| c.len() == QUEUE_CHUNK) {
            let chunk = self
                .spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(QUEUE_CHUNK));
            self.chunks.push_back(chunk);
        }
        if let Some(c) = self.chunks.back_mut() {
            c.push(v);
            self.len += 1;
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let c = self.chunks.front()?;
        let v = *c.get(self.head)?;
        self.head += 1;
        self.len = self.len.saturating_sub(1);
        // A front chunk is full, or it is also the back one and now empty.
        if self.head == c.len()
            && let Some(mut c) = self.chunks.pop_front()
        {
            c.clear();
            self.spare = Some(c);
            self.head = 0;
        }
        Some(v)
    }

    /// Empties the queue, keeping one chunk for reuse.
    fn clear(&mut self) {
        if let Some(mut c) = self.chunks.pop_front() {
            c.clear();
            self.spare = Some(c);
        }
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().enumerate().flat_map(|(i, c)| {
            let from = if i == 0 { self.head } else { 0 };
            c.get(from..).unwrap_or(&[])
        })
    }
}

impl<T: Copy> From<Vec<T>> for Queue<T> {
    fn from(items: Vec<T>) -> Queue<T> {
        let mut q = Queue::default();
        for v in items {
            q.push_back(v);
        }
        q
    }
}

/// One distinct key of a [`Side`]: its hash and the first and last rows holding it.
#[derive(Debug, Clone, Copy)]
struct KeyEntry {
    hash: u64,
    head: usize,
    tail: usize,
}

/// A [`Side`]'s distinct keys in chunks of [`CHUNK`]: each entry, and its `width` values
/// side by side, never move once stored (growing touches each fresh page once).
#[derive(Debug, Clone, Default)]
struct Keys {
    chunks: Vec<(Vec<KeyEntry>, Vec<Value>)>,
}

impl Keys {
    fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |(e, _)| (self.chunks.len() - 1) * CHUNK + e.len())
    }

    fn get(&self, k: usize) -> Option<&KeyEntry> {
        self.chunks.get(k / CHUNK)?.0.get(k % CHUNK)
    }

    fn get_mut(&mut self, k: usize) -> Option<&mut KeyEntry> {
        self.chunks.get_mut(k / CHUNK)?.0.get_mut(k % CHUNK)
    }

    fn values(&self, k: usize, width: usize) -> &[Value] {
        let at = (k % CHUNK) * width;
        self.chunks
            .get(k / CHUNK)
            .and_then(|(_, v)| v.get(at..at + width))
            .unwrap_or(&[])
    }

    fn values_mut(&mut self, k: usize, width: usize) -> Option<&mut [Value]> {
        let at = (k % CHUNK) * width;
        self.chunks.get_mut(k / CHUNK)?.1.get_mut(at..at + width)
    }

    /// Stores a new key; its index.
    fn push(&mut self, entry: KeyEntry, key: &[Value]) -> usize {
        let k = self.len();
        if self.chunks.last().is_none_or(|(e, _)| e.len() == CHUNK) {
            self.chunks.push((
                Vec::with_capacity(CHUNK),
                Vec::with_capacity(CHUNK * key.len()),
            ));
        }
        if let Some((e, v)) = self.chunks.last_mut() {
            e.push(entry);
            v.extend_from_slice(key);
        }
        k
    }
}

/// One side's buffered rows, kept flat so a row costs no allocation of its own: rows in a
/// slab, each distinct key stored once (its values side by side in [`Keys`]) with a
/// chain through its rows in arrival order, and the instants rows stop being able to
/// match in time order (rows mostly arrive in that order, so expiry pops a queue's front).
#[derive(Debug, Clone, Default)]
struct Side {
    rows: Slab,
    keys: Keys,
    free_keys: Vec<usize>,
    /// Values per key (every key of a side has as many: one per ON equality).
    width: Option<usize>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Key entries by the hash of their values.
    index: HashTable<usize>,
    /// `(until, seq, row)` in order, for rows that arrived in that order...
    expiry: Queue<(i64, u64, usize)>,
    /// ... and the few that did not (a later `until` was already queued).
    late: BTreeSet<(i64, u64, usize)>,
    /// Scan mode (see [`Side::push`]): no index; every row has a key entry of its own and
    /// all rows form one chain in arrival order, from the first to the last held.
    scan: Option<Ends>,
    /// Rows added since the last probe.
    adds: u64,
    /// Rows added between probes, averaged (each gap weighs half), to pick the mode.
    gap: u64,
}

/// The first and last rows of a scan-mode [`Side`]'s one chain.
#[derive(Debug, Clone, Copy)]
struct Ends {
    first: usize,
    last: usize,
}

/// Keeping a row in the index (hashing it in and out) costs about as much as comparing
/// this many rows' keys in a scan.
const INDEX_COST: u64 = 8;

/// A side has at least this many rows added since its last probe before it leaves the index.
const SCAN_MIN_GAP: u64 = 256;

impl Side {
    fn len(&self) -> usize {
        self.expiry.len() + self.late.len()
    }

    fn key_at(&self, k: usize, width: usize) -> &[Value] {
        self.keys.values(k, width)
    }

    /// The first row holding `key`, if any (indexed mode).
    fn head(&self, key: &[Value]) -> Option<usize> {
        let width = self.width?;
        let hash = self.hasher.hash_one(key);
        let k = *self.index.find(hash, |&k| self.key_at(k, width) == key)?;
        self.keys.get(k).map(|e| e.head)
    }

    /// Where a probe for `key` starts walking: its key's chain, or in scan mode the one
    /// chain of all rows (then [`Side::holding`] skips the rows of other keys).
    fn start(&self, key: &[Value]) -> usize {
        match self.scan {
            Some(ends) => ends.first,
            None => self.head(key).unwrap_or(NONE),
        }
    }

    /// Row `r` or the first after it in its chain that holds `key` (`NONE` if none).
    fn holding(&self, mut r: usize, key: &[Value]) -> usize {
        if self.scan.is_none() {
            return r;
        }
        let width = self.width.unwrap_or(0);
        while let Some(row) = self.rows.get(r) {
            if self.keys.values(row.key, width) == key {
                return r;
            }
            r = row.next;
        }
        NONE
    }

    /// Adds `b` at the end of `key`'s chain (in scan mode, of the one chain); its row
    /// index, or `None` when the key's width differs from this side's (only a snapshot of
    /// another query could do that).
    fn link(&mut self, key: &[Value], b: Buffered) -> Option<usize> {
        let width = *self.width.get_or_insert(key.len());
        if key.len() != width {
            return None;
        }
        let k = if self.scan.is_some() {
            self.own_key(key, NONE, width)
        } else {
            self.key_for(key, width)
        };
        let r = self.rows.insert(Row {
            b,
            key: k,
            prev: NONE,
            next: NONE,
        });
        self.attach(r, k);
        Some(r)
    }

    /// A new key entry for one row (scan mode: keys are not shared, so not hashed).
    fn own_key(&mut self, key: &[Value], r: usize, width: usize) -> usize {
        let entry = KeyEntry {
            hash: 0,
            head: r,
            tail: r,
        };
        match self.free_keys.pop() {
            Some(k) => {
                if let Some(e) = self.keys.get_mut(k) {
                    *e = entry;
                }
                if let Some(v) = self.keys.values_mut(k, width) {
                    v.clone_from_slice(key);
                }
                k
            }
            None => self.keys.push(entry, key),
        }
    }

    /// The entry of `key` in the index, added if new (indexed mode).
    fn key_for(&mut self, key: &[Value], width: usize) -> usize {
        let hash = self.hasher.hash_one(key);
        // One probe finds the key or the place for it.
        let keys = &self.keys;
        let slot = self.index.entry(
            hash,
            |&k| keys.values(k, width) == key,
            |&k| keys.get(k).map_or(0, |e| e.hash),
        );
        match slot {
            hashbrown::hash_table::Entry::Occupied(o) => *o.get(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let entry = KeyEntry {
                    hash,
                    head: NONE,
                    tail: NONE,
                };
                let k = match self.free_keys.pop() {
                    Some(k) => {
                        if let Some(e) = self.keys.get_mut(k) {
                            *e = entry;
                        }
                        if let Some(v) = self.keys.values_mut(k, width) {
                            v.clone_from_slice(key);
                        }
                        k
                    }
                    None => self.keys.push(entry, key),
                };
                v.insert(k);
                k
            }
        }
    }

    /// Puts row `r` (keyed `k`, unchained) at the end of its chain: its key's, or in
    /// scan mode the one chain.
    fn attach(&mut self, r: usize, k: usize) {
        let prev = match &mut self.scan {
            Some(ends) => {
                let prev = ends.last;
                ends.last = r;
                if ends.first == NONE {
                    ends.first = r;
                }
                if let Some(e) = self.keys.get_mut(k) {
                    e.head = r;
                    e.tail = r;
                }
                prev
            }
            None => {
                let prev = self.keys.get(k).map_or(NONE, |e| e.tail);
                if let Some(e) = self.keys.get_mut(k) {
                    if e.head == NONE {
                        e.head = r;
                    }
                    e.tail = r;
                }
                prev
            }
        };
        if let Some(p) = self.rows.get_mut(prev) {
            p.next = r;
        }
        if let Some(row) = self.rows.get_mut(r) {
            row.key = k;
            row.prev = prev;
            row.next = NONE;
        }
    }

    /// Buffers `b` under `key` until `until`.
    ///
    /// A side probed rarely for the rows added to it (the bids of Nexmark q7, probed once
    /// per window) leaves the index: rows added since the last probe cost
    /// [`INDEX_COST`] each to index, against one scan of the side at the next probe.
    fn push(&mut self, key: &[Value], until: i64, b: Buffered) {
        let seq = b.seq;
        let Some(r) = self.link(key, b) else {
            return;
        };
        match self.expiry.back() {
            Some(&(u, s, _)) if (u, s) > (until, seq) => {
                self.late.insert((until, seq, r));
            }
            _ => self.expiry.push_back((until, seq, r)),
        }
        self.adds += 1;
        if self.scan.is_none()
            && self.adds >= SCAN_MIN_GAP
            && self.adds.saturating_mul(INDEX_COST) >= 2 * self.len() as u64
        {
            self.enter_scan();
        }
    }

    /// Notes a probe; a scan-mode side probed often for its size goes back to the index.
    fn probed(&mut self) {
        self.gap = self.gap.saturating_add(self.adds) / 2;
        self.adds = 0;
        if self.scan.is_some() && self.gap.saturating_mul(INDEX_COST) * 2 < self.len() as u64 {
            self.enter_index();
        }
    }

    /// Every row, by arrival order: `(seq, row index)`.
    fn arrival_order(&self) -> Vec<usize> {
        let mut order: Vec<(u64, usize)> = Vec::with_capacity(self.len());
        for (c, chunk) in self.rows.chunks.iter().enumerate() {
            for (i, row) in chunk.iter().enumerate() {
                if let Some(row) = row {
                    order.push((row.b.seq, c * CHUNK + i));
                }
            }
        }
        order.sort_unstable();
        order.into_iter().map(|(_, r)| r).collect()
    }

    /// Leaves the index: each row gets a key entry of its own, chained in arrival order.
    fn enter_scan(&mut self) {
        let order = self.arrival_order();
        let width = self.width.unwrap_or(0);
        let old = std::mem::take(&mut self.keys);
        self.free_keys.clear();
        self.index.clear();
        self.scan = Some(Ends {
            first: NONE,
            last: NONE,
        });
        for r in order {
            let Some(k) = self.rows.get(r).map(|row| row.key) else {
                continue;
            };
            let k = self.own_key(old.values(k, width), r, width);
            self.attach(r, k);
        }
    }

    /// Back to the index: the rows' keys shared and hashed again, chains in arrival order.
    fn enter_index(&mut self) {
        let mut order = Vec::with_capacity(self.len());
        let mut r = self.scan.map_or(NONE, |e| e.first);
        while let Some(row) = self.rows.get(r) {
            order.push(r);
            r = row.next;
        }
        let width = self.width.unwrap_or(0);
        let old = std::mem::take(&mut self.keys);
        self.free_keys.clear();
        self.index.clear();
        self.scan = None;
        for r in order {
            let Some(k) = self.rows.get(r).map(|row| row.key) else {
                continue;
            };
            let k = self.key_for(old.values(k, width), width);
            self.attach(r, k);
        }
    }

    /// Drops every row at once when all of them expire before `watermark` (the end of
    /// input, a long gap), instead of unlinking them one by one; whether it did. Only for
    /// rows whose expiry gives no output.
    fn drop_all_before(&mut self, watermark: i64) -> bool {
        let last = self
            .expiry
            .back()
            .map(|e| e.0)
            .max(self.late.last().map(|e| e.0));
        match last {
            Some(until) if until < watermark => {
                // Emptied in place: the first chunk of each part stays for what comes next.
                self.rows.chunks.truncate(1);
                self.rows.chunks.iter_mut().for_each(Vec::clear);
                self.rows.free.clear();
                self.keys.chunks.truncate(1);
                for (entries, values) in &mut self.keys.chunks {
                    entries.clear();
                    values.clear();
                }
                self.free_keys.clear();
                self.index.clear();
                self.expiry.clear();
                self.late.clear();
                if let Some(ends) = &mut self.scan {
                    *ends = Ends {
                        first: NONE,
                        last: NONE,
                    };
                }
                true
            }
            _ => false,
        }
    }

    /// Removes and returns the row expiring first, with its `until`, if that is before
    /// `watermark`.
    fn pop_expired(&mut self, watermark: i64) -> Option<(i64, Buffered)> {
        loop {
            let queued = self.expiry.front().copied();
            let late = self.late.first().copied();
            let from_late = match (queued, late) {
                (Some(q), Some(l)) => l < q,
                (None, Some(_)) => true,
                _ => false,
            };
            let (until, _, r) = if from_late { late } else { queued }?;
            if until >= watermark {
                return None;
            }
            if from_late {
                self.late.pop_first();
            } else {
                self.expiry.pop_front();
            }
            if let Some(b) = self.unlink(r) {
                return Some((until, b));
            }
        }
    }

    /// Runs `f` on every buffered row, in no particular order.
    fn for_each_row(&mut self, mut f: impl FnMut(&mut Buffered)) {
        for row in self.rows.chunks.iter_mut().flatten().flatten() {
            f(&mut row.b);
        }
    }

    /// Takes row `r` out of its key's chain and the slab, dropping the key once unused.
    fn unlink(&mut self, r: usize) -> Option<Buffered> {
        let row = self.rows.remove(r)?;
        if let Some(p) = self.rows.get_mut(row.prev) {
            p.next = row.next;
        }
        if let Some(n) = self.rows.get_mut(row.next) {
            n.prev = row.prev;
        }
        let k = row.key;
        if let Some(ends) = &mut self.scan {
            // The one chain; the row's own key entry is freed.
            if ends.first == r {
                ends.first = row.next;
            }
            if ends.last == r {
                ends.last = row.prev;
            }
            let width = self.width.unwrap_or(0);
            if let Some(v) = self.keys.values_mut(k, width) {
                v.fill(Value::Null);
            }
            self.free_keys.push(k);
            return Some(row.b);
        }
        let mut empty = None;
        if let Some(e) = self.keys.get_mut(k) {
            if e.head == r {
                e.head = row.next;
            }
            if e.tail == r {
                e.tail = row.prev;
            }
            if e.head == NONE {
                empty = Some(e.hash);
            }
        }
        if let Some(hash) = empty {
            if let Ok(found) = self.index.find_entry(hash, |&x| x == k) {
                found.remove();
            }
            let width = self.width.unwrap_or(0);
            if let Some(v) = self.keys.values_mut(k, width) {
                v.fill(Value::Null);
            }
            self.free_keys.push(k);
        }
        Some(row.b)
    }
}

/// How a [`Side`] is written in a snapshot: rows by key (in arrival order), the expiry
/// instants, and the key of each row by seq, as earlier versions wrote them, so their
/// snapshots still restore and later ones read the same.
#[derive(Serialize)]
struct SideOut<'a> {
    by_key: KeyMap<Vec<&'a Buffered>>,
    expiry: Vec<(i64, u64)>,
    keys: BTreeMap<u64, &'a [Value]>,
}

#[derive(Deserialize)]
struct SideIn {
    by_key: KeyMap<VecDeque<Buffered>>,
    expiry: BTreeSet<(i64, u64)>,
    keys: BTreeMap<u64, Box<[Value]>>,
}

impl Serialize for Side {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let width = self.width.unwrap_or(0);
        let mut by_key = KeyMap::default();
        let mut keys = BTreeMap::new();
        // Scan mode: the one chain, in arrival order, grouped by key as the index keeps it.
        let mut r = self.scan.map_or(NONE, |e| e.first);
        while let Some(row) = self.rows.get(r) {
            let key = self.key_at(row.key, width);
            by_key
                .0
                .entry(Box::from(key))
                .or_insert_with(Vec::new)
                .push(&row.b);
            keys.insert(row.b.seq, key);
            r = row.next;
        }
        let indexed = if self.scan.is_none() {
            self.keys.len()
        } else {
            0
        };
        for k in 0..indexed {
            let Some(e) = self.keys.get(k) else { continue };
            if e.head == NONE {
                continue;
            }
            let key = self.key_at(k, width);
            let mut rows = Vec::new();
            let mut r = e.head;
            while let Some(row) = self.rows.get(r) {
                rows.push(&row.b);
                keys.insert(row.b.seq, key);
                r = row.next;
            }
            by_key.0.insert(Box::from(key), rows);
        }
        let mut expiry: Vec<(i64, u64)> = self
            .expiry
            .iter()
            .chain(&self.late)
            .map(|&(until, seq, _)| (until, seq))
            .collect();
        expiry.sort_unstable();
        SideOut {
            by_key,
            expiry,
            keys,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Side, D::Error> {
        let SideIn {
            by_key,
            expiry,
            keys,
        } = SideIn::deserialize(d)?;
        // A row expires at its instant; one without a key (as before) or without an
        // instant never does.
        let until: HashMap<u64, i64> = expiry
            .into_iter()
            .filter(|(_, seq)| keys.contains_key(seq))
            .map(|(until, seq)| (seq, until))
            .collect();
        let mut side = Side::default();
        let mut order = Vec::new();
        for (key, rows) in by_key.0 {
            for b in rows {
                let (seq, u) = (b.seq, until.get(&b.seq).copied().unwrap_or(i64::MAX));
                if let Some(r) = side.link(&key, b) {
                    order.push((u, seq, r));
                }
            }
        }
        order.sort_unstable();
        side.expiry = Queue::from(order);
        Ok(side)
    }
}

/// Buffered rows of both sides of one stream stage; what a snapshot keeps of a join.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JoinState {
    sides: [Side; 2],
    next_seq: u64,
}

/// `lo ≤ time(second) − time(first) ≤ hi`, in ticks, on composite slots.
#[derive(Debug, Clone, Copy)]
struct Interval {
    first: usize,
    second: usize,
    lo: i64,
    hi: i64,
}

impl Interval {
    fn holds(&self, times: &[Value]) -> bool {
        match (times.get(self.first), times.get(self.second)) {
            (Some(Value::DateTime(a)), Some(Value::DateTime(b))) => {
                let d = b.saturating_sub(*a);
                self.lo <= d && d <= self.hi
            }
            _ => false,
        }
    }
}

/// A stage joining the pipeline's rows with a stream.
struct StreamStage {
    left_outer: bool,
    /// The right source's slot.
    right: usize,
    /// The left slot the retention bound is measured from, and
    /// `lo ≤ time(right) − time(anchor) ≤ hi`.
    anchor: usize,
    /// How long past its anchor's time a left row may match; how long past its own time
    /// a right event may match (including how much later than its anchor a left row can
    /// reach this stage).
    keep: [i64; 2],
    intervals: Vec<Interval>,
    /// ON conjuncts other than the DATEDIFF bounds, on the joined composite.
    conds: Vec<Eval>,
    /// Left keys on the composite; right keys on the raw right event.
    keys: [Vec<Eval>; 2],
    state: JoinState,
    /// The current event's key, reused.
    scratch: Vec<Value>,
    /// The first stage: its left rows are the FROM source's events themselves, kept raw
    /// (as right events are) so a composite is built only for a pair that matches.
    raw_left: bool,
    /// Per side, leading WHERE conjuncts that read only that side's event (compiled on
    /// the raw event): an event one of them rejects can only give rows WHERE rejects, so
    /// it is not buffered or probed at all (see [`pushed_down`]).
    pushed: [Vec<Eval>; 2],
}

/// A stage joining the pipeline's rows with a reference table.
struct ReferenceStage {
    left_outer: bool,
    right: usize,
    /// Index into the job's reference inputs.
    reference: usize,
    conds: Vec<Eval>,
    keys: [Vec<Eval>; 2],
    rows: Arc<[Value]>,
    /// Row indexes by key (all rows under the empty key when ON has no equality).
    index: KeyMap<Vec<usize>>,
}

enum Stage {
    Stream(Box<StreamStage>),
    Reference(Box<ReferenceStage>),
}

/// The compiled JOINs of one SELECT.
pub(crate) struct Joins {
    /// Slot aliases, then slot time fields, then one field per analytic call.
    names: Arc<[Arc<str>]>,
    slots: usize,
    /// Per slot, the composite positions of its analytic calls' values, in call order.
    analytic_at: Vec<Vec<usize>>,
    /// Which slots are reference data.
    references: Vec<bool>,
    stages: Vec<Stage>,
    /// No source is a step: events reach the join in time order, so rows whose bound
    /// ended before an event can be dropped (and unmatched ones emitted) right then.
    in_order: bool,
}

/// What the job tells the compiler about the SELECT's sources.
pub(crate) struct JoinSources<'a> {
    /// The job's reference input names.
    pub references: &'a [String],
    /// Step names defined so far (a step shadows a reference of the same name).
    pub steps: &'a [String],
}

impl Joins {
    /// Compiles the JOINs of `select`; `c` is switched to composite column resolution.
    pub(crate) fn compile(
        text: &str,
        select: &Select,
        sources: &JoinSources,
        c: &mut ExprCompiler,
    ) -> Result<Joins, EngineError> {
        let mut aliases = vec![select.from.source.reference_name().name.clone()];
        let mut kinds = Vec::new();
        let is_step = |name: &str| sources.steps.iter().any(|s| s.eq_ignore_ascii_case(name));
        // A windowed step emits rows stamped earlier than events already delivered.
        let mut in_order = !is_step(&select.from.source.name.name);
        for j in &select.from.joins {
            let left_outer = match j.kind {
                JoinKind::Inner => false,
                JoinKind::LeftOuter => true,
                JoinKind::CrossApply | JoinKind::OuterApply => {
                    return Err(unsupported(text, j.span, "an APPLY together with a JOIN"));
                }
            };
            let JoinTarget::Source(right) = &j.right else {
                return Err(unsupported(text, j.span, "this JOIN"));
            };
            let name = &right.name.name;
            in_order &= !is_step(name);
            let reference = match sources
                .references
                .iter()
                .position(|r| r.eq_ignore_ascii_case(name))
            {
                Some(i) if !is_step(name) => Some(i),
                _ => None,
            };
            let alias = right.reference_name().name.clone();
            if aliases.iter().any(|a| a.eq_ignore_ascii_case(&alias)) {
                return Err(unsupported(
                    text,
                    right.reference_name().span,
                    format!("two join sources named '{alias}' (give one an alias)"),
                ));
            }
            aliases.push(alias);
            kinds.push((left_outer, reference));
        }
        let slots = aliases.len();
        let references = std::iter::once(false)
            .chain(kinds.iter().map(|(_, r)| r.is_some()))
            .collect();
        let names: Arc<[Arc<str>]> = aliases
            .iter()
            .map(|a| Arc::from(a.as_str()))
            .chain((0..slots).map(|i| Arc::from(time_field(i).as_str())))
            .collect();
        c.source = "\u{0}".into();
        c.join = Some(aliases.clone());
        let saved_aggs = c.aggs.take();
        // How much later than its own time a slot's event can be part of a row reaching
        // the current stage (reference slots have no time).
        let mut slack: Vec<Option<i64>> = vec![None; slots];
        slack[0] = Some(0);
        let mut stages = Vec::new();
        for (k, (j, (left_outer, reference))) in select.from.joins.iter().zip(kinds).enumerate() {
            let right = k + 1;
            let Some(on) = &j.on else {
                return Err(unsupported(text, j.span, "a JOIN without ON"));
            };
            let mut conjuncts = Vec::new();
            flatten_and(on, &mut conjuncts);
            let mut intervals: Vec<Interval> = Vec::new();
            let mut rest = Vec::new();
            for conj in conjuncts {
                match bound_of(text, conj, &aliases[..=right])? {
                    Some(b) => merge_bound(&mut intervals, b),
                    None => rest.push(conj),
                }
            }
            let mut keys: [Vec<Eval>; 2] = [Vec::new(), Vec::new()];
            let mut kc = ExprCompiler::new(text, aliases[right].clone());
            // A first stream stage reads its left keys on the raw FROM event.
            let raw_left = stages.is_empty() && reference.is_none();
            let mut lc = ExprCompiler::new(text, aliases[0].clone());
            for conj in &rest {
                if let Expr::Binary {
                    op: BinaryOp::Eq,
                    left,
                    right: r,
                    ..
                } = strip(conj)
                {
                    let sides = (
                        side_of(left, &aliases[..=right]),
                        side_of(r, &aliases[..=right]),
                    );
                    let (l, r) = match sides {
                        (Some(Part::Left), Some(Part::Right)) => (&**left, &**r),
                        (Some(Part::Right), Some(Part::Left)) => (&**r, &**left),
                        _ => continue,
                    };
                    keys[0].push(if raw_left {
                        lc.compile(l)?
                    } else {
                        c.compile(l)?
                    });
                    keys[1].push(kc.compile(r)?);
                }
            }
            // Whether ON checks nothing but its key equalities (besides the bounds).
            let only_keys = keys[0].len() == rest.len();
            let conds = rest
                .iter()
                .map(|e| c.compile(e))
                .collect::<Result<Vec<_>, _>>()?;
            c.reads_metadata |= kc.reads_metadata | lc.reads_metadata;
            if !c.analytics.is_empty() || !kc.analytics.is_empty() || !lc.analytics.is_empty() {
                return Err(unsupported(text, on.span(), "an analytic function in ON"));
            }
            if let Some(reference) = reference {
                if !intervals.is_empty() {
                    return Err(unsupported(
                        text,
                        on.span(),
                        "a DATEDIFF bound on reference data (it has no event time)",
                    ));
                }
                stages.push(Stage::Reference(Box::new(ReferenceStage {
                    left_outer,
                    right,
                    reference,
                    conds,
                    keys,
                    rows: Arc::from(Vec::new()),
                    index: KeyMap::default(),
                })));
                continue;
            }
            // The retention bound: the first interval between the right slot and a left
            // slot with a time, measured as time(right) − time(anchor).
            let anchored = intervals.iter().find_map(|i| {
                if i.lo == i64::MIN || i.hi == i64::MAX {
                    None
                } else if i.second == right && slack[i.first].is_some() {
                    Some((i.first, i.lo, i.hi))
                } else if i.first == right && slack[i.second].is_some() {
                    Some((i.second, i.hi.saturating_neg(), i.lo.saturating_neg()))
                } else {
                    None
                }
            });
            let Some((anchor, lo, hi)) = anchored else {
                return Err(unsupported(
                    text,
                    on.span(),
                    format!(
                        "a join with stream '{}' whose ON has no DATEDIFF(unit, x, {}) bound \
                         with both ends (e.g. BETWEEN 0 AND 10) against an earlier stream",
                        aliases[right], aliases[right]
                    ),
                ));
            };
            let anchor_slack = slack[anchor].unwrap_or(0);
            let keep_left = hi.max(0);
            let keep_right_own = lo.saturating_neg().max(0);
            let keep = [keep_left, keep_right_own.saturating_add(anchor_slack)];
            for s in slack.iter_mut().take(right).flatten() {
                *s = s.saturating_add(keep_left);
            }
            slack[right] = Some(anchor_slack.saturating_add(keep_right_own));
            let pushed = match (&select.filter, select.from.joins.len()) {
                (Some(filter), 1) if only_keys => {
                    pushed_down(text, filter, &aliases, left_outer, &mut c.reads_metadata)
                }
                _ => [Vec::new(), Vec::new()],
            };
            stages.push(Stage::Stream(Box::new(StreamStage {
                left_outer,
                right,
                anchor,
                keep,
                intervals,
                conds,
                keys,
                state: JoinState::default(),
                scratch: Vec::new(),
                raw_left,
                pushed,
            })));
        }
        c.aggs = saved_aggs;
        Ok(Joins {
            names,
            slots,
            analytic_at: vec![Vec::new(); slots],
            references,
            stages,
            in_order,
        })
    }

    /// Gives the composite one hidden field per analytic call; `sources[i]` is the slot
    /// of call `i`. Its values are then passed to [`Joins::add`] with each event.
    pub(crate) fn set_analytics(&mut self, sources: &[usize]) {
        let base = self.slots * 2;
        self.names = self
            .names
            .iter()
            .take(base)
            .cloned()
            .chain((0..sources.len()).map(|i| Arc::from(format!("\u{1}analytic:{i}").as_str())))
            .collect();
        self.analytic_at = vec![Vec::new(); self.slots];
        for (i, &slot) in sources.iter().enumerate() {
            if let Some(at) = self.analytic_at.get_mut(slot) {
                at.push(base + i);
            }
        }
    }

    /// Where the analytic values start in a composite: they are `values()[offset..]`.
    pub(crate) fn analytic_offset(&self) -> usize {
        self.slots * 2
    }

    /// Whether slot `slot` is reference data (whose rows are not events).
    pub(crate) fn is_reference(&self, slot: usize) -> bool {
        self.references.get(slot).copied().unwrap_or(false)
    }

    /// Whether any analytic call reads slot `slot`.
    pub(crate) fn has_analytics(&self, slot: usize) -> bool {
        self.analytic_at.get(slot).is_some_and(|a| !a.is_empty())
    }

    /// A composite with only slot `slot` filled: what analytic calls of that source see.
    pub(crate) fn single(&self, slot: usize, time: i64, record: &Value) -> Value {
        let this = Pipeline {
            names: &self.names,
            slots: self.slots,
            analytic_at: &self.analytic_at,
        };
        this.with_slot(&Value::Null, slot, record, Some(time), &[])
    }

    /// One event of slot `side` (0: the FROM source), with the values of the analytic
    /// calls on that source: appends the rows it completes, with their times, in the
    /// order of the buffered rows they pair with. When events arrive in time order,
    /// unmatched LEFT OUTER rows whose bound ended before `time` come first, so the
    /// output stays in time order.
    pub(crate) fn add(
        &mut self,
        side: usize,
        time: i64,
        record: &Value,
        analytics: Vec<Value>,
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) {
        if self.in_order {
            self.expire(time, errors, out);
        }
        if side == 0 {
            let this = Pipeline {
                names: &self.names,
                slots: self.slots,
                analytic_at: &self.analytic_at,
            };
            if let Some(Stage::Stream(s)) = self.stages.first_mut()
                && s.raw_left
            {
                let mut produced = Vec::new();
                s.add_left_raw(&this, time, record, analytics, errors, &mut produced);
                self.feed(1, produced, errors, out);
                return;
            }
            let first = this.with_slot(&Value::Null, 0, record, Some(time), &analytics);
            self.feed(0, vec![(time, first)], errors, out);
            return;
        }
        let Some(k) = self.stages.iter().position(|s| match s {
            Stage::Stream(s) => s.right == side,
            Stage::Reference(_) => false,
        }) else {
            return;
        };
        let mut produced = Vec::new();
        if let Stage::Stream(s) = &mut self.stages[k] {
            let this = Pipeline {
                names: &self.names,
                slots: self.slots,
                analytic_at: &self.analytic_at,
            };
            s.add_right(&this, time, record, analytics, errors, &mut produced);
        }
        self.feed(k + 1, produced, errors, out);
    }

    /// Runs rows through the stages from `first` on.
    fn feed(
        &mut self,
        first: usize,
        mut rows: Vec<(i64, Value)>,
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) {
        let this = Pipeline {
            names: &self.names,
            slots: self.slots,
            analytic_at: &self.analytic_at,
        };
        for stage in self.stages.iter_mut().skip(first) {
            if rows.is_empty() {
                return;
            }
            let mut next = Vec::new();
            for (time, row) in &rows {
                match stage {
                    Stage::Stream(s) => s.add_left(&this, *time, row, errors, &mut next),
                    Stage::Reference(r) => r.add_left(&this, *time, row, errors, &mut next),
                }
            }
            rows = next;
        }
        out.append(&mut rows);
    }

    /// Forgets rows that can no longer match once the watermark is at `watermark`;
    /// unmatched left rows of LEFT OUTER stages go on through the later stages, and what
    /// comes out of the last is appended to `out` with its time.
    pub(crate) fn expire(&mut self, watermark: i64, errors: &mut u64, out: &mut Vec<(i64, Value)>) {
        for k in 0..self.stages.len() {
            let mut unmatched = Vec::new();
            if let Stage::Stream(s) = &mut self.stages[k] {
                let this = Pipeline {
                    names: &self.names,
                    slots: self.slots,
                    analytic_at: &self.analytic_at,
                };
                s.expire(&this, watermark, &mut unmatched);
            }
            if !unmatched.is_empty() {
                self.feed(k + 1, unmatched, errors, out);
            }
        }
    }

    /// Replaces the rows of reference input `reference` in every stage that reads it.
    pub(crate) fn set_reference(
        &mut self,
        reference: usize,
        rows: &Arc<[Value]>,
        errors: &mut u64,
    ) {
        for stage in &mut self.stages {
            if let Stage::Reference(r) = stage
                && r.reference == reference
            {
                r.set_rows(rows.clone(), errors);
            }
        }
    }

    /// Rows buffered by the stream stages (both sides).
    pub(crate) fn buffered_rows(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Stream(s) => s.state.sides.iter().map(Side::len).sum(),
                Stage::Reference(_) => 0,
            })
            .sum()
    }

    /// The buffered state of every stage, for a snapshot.
    pub(crate) fn state(&self) -> Vec<JoinState> {
        let this = Pipeline {
            names: &self.names,
            slots: self.slots,
            analytic_at: &self.analytic_at,
        };
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Stream(s) => {
                    let mut state = s.state.clone();
                    if s.raw_left {
                        // A snapshot holds left rows as composites, as it always has.
                        state.sides[0].for_each_row(|b| {
                            b.record = this.with_slot(
                                &Value::Null,
                                0,
                                &b.record,
                                Some(b.time),
                                &b.analytics,
                            );
                            b.analytics = Vec::new();
                        });
                    }
                    state
                }
                Stage::Reference(_) => JoinState::default(),
            })
            .collect()
    }

    /// Restores [`Joins::state`]; fails if the stage count differs.
    pub(crate) fn restore(&mut self, states: Vec<JoinState>) -> Result<(), String> {
        if states.len() != self.stages.len() {
            return Err("the join state does not fit this query".into());
        }
        let this = Pipeline {
            names: &self.names,
            slots: self.slots,
            analytic_at: &self.analytic_at,
        };
        for (stage, mut state) in self.stages.iter_mut().zip(states) {
            if let Stage::Stream(s) = stage {
                if s.raw_left {
                    state.sides[0].for_each_row(|b| {
                        let (record, analytics) = this.unpack(0, &b.record);
                        b.record = record;
                        b.analytics = analytics;
                    });
                }
                s.state = state;
            }
        }
        Ok(())
    }
}

/// What a stage needs of the pipeline to build composites.
struct Pipeline<'a> {
    names: &'a Arc<[Arc<str>]>,
    slots: usize,
    analytic_at: &'a [Vec<usize>],
}

/// A raw event of one slot: its record, time and analytic values.
type Event<'a> = (&'a Value, i64, &'a [Value]);

impl Pipeline<'_> {
    fn with_slot(
        &self,
        composite: &Value,
        slot: usize,
        record: &Value,
        time: Option<i64>,
        analytics: &[Value],
    ) -> Value {
        let mut values = match composite {
            Value::Record(r) => r.values().to_vec(),
            _ => Vec::new(),
        };
        values.resize(self.names.len(), Value::Null);
        if let Some(v) = values.get_mut(slot) {
            *v = record.clone();
        }
        if let Some(t) = time
            && let Some(v) = values.get_mut(self.slots + slot)
        {
            *v = Value::DateTime(t);
        }
        self.put_analytics(&mut values, slot, analytics);
        Record::new(self.names.clone(), values).into()
    }

    fn put_analytics(&self, values: &mut [Value], slot: usize, analytics: &[Value]) {
        if let Some(at) = self.analytic_at.get(slot) {
            for (&i, a) in at.iter().zip(analytics) {
                if let Some(v) = values.get_mut(i) {
                    *v = a.clone();
                }
            }
        }
    }

    /// The composite of a slot-0 event and an event of slot `right`, built in one go:
    /// the same record as filling slot 0, then slot `right`, with [`Pipeline::with_slot`].
    fn pair(&self, left: Event, right: usize, event: Event) -> Value {
        let mut values = vec![Value::Null; self.names.len()];
        for (slot, (record, time, analytics)) in [(0, left), (right, event)] {
            if let Some(v) = values.get_mut(slot) {
                *v = record.clone();
            }
            if let Some(v) = values.get_mut(self.slots + slot) {
                *v = Value::DateTime(time);
            }
            self.put_analytics(&mut values, slot, analytics);
        }
        Record::new(self.names.clone(), values).into()
    }

    /// Slot `slot`'s record and analytic values, read back out of a composite.
    fn unpack(&self, slot: usize, composite: &Value) -> (Value, Vec<Value>) {
        let values = match composite {
            Value::Record(r) => r.values(),
            _ => &[],
        };
        let at = self.analytic_at.get(slot).map_or(&[][..], Vec::as_slice);
        (
            values.get(slot).cloned().unwrap_or(Value::Null),
            at.iter()
                .map(|&i| values.get(i).cloned().unwrap_or(Value::Null))
                .collect(),
        )
    }

    fn time_of(&self, composite: &Value, slot: usize) -> Option<i64> {
        match composite {
            Value::Record(r) => match r.values().get(self.slots + slot) {
                Some(Value::DateTime(t)) => Some(*t),
                _ => None,
            },
            _ => None,
        }
    }

    fn times<'v>(&self, composite: &'v Value) -> &'v [Value] {
        match composite {
            Value::Record(r) => r.values().get(self.slots..).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Evaluates key expressions into `key` (cleared first); `false` (counted when an error)
/// when a key is NULL or fails. Reuses the caller's buffer: no allocation per event.
fn key_into(
    keys: &[Eval],
    record: &Value,
    time: i64,
    errors: &mut u64,
    key: &mut Vec<Value>,
) -> bool {
    key.clear();
    let ctx = Ctx::event(record, time);
    for k in keys {
        match k(&ctx) {
            // SQL equality: a NULL key matches nothing.
            Ok(Value::Null) => return false,
            Ok(v) => key.push(hash_key(v)),
            Err(e) => {
                count(errors, e);
                return false;
            }
        }
    }
    true
}

/// Evaluates key expressions; `None` (counted when an error) when a key is NULL or fails.
fn key_of(keys: &[Eval], record: &Value, time: i64, errors: &mut u64) -> Option<Box<[Value]>> {
    let mut key = Vec::with_capacity(keys.len());
    key_into(keys, record, time, errors, &mut key).then(|| key.into_boxed_slice())
}

/// Whether every condition holds on `joined`; an evaluation error counts and fails.
fn all_hold(conds: &[Eval], joined: &Value, time: i64, errors: &mut u64) -> bool {
    let ctx = Ctx::event(joined, time);
    for c in conds {
        match c(&ctx).and_then(|v| truthy(&v)) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                count(errors, e);
                return false;
            }
        }
    }
    true
}

/// Whether the pushed-down conjuncts, in order, reach one that is false on `record`
/// while every one before it was true or NULL (see [`pushed_down`]).
fn fails(conds: &[Eval], record: &Value, time: i64) -> bool {
    let ctx = Ctx::event(record, time);
    for c in conds {
        match c(&ctx) {
            Ok(Value::Bit(true) | Value::Null) => {}
            Ok(Value::Bit(false)) => return true,
            // An error or a non-condition: WHERE will say so on the joined row.
            _ => return false,
        }
    }
    false
}

/// The WHERE conjuncts a one-JOIN stream stage may check on each side's raw events before
/// buffering them: per side, the leading conjuncts (in the order WHERE evaluates them)
/// that read only that side's fields through plain operators, no function. AND
/// evaluates left to right and stops at the first false, so when these are true or NULL
/// up to one that is false, WHERE is false on every row the event joins into, and no
/// conjunct before it can fail there either. Only the FROM side of a LEFT OUTER JOIN
/// (its unmatched rows carry the same event); a right event dropped there would leave a
/// left row unmatched that otherwise was not.
fn pushed_down(
    text: &str,
    filter: &Expr,
    aliases: &[String],
    left_outer: bool,
    reads_metadata: &mut bool,
) -> [Vec<Eval>; 2] {
    let mut conjuncts = Vec::new();
    flatten_and(filter, &mut conjuncts);
    let mut pushed = [Vec::new(), Vec::new()];
    for (side, pushed) in pushed.iter_mut().enumerate() {
        if side == 1 && left_outer {
            continue;
        }
        let Some(alias) = aliases.get(side) else {
            continue;
        };
        let mut rc = ExprCompiler::new(text, alias.clone());
        for conj in &conjuncts {
            if only_slot(conj, aliases) != Some(side) {
                break;
            }
            match rc.compile(conj) {
                Ok(f) => pushed.push(f),
                Err(_) => break,
            }
        }
        *reads_metadata |= rc.reads_metadata;
    }
    pushed
}

/// The one slot every column of `e` names (`alias.field...`), when `e` is built only of
/// columns, literals and operators (so it reads nothing but that slot's event, and reads
/// it the same raw as in a composite) and names at least one column.
fn only_slot(e: &Expr, aliases: &[String]) -> Option<usize> {
    fn walk(e: &Expr, aliases: &[String], slot: &mut Option<usize>) -> bool {
        let all =
            |list: &[&Expr], slot: &mut Option<usize>| list.iter().all(|e| walk(e, aliases, slot));
        match e {
            Expr::Literal(..) => true,
            Expr::Column(parts, _) => {
                let found = match parts.as_slice() {
                    [first, _, ..] => aliases.iter().position(|a| first.eq_ignore_case(a)),
                    _ => None,
                };
                match (found, *slot) {
                    (Some(s), None) => {
                        *slot = Some(s);
                        true
                    }
                    (Some(s), Some(t)) => s == t,
                    (None, _) => false,
                }
            }
            Expr::Nested(inner, _) | Expr::Unary { expr: inner, .. } => walk(inner, aliases, slot),
            Expr::Cast { expr, .. } | Expr::IsNull { expr, .. } => walk(expr, aliases, slot),
            Expr::Binary { left, right, .. } => all(&[left, right], slot),
            Expr::Between {
                expr, low, high, ..
            } => all(&[expr, low, high], slot),
            Expr::Like { expr, pattern, .. } => all(&[expr, pattern], slot),
            Expr::InList { expr, list, .. } => {
                walk(expr, aliases, slot) && list.iter().all(|e| walk(e, aliases, slot))
            }
            Expr::Case {
                operand,
                branches,
                else_result,
                ..
            } => {
                operand.as_deref().is_none_or(|o| walk(o, aliases, slot))
                    && branches
                        .iter()
                        .all(|(w, t)| walk(w, aliases, slot) && walk(t, aliases, slot))
                    && else_result
                        .as_deref()
                        .is_none_or(|e| walk(e, aliases, slot))
            }
            Expr::Function(_) | Expr::Member { .. } => false,
        }
    }
    let mut slot = None;
    if walk(e, aliases, &mut slot) {
        slot
    } else {
        None
    }
}

impl StreamStage {
    fn next_seq(&mut self) -> u64 {
        self.state.next_seq += 1;
        self.state.next_seq
    }

    /// Pairs the row or event `record` (of side `1 - from`) with the buffered rows of side
    /// `from` under `key`, oldest first, marking those it pairs with; whether any did.
    #[allow(clippy::too_many_arguments)]
    fn probe(
        &mut self,
        p: &Pipeline,
        from: usize,
        key: &[Value],
        time: i64,
        record: &Value,
        analytics: &[Value],
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) -> bool {
        let StreamStage {
            state,
            intervals,
            conds,
            right,
            raw_left,
            ..
        } = self;
        let side = &mut state.sides[from];
        side.probed();
        let mut matched = false;
        let mut r = side.start(key);
        loop {
            r = side.holding(r, key);
            let Some(c) = side.rows.get_mut(r) else {
                break;
            };
            r = c.next;
            let b = &mut c.b;
            let joined = if *raw_left {
                // Two raw events (slots 0 and 1): the bound is checked on their times
                // before any composite is built.
                let (this, other) = (
                    (record, time, analytics),
                    (&b.record, b.time, &b.analytics[..]),
                );
                let (left, event) = if from == 1 {
                    (this, other)
                } else {
                    (other, this)
                };
                let times = [Value::DateTime(left.1), Value::DateTime(event.1)];
                if !intervals.iter().all(|i| i.holds(&times)) {
                    continue;
                }
                p.pair(left, *right, event)
            } else {
                let joined = if from == 1 {
                    p.with_slot(record, *right, &b.record, Some(b.time), &b.analytics)
                } else {
                    p.with_slot(&b.record, *right, record, Some(time), analytics)
                };
                if !intervals.iter().all(|i| i.holds(p.times(&joined))) {
                    continue;
                }
                joined
            };
            let at = time.max(b.time);
            if all_hold(conds, &joined, at, errors) {
                b.matched = true;
                matched = true;
                out.push((at, joined));
            }
        }
        matched
    }

    /// An event of the FROM source entering the first stage, kept raw (`raw_left`).
    fn add_left_raw(
        &mut self,
        p: &Pipeline,
        time: i64,
        record: &Value,
        analytics: Vec<Value>,
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) {
        let mut key = std::mem::take(&mut self.scratch);
        if key_into(&self.keys[0], record, time, errors, &mut key) {
            if !self.rejects(0, &key, record, time) {
                let matched = self.probe(p, 1, &key, time, record, &analytics, errors, out);
                let seq = self.next_seq();
                let until = time.saturating_add(self.keep[0]);
                let b = Buffered {
                    seq,
                    time,
                    record: record.clone(),
                    matched,
                    analytics,
                };
                self.state.sides[0].push(&key, until, b);
            }
        } else if self.left_outer {
            // A NULL key never matches: the row is unmatched now.
            out.push((
                time,
                p.with_slot(&Value::Null, 0, record, Some(time), &analytics),
            ));
        }
        key.clear();
        self.scratch = key;
    }

    /// Whether a pushed-down WHERE conjunct rejects this event of side `side` (keyed
    /// `key`), so that every row it could give fails WHERE without an error: ON checks
    /// only the key equalities on it, and those cannot fail to compare unless a key is a
    /// record or an array.
    fn rejects(&self, side: usize, key: &[Value], record: &Value, time: i64) -> bool {
        let pushed = &self.pushed[side];
        !pushed.is_empty()
            && !key
                .iter()
                .any(|v| matches!(v, Value::Record(_) | Value::Array(_)))
            && fails(pushed, record, time)
    }

    fn add_left(
        &mut self,
        p: &Pipeline,
        time: i64,
        row: &Value,
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) {
        let Some(anchor_time) = p.time_of(row, self.anchor) else {
            // The anchor slot is NULL (an unmatched earlier LEFT OUTER): nothing can match.
            if self.left_outer {
                out.push((time, row.clone()));
            }
            return;
        };
        let mut key = std::mem::take(&mut self.scratch);
        if key_into(&self.keys[0], row, time, errors, &mut key) {
            let matched = self.probe(p, 1, &key, time, row, &[], errors, out);
            let seq = self.next_seq();
            let until = anchor_time.saturating_add(self.keep[0]);
            let b = Buffered {
                seq,
                time,
                record: row.clone(),
                matched,
                analytics: Vec::new(),
            };
            self.state.sides[0].push(&key, until, b);
        } else if self.left_outer {
            // A NULL key never matches: the row is unmatched now.
            out.push((time, row.clone()));
        }
        key.clear();
        self.scratch = key;
    }

    fn add_right(
        &mut self,
        p: &Pipeline,
        time: i64,
        record: &Value,
        analytics: Vec<Value>,
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) {
        let mut key = std::mem::take(&mut self.scratch);
        if key_into(&self.keys[1], record, time, errors, &mut key)
            && !self.rejects(1, &key, record, time)
        {
            let matched = self.probe(p, 0, &key, time, record, &analytics, errors, out);
            let seq = self.next_seq();
            let until = time.saturating_add(self.keep[1]);
            let b = Buffered {
                seq,
                time,
                record: record.clone(),
                matched,
                analytics,
            };
            self.state.sides[1].push(&key, until, b);
        }
        key.clear();
        self.scratch = key;
    }

    /// Drops rows whose `until` is before `watermark`; unmatched left rows of a LEFT
    /// OUTER stage come out stamped with their `until` (or their own time, if later).
    fn expire(&mut self, p: &Pipeline, watermark: i64, out: &mut Vec<(i64, Value)>) {
        for side in 0..2 {
            let reported = side == 0 && self.left_outer;
            if !reported && self.state.sides[side].drop_all_before(watermark) {
                continue;
            }
            while let Some((until, b)) = self.state.sides[side].pop_expired(watermark) {
                if side == 0 && self.left_outer && !b.matched {
                    // Known unmatched once the bound has passed, but never before the row
                    // itself arrived (a later stage's row can reach it after its bound).
                    let row = if self.raw_left {
                        p.with_slot(&Value::Null, 0, &b.record, Some(b.time), &b.analytics)
                    } else {
                        b.record
                    };
                    out.push((until.max(b.time), row));
                }
            }
        }
    }
}

impl ReferenceStage {
    fn set_rows(&mut self, rows: Arc<[Value]>, errors: &mut u64) {
        let mut index = KeyMap::default();
        for (i, row) in rows.iter().enumerate() {
            if let Some(key) = key_of(&self.keys[1], row, 0, errors) {
                index.0.entry(key).or_insert_with(Vec::new).push(i);
            }
        }
        self.rows = rows;
        self.index = index;
    }

    fn add_left(
        &mut self,
        p: &Pipeline,
        time: i64,
        row: &Value,
        errors: &mut u64,
        out: &mut Vec<(i64, Value)>,
    ) {
        let mut matched = false;
        if let Some(key) = key_of(&self.keys[0], row, time, errors)
            && let Some(candidates) = self.index.0.get(&key)
        {
            for &i in candidates {
                let Some(r) = self.rows.get(i) else { continue };
                let joined = p.with_slot(row, self.right, r, None, &[]);
                if all_hold(&self.conds, &joined, time, errors) {
                    matched = true;
                    out.push((time, joined));
                }
            }
        }
        if !matched && self.left_outer {
            out.push((time, row.clone()));
        }
    }
}

/// Keys hash as SQL `=` compares: an integral float equals the bigint, and a string
/// holding a datetime equals that datetime. The key only narrows the candidates (ON is
/// still evaluated on each), so it may be coarser than `=`, never finer.
fn hash_key(v: Value) -> Value {
    match v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::BigInt(f as i64),
        Value::String(s) => match parse_datetime(&s) {
            Some(t) => Value::DateTime(t),
            None => Value::String(s),
        },
        v => v,
    }
}

fn count(errors: &mut u64, e: EvalError) {
    *errors += 1;
    crate::error::log_runtime_error("join event", &e);
}

fn flatten_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match strip(e) {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
            ..
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        e => out.push(e),
    }
}

/// Which side of a stage an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Only slots before the stage's right one.
    Left,
    /// Only the right slot (the last of `aliases`).
    Right,
}

/// `Some` when every column is qualified with an alias of one side (at least one).
fn side_of(e: &Expr, aliases: &[String]) -> Option<Part> {
    let right = aliases.len().saturating_sub(1);
    let mut sides = Vec::new();
    let mut ok = true;
    visit_columns(e, &mut |parts: &[Ident]| match aliases
        .iter()
        .position(|a| parts.first().is_some_and(|p| p.eq_ignore_case(a)))
    {
        Some(i) if parts.len() > 1 => sides.push(if i == right { Part::Right } else { Part::Left }),
        _ => ok = false,
    });
    match sides.first() {
        Some(&s) if ok && sides.iter().all(|x| *x == s) => Some(s),
        _ => None,
    }
}

fn visit_columns(e: &Expr, f: &mut impl FnMut(&[Ident])) {
    match e {
        Expr::Column(parts, _) if !parts.is_empty() => f(parts),
        Expr::Column(..) | Expr::Literal(..) => {}
        Expr::Nested(inner, _)
        | Expr::Unary { expr: inner, .. }
        | Expr::Cast { expr: inner, .. } => visit_columns(inner, f),
        Expr::Binary { left, right, .. } => {
            visit_columns(left, f);
            visit_columns(right, f);
        }
        Expr::Function(call) if call.over.is_none() => {
            call.args.iter().for_each(|a| visit_columns(a, f))
        }
        // Anything else is not used as a join key.
        _ => f(&[]),
    }
}

/// `DATEDIFF(unit, x, y)` on two bare source aliases: (unit ticks, x slot, y slot).
fn datediff_of(e: &Expr, aliases: &[String]) -> Option<(i64, usize, usize)> {
    let Expr::Function(call) = strip(e) else {
        return None;
    };
    if !call.dotted_name().eq_ignore_ascii_case("datediff") {
        return None;
    }
    let [
        Expr::Column(unit, _),
        Expr::Column(x, _),
        Expr::Column(y, _),
    ] = call.args.as_slice()
    else {
        return None;
    };
    let unit = eddy_sql::time_unit(&unit.first()?.name)?.ticks();
    let slot = |parts: &[Ident]| match parts {
        [p] => aliases.iter().position(|a| p.eq_ignore_case(a)),
        _ => None,
    };
    let (x, y) = (slot(x)?, slot(y)?);
    (x != y).then_some((unit, x, y))
}

/// A DATEDIFF comparison in ON as an interval on `time(second) − time(first)` (either end
/// may be open), or `None` when the conjunct is something else.
fn bound_of(text: &str, e: &Expr, aliases: &[String]) -> Result<Option<Interval>, EngineError> {
    let e = strip(e);
    let (lo, hi, unit, x, y) = match e {
        Expr::Between {
            expr,
            low,
            high,
            negated: false,
            ..
        } => {
            let Some((unit, x, y)) = datediff_of(expr, aliases) else {
                return Ok(None);
            };
            let (Some(lo), Some(hi)) = (int(low), int(high)) else {
                return Err(unsupported(
                    text,
                    e.span(),
                    "a DATEDIFF join bound whose ends are not integer literals",
                ));
            };
            (Some(lo), Some(hi), unit, x, y)
        }
        Expr::Binary {
            op, left, right, ..
        } if matches!(
            op,
            BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq | BinaryOp::Eq
        ) =>
        {
            // Normalise to `DATEDIFF(...) op n`.
            let (d, n, op) = match (datediff_of(left, aliases), datediff_of(right, aliases)) {
                (Some(d), None) => (d, right, *op),
                (None, Some(d)) => (
                    d,
                    left,
                    match op {
                        BinaryOp::Lt => BinaryOp::Gt,
                        BinaryOp::LtEq => BinaryOp::GtEq,
                        BinaryOp::Gt => BinaryOp::Lt,
                        BinaryOp::GtEq => BinaryOp::LtEq,
                        other => *other,
                    },
                ),
                _ => return Ok(None),
            };
            let Some(n) = int(n) else {
                return Err(unsupported(
                    text,
                    e.span(),
                    "a DATEDIFF join bound compared with something other than an integer literal",
                ));
            };
            let (unit, x, y) = d;
            // In ticks: `<` excludes the end itself.
            let (lo, hi) = match op {
                BinaryOp::Lt => (None, Some((n, -1))),
                BinaryOp::LtEq => (None, Some((n, 0))),
                BinaryOp::Gt => (Some((n, 1)), None),
                BinaryOp::GtEq => (Some((n, 0)), None),
                _ => (Some((n, 0)), Some((n, 0))),
            };
            let ticks = |b: Option<(i64, i64)>| b.map(|(n, d)| n.saturating_mul(unit) + d);
            let interval = Interval {
                first: x,
                second: y,
                lo: ticks(lo).unwrap_or(i64::MIN),
                hi: ticks(hi).unwrap_or(i64::MAX),
            };
            return check_span(text, e, Some(interval));
        }
        _ => return Ok(None),
    };
    let ticks = |n: Option<i64>| n.map(|n| n.saturating_mul(unit));
    check_span(
        text,
        e,
        Some(Interval {
            first: x,
            second: y,
            lo: ticks(lo).unwrap_or(i64::MIN),
            hi: ticks(hi).unwrap_or(i64::MAX),
        }),
    )
}

/// ASA's limit: a bound reaches at most seven days either way.
fn check_span(text: &str, e: &Expr, i: Option<Interval>) -> Result<Option<Interval>, EngineError> {
    if let Some(i) = i {
        let far = |v: i64| v != i64::MIN && v != i64::MAX && v.saturating_abs() > BOUND_TICKS_MAX;
        if far(i.lo) || far(i.hi) {
            return Err(unsupported(
                text,
                e.span(),
                "a DATEDIFF join bound beyond 7 days",
            ));
        }
    }
    Ok(i)
}

/// Intersects `b` with the interval already found for the same pair of slots.
fn merge_bound(intervals: &mut Vec<Interval>, b: Interval) {
    for i in intervals.iter_mut() {
        if i.first == b.first && i.second == b.second {
            i.lo = i.lo.max(b.lo);
            i.hi = i.hi.min(b.hi);
            return;
        }
        if i.first == b.second && i.second == b.first {
            i.lo = i.lo.max(b.hi.saturating_neg());
            i.hi = i.hi.min(b.lo.saturating_neg());
            return;
        }
    }
    intervals.push(b);
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner, _) => strip(inner),
        e => e,
    }
}

fn int(e: &Expr) -> Option<i64> {
    match strip(e) {
        Expr::Literal(Literal::Integer(i), _) => Some(*i),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
            ..
        } => int(expr).map(|i| -i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64) -> Buffered {
        Buffered {
            seq,
            time: seq as i64,
            record: Value::BigInt(seq as i64),
            matched: false,
            analytics: Vec::new(),
        }
    }

    fn chain(side: &Side, key: &[Value]) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut r = side.holding(side.start(key), key);
        while let Some(row) = side.rows.get(r) {
            seqs.push(row.b.seq);
            r = side.holding(row.next, key);
        }
        seqs
    }

    #[test]
    fn side_expires_in_time_order_and_keeps_chains_in_arrival_order() {
        let (a, b) = ([Value::BigInt(1)], [Value::BigInt(2)]);
        let mut side = Side::default();
        // Untils out of arrival order go beside the queue; expiry still takes the earliest.
        side.push(&a, 10, row(1));
        side.push(&b, 30, row(2));
        side.push(&a, 20, row(3));
        side.push(&a, 40, row(4));
        side.push(&b, 20, row(5));
        assert_eq!(side.len(), 5);
        assert_eq!(chain(&side, &a), [1, 3, 4]);
        assert_eq!(chain(&side, &b), [2, 5]);
        let mut expired = Vec::new();
        while let Some((until, r)) = side.pop_expired(31) {
            expired.push((until, r.seq));
        }
        assert_eq!(expired, [(10, 1), (20, 3), (20, 5), (30, 2)]);
        assert_eq!(chain(&side, &a), [4]);
        assert!(chain(&side, &b).is_empty());
        // Freed rows and keys are reused; the snapshot form restores the same side.
        side.push(&[Value::BigInt(3)], 50, row(6));
        side.push(&a, 45, row(7));
        assert_eq!(side.rows.places(), 5);
        let back: Side = serde_json::from_value(serde_json::to_value(&side).unwrap()).unwrap();
        assert_eq!(chain(&back, &a), [4, 7]);
        assert_eq!(chain(&back, &[Value::BigInt(3)]), [6]);
        let mut back = back;
        let mut expired = Vec::new();
        while let Some((until, r)) = back.pop_expired(i64::MAX) {
            expired.push((until, r.seq));
        }
        assert_eq!(expired, [(40, 4), (45, 7), (50, 6)]);
        assert_eq!(back.len(), 0);
        assert!(back.index.is_empty());
    }

    #[test]
    fn queue_keeps_order_across_chunks_and_reuses_the_emptied_one() {
        let mut q = Queue::default();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        // Grow past several chunks, drain past some, refill, drain to empty twice.
        for (push, pop) in [
            (3 * QUEUE_CHUNK + 7, QUEUE_CHUNK + 3),
            (QUEUE_CHUNK, 4 * QUEUE_CHUNK),
            (5, 9),
        ] {
            for _ in 0..push {
                q.push_back(next);
                model.push_back(next);
                next += 1;
            }
            assert_eq!(q.back(), model.back());
            for _ in 0..pop {
                assert_eq!(q.pop_front(), model.pop_front());
                assert_eq!(q.front(), model.front());
                assert_eq!(q.back(), model.back());
            }
            assert_eq!(q.len(), model.len());
            assert!(q.iter().eq(model.iter()));
        }
        assert!(q.chunks.len() <= 1 && q.spare.is_some());
        let back: Queue<u64> = Queue::from(vec![1, 2, 3]);
        assert!(back.iter().copied().eq([1, 2, 3]));
    }

    #[test]
    fn a_side_whose_rows_all_expired_is_emptied_at_once_and_reused() {
        let (a, b) = ([Value::BigInt(1)], [Value::BigInt(2)]);
        let mut side = Side::default();
        side.push(&a, 30, row(1));
        side.push(&b, 10, row(2));
        side.push(&a, 20, row(3));
        assert!(!side.drop_all_before(30), "the row until 30 is still held");
        assert_eq!(side.len(), 3);
        assert!(side.drop_all_before(31));
        assert_eq!(side.len(), 0);
        assert!(side.index.is_empty() && side.pop_expired(i64::MAX).is_none());
        assert_eq!(side.rows.places(), 0);
        assert!(!Side::default().drop_all_before(i64::MAX));
        side.push(&b, 40, row(4));
        assert_eq!(chain(&side, &b), [4]);
        assert!(chain(&side, &a).is_empty());
    }

    #[test]
    fn side_spans_many_chunks() {
        let mut side = Side::default();
        let n = 2 * CHUNK as u64 + 5;
        for seq in 0..n {
            side.push(
                &[Value::BigInt((seq % (n / 2)) as i64)],
                seq as i64,
                row(seq),
            );
        }
        assert_eq!(chain(&side, &[Value::BigInt(3)]), [3, 3 + n / 2]);
        assert_eq!(
            chain(&side, &[Value::BigInt((n / 2 - 1) as i64)]),
            [n / 2 - 1, n - 2]
        );
        let mut expired = 0;
        while let Some((until, r)) = side.pop_expired(i64::MAX) {
            assert_eq!(until, r.seq as i64);
            expired += 1;
        }
        assert_eq!(expired, n);
        assert!(side.index.is_empty());
    }

    /// Both modes must find the same rows in the same order: a random run of adds,
    /// probes, expiries, snapshots and forced mode switches against a plain model.
    #[test]
    fn scan_mode_matches_the_index_in_order_and_expiry() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut side = Side::default();
        // (until, seq, key) of every row held.
        let mut model: Vec<(i64, u64, i64)> = Vec::new();
        let (mut seq, mut now, mut scans) = (0u64, 0i64, 0);
        for step in 0..20_000 {
            match next(100) {
                // Adds dominate, so the side leaves the index; probe bursts bring it back.
                0..=79 => {
                    seq += 1;
                    now += next(3) as i64;
                    let key = next(40) as i64;
                    let until = now + 50 + next(20) as i64 - if next(10) == 0 { 30 } else { 0 };
                    side.push(&[Value::BigInt(key)], until, row(seq));
                    model.push((until, seq, key));
                }
                80..=94 => {
                    let burst = if next(4) == 0 { 300 } else { 1 };
                    for _ in 0..burst {
                        let key = next(40) as i64;
                        side.probed();
                        let want: Vec<u64> =
                            model.iter().filter(|m| m.2 == key).map(|m| m.1).collect();
                        assert_eq!(chain(&side, &[Value::BigInt(key)]), want, "step {step}");
                    }
                }
                95..=97 => {
                    let watermark = now - next(30) as i64;
                    if next(20) == 0 {
                        // Everything expires at once (the end of input): emptied in place.
                        assert!(side.drop_all_before(i64::MAX) || model.is_empty());
                        model.clear();
                        continue;
                    }
                    let mut expired = Vec::new();
                    while let Some((until, b)) = side.pop_expired(watermark) {
                        expired.push((until, b.seq));
                    }
                    model.sort_unstable();
                    let cut = model.partition_point(|m| m.0 < watermark);
                    let want: Vec<(i64, u64)> = model.drain(..cut).map(|m| (m.0, m.1)).collect();
                    assert_eq!(expired, want, "step {step}");
                    model.sort_unstable_by_key(|m| m.1);
                }
                98 => {
                    // A snapshot restores the same rows (indexed), whatever the mode.
                    let json = serde_json::to_value(&side).unwrap();
                    let mut twin = side.clone();
                    if twin.scan.is_some() {
                        twin.enter_index();
                    } else {
                        twin.enter_scan();
                    }
                    assert_eq!(serde_json::to_value(&twin).unwrap(), json, "step {step}");
                    side = serde_json::from_value(json).unwrap();
                    assert!(side.scan.is_none());
                }
                _ => {
                    if side.scan.is_some() {
                        side.enter_index();
                    } else {
                        side.enter_scan();
                    }
                }
            }
            scans += usize::from(side.scan.is_some());
            assert_eq!(side.len(), model.len());
        }
        assert!(scans > 1000 && scans < 19_000, "both modes ran: {scans}");
    }

    #[test]
    fn a_side_added_to_far_more_than_probed_scans_and_returns_to_the_index() {
        let mut side = Side::default();
        for seq in 0..1000 {
            side.push(&[Value::BigInt(seq as i64 % 7)], seq as i64, row(seq));
        }
        assert!(side.scan.is_some() && side.index.is_empty());
        side.probed();
        assert_eq!(chain(&side, &[Value::BigInt(3)]).len(), 143);
        for _ in 0..20 {
            side.probed();
        }
        assert!(side.scan.is_none());
        assert_eq!(chain(&side, &[Value::BigInt(3)]).len(), 143);
        assert_eq!(chain(&side, &[Value::BigInt(0)])[..3], [0, 7, 14]);
    }
}
