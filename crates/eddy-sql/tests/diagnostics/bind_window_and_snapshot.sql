-- checks: a window and a snapshot together are two windows
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(minute, 1), System.Timestamp()
