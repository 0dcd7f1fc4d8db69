-- checks: TumblingWindow with a unit but no size
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(minute)
