-- Sessions per key with a 3 s timeout: a's readings 2 s apart form one session; b's two are 6 s apart.
-- Every aggregate: all but COUNT(*) ignore the NULL reading; ORDER BY ties keep arrival order.
SELECT k, COUNT(*) AS n, COUNT(v) AS nv, COUNT(DISTINCT v) AS nd, SUM(v) AS total, AVG(v) AS mean,
       MIN(v) AS low, MAX(v) AS high, STDEV(v) AS sd, STDEVP(v) AS sdp, VAR(v) AS var, VARP(v) AS varp,
       Percentile_Cont(0.5) OVER (ORDER BY v) AS pcont, Percentile_Disc(0.5) OVER (ORDER BY v) AS pdisc,
       TopOne() OVER (ORDER BY v DESC) AS top, Collect(v) AS vs, CollectTop(2, v) OVER (ORDER BY v DESC) AS top2,
       System.Timestamp() AS WindowEnd
INTO output
FROM s TIMESTAMP BY t
GROUP BY k, SessionWindow(second, 3, 20) OVER (PARTITION BY k)
