-- checks: HAVING may only use keys and aggregates
SELECT k, COUNT(*) FROM input GROUP BY k, TumblingWindow(s, 10) HAVING v > 1
