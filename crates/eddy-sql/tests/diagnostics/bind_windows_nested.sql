-- checks: Windows(...) cannot be nested
SELECT COUNT(*) FROM input
GROUP BY Windows(TumblingWindow(minute, 1), Windows(SlidingWindow(minute, 5)))
