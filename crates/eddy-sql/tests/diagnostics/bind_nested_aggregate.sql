-- checks: aggregates cannot be nested
SELECT SUM(COUNT(*)) FROM input GROUP BY TumblingWindow(s, 1)
