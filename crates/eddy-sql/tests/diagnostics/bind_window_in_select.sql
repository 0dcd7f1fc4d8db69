-- checks: a window function outside GROUP BY
SELECT TumblingWindow(minute, 1) FROM input
