-- checks: the 7-day limit in the Duration(...) syntax
SELECT COUNT(*) FROM input
GROUP BY HoppingWindow(Duration(hour, 200), Hop(hour, 1))
