-- Event metadata: GetMetadataPropertyValue with plain and [EventHub].[...] names, the
-- PartitionId column (eddy run reads one partition, 0), offsets, a stable EventId
-- (input, partition, offset), and NULL for user properties eddy does not carry.
SELECT
    id,
    GetMetadataPropertyValue(input, 'EventEnqueuedUtcTime') AS enqueued,
    GetMetadataPropertyValue(input, '[EventHub].[EventEnqueuedUtcTime]') AS enqueued_eh,
    GetMetadataPropertyValue(input, 'PartitionId') AS partition,
    GetMetadataPropertyValue(input, '[EventHub].[Offset]') AS offset,
    GetMetadataPropertyValue(input, '[User].[Tenant]') AS user_property,
    GetMetadataPropertyValue(input, 'EventId') AS event_id,
    GetRecordPropertyValue(GetMetadataPropertyValue(input, 'EventHub'), 'PartitionId') AS from_record,
    PartitionId
FROM input
