-- checks: ISFIRST checks its unit
SELECT ISFIRST(hours, 1) OVER (PARTITION BY k) FROM input
