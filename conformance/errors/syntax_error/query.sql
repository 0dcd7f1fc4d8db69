SELECT TollId, COUNT(*) AS Cars
INTO output
FROM tolls TIMESTAMP BY EntryTime
GROUP BY TollId TumblingWindow(minute, 5)
