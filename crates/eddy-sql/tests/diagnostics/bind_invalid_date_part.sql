-- checks: DATEADD with a misspelled date part
SELECT DATEADD(minuts, 1, t) FROM input
