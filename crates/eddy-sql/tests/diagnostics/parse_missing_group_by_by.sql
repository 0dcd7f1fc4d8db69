-- checks: GROUP without BY
SELECT COUNT(*) FROM input GROUP TumblingWindow(minute, 1)
