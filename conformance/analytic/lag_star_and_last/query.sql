-- LAG(*) returns the whole previous event as a record; LAST returns the most recent
-- matching value, the current event included.
SELECT
    sensor,
    LAG(*) OVER (LIMIT DURATION(minute, 15)) AS previous_event,
    LAST(reading) OVER (PARTITION BY sensor LIMIT DURATION(hour, 1) WHEN reading > 100) AS last_above_100
FROM input TIMESTAMP BY t
