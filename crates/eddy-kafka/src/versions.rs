//! ApiVersions: the version ranges this broker implements, advertised exactly.
//!
//! Minimums keep the non-flexible versions kafkajs still sends; maximums stop before versions
//! that need what eddy lacks (topic ids in Fetch 13+ and Produce 13, share groups, KIP-848
//! consumer groups, batched OffsetFetch 8+, topic-id DeleteTopics 6).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::error::code;

/// `(api key, min version, max version)` of every API the broker answers, as advertised.
pub const SUPPORTED_APIS: &[(i16, i16, i16)] = &[
    (ApiKey::Produce as i16, 3, 9),
    (ApiKey::Fetch as i16, 4, 12),
    (ApiKey::ListOffsets as i16, 1, 7),
    (ApiKey::Metadata as i16, 0, 12),
    (ApiKey::OffsetCommit as i16, 2, 8),
    (ApiKey::OffsetFetch as i16, 1, 7),
    (ApiKey::FindCoordinator as i16, 0, 4),
    (ApiKey::JoinGroup as i16, 0, 9),
    (ApiKey::Heartbeat as i16, 0, 4),
    (ApiKey::LeaveGroup as i16, 0, 5),
    (ApiKey::SyncGroup as i16, 0, 5),
    (ApiKey::DescribeGroups as i16, 0, 5),
    (ApiKey::ListGroups as i16, 0, 4),
    (ApiKey::ApiVersions as i16, 0, 3),
    (ApiKey::CreateTopics as i16, 2, 7),
    (ApiKey::DeleteTopics as i16, 1, 5),
    (ApiKey::InitProducerId as i16, 0, 4),
    (ApiKey::DescribeConfigs as i16, 1, 4),
    (ApiKey::CreatePartitions as i16, 0, 3),
];

/// Whether `version` of `api_key` is advertised (and so may be decoded).
pub(crate) fn is_supported(api_key: i16, version: i16) -> bool {
    SUPPORTED_APIS
        .iter()
        .any(|&(k, min, max)| k == api_key && (min..=max).contains(&version))
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|&(k, min, max)| {
            ApiVersion::default()
                .with_api_key(k)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

/// Answers a supported ApiVersions request.
pub(crate) fn handle(_req: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The answer to an ApiVersions version the broker does not know: encoded as v0 (which every
/// client can parse, KIP-511) with `UNSUPPORTED_VERSION` and the real ranges, so the client
/// retries with a version it shares.
pub(crate) fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(code::UNSUPPORTED_VERSION)
        .with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn advertised_ranges_are_within_what_the_codecs_implement() {
        fn range<M: Message>() -> (i16, i16) {
            (M::VERSIONS.min, M::VERSIONS.max)
        }
        for &(key, min, max) in SUPPORTED_APIS {
            let (cmin, cmax) = match ApiKey::try_from(key).unwrap() {
                ApiKey::Produce => range::<ProduceRequest>(),
                ApiKey::Fetch => range::<FetchRequest>(),
                ApiKey::ListOffsets => range::<ListOffsetsRequest>(),
                ApiKey::Metadata => range::<MetadataRequest>(),
                ApiKey::OffsetCommit => range::<OffsetCommitRequest>(),
                ApiKey::OffsetFetch => range::<OffsetFetchRequest>(),
                ApiKey::FindCoordinator => range::<FindCoordinatorRequest>(),
                ApiKey::JoinGroup => range::<JoinGroupRequest>(),
                ApiKey::Heartbeat => range::<HeartbeatRequest>(),
                ApiKey::LeaveGroup => range::<LeaveGroupRequest>(),
                ApiKey::SyncGroup => range::<SyncGroupRequest>(),
                ApiKey::DescribeGroups => range::<DescribeGroupsRequest>(),
                ApiKey::ListGroups => range::<ListGroupsRequest>(),
                ApiKey::ApiVersions => range::<ApiVersionsRequest>(),
                ApiKey::CreateTopics => range::<CreateTopicsRequest>(),
                ApiKey::DeleteTopics => range::<DeleteTopicsRequest>(),
                ApiKey::InitProducerId => range::<InitProducerIdRequest>(),
                ApiKey::DescribeConfigs => range::<DescribeConfigsRequest>(),
                ApiKey::CreatePartitions => range::<CreatePartitionsRequest>(),
                other => panic!("{other:?} advertised but not dispatched"),
            };
            assert!(
                cmin <= min && max <= cmax,
                "api {key}: {min}..={max} vs {cmin}..={cmax}"
            );
        }
        assert!(is_supported(ApiKey::ApiVersions as i16, 3));
        assert!(!is_supported(ApiKey::ApiVersions as i16, 4));
        assert!(!is_supported(ApiKey::SaslHandshake as i16, 0));
    }
}
