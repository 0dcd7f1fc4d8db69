-- checks: ORDER BY on a stream; the help explains
SELECT a FROM input ORDER BY a
