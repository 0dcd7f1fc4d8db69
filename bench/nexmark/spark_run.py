#!/usr/bin/env python3
"""Runs one Nexmark query on Spark Structured Streaming (local mode through PySpark) over
the NDJSON files that `eddy-nexmark gen` writes, and prints its events per second.

Usage: spark_run.py <ndjson-dir> <query> <cores> [--rows]
(--rows prints `ROWS <n>`, the number of result rows, instead of timing: a check that the
query gives what duckdb_check.py gives.)
File source (JSON with a fixed schema), trigger availableNow (the query stops when the
files are read), event-time watermarks on dateTime, noop sink, master local[cores]. The
same query first runs over empty files twice: the first run warms the JVM, the second
measures the fixed cost of starting a query, which events_per_second leaves out. The last
line is `RESULT seconds=<s> startup=<s> events=<n> events_per_second=<r>` or
`UNSUPPORTED <reason>` (Spark rejects some stateful operator chains in append mode).
"""
import os
import sys
import tempfile
import time

from pyspark.sql import SparkSession

SCHEMAS = {
    "person": "dateTime TIMESTAMP, id BIGINT, name STRING, emailAddress STRING,"
    " creditCard STRING, city STRING, state STRING, extra STRING",
    "auction": "dateTime TIMESTAMP, id BIGINT, itemName STRING, description STRING,"
    " initialBid BIGINT, reserve BIGINT, expires TIMESTAMP, seller BIGINT, category BIGINT,"
    " extra STRING",
    "bid": "dateTime TIMESTAMP, auction BIGINT, bidder BIGINT, price BIGINT, channel STRING,"
    " url STRING, extra STRING",
}

INPUTS = {
    "q0": ["bid"], "q1": ["bid"], "q2": ["bid"], "q3": ["person", "auction"],
    "q4": ["auction", "bid"], "q5": ["bid"], "q7": ["bid"], "q8": ["person", "auction"],
    "q11": ["bid"],
}

QUERIES = {
    "q0": "SELECT auction, bidder, price, dateTime, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q3": """
        SELECT P.name, P.city, P.state, A.id
        FROM auction A JOIN person P ON A.seller = P.id
          AND P.dateTime BETWEEN A.dateTime - INTERVAL 1 HOUR AND A.dateTime + INTERVAL 1 HOUR
        WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')""",
    "q4": """
        WITH joined AS (
          SELECT A.id, A.category, B.price, B.dateTime
          FROM auction A JOIN bid B ON A.id = B.auction
            AND B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL 1 HOUR
          WHERE B.dateTime <= A.expires),
        winning AS (
          SELECT id, category, window, MAX(price) AS final
          FROM joined GROUP BY id, category, window(dateTime, '10 seconds'))
        SELECT category, AVG(final) AS avg_final
        FROM winning GROUP BY category, window(window_time(window), '10 seconds')""",
    "q5": """
        WITH counts AS (
          SELECT auction, COUNT(*) AS num, window
          FROM bid GROUP BY auction, window(dateTime, '10 seconds', '2 seconds')),
        maxes AS (SELECT MAX(num) AS maxn, window AS w FROM counts GROUP BY window)
        SELECT C.auction, C.num FROM counts C JOIN maxes M ON C.window = M.w
        WHERE C.num >= M.maxn""",
    "q7": """
        WITH m AS (
          SELECT MAX(price) AS maxprice, window
          FROM bid GROUP BY window(dateTime, '10 seconds'))
        SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
        FROM bid B JOIN m ON B.price = m.maxprice
          AND B.dateTime >= m.window.start AND B.dateTime < m.window.end""",
    "q8": """
        WITH p AS (SELECT id, name, window FROM person GROUP BY id, name, window(dateTime, '10 seconds')),
        a AS (SELECT seller, window AS w FROM auction GROUP BY seller, window(dateTime, '10 seconds'))
        SELECT p.id, p.name, p.window.start AS starttime
        FROM p JOIN a ON p.id = a.seller AND p.window = a.w""",
    "q11": """
        SELECT bidder, COUNT(*) AS bid_count, session_window.start AS starttime,
               session_window.end AS endtime
        FROM bid GROUP BY bidder, session_window(dateTime, '10 seconds')""",
}


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def register(spark, root, query):
    for table in INPUTS[query]:
        (spark.readStream.schema(SCHEMAS[table]).json(f"{root}/{table}")
         .withWatermark("dateTime", "0 seconds").createOrReplaceTempView(table))


def run(spark, root, query, checkpoints, sink="noop"):
    """Seconds from planning `query` over the files under `root` to the end of the query."""
    register(spark, root, query)
    start = time.perf_counter()
    stream = (spark.sql(QUERIES[query]).writeStream.format(sink).queryName("result")
              .outputMode("append")
              .option("checkpointLocation", tempfile.mkdtemp(dir=checkpoints))
              .trigger(availableNow=True).start())
    stream.awaitTermination()
    return time.perf_counter() - start


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in QUERIES:
        sys.exit(f"usage: spark_run.py <ndjson-dir> <{'|'.join(QUERIES)}> <cores> [--rows]")
    root, query, cores = os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    events = sum(count_lines(f"{root}/{t}/part-0.ndjson") for t in INPUTS[query])
    spark = (SparkSession.builder.master(f"local[{cores}]").appName(f"nexmark-{query}")
             .config("spark.sql.shuffle.partitions", str(cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory() as work:
        if sys.argv[4:] == ["--rows"]:
            run(spark, root, query, work, sink="memory")
            print(f"ROWS {spark.sql('SELECT COUNT(*) FROM result').first()[0]}")
            return
        empty = f"{work}/empty"
        for table in INPUTS[query]:
            os.makedirs(f"{empty}/{table}")
            open(f"{empty}/{table}/part-0.ndjson", "w").close()
        try:
            run(spark, empty, query, work)  # warms the JVM: class loading, JIT
            startup = run(spark, empty, query, work)
        except Exception as e:  # Spark rejects the query: report it, do not fail
            print("UNSUPPORTED " + str(e).strip().splitlines()[0][:300])
            return
        seconds = run(spark, root, query, work)
    net = max(seconds - startup, 1e-9)
    print(f"{query}: {events / net:.0f} events/s ({events} events, {seconds:.3f} s of which"
          f" {startup:.3f} s start-up, {cores} cores)")
    print(f"RESULT seconds={seconds:.6f} startup={startup:.6f} events={events}"
          f" events_per_second={events / net:.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
