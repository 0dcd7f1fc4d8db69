-- PARTITION BY PartitionId (ASA's parallel query shape) with the partition in GROUP BY:
-- eddy run reads each file as partition 0, so the result is the unpartitioned one.
SELECT PartitionId, dev, SUM(v) AS total, System.Timestamp() AS window_end
FROM input PARTITION BY PartitionId TIMESTAMP BY t
GROUP BY PartitionId, dev, TumblingWindow(second, 10)
