-- checks: a step cannot read itself
WITH a AS (SELECT * FROM a)
SELECT * FROM a
