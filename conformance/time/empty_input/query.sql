-- An empty input: no rows, no error, exit 0.
SELECT COUNT(*) AS n, System.Timestamp() AS window_end
FROM input TIMESTAMP BY t
GROUP BY TumblingWindow(second, 10)
