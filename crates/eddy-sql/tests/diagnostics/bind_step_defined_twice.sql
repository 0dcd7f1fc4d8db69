-- checks: two steps with one name (case-insensitive)
WITH a AS (SELECT * FROM input),
     A AS (SELECT * FROM input)
SELECT * FROM a
