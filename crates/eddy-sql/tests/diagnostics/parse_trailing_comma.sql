-- checks: a trailing comma in the SELECT list
SELECT a,
FROM input
