//! The consumer-group coordinator: Kafka's classic group state machine, in memory.
//!
//! ```text
//!   Empty ──join──► PreparingRebalance ──all members joined / rebalance timeout──► CompletingRebalance
//!     ▲                   ▲      ▲                                                    │ leader's SyncGroup
//!     └──last member gone─┘      └──────── join, leave, session expiry ◄── Stable ◄───┘
//! ```
//! The broker never interprets assignments: the leader (first member of the generation) gets
//! every member's subscription metadata and hands back each member's assignment (range,
//! roundrobin, sticky, ... are client-side). Waiting JoinGroup/SyncGroup requests hold a
//! oneshot receiver; the state machine answers them. Committed offsets are not kept here
//! (see `groups.rs`: they go to the log).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::code;

/// The state of one group, named as DescribeGroups reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum State {
    /// No members (offsets may still be committed).
    #[default]
    Empty,
    /// Waiting for every member to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignments.
    CompletingRebalance,
    /// Assignments handed out; members heartbeat.
    Stable,
}

impl State {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// A JoinGroup as the coordinator needs it.
#[derive(Debug)]
pub(crate) struct JoinArgs {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets `MEMBER_ID_REQUIRED` and its id, then rejoins.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a static leader that rejoins is told it leads but must not reassign.
    pub supports_skip_assignment: bool,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: `(member id, instance id, metadata for the chosen protocol)`.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// A static leader rejoined a stable group: it keeps the current assignment (v9+).
    pub skip_assignment: bool,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

/// Either an answer now, or one the state machine sends when the rebalance gets there.
pub(crate) enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub(crate) struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// One group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub(crate) struct GroupView {
    pub state: State,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen: Instant,
    join: Option<oneshot::Sender<JoinOutcome>>,
    sync: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    /// Takes what a JoinGroup says about its sender (a new member and a rejoining one alike).
    fn take_join(&mut self, a: &mut JoinArgs, now: Instant) {
        self.instance_id = a.instance_id.take();
        self.client_id = std::mem::take(&mut a.client_id);
        self.client_host = std::mem::take(&mut a.client_host);
        self.session_timeout = a.session_timeout;
        self.rebalance_timeout = a.rebalance_timeout;
        self.protocols = std::mem::take(&mut a.protocols);
        self.last_seen = now;
    }
}

#[derive(Debug, Default)]
struct Group {
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order: the first member leads a new group.
    members: IndexMap<String, Member>,
    /// Ids handed out with `MEMBER_ID_REQUIRED`, valid until the instant.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// While set, the first rebalance of an empty group waits for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`) even once every known member has joined.
    initial_join_until: Option<Instant>,
    /// Static members (KIP-345): `group.instance.id` → the member id that holds it now.
    static_members: HashMap<String, String>,
}

/// All groups of the broker.
pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    next_member: AtomicU64,
    /// How long an empty group's first rebalance waits for more members; zero = not at all.
    initial_delay: Duration,
}

impl Default for Coordinator {
    fn default() -> Self {
        // Seeded from the clock so member ids of a restarted broker never repeat old ones.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Coordinator {
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(seed),
            initial_delay: Duration::ZERO,
        }
    }
}

fn join_error(error: i16, member_id: String) -> JoinOutcome {
    JoinOutcome {
        error,
        generation: -1,
        member_id,
        ..JoinOutcome::default()
    }
}

fn sync_error(error: i16) -> SyncOutcome {
    SyncOutcome {
        error,
        ..SyncOutcome::default()
    }
}

impl Group {
    /// Protocol names every member supports, in `first`'s order of preference.
    fn common_protocols(&self, first: &[(String, Bytes)]) -> Vec<String> {
        first
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect()
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == State::PreparingRebalance {
            return;
        }
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(sync_error(code::REBALANCE_IN_PROGRESS));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.state = State::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
    }

    fn maybe_complete_join(&mut self) {
        if self.state == State::PreparingRebalance
            && self.initial_join_until.is_none()
            && self.members.values().all(|m| m.join.is_some())
        {
            self.complete_join();
        }
    }

