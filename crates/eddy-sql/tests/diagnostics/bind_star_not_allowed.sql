-- checks: only COUNT and LAG take *
SELECT SUM(*) FROM input GROUP BY TumblingWindow(s, 1)
