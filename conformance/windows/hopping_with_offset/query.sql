-- 10-minute windows every 5 minutes, shifted by 2 minutes: they end at 00:02, 00:07, 00:12, ...
SELECT COUNT(*) AS Events, SUM(v) AS Total, System.Timestamp() AS WindowEnd
INTO output
FROM readings TIMESTAMP BY t
GROUP BY HoppingWindow(minute, 10, 5, 2)
