-- checks: TIMESTAMP without BY
SELECT a FROM input TIMESTAMP ts
