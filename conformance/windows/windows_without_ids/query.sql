-- Windows(...) without ids: the union of both windows' rows; System.Window().Id is NULL.
SELECT System.Window().Id AS WindowId, COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Windows(TumblingWindow(minute, 1), HoppingWindow(minute, 2, 1))
