CREATE TABLE input (plate nvarchar(max), t datetime);

SELECT plat
FROM input TIMESTAMP BY t
