-- Windows are (start, end]: an event exactly at the end belongs to the window ending then.
SELECT COUNT(*) AS n, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY TumblingWindow(second, 10)
