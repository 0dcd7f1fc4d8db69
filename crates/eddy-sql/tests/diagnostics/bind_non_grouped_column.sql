-- checks: a column that is neither key nor aggregated
SELECT k, v, COUNT(*) FROM input GROUP BY k, TumblingWindow(s, 10)
