SELECT DeviceId, Temp
INTO hot
FROM sensors TIMESTAMP BY t
WHERE Temp > 30

SELECT DeviceId, COUNT(*) AS Readings, AVG(Temp) AS AvgTemp, System.Timestamp() AS WindowEnd
INTO perdevice
FROM sensors TIMESTAMP BY t
GROUP BY DeviceId, TumblingWindow(minute, 1)
