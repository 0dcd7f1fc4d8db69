-- Analytic functions run once per input event, before CROSS APPLY expands it: every
-- element row of one event has the same LAG and COUNT, and the event with no elements
-- (no rows) still counts.
SELECT s.id, e.ArrayValue AS tag,
    LAG(s.id) OVER (LIMIT DURATION(minute, 1)) AS prev_id,
    COUNT(*) OVER (LIMIT DURATION(minute, 1)) AS seen
FROM input s TIMESTAMP BY t
CROSS APPLY GetArrayElements(s.tags) AS e
