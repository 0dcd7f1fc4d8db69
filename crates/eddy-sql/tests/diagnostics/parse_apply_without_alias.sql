-- checks: CROSS APPLY needs an alias
SELECT * FROM input CROSS APPLY GetArrayElements(input.arr)
