//! CreateTopics, CreatePartitions, DeleteTopics and DescribeConfigs (topics are eddy streams; one broker, so the
//! replication factor is 1).

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::error::{code, log_error_code};
use crate::server::Broker;

/// DescribeConfigs resource types (Kafka's `ConfigResource.Type`).
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// `DEFAULT_CONFIG`: no config is settable per topic yet.
const SOURCE_DEFAULT: i8 = 5;

/// CreateTopics: `num_partitions = -1` takes `auto_create_partitions`; a replication factor
/// above 1 cannot be honoured by one broker.
pub(crate) async fn create_topics(
    broker: &Arc<Broker>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let b = Arc::clone(broker);
    tokio::task::spawn_blocking(move || {
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = if t.num_partitions == -1 {
                    b.config.auto_create_partitions as i32
                } else {
                    t.num_partitions
                };
                let result = if !matches!(t.replication_factor, -1 | 1) {
                    Err((
                        code::INVALID_REPLICATION_FACTOR,
                        "eddy has one broker: replication factor must be 1".to_string(),
                    ))
                } else if partitions <= 0 {
                    Err((
                        code::INVALID_PARTITIONS,
                        format!("invalid partition count {partitions}"),
                    ))
                } else if req.validate_only {
                    eddy_log::validate_stream_name(&t.name)
                        .map_err(|e| (log_error_code(&e), e.to_string()))
                        .and_then(|()| match b.log.stream(&t.name) {
                            Some(_) => Err((
                                code::TOPIC_ALREADY_EXISTS,
                                format!("topic {} exists", t.name.0),
                            )),
                            None => Ok(()),
                        })
                } else {
                    b.log
                        .create_stream(&t.name, partitions as u32)
                        .map(|_| ())
                        .map_err(|e| (log_error_code(&e), e.to_string()))
                };
                let r = CreatableTopicResult::default().with_name(t.name);
                match result {
                    Ok(()) if version >= 5 => r
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                        .with_configs(Some(Vec::new())),
                    Ok(()) => r,
                    Err((c, msg)) => r
                        .with_error_code(c)
                        .with_error_message(Some(StrBytes::from_string(msg))),
                }
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    })
    .await
    .unwrap_or_default()
}

/// CreatePartitions: grows topics (never shrinks them); the new partitions are empty and led by
/// node 0, so an explicit assignment may only name broker 0, once per new partition.
pub(crate) async fn create_partitions(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let b = Arc::clone(broker);
    tokio::task::spawn_blocking(move || {
        let mut seen = std::collections::HashSet::new();
        let duplicates: std::collections::HashSet<String> = req
            .topics
            .iter()
            .map(|t| t.name.to_ascii_lowercase())
            .filter(|k| !seen.insert(k.clone()))
            .collect();
        let results = req
            .topics
            .into_iter()
            .map(|t| {
                let result = grow_topic(&b, &t, req.validate_only, &duplicates);
                let r = CreatePartitionsTopicResult::default().with_name(t.name);
                match result {
                    Ok(()) => r,
                    Err((c, msg)) => r
                        .with_error_code(c)
                        .with_error_message(Some(StrBytes::from_string(msg))),
                }
            })
            .collect();
        CreatePartitionsResponse::default().with_results(results)
    })
    .await
    .unwrap_or_default()
}

