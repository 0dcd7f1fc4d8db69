-- Offset(millisecond, -1) turns (start, end] windows into [start, end): an event at
-- exactly 00:01:00 opens the next minute, whose window ends at 00:01:59.999.
SELECT COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY TumblingWindow(Duration(minute, 1), Offset(millisecond, -1))
