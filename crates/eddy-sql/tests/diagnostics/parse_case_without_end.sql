-- checks: CASE without END
SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' FROM input
