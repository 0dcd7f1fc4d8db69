-- A reference file with a bad row is refused whole, naming the file and line.
SELECT e.Value, s.Name
INTO output
FROM events e TIMESTAMP BY t
JOIN Sites s ON e.SiteId = s.Id
