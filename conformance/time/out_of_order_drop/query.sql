-- Out-of-order tolerance 0 s with Drop: event 3 (02 s, after 03 s was seen) is dropped
-- and counted.
SELECT id, t, System.Timestamp() AS ts
FROM input TIMESTAMP BY t
