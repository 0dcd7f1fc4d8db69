-- DATEPART with every date part and abbreviation of the ASA reference. Weeks start on
-- Sunday and week 1 holds January 1st; weekday 1 is Sunday (2024-03-05 is a Tuesday).
SELECT
    DATEPART(year, t) AS year, DATEPART(yy, t) AS yy, DATEPART(yyyy, t) AS yyyy,
    DATEPART(quarter, t) AS quarter, DATEPART(qq, t) AS qq, DATEPART(q, t) AS q,
    DATEPART(month, t) AS month, DATEPART(mm, t) AS mm, DATEPART(m, t) AS m,
    DATEPART(dayofyear, t) AS dayofyear, DATEPART(dy, t) AS dy, DATEPART(y, t) AS y,
    DATEPART(day, t) AS day, DATEPART(dd, t) AS dd, DATEPART(d, t) AS d,
    DATEPART(week, t) AS week, DATEPART(wk, t) AS wk, DATEPART(ww, t) AS ww,
    DATEPART(weekday, t) AS weekday, DATEPART(dw, t) AS dw, DATEPART(w, t) AS w,
    DATEPART(hour, t) AS hour, DATEPART(hh, t) AS hh,
    DATEPART(minute, t) AS minute, DATEPART(mi, t) AS mi, DATEPART(n, t) AS n,
    DATEPART(second, t) AS second, DATEPART(ss, t) AS ss, DATEPART(s, t) AS s,
    DATEPART(millisecond, t) AS millisecond, DATEPART(ms, t) AS ms,
    DATEPART(microsecond, t) AS microsecond, DATEPART(mcs, t) AS mcs
FROM input
