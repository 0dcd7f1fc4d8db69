-- checks: aggregates in HAVING also need a windowed GROUP BY
SELECT a FROM input HAVING COUNT(*) > 1
