-- Join keys compare by value and type: a number never equals a string (CSV values are
-- strings), so the first join finds nothing until the key is cast; an integral float
-- equals the bigint.
SELECT e.SiteId, s.Name AS ByString, c.Name AS ByNumber
INTO output
FROM events e TIMESTAMP BY t
LEFT OUTER JOIN Sites s ON e.SiteId = s.Id
LEFT OUTER JOIN Sites c ON e.SiteId = CAST(c.Id AS bigint)
