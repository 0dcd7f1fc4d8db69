-- checks: window sizes are integers
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(minute, 1.5)
