-- TIMESTAMP BY takes any expression: epoch milliseconds through DATEADD, and CASE
-- falling back to an ISO-8601 string with an offset (normalised to UTC).
SELECT id, System.Timestamp() AS ts
FROM input TIMESTAMP BY CASE
    WHEN ms IS NOT NULL THEN DATEADD(millisecond, ms, '1970-01-01T00:00:00Z')
    ELSE local
END
