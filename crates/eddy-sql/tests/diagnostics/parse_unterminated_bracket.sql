-- checks: an unclosed bracketed name
SELECT [my field FROM input
