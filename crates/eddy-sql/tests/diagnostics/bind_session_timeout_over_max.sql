-- checks: a session timeout larger than its maximum duration
SELECT COUNT(*) FROM input GROUP BY SessionWindow(minute, 10, 5)
