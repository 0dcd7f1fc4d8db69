SELECT GetMetadataPropertyValue(input, 'EventEnqueuedTime2') AS enqueued
FROM input
