-- checks: CROSS APPLY needs a function call
SELECT * FROM input CROSS APPLY other AS o
