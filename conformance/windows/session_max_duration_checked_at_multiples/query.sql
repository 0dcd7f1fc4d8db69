-- Timeout 5 minutes, maximum duration 10 minutes, written with the named arguments and
-- the short name. Events every 3 minutes keep the session alive; the maximum is checked
-- at multiples of 10 minutes (00:10, 00:20, ...): at 00:10 the session (open since
-- 00:01) has lasted 9 minutes, at 00:20 it has lasted 19, so it closes at 00:20 and a new
-- one opens there. That one lasts exactly 10 minutes at 00:30 (not more), and ends by
-- timeout at 00:39, 5 minutes after its last event.
SELECT COUNT(*) AS Events, System.Timestamp() AS SessionEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Session(Timeout(minute, 5), MaxDuration(minute, 10))
