-- Without TIMESTAMP BY, the event time is the arrival time (EventEnqueuedUtcTime); the
-- payload's own time field plays no part and no policy applies.
SELECT id, System.Timestamp() AS ts, EventEnqueuedUtcTime
FROM input
