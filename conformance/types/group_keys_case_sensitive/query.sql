-- String values compare case-sensitively, so GROUP BY keeps 'Volvo' and 'volvo' apart
-- (names of fields, inputs and outputs are case-insensitive; values are not).
SELECT make, COUNT(*) AS n
FROM input TIMESTAMP BY t
GROUP BY make, TumblingWindow(second, 10)
