SELECT
    deviceid,
    reading,
    ISFIRST(mi, 10) OVER (PARTITION BY deviceid WHEN reading > 50 AND devicetype = 'thermostat') AS firstAbove,
    ISFIRST(mi, 10) OVER (PARTITION BY deviceid WHEN reading < 50 AND devicetype = 'thermostat') AS firstUnder
FROM input TIMESTAMP BY t
WHERE
    devicetype = 'thermostat'
