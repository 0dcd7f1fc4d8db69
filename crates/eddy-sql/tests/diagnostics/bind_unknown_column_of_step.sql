-- checks: a column an earlier step does not produce, with a suggestion
WITH readings AS (
    SELECT DeviceId AS Device, Temperature AS Temp FROM input
)
SELECT Device, Temp FROM readings WHERE Tmp > 30
