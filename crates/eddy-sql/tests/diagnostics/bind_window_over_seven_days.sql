-- checks: windows are limited to 7 days
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(day, 8)
