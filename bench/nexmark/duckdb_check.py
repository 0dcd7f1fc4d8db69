#!/usr/bin/env python3
"""Reference results of the Nexmark queries (bench/nexmark/qN.sql), computed in batch by
DuckDB over the NDJSON files that `eddy-nexmark gen` writes.

Usage: duckdb_check.py <ndjson-dir> [q0,q1,...]
Prints one JSON object {"q0": [row, ...], ...}; each row is an object keyed by the output
column names of the eddy query. Datetimes are ISO-8601 UTC strings. Each query below
states the same semantics as its eddy version: windows are (start, end] and stamped with
their end, join bounds as in the .sql files.
"""
import json
import sys

import duckdb

TABLES = {
    "person": "dateTime VARCHAR, id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR,"
    " city VARCHAR, state VARCHAR, extra VARCHAR",
    "auction": "dateTime VARCHAR, id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT,"
    " reserve BIGINT, expires VARCHAR, seller BIGINT, category BIGINT, extra VARCHAR",
    "bid": "dateTime VARCHAR, auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR,"
    " url VARCHAR, extra VARCHAR",
}

# Milliseconds since the epoch of an ISO-8601 'Z' string.
MS = "epoch_ms(CAST({} AS TIMESTAMP))"


def iso(ms_expr):
    """SQL formatting epoch milliseconds as ASA's datetime text."""
    return f"strftime(make_timestamp(({ms_expr}) * 1000), '%Y-%m-%dT%H:%M:%S.%f') || '0Z'"


def window_end(ms, size_ms):
    """End of the (start, end] tumbling window of `size_ms` holding time `ms`."""
    return f"(CAST(ceil({ms} / {size_ms}.0) AS BIGINT) * {size_ms})"


QUERIES = {
    "q0": "SELECT auction, bidder, price, dateTime, extra FROM bid",
    "q1": "SELECT auction, bidder, CAST(0.908 * price AS DOUBLE) AS price, dateTime, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q3": """
        SELECT P.name, P.city, P.state, A.id
        FROM auction A JOIN person P
          ON A.seller = P.id AND P.ms BETWEEN A.ms - 3600000 AND A.ms + 3600000
        WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')""",
    "q4": f"""
        WITH joined AS (
          SELECT A.id, A.category, B.price, {window_end('B.ms', 10000)} AS wend
          FROM auction A JOIN bid B
            ON A.id = B.auction AND B.ms BETWEEN A.ms AND A.ms + 3600000
          WHERE B.ms <= {MS.format('A.expires')}),
        winning AS (SELECT id, category, wend, max(price) AS final FROM joined GROUP BY id, category, wend)
        SELECT category, avg(final) AS avg_final FROM winning GROUP BY category, wend""",
    "q5": f"""
        WITH hops AS (
          SELECT auction, {window_end('ms', 2000)} + 2000 * k AS wend
          FROM bid, range(0, 5) AS r(k)),
        counts AS (SELECT auction, wend, count(*) AS num FROM hops GROUP BY auction, wend),
        maxes AS (SELECT wend, max(num) AS maxn FROM counts GROUP BY wend)
        SELECT C.auction, C.num FROM counts C JOIN maxes M ON C.wend = M.wend
        WHERE C.num >= M.maxn""",
    "q7": f"""
        WITH b AS (SELECT *, {window_end('ms', 10000)} AS wend FROM bid),
        m AS (SELECT wend, max(price) AS maxprice FROM b GROUP BY wend)
        SELECT b.auction, b.price, b.bidder, b.dateTime, b.extra
        FROM b JOIN m ON b.wend = m.wend AND b.price = m.maxprice""",
    "q8": f"""
        WITH p AS (SELECT DISTINCT id, name, {window_end('ms', 10000)} AS wend FROM person),
        a AS (SELECT DISTINCT seller, {window_end('ms', 10000)} AS wend FROM auction)
        SELECT p.id, p.name, {iso('p.wend - 10000')} AS starttime
        FROM p JOIN a ON p.id = a.seller AND p.wend = a.wend""",
    "q11": f"""
        WITH marked AS (
          SELECT bidder, ms,
            CASE WHEN ms - lag(ms) OVER (PARTITION BY bidder ORDER BY ms) <= 10000 THEN 0 ELSE 1 END AS new
          FROM bid),
        numbered AS (
          SELECT bidder, ms, sum(new) OVER (PARTITION BY bidder ORDER BY ms ROWS UNBOUNDED PRECEDING) AS session
          FROM marked)
        SELECT bidder, count(*) AS bid_count, {iso('min(ms)')} AS starttime, {iso('max(ms) + 10000')} AS endtime
        FROM numbered GROUP BY bidder, session""",
}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: duckdb_check.py <ndjson-dir> [q0,q1,...]")
    root = sys.argv[1]
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(QUERIES)
    con = duckdb.connect()
    for table, columns in TABLES.items():
        cols = ", ".join(
            f"'{c.split()[0]}': '{c.split()[1]}'" for c in (x.strip() for x in columns.split(","))
        )
        con.execute(
            f"CREATE TABLE {table} AS SELECT *, {MS.format('dateTime')} AS ms FROM read_json("
            f"'{root}/{table}/part-0.ndjson', format = 'newline_delimited', columns = {{{cols}}})"
        )
    results = {}
    for name in names:
        cur = con.execute(QUERIES[name])
        columns = [d[0] for d in cur.description]
        results[name] = [dict(zip(columns, row)) for row in cur.fetchall()]
    json.dump(results, sys.stdout, default=str)
    print()


if __name__ == "__main__":
    main()
