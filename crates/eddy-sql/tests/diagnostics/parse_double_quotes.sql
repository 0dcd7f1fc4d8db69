-- checks: double quotes are not strings; the help says what to use
SELECT a FROM input WHERE b = "x"
