-- COALESCE, NULLIF, simple and searched CASE, BETWEEN, IN (NULL when nothing matches and
-- a NULL is involved), bitwise operators and `alias = expr` in SELECT. Boolean
-- expressions are projected as bit (JSON true/false), ASA's type for them.
SELECT
    COALESCE(w, NULL, v) AS coalesce,
    NULLIF(v, 6) AS nullif_equal,
    NULLIF(v, 5) AS nullif_different,
    CASE v WHEN 6 THEN 'six' WHEN 2 THEN 'two' ELSE 'other' END AS simple_case,
    CASE WHEN v > 5 THEN 'big' END AS searched_case,
    v BETWEEN 1 AND 5 AS between_1_5,
    v NOT BETWEEN 1 AND 5 AS not_between,
    v IN (1, 6) AS in_list,
    w IN (1, 2) AS null_in_list,
    v NOT IN (2) AS not_in,
    v & 3 AS bit_and, v | 1 AS bit_or, v ^ 3 AS bit_xor, ~v AS bit_not,
    doubled = v * 2
FROM input
