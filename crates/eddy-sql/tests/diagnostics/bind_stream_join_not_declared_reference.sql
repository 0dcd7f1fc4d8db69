-- checks: a join with an input not declared as reference data still needs a bound
-- references: Zones
SELECT e.Value, s.Name FROM events e
JOIN Sites s ON e.SiteId = s.Id
