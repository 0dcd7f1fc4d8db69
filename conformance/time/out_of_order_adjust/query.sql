-- Out-of-order tolerance 0 s with Adjust: event 3 (02 s, after 03 s was seen) keeps its
-- payload and is stamped with its partition's watermark, 03 s.
SELECT id, t, System.Timestamp() AS ts
FROM input TIMESTAMP BY t
