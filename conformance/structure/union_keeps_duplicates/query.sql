-- UNION keeps duplicates (it is UNION ALL in T-SQL terms).
SELECT id FROM input
UNION
SELECT id FROM input
