-- checks: an extra word after the FROM source and its alias
SELECT a FROM input i extra
