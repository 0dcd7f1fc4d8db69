-- checks: a window nested inside a GROUP BY expression
SELECT COUNT(*) FROM input GROUP BY k + TumblingWindow(s, 1)
