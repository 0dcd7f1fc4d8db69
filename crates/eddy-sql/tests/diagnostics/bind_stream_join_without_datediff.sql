-- checks: a stream JOIN needs a DATEDIFF bound
SELECT * FROM a
JOIN b ON a.id = b.id
