-- checks: the offset must be smaller than the size
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(second, 10, 10)
