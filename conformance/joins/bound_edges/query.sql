-- DATEDIFF in a join bound is elapsed time: b may be from 2 s before to 3 s after a,
-- both ends included. Counting crossed second boundaries would also let in b ids 1
-- and 4 (2.001 s before and 3.001 s after).
SELECT a.k, b.id, System.Timestamp() AS at
INTO output
FROM a TIMESTAMP BY t
JOIN b TIMESTAMP BY t
ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN -2 AND 3