    /// Starts the next generation with the members that rejoined; the others are dropped.
    fn complete_join(&mut self) {
        self.members.retain(|_, m| m.join.is_some());
        self.forget_departed_static_members();
        self.rebalance_deadline = None;
        self.initial_join_until = None;
        self.generation += 1;
        let Some(first) = self.members.values().next() else {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            return;
        };
        let leader = match &self.leader {
            Some(l) if self.members.contains_key(l) => l.clone(),
            _ => self.members.keys().next().cloned().unwrap_or_default(),
        };
        let leader_protocols = self
            .members
            .get(&leader)
            .map_or(&first.protocols, |m| &m.protocols);
        self.protocol = self.common_protocols(leader_protocols).into_iter().next();
        self.leader = Some(leader.clone());
        self.state = State::CompletingRebalance;
        let protocol = self.protocol.clone().unwrap_or_default();
        let all = self.member_metadata(&protocol);
        for (id, m) in self.members.iter_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.join.take() {
                let _ = tx.send(JoinOutcome {
                    error: code::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                });
            }
        }
        tracing::info!(generation = self.generation, members = self.members.len(), %leader, "group rebalanced");
    }

    /// A static member restarted (same instance id, new member id): the new id takes over the
    /// old member's place and assignment, and the old id is fenced. A stable group whose
    /// protocol choice this does not change answers at once, without a rebalance (KIP-345).
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        mut a: JoinArgs,
        now: Instant,
    ) -> Reply<JoinOutcome> {
        let Some(mut member) = self.members.shift_remove(old_id) else {
            // Cannot happen (the map only names members). Drop the stale mapping, so the
            // client's retry after UNKNOWN_MEMBER_ID joins as a new member.
            self.static_members.retain(|_, id| id != old_id);
            return Reply::Now(join_error(code::UNKNOWN_MEMBER_ID, String::new()));
        };
        if let Some(tx) = member.join.take() {
            let _ = tx.send(join_error(code::FENCED_INSTANCE_ID, old_id.to_string()));
        }
        if let Some(tx) = member.sync.take() {
            let _ = tx.send(sync_error(code::FENCED_INSTANCE_ID));
        }
        let old_leader = self.leader.clone().unwrap_or_default();
        let was_leader = old_leader == old_id;
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        if let Some(instance) = &a.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        member.take_join(&mut a, now);
        let (tx, rx) = oneshot::channel();
        member.join = Some(tx);
        self.members.insert(new_id.clone(), member);
        tracing::info!(old = old_id, new = %new_id, "static member rejoined");
        match self.state {
            State::Stable if self.next_protocol() == self.protocol => {
                let protocol = self.protocol.clone().unwrap_or_default();
                let skip = was_leader && a.supports_skip_assignment;
                let members = if skip {
                    self.member_metadata(&protocol)
                } else {
                    Vec::new()
                };
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.join = None;
                }
                Reply::Now(JoinOutcome {
                    error: code::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    // Before v9 the old leader id, so a restarted leader does not take itself
                    // for the leader and reassign (a stable group would not pass it on).
                    leader: if skip { new_id.clone() } else { old_leader },
                    member_id: new_id,
                    members,
                    skip_assignment: skip,
                })
            }
            State::PreparingRebalance => {
                self.maybe_complete_join();
                Reply::Later(rx)
            }
            // A changed protocol choice, or assignments being computed without this member's
            // new subscription: rebalance so everyone agrees.
            _ => {
                self.prepare_rebalance(now);
                self.maybe_complete_join();
                Reply::Later(rx)
            }
        }
    }

    /// The protocol the next generation would use: the leader's first choice every member has.
    fn next_protocol(&self) -> Option<String> {
        let leader = self.leader.as_ref().and_then(|l| self.members.get(l));
        let first = leader.or_else(|| self.members.values().next())?;
        self.common_protocols(&first.protocols).into_iter().next()
    }

    /// `(member id, instance id, metadata)` of every member for `protocol`, as the leader gets it.
    fn member_metadata(&self, protocol: &str) -> Vec<(String, Option<String>, Bytes)> {
        self.members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(p, _)| p == protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (id.clone(), m.instance_id.clone(), meta)
            })
            .collect()
    }

    /// Drops instance ids whose member is gone, so the instance may join afresh.
    fn forget_departed_static_members(&mut self) {
        let members = &self.members;
        self.static_members.retain(|_, id| members.contains_key(id));
    }

    /// FENCED_INSTANCE_ID when `instance_id` is now held by another member id (the caller is a
    /// static member replaced by a newer instance of itself).
    fn check_fenced(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(holder) if holder != member_id => Err(code::FENCED_INSTANCE_ID),
            _ => Ok(()),
        }
    }

    /// Removes members; the rest rebalance.
    fn remove_members(&mut self, ids: &[String], now: Instant) {
        let before = self.members.len();
        self.members.retain(|id, _| !ids.contains(id));
        if self.members.len() == before {
            return;
        }
        self.forget_departed_static_members();
        if self.members.is_empty() {
            self.state = State::Empty;
            self.generation += 1;
            self.leader = None;
            self.protocol = None;
            self.rebalance_deadline = None;
        } else {
            self.prepare_rebalance(now);
            self.maybe_complete_join();
        }
    }
}

