-- checks: only one window per GROUP BY
SELECT COUNT(*) FROM input
GROUP BY TumblingWindow(minute, 1), HoppingWindow(minute, 10, 5)
