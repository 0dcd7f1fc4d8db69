-- Windows are (start, end] for every kind. Hopping windows of 4 s every 2 s: the event at
-- 00:00:04 exactly is in the windows ending 00:00:04 and 00:00:06, not 00:00:08. Sliding
-- windows of 4 s: the event at 00:00:00 leaves at 00:00:04, the instant the next enters.
SELECT System.Window().Id AS W, COUNT(*) AS Events, Collect(v) AS Values, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Windows(Window('hopping', HoppingWindow(second, 4, 2)), Window('sliding', SlidingWindow(second, 4)))
