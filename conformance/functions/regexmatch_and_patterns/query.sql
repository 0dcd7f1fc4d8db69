-- REGEXMATCH: 1-based position of the first match, case-insensitive, 0 when none or when
-- the pattern is invalid, NULL for NULL. PATINDEX and LIKE take LIKE patterns: % _ [set]
-- [^set] [a-z]; LIKE compares case-sensitively.
SELECT
    plate,
    REGEXMATCH(plate, '[0-9][0-9][0-9]') AS digits3,
    REGEXMATCH(plate, 'abc') AS abc_any_case,
    REGEXMATCH(plate, '(') AS invalid,
    PATINDEX('%[0-9]%', plate) AS first_digit,
    PATINDEX('c%', plate) AS starts_c,
    plate LIKE '[A-C]%' AS upper_a_to_c,
    plate LIKE '[^a-z]%' AS not_lower,
    plate LIKE '_a_' AS three_a,
    plate NOT LIKE '%-%' AS no_dash,
    plate LIKE 'abc%' AS lower_abc
FROM input
