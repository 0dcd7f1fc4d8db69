-- checks: qualified columns of a step are checked after the alias is stripped
WITH s AS (SELECT id AS ident FROM input)
SELECT x.ident, x.idnt FROM s AS x
