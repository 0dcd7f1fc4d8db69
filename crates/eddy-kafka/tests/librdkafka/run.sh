#!/usr/bin/env bash
# Runs librdkafka's own integration test suite (tests/0*.c, from the rdkafka-sys crate's
# bundled source) against eddy's example broker on loopback, and prints the pass count.
# Not part of scripts/test.sh: the first run builds librdkafka (about 10 min on 2 cores) and
# the suite itself takes about 15 min. Usage:
#   crates/eddy-kafka/tests/librdkafka/run.sh            # every applicable test
#   TESTS=0012 crates/eddy-kafka/tests/librdkafka/run.sh # one test (librdkafka's TESTS=)
# Environment: RDKAFKA_DIR (build dir, default ~/.cache/librdkafka), CARGO_TARGET_DIR,
# TEST_DEBUG (librdkafka debug contexts, e.g. protocol,cgrp), TEST_LEVEL, QUICK=0 (no quick mode).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"

# Tests that cannot apply to a single-node, plaintext eddy broker without transactions.
# Each is listed with its reason in the README ("librdkafka test suite"); keep both in step.
SKIP=(
    0011 # one subtest makes the topic compacted (IncrementalAlterConfigs cleanup.policy=compact)
    #      and expects keyless records refused; eddy has neither AlterConfigs nor compaction
    0028 # long topic names: a known issue upstream (flagged TEST_F_KNOWN_ISSUE)
    0038 # performance soak (4 M messages); bench/kafka/run.sh measures throughput instead
    0052 # creates LogAppendTime topics with kafka-topics.sh (needs KAFKA_PATH and ZooKeeper)
    0077 # log compaction: eddy's log does not compact
    0081 # admin API: AlterConfigs, DeleteRecords, DeleteGroups, ACLs
    0092 # mixed MsgVersion 0/1 produce: eddy accepts record batches (v2) only
    0098 # transactions (uses the Java TransactionalProducer via KAFKA_PATH)
    0101 # fetch from follower: needs several brokers with racks
    0103 # transactions
    0109 # changes the broker's auto.create.topics.enable with kafka-configs.sh (KAFKA_PATH)
    0115 # producer authorization: needs ACLs
    0119 # consumer authorization: needs ACLs
    0126 # OIDC SASL/OAUTHBEARER
    0129 # aborted transactional messages
    0135 # SASL credentials
    0142 # SASL re-authentication
)

rdkafka_build
work="$(mktemp -d)"
trap 'broker_stop; rm -rf "$work"' EXIT
# Auto-created topics get 4 partitions, as in the clusters librdkafka's suite is run against.
broker_start "$work/data" --partitions 4
echo "eddy broker on $BROKER_ADDR (log: $work/data.broker.log)"

tests_dir="$RDKAFKA_DIR/src/tests"
# The runner reads RDKAFKA_TEST_CONF (default tests/test.conf): one file per run, so runs
# against different brokers do not overwrite each other's.
export RDKAFKA_TEST_CONF="$work/test.conf"
cat >"$RDKAFKA_TEST_CONF" <<CONF
bootstrap.servers=$BROKER_ADDR
# Loaded 2-core machine: give each test's timeouts some slack.
test.timeout.multiplier=2
CONF

skip="$(IFS=,; echo "${SKIP[*]}")"
cd "$tests_dir"
export LD_LIBRARY_PATH="$RDKAFKA_DIR/src/src:$RDKAFKA_DIR/src/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
set +e
# -L: no local (broker-less) tests, they test librdkafka alone; -E: no sockem (socket
# fault injection) tests; -Q: quick mode (QUICK=0 runs every sub-test, about 35 min);
# -p1: one test at a time against the one broker.
# The broker version tells the suite which features to expect (eddy's API versions match
# Kafka 2.8 for the APIs it implements).
TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-2.8.0}" TESTS_SKIP="$skip${TESTS_SKIP:+,$TESTS_SKIP}" \
    timeout "${SUITE_TIMEOUT_S:-3600}" ./test-runner -L -E $([ "${QUICK:-1}" = 0 ] || echo -Q) -p1 ${TESTS:+"$TESTS"} 2>&1 | tee "$work/suite.log"
rc=${PIPESTATUS[0]}
set -e
# Counted from the per-test lines (the summary table is not printed when the runner aborts
# at exit on a client a failed test left behind): "Test 0012_x PASSED", "Test "0012_x" failed".
plain="$work/suite.plain"
sed 's/\x1b\[[0-9;]*m//g' "$work/suite.log" >"$plain"
count() { { grep -aoE "$1" "$plain" || true; } | sort -u | wc -l; }
passed=$(count '=+ Test [0-9]{4}_[a-z0-9_]+ PASSED')
skipped=$(count '=+ Test [0-9]{4}_[a-z0-9_]+ SKIPPED')
failed=$(count '### Test "[0-9]{4}_[a-z0-9_]+')
grep -aoE '### Test "[0-9]{4}_[a-z0-9_]+' "$plain" | sort -u | sed 's/### Test "/FAILED: /' || true
cp "$work/suite.log" "${SUITE_LOG:-/tmp/eddy-librdkafka-suite.log}"
echo "librdkafka: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
