-- A snapshot window groups the events that share a timestamp: one row per key and
-- timestamp, stamped with it.
SELECT Device, COUNT(*) AS Events, MAX(Reading) AS Highest, System.Timestamp() AS At
INTO output
FROM readings TIMESTAMP BY Time
GROUP BY Device, System.Timestamp()
