-- The longest window is 7 days; 169 hours is rejected with the size underlined.
SELECT COUNT(*) AS Events
INTO output
FROM s TIMESTAMP BY t
GROUP BY HoppingWindow(Duration(hour, 169), Hop(hour, 1))
