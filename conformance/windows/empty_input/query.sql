-- No events, no windows: nothing is written for any window kind.
SELECT COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Windows(TumblingWindow(second, 10), HoppingWindow(second, 10, 5), SlidingWindow(second, 10), SessionWindow(second, 5, 10))
