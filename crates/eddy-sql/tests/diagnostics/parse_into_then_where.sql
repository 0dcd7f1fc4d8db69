-- checks: FROM must follow INTO
SELECT a INTO out WHERE a > 1
