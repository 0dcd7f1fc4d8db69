-- Nexmark q7 (highest bid): the bids with the highest price of each 10-second window.
-- Original: SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B JOIN
--   (SELECT MAX(price) AS maxprice, window_end AS dateTime FROM TUMBLE(bid, dateTime, 10 s)
--   GROUP BY window_start, window_end) B1 ON B.price = B1.maxprice
--   WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime.
-- Mapping: the same join; `maxprice` rows carry the window end as their time, and a bid
-- belongs to the window (end - 10 s, end], i.e. 0 to 9 999 ms before it (event times are
-- whole milliseconds).
WITH maxprice AS (
  SELECT MAX(price) AS maxprice
  FROM bid TIMESTAMP BY dateTime
  GROUP BY TumblingWindow(second, 10)
)
SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
INTO output
FROM bid B TIMESTAMP BY dateTime
JOIN maxprice M
  ON B.price = M.maxprice AND DATEDIFF(millisecond, B, M) BETWEEN 0 AND 9999
