-- checks: a WITH step without AS
WITH step1 (SELECT a FROM input)
SELECT * FROM step1
