-- Arrays (0-based GetArrayElement, NULL past the end), records (dotted paths,
-- GetRecordPropertyValue with a path), bracketed names with spaces, and the input alias
-- as a prefix.
SELECT
    GetArrayElement(a, 1) AS second,
    GetArrayElement(a, 5) AS past_end,
    GetArrayLength(a) AS length,
    GetRecordPropertyValue(r, 'n.m') AS by_path,
    r.n.m AS dotted,
    r.[a b] AS bracketed,
    [my field] AS spaced,
    input.r.x AS prefixed,
    GetType(a) AS array_type,
    GetType(r) AS record_type
FROM input
