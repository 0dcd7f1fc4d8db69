-- checks: Windows(...) ids are unique, case-insensitively
SELECT COUNT(*) FROM input
GROUP BY Windows(Window('a', TumblingWindow(s, 1)), Window('A', TumblingWindow(s, 2)))
