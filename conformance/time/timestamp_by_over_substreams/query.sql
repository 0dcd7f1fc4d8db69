-- TIMESTAMP BY ... OVER dev: each device has its own watermark, so device b's clock a
-- minute behind neither holds back device a nor makes b's events out of order (with a
-- shared watermark, b's events would be adjusted to a's time). Rows come out per key in
-- time order.
SELECT dev, COUNT(*) AS n, System.Timestamp() AS window_end
FROM input TIMESTAMP BY t OVER dev
GROUP BY dev, TumblingWindow(second, 10)
