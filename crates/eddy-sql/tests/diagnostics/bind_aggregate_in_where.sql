-- checks: aggregates are not allowed in WHERE
SELECT k FROM input WHERE COUNT(*) > 1 GROUP BY k, TumblingWindow(s, 5)
