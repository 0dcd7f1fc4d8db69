-- A JOIN B JOIN C, each join with its own bound: b 0-10 s after a, then c 0-5 s after b
-- (LEFT OUTER: a matched pair without c comes out once b + 5 s has passed).
SELECT a.k, a.t AS at_a, b.t AS at_b, c.t AS at_c, System.Timestamp() AS at
INTO output
FROM A a TIMESTAMP BY t
JOIN B b TIMESTAMP BY t ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 10
LEFT OUTER JOIN C c TIMESTAMP BY t ON c.k = b.k AND DATEDIFF(second, b, c) BETWEEN 0 AND 5