impl Coordinator {
    /// Groups whose first rebalance waits `initial_delay` for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`), so consumers started together share the first
    /// generation instead of rebalancing once per arrival.
    pub fn with_initial_delay(initial_delay: Duration) -> Coordinator {
        Coordinator {
            initial_delay,
            ..Coordinator::default()
        }
    }

    fn next_member_id(&self, client_id: &str) -> String {
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}-{n:016x}",
            if client_id.is_empty() {
                "member"
            } else {
                client_id
            }
        )
    }

    /// Handles JoinGroup: registers the member and starts (or joins) a rebalance.
    pub fn join(&self, mut a: JoinArgs, now: Instant) -> Reply<JoinOutcome> {
        let mut groups = self.groups.lock();
        let g = groups.entry(a.group.clone()).or_default();
        if !g.members.is_empty() {
            let same_type = g.protocol_type.as_deref() == Some(a.protocol_type.as_str());
            if !same_type || g.common_protocols(&a.protocols).is_empty() {
                return Reply::Now(join_error(code::INCONSISTENT_GROUP_PROTOCOL, a.member_id));
            }
        }
        if let Some(instance) = a.instance_id.clone() {
            if a.member_id.is_empty() {
                if let Some(old) = g.static_members.get(&instance).cloned() {
                    let new_id = self.next_member_id(&a.client_id);
                    return g.replace_static_member(&old, new_id, a, now);
                }
            } else if let Err(e) = g.check_fenced(&a.member_id, Some(&instance)) {
                return Reply::Now(join_error(e, a.member_id));
            }
        }
        let member_id = if a.member_id.is_empty() {
            let id = self.next_member_id(&a.client_id);
            // Static members skip the round trip: their instance id already names them.
            if a.require_known_member_id && a.instance_id.is_none() {
                g.pending.insert(id.clone(), now + a.session_timeout);
                return Reply::Now(join_error(code::MEMBER_ID_REQUIRED, id));
            }
            id
        } else if g.members.contains_key(&a.member_id) || g.pending.remove(&a.member_id).is_some() {
            std::mem::take(&mut a.member_id)
        } else {
            return Reply::Now(join_error(code::UNKNOWN_MEMBER_ID, a.member_id));
        };
        let (tx, rx) = oneshot::channel();
        let new_member = !g.members.contains_key(&member_id);
        if !self.initial_delay.is_zero() && new_member {
            if g.state == State::Empty {
                g.initial_join_until = Some(now + self.initial_delay.min(a.rebalance_timeout));
            } else if let Some(until) = g.initial_join_until {
                // Each arrival extends the wait by the delay, within the rebalance timeout.
                let cap = g.rebalance_deadline.unwrap_or(until);
                g.initial_join_until = Some((now + self.initial_delay).min(cap).max(until));
            }
        }
        if let Some(instance) = &a.instance_id {
            g.static_members.insert(instance.clone(), member_id.clone());
        }
        let member = g.members.entry(member_id).or_insert_with(|| Member {
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: a.session_timeout,
            rebalance_timeout: a.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_seen: now,
            join: None,
            sync: None,
        });
        member.take_join(&mut a, now);
        member.join = Some(tx);
        g.protocol_type = Some(a.protocol_type);
        g.prepare_rebalance(now);
        g.maybe_complete_join();
        Reply::Later(rx)
    }

    /// Handles SyncGroup: the leader's call hands every member its assignment.
    pub fn sync(
        &self,
        group: &str,
        generation: i32,
        member: (&str, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncOutcome> {
        let (member_id, instance_id) = member;
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return Reply::Now(sync_error(code::UNKNOWN_MEMBER_ID));
        };
        if let Err(e) = g.check_fenced(member_id, instance_id) {
            return Reply::Now(sync_error(e));
        }
        if !g.members.contains_key(member_id) {
            return Reply::Now(sync_error(code::UNKNOWN_MEMBER_ID));
        }
        if generation != g.generation {
            return Reply::Now(sync_error(code::ILLEGAL_GENERATION));
        }
        let outcome = |g: &Group, assignment: Bytes| SyncOutcome {
            error: code::NONE,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            assignment,
        };
        match g.state {
            State::Empty | State::PreparingRebalance => {
                Reply::Now(sync_error(code::REBALANCE_IN_PROGRESS))
            }
            State::Stable => {
                let assignment = g
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Reply::Now(outcome(g, assignment))
            }
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = g.members.get_mut(member_id) {
                    m.sync = Some(tx);
                    m.last_seen = now;
                }
                if g.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, m) in g.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    g.state = State::Stable;
                    let replies: Vec<_> = g
                        .members
                        .values_mut()
                        .filter_map(|m| m.sync.take().map(|tx| (tx, m.assignment.clone())))
                        .collect();
                    for (tx, assignment) in replies {
                        let _ = tx.send(outcome(g, assignment));
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    /// Handles Heartbeat: keeps the session alive and says whether to rejoin.
    pub fn heartbeat(
        &self,
        group: &str,
        generation: i32,
        member: (&str, Option<&str>),
        now: Instant,
    ) -> i16 {
        let (member_id, instance_id) = member;
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        if let Err(e) = g.check_fenced(member_id, instance_id) {
            return e;
        }
        let Some(m) = g.members.get_mut(member_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        if generation != g.generation {
            return code::ILLEGAL_GENERATION;
        }
        m.last_seen = now;
        if g.state == State::PreparingRebalance {
            code::REBALANCE_IN_PROGRESS
        } else {
            code::NONE
        }
    }

    /// Handles LeaveGroup for `(member id, instance id)` pairs (v3+ batches; a static member
    /// may be named by instance id alone, member id empty); returns each one's error code.
    pub fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
        now: Instant,
    ) -> Vec<i16> {
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            return vec![code::UNKNOWN_MEMBER_ID; members.len()];
        };
        let mut leaving = Vec::new();
        let codes = members
            .iter()
            .map(|(id, instance)| {
                let id = match instance {
                    Some(instance) => match g.static_members.get(instance) {
                        None => return code::UNKNOWN_MEMBER_ID,
                        Some(holder) if !id.is_empty() && holder != id => {
                            return code::FENCED_INSTANCE_ID;
                        }
                        Some(holder) => holder.clone(),
                    },
                    None if g.members.contains_key(id) => id.clone(),
                    None => return code::UNKNOWN_MEMBER_ID,
                };
                leaving.push(id);
                code::NONE
            })
            .collect();
        g.remove_members(&leaving, now);
        codes
    }

    /// Whether an OffsetCommit from this member and generation may be applied (Kafka's rules:
    /// generation -1 is a standalone consumer; commits are refused only mid-assignment).
    pub fn check_commit(
        &self,
        group: &str,
        generation: i32,
        member: (&str, Option<&str>),
    ) -> Result<(), i16> {
        let (member_id, instance_id) = member;
        if generation < 0 {
            return Ok(());
        }
        let groups = self.groups.lock();
        let g = groups.get(group).ok_or(code::ILLEGAL_GENERATION)?;
        g.check_fenced(member_id, instance_id)?;
        if !g.members.contains_key(member_id) {
            return Err(code::UNKNOWN_MEMBER_ID);
        }
        if generation != g.generation {
            return Err(code::ILLEGAL_GENERATION);
        }
        if g.state == State::CompletingRebalance {
            return Err(code::REBALANCE_IN_PROGRESS);
        }
        Ok(())
    }

    /// Expires silent members and overdue rebalances; called periodically.
    pub fn expire(&self, now: Instant) {
        let mut groups = self.groups.lock();
        for (name, g) in groups.iter_mut() {
            g.pending.retain(|_, until| *until > now);
            // A member waiting in JoinGroup is not heartbeating; the rebalance timeout covers it.
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| {
                    m.join.is_none() && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            if !expired.is_empty() {
                tracing::info!(group = %name, members = ?expired, "session timeout; removing members");
                g.remove_members(&expired, now);
            }
            if g.initial_join_until.is_some_and(|u| u <= now) {
                g.initial_join_until = None;
                g.maybe_complete_join();
            }
            if g.state == State::PreparingRebalance
                && g.rebalance_deadline.is_some_and(|d| d <= now)
            {
                tracing::info!(group = %name, "rebalance timeout; members that did not rejoin are dropped");
                g.complete_join();
            }
        }
    }

    /// A group as DescribeGroups shows it (`None`: unknown, reported as "Dead").
    pub fn describe(&self, group: &str) -> Option<GroupView> {
        let groups = self.groups.lock();
        let g = groups.get(group)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(GroupView {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberView {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(p, _)| *p == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Every group known since start: `(name, protocol type, state)`.
    pub fn list(&self) -> Vec<(String, String, State)> {
        let groups = self.groups.lock();
        let mut all: Vec<_> = groups
            .iter()
            .map(|(n, g)| {
                (
                    n.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(member_id: &str, client: &str) -> JoinArgs {
        JoinArgs {
            group: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: client.into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![
                ("range".into(), Bytes::from_static(b"meta")),
                ("roundrobin".into(), Bytes::new()),
            ],
            require_known_member_id: true,
            supports_skip_assignment: false,
        }
    }

    fn now_reply<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(mut rx) => rx.try_recv().expect("answered already"),
        }
    }

    /// Joins a new member through the MEMBER_ID_REQUIRED round trip; returns id and receiver.
    fn join_new(c: &Coordinator, client: &str, now: Instant) -> (String, Reply<JoinOutcome>) {
        let first = now_reply(c.join(args("", client), now));
        assert_eq!(first.error, code::MEMBER_ID_REQUIRED);
        let r = c.join(args(&first.member_id, client), now);
        (first.member_id, r)
    }

    #[test]
    fn first_rebalance_of_an_empty_group_waits_the_initial_delay_for_more_members() {
        let c = Coordinator::with_initial_delay(Duration::from_secs(3));
        let t = Instant::now();
        let (_, ra) = join_new(&c, "a", t);
        let Reply::Later(mut ra) = ra else {
            panic!("the first member waits for the initial delay")
        };
        c.expire(t + Duration::from_secs(1));
        assert!(ra.try_recv().is_err(), "not before the delay");
        // A second member within the delay extends it by the delay from its arrival.
        let (_, rb) = join_new(&c, "b", t + Duration::from_secs(2));
        let Reply::Later(mut rb) = rb else {
            panic!("b waits too")
        };
        c.expire(t + Duration::from_millis(3500));
        assert!(ra.try_recv().is_err(), "extended by b's arrival");
        c.expire(t + Duration::from_secs(5));
        let (ja, jb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
        assert_eq!(
            (ja.generation, jb.generation),
            (1, 1),
            "one generation for both"
        );
        assert_eq!(ja.members.len(), 2);
    }

    #[test]
    fn leader_assigns_and_followers_get_their_share_after_a_rebalance() {
        let c = Coordinator::default();
        let t = Instant::now();
        let (a, r) = join_new(&c, "a", t);
        let ja = now_reply(r);
        assert_eq!(
            (ja.error, ja.generation, ja.leader.as_str()),
            (code::NONE, 1, a.as_str())
        );
        assert_eq!(ja.protocol.as_deref(), Some("range"));
        let sa = now_reply(c.sync(
            "g",
            1,
            (&a, None),
            vec![(a.clone(), Bytes::from_static(b"all"))],
            t,
        ));
        assert_eq!(sa.assignment, Bytes::from_static(b"all"));
        // A second member joins: the leader learns by heartbeat and rejoins.
        let (b, rb) = join_new(&c, "b", t);
        assert_eq!(
            c.heartbeat("g", 1, (&a, None), t),
            code::REBALANCE_IN_PROGRESS
        );
        let Reply::Later(mut rb) = rb else {
            panic!("b must wait for the leader")
        };
        let ja2 = now_reply(c.join(args(&a, "a"), t));
        let jb = rb.try_recv().unwrap();
        assert_eq!((ja2.generation, jb.generation), (2, 2));
        assert_eq!(ja2.members.len(), 2, "leader sees every member");
        assert!(jb.members.is_empty());
        let Reply::Later(mut sb) = c.sync("g", 2, (&b, None), vec![], t) else {
            panic!("follower waits for the leader")
        };
        now_reply(c.sync(
            "g",
            2,
            (&a, None),
            vec![(a.clone(), "p0".into()), (b.clone(), "p1".into())],
            t,
        ));
        assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from_static(b"p1"));
        assert_eq!(c.check_commit("g", 2, (&b, None)), Ok(()));
        assert_eq!(
            c.check_commit("g", 1, (&b, None)),
            Err(code::ILLEGAL_GENERATION)
        );
        assert_eq!(c.describe("g").unwrap().state, State::Stable);
    }

    #[test]
    fn leaving_and_expired_members_trigger_rebalances() {
        let c = Coordinator::default();
        let t = Instant::now();
        let (a, r) = join_new(&c, "a", t);
        now_reply(r);
        now_reply(c.sync("g", 1, (&a, None), vec![], t));
        let (b, rb) = join_new(&c, "b", t);
        now_reply(c.join(args(&a, "a"), t));
        let Reply::Later(mut rb) = rb else { panic!() };
        rb.try_recv().unwrap();
        now_reply(c.sync("g", 2, (&a, None), vec![], t));
        // b leaves: a must rejoin for generation 3.
        assert_eq!(c.leave("g", &[(b.clone(), None)], t), vec![code::NONE]);
        assert_eq!(
            c.heartbeat("g", 2, (&a, None), t),
            code::REBALANCE_IN_PROGRESS
        );
        assert_eq!(now_reply(c.join(args(&a, "a"), t)).generation, 3);
        now_reply(c.sync("g", 3, (&a, None), vec![], t));
        // a goes silent past its session timeout: the group empties.
        c.expire(t + Duration::from_secs(11));
        assert_eq!(c.describe("g").unwrap().state, State::Empty);
        assert_eq!(c.heartbeat("g", 3, (&a, None), t), code::UNKNOWN_MEMBER_ID);
        assert_eq!(
            now_reply(c.join(args("stranger", "x"), t)).error,
            code::UNKNOWN_MEMBER_ID
        );
    }

    fn static_args(member_id: &str, instance: &str) -> JoinArgs {
        JoinArgs {
            instance_id: Some(instance.into()),
            ..args(member_id, instance)
        }
    }

    /// Two static members `i1` (leader) and `i2` in a stable generation 1; returns their ids.
    fn stable_static_pair(c: &Coordinator, t: Instant) -> (String, String) {
        let Reply::Later(mut r1) = c.join(static_args("", "i1"), t) else {
            panic!("static members get no MEMBER_ID_REQUIRED, they wait for the rebalance")
        };
        let j1 = r1.try_recv().unwrap();
        let a = j1.member_id.clone();
        now_reply(c.sync("g", 1, (&a, Some("i1")), vec![], t));
        let Reply::Later(mut r2) = c.join(static_args("", "i2"), t) else {
            panic!()
        };
        now_reply(c.join(static_args(&a, "i1"), t));
        let b = r2.try_recv().unwrap().member_id;
        now_reply(c.sync(
            "g",
            2,
            (&a, Some("i1")),
            vec![(a.clone(), "p0".into()), (b.clone(), "p1".into())],
            t,
        ));
        (a, b)
    }

    #[test]
    fn restarted_static_member_takes_over_its_assignment_without_a_rebalance() {
        let c = Coordinator::default();
        let t = Instant::now();
        let (a, b) = stable_static_pair(&c, t);
        // i2 restarts: a new member id, same instance id, same protocols.
        let j = now_reply(c.join(static_args("", "i2"), t));
        assert_eq!(j.error, code::NONE);
        assert_ne!(j.member_id, b);
        assert_eq!((j.generation, j.leader.as_str()), (2, a.as_str()));
        assert!(j.members.is_empty());
        let s = now_reply(c.sync("g", 2, (&j.member_id, Some("i2")), vec![], t));
        assert_eq!(s.assignment, Bytes::from_static(b"p1"));
        // No rebalance: the other member heartbeats on undisturbed.
        assert_eq!(c.heartbeat("g", 2, (&a, Some("i1")), t), code::NONE);
        assert_eq!(c.describe("g").unwrap().state, State::Stable);
        // The old id is fenced everywhere.
        assert_eq!(
            c.heartbeat("g", 2, (&b, Some("i2")), t),
            code::FENCED_INSTANCE_ID
        );
        assert_eq!(
            now_reply(c.sync("g", 2, (&b, Some("i2")), vec![], t)).error,
            code::FENCED_INSTANCE_ID
        );
        assert_eq!(
            c.check_commit("g", 2, (&b, Some("i2"))),
            Err(code::FENCED_INSTANCE_ID)
        );
        assert_eq!(
            now_reply(c.join(static_args(&b, "i2"), t)).error,
            code::FENCED_INSTANCE_ID
        );
        assert_eq!(c.check_commit("g", 2, (&j.member_id, Some("i2"))), Ok(()));
    }

    #[test]
    fn restarted_static_leader_is_not_told_to_reassign() {
        let c = Coordinator::default();
        let t = Instant::now();
        let (a, b) = stable_static_pair(&c, t);
        let old = now_reply(c.join(static_args("", "i1"), t));
        assert_eq!(
            old.leader, a,
            "before v9: the old leader id, so no reassignment"
        );
        assert!(old.members.is_empty() && !old.skip_assignment);
        let s = now_reply(c.sync("g", 2, (&old.member_id, Some("i1")), vec![], t));
        assert_eq!(s.assignment, Bytes::from_static(b"p0"));
        // v9+: told it leads, with every member, but to skip the assignment.
        let v9 = now_reply(c.join(
            JoinArgs {
                supports_skip_assignment: true,
                ..static_args("", "i1")
            },
            t,
        ));
        assert_eq!(v9.leader, v9.member_id);
        assert!(v9.skip_assignment);
        assert_eq!(v9.members.len(), 2);
        assert_eq!(c.heartbeat("g", 2, (&b, Some("i2")), t), code::NONE);
        // The next real rebalance is led by the new id.
        c.leave("g", &[(String::new(), Some("i2".into()))], t);
        let j = now_reply(c.join(static_args(&v9.member_id, "i1"), t));
        assert_eq!(
            (j.generation, j.leader.as_str()),
            (3, v9.member_id.as_str())
        );
        assert_eq!(j.members.len(), 1);
    }

    #[test]
    fn static_rejoin_with_another_protocol_rebalances() {
        let c = Coordinator::default();
        let t = Instant::now();
        let (a, _) = stable_static_pair(&c, t);
        let Reply::Later(mut r) = c.join(
            JoinArgs {
                protocols: vec![("roundrobin".into(), Bytes::new())],
                ..static_args("", "i1")
            },
            t,
        ) else {
            panic!("a changed protocol choice waits for a rebalance")
        };
        assert_eq!(c.describe("g").unwrap().state, State::PreparingRebalance);
        assert_eq!(
            c.heartbeat("g", 2, (&a, Some("i1")), t),
            code::FENCED_INSTANCE_ID
        );
        let members = c.describe("g").unwrap().members;
        let b = members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some("i2"))
            .unwrap();
        now_reply(c.join(static_args(&b.member_id, "i2"), t));
        let j = r.try_recv().unwrap();
        assert_eq!(
            (j.generation, j.protocol.as_deref()),
            (3, Some("roundrobin"))
        );
    }

    #[test]
    fn static_members_leave_by_instance_id_and_expire_by_session_timeout() {
        let c = Coordinator::default();
        let t = Instant::now();
        let (a, b) = stable_static_pair(&c, t);
        let codes = c.leave(
            "g",
            &[
                ("someone-else".into(), Some("i2".into())),
                (String::new(), Some("nobody".into())),
                (String::new(), Some("i2".into())),
            ],
            t,
        );
        assert_eq!(
            codes,
            vec![
                code::FENCED_INSTANCE_ID,
                code::UNKNOWN_MEMBER_ID,
                code::NONE
            ]
        );
        assert_eq!(
            c.heartbeat("g", 2, (&b, Some("i2")), t),
            code::UNKNOWN_MEMBER_ID
        );
        assert_eq!(
            c.heartbeat("g", 2, (&a, Some("i1")), t),
            code::REBALANCE_IN_PROGRESS
        );
        let j = now_reply(c.join(static_args(&a, "i1"), t));
        now_reply(c.sync("g", j.generation, (&a, Some("i1")), vec![], t));
        // Silent past its session timeout, a static member is removed like any other, and its
        // instance id joins afresh.
        c.expire(t + Duration::from_secs(11));
        assert_eq!(c.describe("g").unwrap().state, State::Empty);
        let Reply::Later(mut r) = c.join(static_args("", "i1"), t + Duration::from_secs(12)) else {
            panic!()
        };
        let j = r.try_recv().unwrap();
        assert_ne!(j.member_id, a);
        assert_eq!(j.leader, j.member_id);
    }
}
