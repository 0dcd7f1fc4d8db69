-- Types belong to values: bigint and float compare with each other; strings compare
-- ordinally and case-sensitively (= < IN LIKE); a datetime compares with an ISO-8601
-- string; CAST fails the row on a bad value, TRY_CAST gives NULL; CAST(float AS bigint)
-- truncates.
SELECT
    (i = f) AS int_equals_float,
    i > f AS int_above_float,
    (s = 'abc') AS equals_lower,
    s < 'a' AS sorts_before_a,
    s IN ('abc', 'ABC') AS in_list,
    CAST(d AS datetime) > '2024-03-01T00:00:00Z' AS after_march,
    TRY_CAST(n AS bigint) AS try_bigint,
    CAST(f AS bigint) AS float_to_bigint,
    CAST(i AS float) AS bigint_to_float,
    CAST(i AS nvarchar(max)) AS bigint_to_string,
    CAST(d AS datetime) AS string_to_datetime,
    CAST(i AS bit) AS bigint_to_bit,
    GetType(f) AS float_type
FROM input
