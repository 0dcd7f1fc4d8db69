-- Nexmark q8 (monitor new users): people who created an account and put up an auction in
-- the same 10-second window.
-- Original: SELECT P.id, P.name, P.starttime FROM (SELECT id, name, window_start AS starttime,
--   window_end AS endtime FROM TUMBLE(person, dateTime, 10 s) GROUP BY id, name, window_start,
--   window_end) P JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
--   FROM TUMBLE(auction, dateTime, 10 s) GROUP BY seller, window_start, window_end) A
--   ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime.
-- Mapping: both sides carry their window end as their time, so "same window" is DATEDIFF 0;
-- starttime is the window end minus 10 s. Windows are (start, end] where Flink's are [start, end).
WITH newPersons AS (
  SELECT id, name
  FROM person TIMESTAMP BY dateTime
  GROUP BY id, name, TumblingWindow(second, 10)
),
sellers AS (
  SELECT seller
  FROM auction TIMESTAMP BY dateTime
  GROUP BY seller, TumblingWindow(second, 10)
)
SELECT P.id, P.name, DATEADD(second, -10, System.Timestamp()) AS starttime
INTO output
FROM newPersons P
JOIN sellers A ON P.id = A.seller AND DATEDIFF(second, P, A) BETWEEN 0 AND 0
