-- checks: line and column are right several lines down
SELECT
    a,
    b +
FROM input
