SELECT COUNT(*) AS n, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY TumblingWindow(second, 10)
