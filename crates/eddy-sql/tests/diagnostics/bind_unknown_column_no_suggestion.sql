-- checks: an unknown column with nothing close lists the known columns only
CREATE TABLE input (a bigint, b bigint);

SELECT a FROM input TIMESTAMP BY whenever
