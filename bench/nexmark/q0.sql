-- Nexmark q0 (pass-through): every bid, unchanged; measures the cost of reading and writing.
-- Original (Flink Nexmark suite): SELECT auction, bidder, price, dateTime, extra FROM bid.
-- Mapping: identical; TIMESTAMP BY dateTime plays the part of the original's event-time watermark.
SELECT auction, bidder, price, dateTime, extra
INTO output
FROM bid TIMESTAMP BY dateTime
