-- checks: LIMIT in OVER must be LIMIT DURATION(...)
SELECT LAG(a) OVER (LIMIT 5) FROM input
