-- checks: an unclosed string literal
SELECT 'abc FROM input
