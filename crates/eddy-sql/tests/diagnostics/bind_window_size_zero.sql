-- checks: a window of size 0
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(second, 0)
