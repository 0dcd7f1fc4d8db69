-- Collect() without an argument collects whole events; Collect(a + b) a projection.
-- CollectTop(n) OVER (ORDER BY x ASC, y DESC) ranks by several columns and returns
-- {rank, value} records whose value is the whole event.
SELECT Collect() AS AllEvents, Collect(a + b) AS Sums,
       CollectTop(2) OVER (ORDER BY a ASC, b DESC) AS Top2,
       System.Timestamp() AS WindowEnd
INTO output
FROM Input TIMESTAMP BY time
GROUP BY Tumbling(second, 10)
