-- checks: UNION branches write to one output
SELECT a INTO o1 FROM x
UNION
SELECT a INTO o2 FROM y
