-- Two streams cannot be joined without a DATEDIFF bound: Sites is not declared as
-- reference data here, so it is a stream.
SELECT e.Value, s.Name
INTO output
FROM events e TIMESTAMP BY t
JOIN Sites s ON e.SiteId = s.Id
