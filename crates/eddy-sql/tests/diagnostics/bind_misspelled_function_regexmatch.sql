-- checks: a misspelled function suggests the closest known one
SELECT REGEXMATHC(plate, '[0-9]+') AS m FROM input
