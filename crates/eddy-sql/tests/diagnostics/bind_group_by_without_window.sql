-- checks: GROUP BY on a stream needs a window
SELECT k, COUNT(*) FROM input GROUP BY k
