-- checks: RIGHT joins are not supported
SELECT * FROM a RIGHT JOIN b ON a.x = b.x
