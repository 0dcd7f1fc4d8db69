-- Nexmark q3 (local item suggestion): people in Oregon, Idaho or California who put up an
-- auction in category 10.
-- Original: SELECT P.name, P.city, P.state, A.id FROM auction A INNER JOIN person P
--   ON A.seller = P.id WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca').
-- Mapping: the original is an unbounded join; ASA requires a time bound between two streams,
-- so the person may be up to one hour before or after the auction. Generated data sets
-- shorter than one hour of event time (10 M events at the default 10 000 events/s) give the
-- original's result; longer ones drop matches more than an hour apart.
SELECT P.name, P.city, P.state, A.id
INTO output
FROM auction A TIMESTAMP BY dateTime
JOIN person P TIMESTAMP BY dateTime
  ON A.seller = P.id AND DATEDIFF(millisecond, A, P) BETWEEN -3600000 AND 3600000
WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')
