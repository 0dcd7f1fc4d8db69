-- Two WITH steps, the second reading the first, feeding two outputs; a step read by two
-- statements delivers every row to each.
WITH celsius AS (
    SELECT dev, temp, CAST(temp AS float) * 1.8 + 32 AS fahrenheit
    FROM input TIMESTAMP BY t
),
hot AS (
    SELECT dev, fahrenheit FROM celsius WHERE temp > 30
)
SELECT dev, fahrenheit INTO alerts FROM hot

SELECT dev, COUNT(*) AS readings, MAX(fahrenheit) AS max_f, System.Timestamp() AS window_end
INTO summary
FROM celsius
GROUP BY dev, TumblingWindow(second, 10)

SELECT COUNT(*) AS hot_readings, System.Timestamp() AS window_end
INTO summary
FROM hot
GROUP BY TumblingWindow(second, 10)