/// One topic of a CreatePartitions request; `Err((code, message))` as Kafka reports it.
fn grow_topic(
    b: &Broker,
    t: &create_partitions_request::CreatePartitionsTopic,
    validate_only: bool,
    duplicates: &std::collections::HashSet<String>,
) -> Result<(), (i16, String)> {
    let name = t.name.as_str();
    if duplicates.contains(&name.to_ascii_lowercase()) {
        return Err((
            code::INVALID_REQUEST,
            format!("topic {name} appears more than once in the request"),
        ));
    }
    let current = b.log.partition_count(name).ok_or((
        code::UNKNOWN_TOPIC_OR_PARTITION,
        format!("topic {name} does not exist"),
    ))?;
    let wanted = u32::try_from(t.count).unwrap_or(0);
    if wanted <= current {
        let msg = if wanted == current {
            format!("topic {name} already has {current} partitions")
        } else {
            format!(
                "topic {name} has {current} partitions, more than the requested {}",
                t.count
            )
        };
        return Err((code::INVALID_PARTITIONS, msg));
    }
    if let Some(assignments) = &t.assignments {
        let new = (wanted - current) as usize;
        if assignments.len() != new
            || assignments
                .iter()
                .any(|a| a.broker_ids[..] != [BrokerId(0)])
        {
            return Err((
                code::INVALID_REPLICA_ASSIGNMENT,
                format!("eddy has one broker (0): expected {new} assignments of [0]"),
            ));
        }
    }
    let grown = if validate_only {
        b.log.validate_add_partitions(name, wanted)
    } else {
        b.log.add_partitions(name, wanted).map(|_| ())
    };
    grown.map_err(|e| (log_error_code(&e), e.to_string()))
}

/// DeleteTopics (by name, v1-5): deletes the stream, its data and its committed offsets.
pub(crate) async fn delete_topics(
    broker: &Arc<Broker>,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let b = Arc::clone(broker);
    tokio::task::spawn_blocking(move || {
        let responses = req
            .topic_names
            .into_iter()
            .map(|name| {
                let r = DeletableTopicResult::default();
                let r = match b.log.delete_stream(&name) {
                    Ok(()) => {
                        b.commit_extras.remove_topic(&name);
                        r
                    }
                    Err(e) => r
                        .with_error_code(log_error_code(&e))
                        .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                };
                r.with_name(Some(name))
            })
            .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    })
    .await
    .unwrap_or_default()
}

/// DescribeConfigs: the read-only settings that govern a topic (and the broker).
pub(crate) fn describe_configs(
    broker: &Broker,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let log = broker.log.config();
    let opt = |v: Option<i64>| v.map_or("-1".to_string(), |v| v.to_string());
    let topic_configs = [
        ("cleanup.policy", "delete".to_string()),
        ("retention.ms", opt(log.retention_ms)),
        (
            "retention.bytes",
            opt(log.retention_bytes.map(|b| b as i64)),
        ),
        ("segment.bytes", log.segment_bytes.to_string()),
        (
            "max.message.bytes",
            broker.config.max_message_bytes.to_string(),
        ),
        ("message.timestamp.type", "CreateTime".to_string()),
    ];
    let broker_configs = [
        (
            "num.partitions",
            broker.config.auto_create_partitions.to_string(),
        ),
        (
            "auto.create.topics.enable",
            broker.config.auto_create_topics.to_string(),
        ),
        (
            "message.max.bytes",
            broker.config.max_message_bytes.to_string(),
        ),
        (
            "socket.request.max.bytes",
            broker.config.max_frame_bytes.to_string(),
        ),
    ];
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let configs: &[(&str, String)] = match r.resource_type {
                RESOURCE_TOPIC if broker.log.stream(&r.resource_name).is_some() => &topic_configs,
                RESOURCE_BROKER
                    if r.resource_name.as_str() == "0" || r.resource_name.is_empty() =>
                {
                    &broker_configs
                }
                RESOURCE_TOPIC => {
                    return DescribeConfigsResult::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name)
                        .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                }
                _ => {
                    return DescribeConfigsResult::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name)
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "only topic and broker 0 configs exist",
                        )));
                }
            };
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let configs = configs
                .iter()
                .filter(|(name, _)| wanted(name))
                .map(|(name, value)| {
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_value(Some(StrBytes::from_string(value.clone())))
                        .with_read_only(true)
                        .with_config_source(SOURCE_DEFAULT)
                })
                .collect();
            DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
