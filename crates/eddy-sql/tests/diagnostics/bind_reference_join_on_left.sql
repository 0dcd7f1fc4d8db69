-- checks: reference data cannot be the FROM source of a join
-- references: Sites
SELECT s.Name, e.Value FROM Sites s
JOIN events e ON s.Id = e.SiteId
