#!/usr/bin/env bash
# Installs what the Nexmark comparison needs besides eddy: DuckDB (the reference results
# in the tests), PyFlink and PySpark (the peers). Java 17 must already be installed.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --upgrade duckdb apache-flink pyspark
java -version 2>&1 | head -1
"$PYTHON" -c 'import duckdb, pyflink, pyspark; print("duckdb", duckdb.__version__, "pyspark", pyspark.__version__)'
