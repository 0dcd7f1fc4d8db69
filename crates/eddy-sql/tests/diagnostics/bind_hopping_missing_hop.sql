-- checks: HoppingWindow without a hop
SELECT COUNT(*) FROM input GROUP BY HoppingWindow(minute, 10)
