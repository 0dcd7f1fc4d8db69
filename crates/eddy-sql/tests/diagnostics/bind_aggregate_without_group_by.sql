-- checks: aggregates need a windowed GROUP BY
SELECT COUNT(*) FROM input
