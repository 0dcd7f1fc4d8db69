-- checks: Window(...) alone in GROUP BY
SELECT COUNT(*) FROM input GROUP BY Window('a', TumblingWindow(s, 1))
