-- A TIMESTAMP BY value that is not a datetime (or an ISO-8601 string) drops that event,
-- with a warning naming the file line and a conversion-error count; the job goes on.
SELECT id, System.Timestamp() AS ts
FROM input TIMESTAMP BY t
