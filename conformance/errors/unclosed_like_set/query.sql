SELECT plate
FROM input
WHERE plate LIKE '[A-C%'
