//! Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
//! ListGroups (over `coordinator.rs`), and OffsetCommit / OffsetFetch (over the log's durable
//! committed offsets: a commit is fsynced unless the log's policy is `never`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::conn::Client;
use crate::coordinator::{JoinArgs, Reply};
use crate::error::{code, log_error_code};
use crate::server::Broker;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Longest commit metadata accepted (Kafka's `offset.metadata.max.bytes`).
const OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// Commits whose extras are kept at most; past it, new extras are dropped (with a warning).
const COMMIT_EXTRAS_MAX: usize = 100_000;

/// A commit's key: group, lower-cased topic, partition.
type CommitKey = (String, String, u32);

/// A commit the log's offset store cannot hold exactly: an offset past the partition's end
/// (the log stores the end). Kept in memory only, so a restarted broker answers with the
/// offset the log stored (the end) and the metadata committed with it.
#[derive(Default)]
pub(crate) struct CommitExtras {
    /// (group, lower-cased topic, partition) → (offset as committed, metadata).
    map: parking_lot::Mutex<std::collections::HashMap<CommitKey, (i64, String)>>,
}

impl CommitExtras {
    /// Records a commit of `offset` (stored in the log as `stored`) with `metadata`.
    fn record(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        metadata: &str,
        stored: u64,
    ) {
        let key = (group.to_string(), topic.to_ascii_lowercase(), partition);
        let mut map = self.map.lock();
        if offset == stored {
            map.remove(&key);
        } else if map.len() < COMMIT_EXTRAS_MAX || map.contains_key(&key) {
            map.insert(key, (offset as i64, metadata.to_string()));
        } else {
            tracing::warn!(
                group,
                topic,
                partition,
                "commit metadata dropped: too many kept"
            );
        }
    }

    /// The offset and metadata as last committed, when the offset differs from the log's.
    fn get(&self, group: &str, topic: &str, partition: u32) -> Option<(i64, String)> {
        let key = (group.to_string(), topic.to_ascii_lowercase(), partition);
        self.map.lock().get(&key).cloned()
    }

    /// Forgets a deleted topic's commits.
    pub(crate) fn remove_topic(&self, topic: &str) {
        let topic = topic.to_ascii_lowercase();
        self.map.lock().retain(|(_, t, _), _| *t != topic);
    }
}

/// Session timeouts accepted (Kafka's group.min/max.session.timeout.ms defaults).
const SESSION_TIMEOUT_MS: std::ops::RangeInclusive<i32> = 6_000..=1_800_000;

/// FindCoordinator: this broker coordinates every group (key type 0); transactions (1) are
/// not implemented.
pub(crate) fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let host = s(broker.config.advertised_host.clone());
    let port = i32::from(broker.config.advertised_port);
    let error = if req.key_type == 0 {
        code::NONE
    } else {
        code::COORDINATOR_NOT_AVAILABLE
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = CoordinatorEntry::default()
                    .with_key(key)
                    .with_error_code(error);
                if error == code::NONE {
                    c.with_node_id(0.into())
                        .with_host(host.clone())
                        .with_port(port)
                } else {
                    c.with_node_id((-1).into()).with_port(-1)
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let r = FindCoordinatorResponse::default().with_error_code(error);
    if error == code::NONE {
        r.with_node_id(0.into()).with_host(host).with_port(port)
    } else {
        r.with_node_id((-1).into()).with_port(-1)
    }
}

/// JoinGroup: waits until the rebalance completes (or fails) and answers this member.
pub(crate) async fn join(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client: &Client,
) -> JoinGroupResponse {
    let member_id = req.member_id.to_string();
    let fail = |error: i16| {
        JoinGroupResponse::default()
            .with_error_code(error)
            .with_generation_id(-1)
            .with_member_id(req.member_id.clone())
    };
    if req.group_id.is_empty() {
        return fail(code::INVALID_GROUP_ID);
    }
    if !SESSION_TIMEOUT_MS.contains(&req.session_timeout_ms) {
        return fail(code::INVALID_SESSION_TIMEOUT);
    }
    if req.protocols.is_empty() || req.protocol_type.is_empty() {
        return fail(code::INCONSISTENT_GROUP_PROTOCOL);
    }
    // v0 has no rebalance timeout: it equals the session timeout.
    let rebalance_ms = if version >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };
    let args = JoinArgs {
        group: req.group_id.to_string(),
        member_id,
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id.clone(),
        client_host: client.host.clone(),
        session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
        rebalance_timeout: Duration::from_millis(rebalance_ms.clamp(0, 1_800_000) as u64),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let outcome = match broker.groups.join(args, Instant::now()) {
        Reply::Now(o) => o,
        Reply::Later(rx) => match rx.await {
            Ok(o) => o,
            // The member was removed (left or expired) while waiting.
            Err(_) => return fail(code::UNKNOWN_MEMBER_ID),
        },
    };
    JoinGroupResponse::default()
        .with_error_code(outcome.error)
        .with_generation_id(outcome.generation)
        .with_protocol_type(outcome.protocol_type.map(s))
        .with_protocol_name(Some(s(outcome.protocol.unwrap_or_default())))
        .with_leader(s(outcome.leader))
        .with_member_id(s(outcome.member_id))
        .with_skip_assignment(outcome.skip_assignment)
        .with_members(
            outcome
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(id))
                        .with_group_instance_id(instance.map(s))
                        .with_metadata(metadata)
                })
                .collect(),
        )
}

