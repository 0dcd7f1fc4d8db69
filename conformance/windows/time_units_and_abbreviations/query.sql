-- Every time unit and abbreviation, each spelling a one-minute tumbling window (and a
-- day, an hour and a 7-day window, the longest allowed): all give the same counts.
SELECT System.Window().Id AS Unit, COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY Windows(
    Window('minute', TumblingWindow(minute, 1)),
    Window('mi', TumblingWindow(mi, 1)),
    Window('n', TumblingWindow(n, 1)),
    Window('second', TumblingWindow(second, 60)),
    Window('ss', TumblingWindow(ss, 60)),
    Window('s', TumblingWindow(s, 60)),
    Window('millisecond', TumblingWindow(millisecond, 60000)),
    Window('ms', TumblingWindow(ms, 60000)),
    Window('microsecond', TumblingWindow(microsecond, 60000000)),
    Window('mcs', TumblingWindow(mcs, 60000000)),
    Window('hour', TumblingWindow(hour, 1)),
    Window('hh', TumblingWindow(hh, 1)),
    Window('day', TumblingWindow(day, 1)),
    Window('dd', TumblingWindow(dd, 1)),
    Window('d', TumblingWindow(d, 1)),
    Window('7 days', TumblingWindow(d, 7)))
