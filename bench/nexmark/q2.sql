-- Nexmark q2 (selection): the bids on a set of auctions, here every 123rd auction id.
-- Original: SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0.
-- Mapping: identical; ASA writes MOD as the % operator.
SELECT auction, price
INTO output
FROM bid TIMESTAMP BY dateTime
WHERE auction % 123 = 0
