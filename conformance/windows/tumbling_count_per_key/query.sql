SELECT TollId, COUNT(*) AS Cars, SUM(Toll) AS Tolls, System.Timestamp() AS WindowEnd
INTO output
FROM tolls TIMESTAMP BY EntryTime
GROUP BY TollId, TumblingWindow(minute, 5)