/// SyncGroup: the leader's assignments reach every member.
pub(crate) async fn sync(broker: &Broker, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let reply = broker.groups.sync(
        &req.group_id,
        req.generation_id,
        (&req.member_id, req.group_instance_id.as_deref()),
        assignments,
        Instant::now(),
    );
    let outcome = match reply {
        Reply::Now(o) => o,
        Reply::Later(rx) => match rx.await {
            Ok(o) => o,
            Err(_) => return SyncGroupResponse::default().with_error_code(code::UNKNOWN_MEMBER_ID),
        },
    };
    SyncGroupResponse::default()
        .with_error_code(outcome.error)
        .with_protocol_type(outcome.protocol_type.map(s))
        .with_protocol_name(outcome.protocol.map(s))
        .with_assignment(outcome.assignment)
}

/// Heartbeat: REBALANCE_IN_PROGRESS tells the member to rejoin.
pub(crate) fn heartbeat(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    let error = broker.groups.heartbeat(
        &req.group_id,
        req.generation_id,
        (&req.member_id, req.group_instance_id.as_deref()),
        Instant::now(),
    );
    HeartbeatResponse::default().with_error_code(error)
}

/// LeaveGroup: one member (v0-2) or a batch (v3+), each named by member id or, for static
/// members, by instance id.
pub(crate) fn leave(broker: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let now = Instant::now();
    if version < 3 {
        let codes = broker
            .groups
            .leave(&req.group_id, &[(req.member_id.to_string(), None)], now);
        return LeaveGroupResponse::default()
            .with_error_code(codes.first().copied().unwrap_or(code::NONE));
    }
    let ids: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
            )
        })
        .collect();
    let codes = broker.groups.leave(&req.group_id, &ids, now);
    let members = req
        .members
        .into_iter()
        .zip(codes)
        .map(|(m, c)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(c)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// DescribeGroups: state, chosen protocol and members; unknown groups are "Dead".
pub(crate) fn describe(broker: &Broker, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let d = DescribedGroup::default().with_group_id(id.clone());
            match broker.groups.describe(&id) {
                None => d.with_group_state(s("Dead")),
                Some(v) => d
                    .with_group_state(s(v.state.name()))
                    .with_protocol_type(s(v.protocol_type))
                    .with_protocol_data(s(v.protocol))
                    .with_members(
                        v.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(s(m.member_id))
                                    .with_group_instance_id(m.instance_id.map(s))
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// ListGroups: groups with members or joins since the broker started (v4 filters by state).
pub(crate) fn list(broker: &Broker, req: ListGroupsRequest) -> ListGroupsResponse {
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, st)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(st.name()))
        })
        .map(|(id, ptype, st)| {
            ListedGroup::default()
                .with_group_id(GroupId(s(id)))
                .with_protocol_type(s(ptype))
                .with_group_state(s(st.name()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// OffsetCommit: checked against the group's generation, then made durable in the log.
pub(crate) async fn offset_commit(
    broker: &Arc<Broker>,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let check = broker.groups.check_commit(
        &req.group_id,
        req.generation_id_or_member_epoch,
        (&req.member_id, req.group_instance_id.as_deref()),
    );
    let b = Arc::clone(broker);
    tokio::task::spawn_blocking(move || {
        let group = req.group_id.to_string();
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let result = check.and_then(|()| {
                            let partition = u32::try_from(p.partition_index).map_err(|_| code::UNKNOWN_TOPIC_OR_PARTITION)?;
                            let offset = u64::try_from(p.committed_offset).map_err(|_| code::OFFSET_OUT_OF_RANGE)?;
                            if group.is_empty() {
                                return Err(code::INVALID_GROUP_ID);
                            }
                            let metadata = p.committed_metadata.as_deref().unwrap_or_default();
                            if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                                return Err(code::OFFSET_METADATA_TOO_LARGE);
                            }
                            // Kafka stores any offset; the log only up to the end, so an offset
                            // past it is stored as the end and kept exactly beside it.
                            let end = b.log.stream(&t.name).and_then(|s| s.partitions.get(partition as usize).map(|p| p.end_offset));
                            let stored = end.map_or(offset, |end| offset.min(end));
                            b.log.commit_offset_with_metadata(&group, &t.name, partition, stored, metadata).map_err(|e| {
                                tracing::warn!(group, topic = %t.name.0, partition, error = %e, "offset commit failed");
                                log_error_code(&e)
                            })?;
                            b.commit_extras.record(&group, &t.name, partition, offset, metadata, stored);
                            Ok(())
                        });
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(result.err().unwrap_or(code::NONE))
                    })
                    .collect();
                OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    })
    .await
    .unwrap_or_default()
}

/// OffsetFetch (v1-7): committed offsets, -1 where none; `topics = null` (v2+) means every
/// partition of every topic the group has an offset for.
pub(crate) fn offset_fetch(broker: &Broker, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let group = req.group_id.to_string();
    let wanted: Vec<(TopicName, Vec<i32>)> = match req.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect(),
        None => broker
            .log
            .streams()
            .into_iter()
            .filter_map(|st| {
                let parts: Vec<i32> = st
                    .partitions
                    .iter()
                    .filter(|p| {
                        broker
                            .log
                            .committed_offset(&group, &st.name, p.partition)
                            .is_some()
                    })
                    .map(|p| p.partition as i32)
                    .collect();
                (!parts.is_empty()).then(|| (TopicName(s(st.name)), parts))
            })
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|p| {
                    let (offset, metadata) = match u32::try_from(p) {
                        Ok(p) => match broker.commit_extras.get(&group, &name, p) {
                            Some(extra) => extra,
                            None => broker
                                .log
                                .committed_offset_with_metadata(&group, &name, p)
                                .map_or((-1, String::new()), |(o, m)| (o as i64, m)),
                        },
                        Err(_) => (-1, String::new()),
                    };
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::from_string(metadata)))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
