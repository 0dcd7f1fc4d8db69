-- LEFT OUTER JOIN with CSV reference data: every reading comes out; the threshold
-- columns are NULL where no row has the sensor's id and a level the reading reaches
-- (CSV values are strings: the level is cast to compare it as a number).
SELECT r.SensorId, r.Value, t.Level, t.Label
INTO output
FROM readings r TIMESTAMP BY t
LEFT OUTER JOIN Thresholds t
ON r.SensorId = t.SensorId AND r.Value >= CAST(t.Level AS bigint)
