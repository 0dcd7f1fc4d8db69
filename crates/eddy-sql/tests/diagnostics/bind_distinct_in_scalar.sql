-- checks: DISTINCT inside a scalar function
SELECT UPPER(DISTINCT a) FROM input
