-- checks: CASE without any WHEN
SELECT CASE a ELSE 1 END FROM input
