-- checks: SELECT * in a grouped query
SELECT * FROM input GROUP BY k, TumblingWindow(s, 10)
