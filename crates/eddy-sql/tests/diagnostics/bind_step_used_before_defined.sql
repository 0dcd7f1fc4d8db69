-- checks: a step read before its definition
WITH a AS (SELECT * FROM b),
     b AS (SELECT * FROM input)
SELECT * FROM a
