-- A 10-second sliding window per device. An event exactly 10 s after another enters as
-- the older one leaves: one row for that instant. Rows come when an event enters or
-- leaves a device's window, never for an empty window, and keys are independent.
SELECT Device, COUNT(*) AS Events, SUM(Reading) AS Total, System.Timestamp() AS WindowEnd
INTO output
FROM readings TIMESTAMP BY Time
GROUP BY Device, SlidingWindow(second, 10)
