#!/usr/bin/env python3
"""Runs one Nexmark query on Apache Flink SQL (a local mini-cluster through PyFlink) over
the NDJSON files that `eddy-nexmark gen` writes, and prints its events per second.

Usage: flink_run.py <ndjson-dir> <query> <cores> [--rows]
(--rows prints `ROWS <n>`, the number of result rows, instead of timing: a check that the
query gives what duckdb_check.py gives.)
Streaming mode, filesystem source (JSON, bounded: the job ends when the files are read),
event-time watermarks on dateTime, blackhole sink, parallelism = cores. The clock runs
from planning the query to the end of the job. The same query first runs over empty
files twice: the first run warms the JVM, the second measures the fixed cost of starting
a job, which events_per_second leaves out. The last line is
`RESULT seconds=<s> startup=<s> events=<n> events_per_second=<r>` or `UNSUPPORTED <reason>`.
The queries are the Flink Nexmark suite's, bounded as eddy's are (see qN.sql).
"""
import os
import sys
import tempfile
import time

from pyflink.table import EnvironmentSettings, Schema, TableDescriptor, TableEnvironment

COLUMNS = {
    "person": "dateTime TIMESTAMP_LTZ(3), id BIGINT, name STRING, emailAddress STRING,"
    " creditCard STRING, city STRING, state STRING, extra STRING",
    "auction": "dateTime TIMESTAMP_LTZ(3), id BIGINT, itemName STRING, description STRING,"
    " initialBid BIGINT, reserve BIGINT, expires TIMESTAMP_LTZ(3), seller BIGINT,"
    " category BIGINT, extra STRING",
    "bid": "dateTime TIMESTAMP_LTZ(3), auction BIGINT, bidder BIGINT, price BIGINT,"
    " channel STRING, url STRING, extra STRING",
}

INPUTS = {
    "q0": ["bid"], "q1": ["bid"], "q2": ["bid"], "q3": ["person", "auction"],
    "q4": ["auction", "bid"], "q5": ["bid"], "q7": ["bid"], "q8": ["person", "auction"],
    "q11": ["bid"],
}


def tumble(table, size):
    return f"TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(dateTime), INTERVAL '{size}' SECOND))"


QUERIES = {
    "q0": "SELECT auction, bidder, price, dateTime, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    "q3": """
        SELECT P.name, P.city, P.state, A.id
        FROM auction AS A JOIN person AS P ON A.seller = P.id
          AND P.dateTime BETWEEN A.dateTime - INTERVAL '1' HOUR AND A.dateTime + INTERVAL '1' HOUR
        WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')""",
    "q4": """
        WITH joined AS (
          SELECT A.id, A.category, B.price, B.dateTime
          FROM auction AS A JOIN bid AS B ON A.id = B.auction
            AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '1' HOUR
          WHERE B.dateTime <= A.expires),
        winning AS (
          SELECT id, category, window_start, window_end, MAX(price) AS final
          FROM TABLE(TUMBLE(TABLE joined, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
          GROUP BY id, category, window_start, window_end)
        SELECT category, AVG(final) AS avg_final
        FROM winning GROUP BY category, window_start, window_end""",
    "q5": """
        WITH counts AS (
          SELECT auction, COUNT(*) AS num, window_start, window_end
          FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
          GROUP BY auction, window_start, window_end),
        maxes AS (
          SELECT MAX(num) AS maxn, window_start, window_end
          FROM counts GROUP BY window_start, window_end)
        SELECT C.auction, C.num
        FROM counts AS C JOIN maxes AS M
          ON C.window_start = M.window_start AND C.window_end = M.window_end
        WHERE C.num >= M.maxn""",
    "q7": f"""
        SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
        FROM bid AS B JOIN (
          SELECT MAX(price) AS maxprice, window_end AS dateTime
          FROM {tumble('bid', 10)} GROUP BY window_start, window_end) AS B1
        ON B.price = B1.maxprice
        WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime""",
    "q8": f"""
        SELECT P.id, P.name, P.window_start AS starttime
        FROM (SELECT id, name, window_start, window_end FROM {tumble('person', 10)}
              GROUP BY id, name, window_start, window_end) AS P
        JOIN (SELECT seller, window_start, window_end FROM {tumble('auction', 10)}
              GROUP BY seller, window_start, window_end) AS A
        ON P.id = A.seller AND P.window_start = A.window_start AND P.window_end = A.window_end""",
    "q11": """
        SELECT bidder, COUNT(*) AS bid_count, window_start AS starttime, window_end AS endtime
        FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
        GROUP BY bidder, window_start, window_end""",
}


def quoted(sql):
    """DATETIME is a keyword in Flink SQL: quote the column name."""
    return sql.replace("dateTime", "`dateTime`")


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def environment(root, query, cores):
    """A streaming table environment with the query's inputs read from `root`."""
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("parallelism.default", str(cores))
    config.set("table.exec.resource.default-parallelism", str(cores))
    config.set("table.local-time-zone", "UTC")
    for table in INPUTS[query]:
        env.execute_sql(quoted(
            f"CREATE TABLE {table} ({COLUMNS[table]}, WATERMARK FOR dateTime AS dateTime) WITH ("
            f"'connector' = 'filesystem', 'path' = 'file://{root}/{table}', 'format' = 'json',"
            f" 'json.timestamp-format.standard' = 'ISO-8601')"
        ))
    return env


def run(root, query, cores):
    """Seconds from planning `query` over the files under `root` to the end of the job."""
    env = environment(root, query, cores)
    start = time.perf_counter()
    result = env.sql_query(quoted(QUERIES[query]))
    schema = Schema.new_builder().from_row_data_type(
        result.get_resolved_schema().to_physical_row_data_type()).build()
    env.create_temporary_table(
        "sink", TableDescriptor.for_connector("blackhole").schema(schema).build())
    result.execute_insert("sink").wait()
    return time.perf_counter() - start


def count_rows(root, query, cores):
    env = environment(root, query, cores)
    # Only the count comes back to Python (its TIMESTAMP_LTZ conversion is broken).
    env.create_temporary_view("query_result", env.sql_query(quoted(QUERIES[query])))
    with env.sql_query("SELECT 1 FROM query_result").execute().collect() as rows:
        return sum(1 for _ in rows)


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in QUERIES:
        sys.exit(f"usage: flink_run.py <ndjson-dir> <{'|'.join(QUERIES)}> <cores> [--rows]")
    root, query, cores = os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if sys.argv[4:] == ["--rows"]:
        print(f"ROWS {count_rows(root, query, cores)}")
        return
    events = sum(count_lines(f"{root}/{t}/part-0.ndjson") for t in INPUTS[query])
    with tempfile.TemporaryDirectory() as empty:
        for table in INPUTS[query]:
            os.makedirs(f"{empty}/{table}")
            open(f"{empty}/{table}/part-0.ndjson", "w").close()
        try:
            run(empty, query, cores)  # warms the JVM: class loading, JIT
            startup = run(empty, query, cores)
        except Exception as e:  # the planner rejects the query: report it, do not fail
            print("UNSUPPORTED " + str(e).strip().splitlines()[0][:300])
            return
    seconds = run(root, query, cores)
    net = max(seconds - startup, 1e-9)
    print(f"{query}: {events / net:.0f} events/s ({events} events, {seconds:.3f} s of which"
          f" {startup:.3f} s start-up, {cores} cores)")
    print(f"RESULT seconds={seconds:.6f} startup={startup:.6f} events={events}"
          f" events_per_second={events / net:.1f}")


if __name__ == "__main__":
    main()
