-- checks: a reserved word as an alias needs brackets
SELECT a AS from FROM input
