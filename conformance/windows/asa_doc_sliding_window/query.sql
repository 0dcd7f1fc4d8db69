-- The sliding-window example of the SlidingWindow reference page: events A, B and C at
-- 34, 38 and 42 seconds in a 5-second sliding window give rows at 34 (A enters),
-- 38 (B enters), 39 (A leaves), 42 (C enters) and 43 (B leaves); none at 47, where C
-- leaves an empty window.
SELECT System.Timestamp() AS WindowEnd, COUNT(*) AS Events, Collect(Name) AS Names
INTO output
FROM input TIMESTAMP BY Time
GROUP BY SlidingWindow(second, 5)
