-- checks: a misspelled aggregate in a grouped query
SELECT k, CONT(*) FROM input GROUP BY k, TumblingWindow(s, 10)
