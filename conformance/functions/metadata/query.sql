-- Event metadata: GetMetadataPropertyValue with plain and [EventHub].[...] names, the
-- PartitionId column (eddy run reads one partition, 0), offsets, and NULL for user
-- properties eddy does not carry.
SELECT
    id,
    GetMetadataPropertyValue(input, 'EventEnqueuedUtcTime') AS enqueued,
    GetMetadataPropertyValue(input, '[EventHub].[EventEnqueuedUtcTime]') AS enqueued_eh,
    GetMetadataPropertyValue(input, 'PartitionId') AS partition,
    GetMetadataPropertyValue(input, '[EventHub].[Offset]') AS offset,
    GetMetadataPropertyValue(input, '[User].[Tenant]') AS user_property,
    PartitionId
FROM input
