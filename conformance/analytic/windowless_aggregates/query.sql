-- Windowless aggregates: each event gets the aggregate over the matching events of its
-- partition within LIMIT DURATION before it, itself included. NULLs are ignored (SUM of
-- nothing is NULL); WHEN limits the events counted; a float makes SUM float.
SELECT
    k, v,
    SUM(v) OVER (PARTITION BY k LIMIT DURATION(second, 7)) AS sum_k,
    AVG(v) OVER (PARTITION BY k LIMIT DURATION(second, 7)) AS avg_k,
    COUNT(*) OVER (LIMIT DURATION(second, 7)) AS events_7s,
    COUNT(v) OVER (LIMIT DURATION(hour, 1)) AS values_1h,
    MIN(v) OVER (LIMIT DURATION(hour, 1)) AS min_1h,
    MAX(v) OVER (LIMIT DURATION(second, 7) WHEN v > 1) AS max_above_1
FROM input TIMESTAMP BY t
