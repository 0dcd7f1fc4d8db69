-- The named-argument form with the short name: 10-minute windows every 5 minutes,
-- ending at 00:05, 00:10, 00:15, ... Each event is counted in the two windows holding it;
-- the event at 00:10 exactly belongs to the windows ending 00:10 and 00:15.
SELECT COUNT(*) AS Events, SUM(v) AS Total, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Hopping(Duration(minute, 10), Hop(minute, 5))
