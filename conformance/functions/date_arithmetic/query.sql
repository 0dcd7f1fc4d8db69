-- DATENAME, DAY/MONTH/YEAR, DATEADD (month ends clamp), DATEDIFF (boundaries crossed)
-- and DATETIMEFROMPARTS.
SELECT
    DATENAME(month, t) AS month_name,
    DATENAME(weekday, t) AS weekday_name,
    DATENAME(year, t) AS year_name,
    DAY(t) AS day, MONTH(t) AS month, YEAR(t) AS year,
    DATEADD(day, 30, t) AS plus_30_days,
    DATEADD(month, -2, t) AS minus_2_months,
    DATEADD(mm, 1, '2024-01-31T10:00:00Z') AS month_end_clamped,
    DATEADD(hh, 1, t) AS plus_1_hour,
    DATEDIFF(day, t, '2024-12-25T00:00:00Z') AS days_to_xmas,
    DATEDIFF(month, t, '2024-12-25T00:00:00Z') AS months_to_xmas,
    DATEDIFF(year, '2023-12-31T23:59:59Z', '2024-01-01T00:00:00Z') AS year_boundary,
    DATEDIFF(second, '2024-01-01T00:00:00Z', t) AS seconds_since_2024,
    DATETIMEFROMPARTS(2024, 2, 29, 23, 59, 58, 250) AS from_parts
FROM input
