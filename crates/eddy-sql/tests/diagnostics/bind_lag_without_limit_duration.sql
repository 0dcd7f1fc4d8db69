-- checks: LAG without LIMIT DURATION says how to bound it
SELECT LAG(reading) OVER (PARTITION BY sensorId) AS previous FROM input
