-- Tumbling(Duration(...), Offset(...)): 10-minute windows shifted by 2 minutes end at
-- 00:02, 00:12, 00:22, ...; the event at 00:12 exactly closes the second window.
SELECT COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Tumbling(Duration(minute, 10), Offset(minute, 2))
