-- checks: the Duration(...) syntax with a wrong name
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(Size(minute, 5))
