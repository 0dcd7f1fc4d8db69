-- --reference names an alias the query does not join.
SELECT e.Value, s.Name
INTO output
FROM events e TIMESTAMP BY t
JOIN Sites s ON e.SiteId = s.Id
