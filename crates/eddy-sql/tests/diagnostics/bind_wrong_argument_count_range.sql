-- checks: SUBSTRING takes three arguments
SELECT SUBSTRING(name, 1) FROM input
