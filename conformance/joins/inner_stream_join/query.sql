-- A payment matches an order with the same id paid 0 to 10 seconds after it.
SELECT o.id, p.amount, System.Timestamp() AS at
INTO output
FROM orders o TIMESTAMP BY t
JOIN payments p TIMESTAMP BY t
ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10
