-- checks: a character that is not part of the language
SELECT a # b FROM input
