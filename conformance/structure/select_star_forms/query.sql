-- input.* copies every field of the event, record.* expands a record's fields into
-- columns; both mix with ordinary columns.
SELECT input.*, id AS again, rec.*
FROM input
