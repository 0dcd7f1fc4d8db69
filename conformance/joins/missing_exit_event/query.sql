-- The missing-event pattern: a car that entered a toll but did not exit within 15
-- minutes. It is reported when the bound has passed (entry + 15 min); car C exits at
-- exactly 15 minutes, which still counts.
SELECT e.TollId, e.LicensePlate, e.EntryTime, System.Timestamp() AS ReportedAt
INTO output
FROM Entry e TIMESTAMP BY EntryTime
LEFT OUTER JOIN [Exit] x TIMESTAMP BY ExitTime
ON e.TollId = x.TollId AND e.LicensePlate = x.LicensePlate
AND DATEDIFF(minute, e, x) BETWEEN 0 AND 15
WHERE x.ExitTime IS NULL
