-- checks: LIMIT DURATION checks its unit
SELECT LAG(a) OVER (LIMIT DURATION(mins, 5)) FROM input
