-- checks: a WHERE where FROM should be
SELECT a, b
WHERE a > 1
