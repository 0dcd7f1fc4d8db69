-- CREATE TABLE converts the declared columns; a row that does not convert ('x' as
-- bigint, 'nope' as datetime) is dropped, counted and logged; NULL converts to NULL.
-- The query may read only declared columns (and metadata such as PartitionId).
CREATE TABLE input (id bigint, v float, ts datetime, ok bit);

SELECT id, v, ts, ok, GetType(id) AS id_type,
       GetType(ts) AS ts_type, GetType(ok) AS ok_type
FROM input
