SELECT plate, COUNT(*) OVER (PARTITION BY plate) AS seen
FROM input
