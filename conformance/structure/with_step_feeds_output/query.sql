WITH Fast AS (
    SELECT CarId, Speed FROM cars TIMESTAMP BY t WHERE Speed > 100
)
SELECT COUNT(*) AS Speeders, MAX(Speed) AS Top, System.Timestamp() AS WindowEnd
INTO output
FROM Fast
GROUP BY TumblingWindow(minute, 1)
