-- checks: aggregates are not allowed in GROUP BY
SELECT COUNT(*) FROM input GROUP BY SUM(a), TumblingWindow(s, 5)
