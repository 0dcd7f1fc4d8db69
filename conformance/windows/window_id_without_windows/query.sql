-- System.Window().Id outside Windows(...) is allowed and NULL.
SELECT System.Window().Id AS WindowId, COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY TumblingWindow(minute, 1)
