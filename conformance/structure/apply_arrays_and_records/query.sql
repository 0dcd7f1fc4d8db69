-- CROSS APPLY GetArrayElements gives one row per element (ArrayIndex, ArrayValue);
-- OUTER APPLY also keeps the event with an empty array, with NULLs; GetRecordProperties
-- gives PropertyName and PropertyValue. Two APPLY statements feed one output.
SELECT input.id, t.ArrayIndex, t.ArrayValue, NULL AS PropertyName, NULL AS PropertyValue
FROM input OUTER APPLY GetArrayElements(input.tags) AS t

SELECT input.id, NULL AS ArrayIndex, NULL AS ArrayValue, p.PropertyName, p.PropertyValue
FROM input CROSS APPLY GetRecordProperties(input.rec) AS p
