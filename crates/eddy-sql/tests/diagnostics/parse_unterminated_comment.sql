-- checks: an unclosed block comment
SELECT a /* note
FROM input
