-- Sessions per user: a session opens at a user's first click, extends while the next
-- click comes within 2 minutes, and closes 2 minutes after the last one (stamped with
-- that instant). OVER (PARTITION BY UserId) gives each user sessions of their own.
SELECT UserId, COUNT(*) AS Clicks, MIN(CAST(Time AS datetime)) AS FirstClick, System.Timestamp() AS SessionEnd
INTO output
FROM clicks TIMESTAMP BY Time
GROUP BY UserId, SessionWindow(minute, 2, 60) OVER (PARTITION BY UserId)
