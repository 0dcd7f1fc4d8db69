-- Out-of-order tolerance 2 s: event 3 is within it, so it is buffered and re-sorted to
-- its own time, before event 2.
SELECT id, System.Timestamp() AS ts
FROM input TIMESTAMP BY t
