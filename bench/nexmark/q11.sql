-- Nexmark q11 (user sessions): bids per bidder per session, a session ending after 10
-- seconds without a bid from that bidder.
-- Original: SELECT B.bidder, COUNT(*) AS bid_count, SESSION_START(B.dateTime, INTERVAL '10' SECOND)
--   AS starttime, SESSION_END(B.dateTime, INTERVAL '10' SECOND) AS endtime FROM bid B
--   GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND).
-- Mapping: OVER (PARTITION BY bidder) gives each bidder its own sessions, as Flink's keyed
-- session windows do; starttime is the first bid, endtime the window end (last bid + 10 s).
-- ASA requires a maximum duration: one hour, checked at whole hours, which generated data
-- sets (starting at 00:00:00Z, shorter than one hour) never reach.
SELECT bidder, COUNT(*) AS bid_count, MIN(CAST(dateTime AS datetime)) AS starttime,
       System.Timestamp() AS endtime
INTO output
FROM bid TIMESTAMP BY dateTime
GROUP BY bidder, SessionWindow(second, 10, 3600) OVER (PARTITION BY bidder)
