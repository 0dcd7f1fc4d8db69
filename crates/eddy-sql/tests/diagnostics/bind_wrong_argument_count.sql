-- checks: SUM takes exactly one argument
SELECT k, SUM(a, b) FROM input GROUP BY k, TumblingWindow(s, 10)
