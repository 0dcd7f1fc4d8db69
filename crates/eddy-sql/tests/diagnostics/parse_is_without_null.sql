-- checks: IS followed by something other than [NOT] NULL
SELECT a FROM input WHERE a IS 5
