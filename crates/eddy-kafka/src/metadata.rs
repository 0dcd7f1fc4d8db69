//! Metadata: the one broker (node 0) and the topics, created on first mention when allowed.

use std::sync::Arc;

use eddy_log::{LogError, StreamInfo};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::error::{code, log_error_code};
use crate::server::Broker;

/// Reported as the cluster id (Metadata v2+).
pub(crate) const CLUSTER_ID: &str = "eddy";

/// Answers Metadata; unknown topics are created with `auto_create_partitions` when both the
/// config and the request (v4+) allow it.
pub(crate) async fn handle(
    broker: &Arc<Broker>,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let all = match &req.topics {
        None => true,
        // v0 has no null: an empty list means all topics.
        Some(t) => t.is_empty() && version == 0,
    };
    let allow_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let b = Arc::clone(broker);
    let topics = tokio::task::spawn_blocking(move || {
        if all {
            return b
                .log
                .streams()
                .iter()
                .map(|s| topic(&s.name, Ok(s.clone())))
                .collect();
        }
        req.topics
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| t.name)
            .map(|name| {
                let found = match b.log.stream(&name) {
                    Some(s) => Ok(s),
                    None if allow_create => {
                        match b.log.create_stream(&name, b.config.auto_create_partitions) {
                            Err(LogError::StreamExists(_)) => {
                                b.log.stream(&name).ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)
                            }
                            other => other.map_err(|e| log_error_code(&e)),
                        }
                    }
                    None => Err(code::UNKNOWN_TOPIC_OR_PARTITION),
                };
                // Answered under the name asked for: names are case-insensitive in eddy, but
                // clients match the response by exact string.
                topic(&name, found)
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(0.into())
                .with_host(StrBytes::from_string(broker.config.advertised_host.clone()))
                .with_port(i32::from(broker.config.advertised_port)),
        ])
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(0.into())
        .with_topics(topics)
}

fn topic(name: &str, found: Result<StreamInfo, i16>) -> MetadataResponseTopic {
    let t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))));
    match found {
        Ok(s) => t.with_partitions(
            s.partitions
                .iter()
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p.partition as i32)
                        .with_leader_id(0.into())
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![0.into()])
                        .with_isr_nodes(vec![0.into()])
                })
                .collect(),
        ),
        Err(c) => t.with_error_code(c),
    }
}
