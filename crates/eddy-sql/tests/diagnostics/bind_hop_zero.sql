-- checks: a hop of 0
SELECT COUNT(*) FROM input GROUP BY HoppingWindow(second, 10, 0)
