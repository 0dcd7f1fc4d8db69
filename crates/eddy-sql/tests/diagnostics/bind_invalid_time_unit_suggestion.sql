-- checks: a misspelled time unit gets a suggestion
SELECT COUNT(*) FROM input GROUP BY TumblingWindow(minutes, 5)
