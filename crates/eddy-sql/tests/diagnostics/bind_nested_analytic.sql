-- checks: an analytic function inside another's arguments
SELECT LAG(LAST(reading) OVER (LIMIT DURATION(hour, 1))) OVER (LIMIT DURATION(hour, 1)) AS x
FROM input
