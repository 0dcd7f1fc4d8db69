-- checks: an integer literal that does not fit a bigint
SELECT 99999999999999999999 FROM input
