-- Windows(...) with ids: every event is aggregated in each listed window (tumbling,
-- hopping, sliding and session, long and short names), and each row carries its window's
-- id through System.Window().Id. Ids are case-insensitive names of the windows.
SELECT k, System.Window().Id AS WindowId, COUNT(*) AS Events, SUM(v) AS Total,
       System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY k, Windows(
    Window('tumbling 10s', TumblingWindow(second, 10)),
    Window('hopping 10s/5s', Hopping(second, 10, 5)),
    Window('sliding 5s', SlidingWindow(second, 5)),
    Window('session 3s', Session(second, 3, 30)))
