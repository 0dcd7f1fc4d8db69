-- checks: reference data has no event time
-- references: Sites
SELECT e.Value, s.Name FROM events e
JOIN Sites s TIMESTAMP BY s.Updated ON e.SiteId = s.Id
