-- Reference data inside a WITH step, joined with two reference inputs (one INNER, one
-- LEFT OUTER); the step's rows keep the stream's time, so the window counts them.
WITH enriched AS (
    SELECT e.Site, s.Region, k.Label
    FROM events e TIMESTAMP BY t
    JOIN Sites s ON e.Site = s.Site
    LEFT OUTER JOIN Kinds k ON k.Code = e.Kind
)
SELECT Region, Label, COUNT(*) AS Events, System.Timestamp() AS WindowEnd
INTO output
FROM enriched
GROUP BY Region, Label, TumblingWindow(minute, 1)
