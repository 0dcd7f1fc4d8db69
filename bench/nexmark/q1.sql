-- Nexmark q1 (currency conversion): every bid with its price converted from dollars to euros.
-- Original: SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid.
-- Mapping: identical; the product is a float (ASA has no DECIMAL), the original's is DECIMAL.
SELECT auction, bidder, 0.908 * price AS price, dateTime, extra
INTO output
FROM bid TIMESTAMP BY dateTime
