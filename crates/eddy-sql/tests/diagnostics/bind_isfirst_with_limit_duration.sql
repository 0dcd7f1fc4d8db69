-- checks: ISFIRST rejects LIMIT DURATION, its interval being its arguments
SELECT ISFIRST(minute, 10) OVER (PARTITION BY sensorId LIMIT DURATION(hour, 1)) AS first FROM input
