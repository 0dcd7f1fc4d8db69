-- Unpaid orders come out with a NULL payment once their 10-second bound has passed,
-- stamped with that instant, in time order with the matched rows.
SELECT o.id, p.amount, System.Timestamp() AS at
INTO output
FROM orders o TIMESTAMP BY t
LEFT OUTER JOIN payments p TIMESTAMP BY t
ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10
