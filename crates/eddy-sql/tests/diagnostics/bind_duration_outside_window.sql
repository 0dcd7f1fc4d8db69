-- checks: Duration(...) is only a window argument
SELECT Duration(minute, 5) FROM input
