-- checks: a column missing from the input's CREATE TABLE schema, with a suggestion
CREATE TABLE input (DeviceId nvarchar(max), Temperature float);

SELECT DeviceId, Temperatur
FROM input
