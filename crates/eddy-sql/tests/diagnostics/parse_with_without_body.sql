-- checks: WITH steps must be followed by a SELECT
WITH step1 AS (SELECT a FROM input)
