-- A session's maximum duration is limited to 7 days too.
SELECT COUNT(*) AS Events
INTO output
FROM s TIMESTAMP BY t
GROUP BY SessionWindow(day, 1, 8)
