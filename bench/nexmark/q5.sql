-- Nexmark q5 (hot items): the auctions with the most bids in each 10-second window,
-- every 2 seconds.
-- Original: counts per auction over HOP(bid, dateTime, 2 s, 10 s), joined with the maximum
--   count of the same window, keeping counts >= that maximum; outputs auction, num.
-- Mapping: `counts` is the hopping count; `maxes` takes the maximum over the counts of one
-- window: they all carry the window end as their time, so a 2-second tumbling window holds
-- exactly one hopping window's counts. The join matches rows with the same time
-- (DATEDIFF 0). Windows are ASA's (start, end] where Flink's are [start, end).
WITH counts AS (
  SELECT auction, COUNT(*) AS num
  FROM bid TIMESTAMP BY dateTime
  GROUP BY auction, HoppingWindow(second, 10, 2)
),
maxes AS (
  SELECT MAX(num) AS maxn
  FROM counts
  GROUP BY TumblingWindow(second, 2)
)
SELECT C.auction, C.num
INTO output
FROM counts C
JOIN maxes M ON DATEDIFF(second, C, M) BETWEEN 0 AND 0
WHERE C.num >= M.maxn
