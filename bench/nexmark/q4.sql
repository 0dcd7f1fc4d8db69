-- Nexmark q4 (average price per category): the average winning bid of the auctions of
-- each category.
-- Original: SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final, A.category
--   FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
--   GROUP BY A.id, A.category) Q GROUP BY Q.category.
-- Mapping: the original keeps one ever-updating (retracting) result per category; ASA has
-- no retractions and GROUP BY needs a window, so both steps use 10-second tumbling windows:
-- `winning` is the highest valid bid per auction per window (a bid joins its auction for at
-- most one hour, and only until the auction expires), and the output is the average of
-- those per category per window. A join row carries the later event's time (the bid's).
-- The bound is in milliseconds: DATEDIFF(second, ...) truncates, and would admit bids up
-- to 999 ms before their auction (the generator bids on auctions a little ahead of time).
WITH winning AS (
  SELECT A.id, A.category, MAX(B.price) AS final
  FROM auction A TIMESTAMP BY dateTime
  JOIN bid B TIMESTAMP BY dateTime
    ON A.id = B.auction AND DATEDIFF(millisecond, A, B) BETWEEN 0 AND 3600000
  WHERE CAST(B.dateTime AS datetime) <= CAST(A.expires AS datetime)
  GROUP BY A.id, A.category, TumblingWindow(second, 10)
)
SELECT category, AVG(final) AS avg_final
INTO output
FROM winning
GROUP BY category, TumblingWindow(second, 10)
