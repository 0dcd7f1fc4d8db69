-- Analytic functions see each input event once, before the JOIN: LAG(o.id) runs on the
-- orders, LAG(p.amount) on the payments (matched or not), and every row an event joins
-- into carries its value. An unmatched order's row has no payment, so NULL there.
SELECT o.id, p.amount,
    LAG(o.id) OVER (LIMIT DURATION(minute, 1)) AS prev_order,
    LAG(p.amount) OVER (LIMIT DURATION(minute, 1)) AS prev_amount
INTO output
FROM orders o TIMESTAMP BY t
LEFT OUTER JOIN payments p TIMESTAMP BY t
ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10
