-- LAG per sensor within one hour: the previous value, the one two back with a default,
-- and the previous non-NULL reading (WHEN). At 01:40 the previous s1 event is more than
-- an hour old, so LAG gives NULL / the default.
SELECT
    sensor,
    reading,
    LAG(reading) OVER (PARTITION BY sensor LIMIT DURATION(hour, 1)) AS previous,
    LAG(reading, 2, -1) OVER (PARTITION BY sensor LIMIT DURATION(hour, 1)) AS two_back,
    LAG(reading) OVER (PARTITION BY sensor LIMIT DURATION(hour, 1) WHEN reading IS NOT NULL) AS previous_not_null
FROM input TIMESTAMP BY t
