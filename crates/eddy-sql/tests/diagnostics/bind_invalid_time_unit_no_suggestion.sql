-- checks: an unknown time unit lists the valid ones
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(fortnight, 1)
