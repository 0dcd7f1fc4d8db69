-- checks: the check looks inside expressions
SELECT k, COUNT(*) + v AS x FROM input GROUP BY k, TumblingWindow(s, 10)
