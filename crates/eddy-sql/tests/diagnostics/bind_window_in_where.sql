-- checks: a window function in WHERE
SELECT a FROM input WHERE HoppingWindow(s, 10, 5) = 1
