#!/usr/bin/env python3
"""Reference results for the differential window test (crates/eddy/tests/differential.rs).

Reads NDJSON events {"k", "v", "ms"} and a window spec, and prints one JSON line per
(window end, key) with the aggregates DuckDB computes in batch. Windows are (start, end],
their ends multiples of the hop (the size for tumbling windows) since the epoch.

usage: windows_duckdb.py EVENTS.ndjson SIZE_MS HOP_MS
"""
import json
import sys

import duckdb

events, size, hop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect()
con.execute(f"CREATE TABLE e AS SELECT * FROM read_json('{events}', format='newline_delimited', columns={{'k': 'VARCHAR', 'v': 'BIGINT', 'ms': 'BIGINT'}})")
rows = con.execute(f"""
    WITH w AS (
        SELECT k, v, unnest(generate_series(CAST(ceil(ms / {hop}) AS BIGINT) * {hop}, ms + {size} - 1, {hop})) AS window_end
        FROM e
    )
    SELECT window_end, k, count(*), sum(v), min(v), max(v), avg(v), count(DISTINCT v), stddev_samp(v), var_pop(v)
    FROM w GROUP BY window_end, k ORDER BY window_end, k
""").fetchall()
for end, k, n, total, lo, hi, mean, distinct, stdev, varp in rows:
    print(json.dumps({"end": end, "k": k, "n": n, "sum": total, "min": lo, "max": hi,
                      "avg": mean, "distinct": distinct, "stdev": stdev, "varp": varp}))
