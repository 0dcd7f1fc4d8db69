-- checks: CAST to a type the dialect does not have
SELECT CAST(a AS text) FROM input
