-- checks: INTO is not allowed inside a WITH step
WITH s AS (SELECT a INTO out FROM input)
SELECT * FROM s
