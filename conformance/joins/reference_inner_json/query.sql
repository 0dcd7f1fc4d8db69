-- Reference data join (no time bound): vehicles whose registration has expired. The
-- joined event keeps the stream's time.
SELECT I1.EntryTime, I1.LicensePlate, I1.TollId, R.RegistrationId, System.Timestamp() AS at
INTO output
FROM Input1 I1 TIMESTAMP BY EntryTime
JOIN Registration R
ON I1.LicensePlate = R.LicensePlate
WHERE R.Expired = '1'
