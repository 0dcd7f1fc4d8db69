-- checks: BETWEEN without AND
SELECT a FROM input WHERE a BETWEEN 1 OR 2
