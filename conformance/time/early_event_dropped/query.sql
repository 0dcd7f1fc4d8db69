-- Events whose time is more than 5 minutes ahead of their arrival are dropped and
-- counted as early, whatever the policy action: events 2 and 3 are exactly 5 minutes
-- ahead and stay; event 4 is 5 min 59 s ahead and is dropped.
SELECT id, System.Timestamp() AS ts
FROM input TIMESTAMP BY t
