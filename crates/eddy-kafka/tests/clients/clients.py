"""Drives real Kafka clients (confluent-kafka = librdkafka, kafka-python) against an eddy broker.

Usage: python3 clients.py SCENARIO BOOTSTRAP TOPIC [ARGS...]
Each scenario asserts its own expectations, prints one `ok ...` line and exits 0, or raises.
Every wait is bounded by a deadline; the broker is on loopback.
"""
import json
import sys
import threading
import time

BASE_TS = 1_700_000_000_000


def create_topic(addr, topic, partitions=3):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": addr})
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        f.result(timeout=30)


def expected(i, tag):
    return (f"k{i}".encode(), f"v{i}-{tag}".encode(), [("idx", str(i).encode()), ("tag", tag.encode())])


def check_message(key, value, headers, ts, tag):
    i = int(key[1:])
    k, v, h = expected(i, tag)
    assert (key, value) == (k, v), (key, value)
    assert [(n, bytes(x)) for n, x in headers] == h, headers
    assert ts == BASE_TS + i, (ts, BASE_TS + i)
    return i


def confluent_producer(addr, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": addr, "linger.ms": 5, "message.timeout.ms": 30000}
    conf.update(extra)
    return Producer(conf)


def confluent_produce(addr, topic, n, tag, **extra):
    p = confluent_producer(addr, **extra)
    errors = []
    partitions = set()

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            partitions.add(msg.partition())

    for i in range(n):
        k, v, h = expected(i, tag)
        while True:
            try:
                p.produce(topic, value=v, key=k, headers=h, timestamp=BASE_TS + i, on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    assert left == 0 and not errors, (left, errors[:3])
    return partitions


def confluent_consumer(addr, group, **extra):
    from confluent_kafka import Consumer
    conf = {
        "bootstrap.servers": addr,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


def confluent_consume_all(addr, topic, group, n, tag, deadline_s=60):
    c = confluent_consumer(addr, group)
    c.subscribe([topic])
    seen = {}
    deadline = time.time() + deadline_s
    while len(seen) < n and time.time() < deadline:
        for m in c.consume(500, 1.0):
            assert m.error() is None, m.error()
            i = check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], tag)
            assert i not in seen, f"duplicate {i}"
            seen[i] = m.partition()
    c.commit(asynchronous=False)
    c.close()
    assert len(seen) == n, f"consumed {len(seen)} of {n}"
    return seen


def confluent_roundtrip(addr, topic, n, codec):
    """Keys + headers over 3 partitions, idempotent, with one compression codec."""
    n = int(n)
    create_topic(addr, topic)
    produced_parts = confluent_produce(
        addr, topic, n, codec, **{"compression.type": codec, "enable.idempotence": True, "acks": "all"})
    seen = confluent_consume_all(addr, topic, f"g-{topic}", n, codec)
    assert set(seen.values()) == {0, 1, 2} == produced_parts, set(seen.values())
    print(f"ok {n} {codec}")


def kafka_python_roundtrip(addr, topic, n, acks):
    """kafka-python producer (idempotent by default with acks=all) and group consumer."""
    from kafka import KafkaConsumer, KafkaProducer
    n, acks = int(n), int(acks)
    create_topic(addr, topic)
    tag = f"acks{acks}"
    p = KafkaProducer(bootstrap_servers=addr, acks=acks, enable_idempotence=(acks == -1), linger_ms=5)
    futures = []
    for i in range(n):
        k, v, h = expected(i, tag)
        futures.append(p.send(topic, value=v, key=k, headers=h, timestamp_ms=BASE_TS + i))
    p.flush(60)
    for f in futures:
        f.get(timeout=60)
    p.close()
    c = KafkaConsumer(topic, bootstrap_servers=addr, group_id=f"g-{topic}", auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=20000)
    seen = {}
    for m in c:
        i = check_message(m.key, m.value, m.headers, m.timestamp, tag)
        assert i not in seen, f"duplicate {i}"
        seen[i] = m.partition
        if len(seen) == n:
            break
    c.commit()
    c.close()
    assert len(seen) == n, f"consumed {len(seen)} of {n}"
    assert set(seen.values()) == {0, 1, 2}
    print(f"ok {n} acks={acks} idempotent={acks == -1}")


def confluent_acks(addr, topic, n, acks):
    """librdkafka with acks 0 / 1 / all (no idempotence for 0 and 1)."""
    n = int(n)
    create_topic(addr, topic)
    confluent_produce(addr, topic, n, f"acks{acks}", acks=acks)
    confluent_consume_all(addr, topic, f"g-{topic}", n, f"acks{acks}")
    print(f"ok {n} acks={acks}")


def group_rebalance(addr, topic, n):
    """Three members consume everything; one leaves and another joins midway. Every message is
    consumed; a message is consumed twice only if the commit covering it failed."""
    from confluent_kafka import KafkaException
    n = int(n)
    create_topic(addr, topic, partitions=6)
    confluent_produce(addr, topic, n, "grp", **{"enable.idempotence": True})
    lock = threading.Lock()
    consumed = []  # (index, committed_ok)
    seen = set()
    stop = threading.Event()
    errors = []
    assigned = {}  # member name -> partitions of its latest assignment
    deadline = time.time() + 120

    def member(name, leave_at=None):
        try:
            c = confluent_consumer(addr, f"g-{topic}", **{"client.id": name})

            def on_assign(consumer, partitions):
                with lock:
                    assigned[name] = sorted(p.partition for p in partitions)

            c.subscribe([topic], on_assign=on_assign)
            while not stop.is_set() and time.time() < deadline:
                msgs = [m for m in c.consume(50, 0.5) if m.error() is None]
                with lock:
                    # Done once everything is consumed and the late member got its share.
                    if len(seen) >= n and assigned.get("m3"):
                        stop.set()
                if not msgs:
                    continue
                batch = [check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "grp") for m in msgs]
                try:
                    c.commit(asynchronous=False)
                    ok = True
                except KafkaException:
                    ok = False
                with lock:
                    consumed.extend((i, ok) for i in batch)
                    seen.update(batch)
                    if leave_at is not None and len(seen) >= leave_at:
                        break
                time.sleep(0.05)
            c.close()
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=member, args=(f"m{i}", n // 3 if i == 1 else None)) for i in range(3)]
    for t in threads:
        t.start()
    while not stop.is_set() and time.time() < deadline and len(seen) < n // 2:
        time.sleep(0.05)
    late = threading.Thread(target=member, args=("m3",))
    late.start()
    threads.append(late)
    for t in threads:
        t.join(timeout=max(1, deadline - time.time()))
    assert not errors, errors
    assert seen == set(range(n)), f"missing {len(set(range(n)) - seen)}"
    # The member that joined late took part: the group rebalanced partitions onto it.
    assert assigned.get("m3"), assigned
    assert set(assigned) == {"m0", "m1", "m2", "m3"}, assigned
    counts = {}
    for i, _ in consumed:
        counts[i] = counts.get(i, 0) + 1
    failed = {i for i, ok in consumed if not ok}
    dups = {i for i, c in counts.items() if c > 1}
    assert dups <= failed, f"{len(dups - failed)} duplicates past committed offsets"
    print(f"ok {n} consumed={len(consumed)} duplicates={len(dups)} failed_commits={len(failed)}")


def produce(addr, topic, n):
    """Produces n messages (idempotent, acks=all) to a new 3-partition topic."""
    create_topic(addr, topic)
    confluent_produce(addr, topic, int(n), "rs", **{"enable.idempotence": True})
    print(f"ok {n}")


def consume_some(addr, topic, group, k):
    """Consumes exactly k messages with the group and commits exactly those."""
    from confluent_kafka import TopicPartition
    k = int(k)
    c = confluent_consumer(addr, group)
    c.subscribe([topic])
    got, last = [], {}
    deadline = time.time() + 60
    while len(got) < k and time.time() < deadline:
        for m in c.consume(1, 1.0):
            assert m.error() is None, m.error()
            got.append(check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "rs"))
            last[m.partition()] = m.offset()
            if len(got) == k:
                break
    c.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=False)
    c.close()
    assert len(got) == k
    print("ok " + json.dumps(sorted(got)))


def consume_rest(addr, topic, group, n, already):
    """Resumes the group after a broker restart: exactly the messages not consumed before."""
    n = int(n)
    before = set(json.loads(already))
    want = set(range(n)) - before
    c = confluent_consumer(addr, group)
    c.subscribe([topic])
    got = []
    deadline = time.time() + 60
    while len(got) < len(want) and time.time() < deadline:
        for m in c.consume(500, 1.0):
            assert m.error() is None, m.error()
            got.append(check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "rs"))
    # Anything more would be a redelivery of a committed message.
    extra = [check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "rs") for m in c.consume(500, 2.0) if m.error() is None]
    c.close()
    assert sorted(got + extra) == sorted(want), f"got {len(got)}+{len(extra)} want {len(want)}"
    print(f"ok resumed {len(got)}")


def produce_until_killed(addr, topic, n, acked_file):
    """Produces with acks=all, recording every acknowledged message, until the broker dies."""
    create_topic(addr, topic)
    p = confluent_producer(addr, **{"acks": "all", "enable.idempotence": True, "message.timeout.ms": 4000,
                                    "reconnect.backoff.max.ms": 200})
    acked, failed = [], []

    def done(err, msg):
        (acked if err is None else failed).append(int(msg.key()[1:]))

    deadline = time.time() + 60
    for i in range(int(n)):
        if failed or time.time() > deadline:
            break  # the broker is gone
        k, v, h = expected(i, "k9")
        try:
            p.produce(topic, value=v, key=k, headers=h, timestamp=BASE_TS + i, on_delivery=done)
        except BufferError:
            p.poll(0.1)
        p.poll(0)
        if i % 500 == 0:
            print(f"progress {len(acked)}", flush=True)
            time.sleep(0.02)
    p.flush(15)
    with open(acked_file, "w") as f:
        json.dump(acked, f)
    print(f"ok acked {len(acked)}", flush=True)


def verify_acked(addr, topic, acked_file):
    """After a restart, every acknowledged message is there."""
    from confluent_kafka import Consumer, TopicPartition
    acked = set(json.load(open(acked_file)))
    c = Consumer({"bootstrap.servers": addr, "group.id": "verify", "enable.auto.commit": False})
    parts = [TopicPartition(topic, p, 0) for p in range(3)]
    c.assign(parts)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)}
    got = set()
    pos = {p: 0 for p in range(3)}
    deadline = time.time() + 60
    while any(pos[p] < ends[p] for p in range(3)) and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            if m.error() is None:
                got.add(check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "k9"))
                pos[m.partition()] = m.offset() + 1
    c.close()
    missing = acked - got
    assert not missing, f"{len(missing)} acknowledged messages lost"
    print(f"ok {len(acked)} acked, {len(got)} stored")


def too_large(addr, topic):
    """A record batch above the broker's max_message_bytes is refused with MESSAGE_TOO_LARGE."""
    from confluent_kafka import KafkaError
    create_topic(addr, topic, partitions=1)
    p = confluent_producer(addr, **{"message.max.bytes": 8_000_000, "acks": "all"})
    errs = []
    p.produce(topic, value=b"x" * 2_000_000, key=b"big", on_delivery=lambda e, m: errs.append(e))
    p.flush(30)
    assert len(errs) == 1 and errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errs
    # The connection and the broker still serve normal produces.
    confluent_produce(addr, topic, 10, "small")
    print("ok MESSAGE_TOO_LARGE")


def admin_apis(addr, topic):
    """ListOffsets (earliest, latest, by producer timestamp), DescribeConfigs, ListGroups,
    DescribeGroups and DeleteTopics through librdkafka's admin and consumer APIs."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource
    create_topic(addr, topic, partitions=1)
    confluent_produce(addr, topic, 100, "adm")
    # Message i has timestamp BASE_TS + i (CreateTime): the search is by that timestamp.
    middle_ms = BASE_TS + 100
    p = confluent_producer(addr)
    for i in range(100, 150):
        k, v, h = expected(i, "adm")
        p.produce(topic, value=v, key=k, headers=h, timestamp=BASE_TS + i)
    assert p.flush(30) == 0
    c = confluent_consumer(addr, f"g-{topic}")
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 150)
    [by_time] = c.offsets_for_times([TopicPartition(topic, 0, middle_ms)], timeout=10)
    assert by_time.offset == 100, by_time
    [future] = c.offsets_for_times([TopicPartition(topic, 0, middle_ms + 3_600_000)], timeout=10)
    assert future.offset == -1, future
    c.subscribe([topic])
    got = 0
    deadline = time.time() + 30
    while got < 150 and time.time() < deadline:
        got += len([m for m in c.consume(200, 1.0) if m.error() is None])
    assert got == 150
    admin = AdminClient({"bootstrap.servers": addr})
    groups = admin.list_consumer_groups().result(timeout=10)
    assert f"g-{topic}" in [g.group_id for g in groups.valid], groups.valid
    desc = admin.describe_consumer_groups([f"g-{topic}"])[f"g-{topic}"].result(timeout=10)
    assert len(desc.members) == 1 and str(desc.state).endswith("STABLE"), desc
    c.close()
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=10)
    assert configs["cleanup.policy"].value == "delete", configs
    assert configs["message.timestamp.type"].value == "CreateTime"
    admin.delete_topics([topic])[topic].result(timeout=10)
    assert topic not in admin.list_topics(timeout=10).topics
    print("ok admin")


def create_partitions(addr, topic):
    """AdminClient.create_partitions grows a topic: errors as Kafka gives them, validate_only
    changes nothing, a subscribed consumer is assigned the new partitions, and records produced
    to a new partition are consumed from it."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, NewPartitions
    admin = AdminClient({"bootstrap.servers": addr})
    create_topic(addr, topic, partitions=2)

    def grow(name, count, validate_only=False):
        fs = admin.create_partitions([NewPartitions(name, count)], validate_only=validate_only, request_timeout=10)
        try:
            fs[name].result(timeout=30)
            return KafkaError.NO_ERROR
        except KafkaException as e:
            return e.args[0].code()

    def count():
        return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)

    assert grow(topic, 2) == KafkaError.INVALID_PARTITIONS
    assert grow(topic, 1) == KafkaError.INVALID_PARTITIONS
    assert grow(f"{topic}-missing", 4) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert grow(topic, 4, validate_only=True) == KafkaError.NO_ERROR
    assert count() == 2
    # A consumer subscribed before the change: its group rebalances onto the new partitions.
    c = confluent_consumer(addr, f"g-{topic}", **{"topic.metadata.refresh.interval.ms": 1000})
    c.subscribe([topic])
    deadline = time.time() + 30
    while len(c.assignment()) < 2 and time.time() < deadline:
        c.poll(0.2)
    assert sorted(tp.partition for tp in c.assignment()) == [0, 1], c.assignment()
    assert grow(topic, 4) == KafkaError.NO_ERROR
    assert count() == 4
    deadline = time.time() + 30
    while len(c.assignment()) < 4 and time.time() < deadline:
        c.poll(0.2)
    assert sorted(tp.partition for tp in c.assignment()) == [0, 1, 2, 3], c.assignment()
    p = confluent_producer(addr)
    for part in (0, 3):
        for i in range(10):
            k, v, h = expected(i, "cp")
            p.produce(topic, value=v, key=k, headers=h, timestamp=BASE_TS + i, partition=part)
    assert p.flush(30) == 0
    got = {}
    deadline = time.time() + 60
    while sum(len(v) for v in got.values()) < 20 and time.time() < deadline:
        for m in c.consume(100, 0.5):
            assert m.error() is None, m.error()
            got.setdefault(m.partition(), []).append(check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "cp"))
    c.close()
    assert got == {0: list(range(10)), 3: list(range(10))}, got
    print("ok grew to 4")


def partitions_after_restart(addr, topic, partitions):
    """After a broker restart the topic still has its grown partition count, and the records
    of the last partition are still there."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": addr})
    n = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    assert n == int(partitions), n
    c = confluent_consumer(addr, f"g2-{topic}")
    c.assign([TopicPartition(topic, n - 1, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < 10 and time.time() < deadline:
        for m in c.consume(100, 0.5):
            assert m.error() is None, m.error()
            got.append(check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "cp"))
    c.close()
    assert got == list(range(10)), got
    print(f"ok {n} partitions")


def static_member_restart(addr, topic):
    """Static membership (KIP-345, confluent-kafka `group.instance.id`): a static consumer that
    closes (librdkafka sends no LeaveGroup for it) and restarts with the same instance id gets
    the same partitions back within the session timeout, and the other member sees no
    rebalance. DescribeGroups shows the instance ids."""
    from confluent_kafka.admin import AdminClient
    create_topic(addr, topic, partitions=4)
    group = f"g-{topic}"
    events = {"a": [], "b": []}

    def consumer(name):
        c = confluent_consumer(addr, group, **{
            "group.instance.id": f"inst-{name}",
            "client.id": f"static-{name}",
            "session.timeout.ms": 10000,
            "partition.assignment.strategy": "range",
        })
        c.subscribe([topic],
                    on_assign=lambda _c, ps: events[name].append(("assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _c, ps: events[name].append(("revoke", sorted(p.partition for p in ps))))
        return c

    def poll_until(done, *cs, timeout=30):
        deadline = time.time() + timeout
        while not done() and time.time() < deadline:
            for c in cs:
                c.poll(0.1)
        assert done(), events

    a = consumer("a")
    b = consumer("b")
    poll_until(lambda: len(a.assignment()) + len(b.assignment()) == 4 and a.assignment() and b.assignment(), a, b)
    # Let any rebalance the two arrivals caused settle.
    before_b = sorted(p.partition for p in b.assignment())
    before_a = sorted(p.partition for p in a.assignment())
    admin = AdminClient({"bootstrap.servers": addr})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert sorted(m.group_instance_id for m in desc.members) == ["inst-a", "inst-b"], desc.members
    old_ids = {m.group_instance_id: m.member_id for m in desc.members}
    a_events = len(events["a"])
    started = time.time()
    b.close()
    b = consumer("b")
    poll_until(lambda: b.assignment(), a, b)
    took = time.time() - started
    assert sorted(p.partition for p in b.assignment()) == before_b, (b.assignment(), before_b)
    assert took < 10, f"took {took:.1f}s: waited for the session timeout, not a static rejoin"
    # a keeps polling a while: no revoke, no assign.
    deadline = time.time() + 3
    while time.time() < deadline:
        a.poll(0.1)
        b.poll(0.1)
    assert len(events["a"]) == a_events, events["a"]
    assert sorted(p.partition for p in a.assignment()) == before_a
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    new_ids = {m.group_instance_id: m.member_id for m in desc.members}
    assert new_ids["inst-a"] == old_ids["inst-a"] and new_ids["inst-b"] != old_ids["inst-b"], (old_ids, new_ids)
    assert str(desc.state).endswith("STABLE"), desc.state
    a.close()
    b.close()
    print(f"ok static rejoin in {took:.1f}s")


def commit_metadata(addr, topic, phase):
    """OffsetCommit metadata (confluent-kafka TopicPartition.metadata) is answered by
    OffsetFetch; phase `commit` commits, phase `check` runs after a broker restart."""
    from confluent_kafka import TopicPartition
    group = f"g-{topic}"
    if phase == "commit":
        create_topic(addr, topic, partitions=2)
        confluent_produce(addr, topic, 20, "md")
    c = confluent_consumer(addr, group)
    if phase == "commit":
        c.commit(offsets=[TopicPartition(topic, 0, 3, metadata="ckpt=3;é"),
                          TopicPartition(topic, 1, 2, metadata="")], asynchronous=False)
    got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    c.close()
    assert [(tp.partition, tp.offset, tp.metadata or "") for tp in got] == [(0, 3, "ckpt=3;é"), (1, 2, "")], got
    print(f"ok metadata {phase}")


def group_of_3_consumes_all(addr, topic, n, partitions):
    """N messages with keys and headers over PARTITIONS partitions, then a group of 3 members
    (one thread each) consumes them all: every message at least once, each member a share.
    Prints the produce and consume rates."""
    n, partitions = int(n), int(partitions)
    create_topic(addr, topic, partitions=partitions)
    t0 = time.time()
    confluent_produce(addr, topic, n, "m", **{"enable.idempotence": True, "acks": "all", "linger.ms": 20,
                                              "batch.size": 1_000_000, "compression.type": "lz4"})
    produce_s = time.time() - t0
    lock = threading.Lock()
    counts = {}  # member name -> messages it consumed
    seen = bytearray(n)
    total = [0]
    errors = []
    deadline = time.time() + 600

    def member(name):
        try:
            c = confluent_consumer(addr, f"g-{topic}", **{"client.id": name, "enable.auto.commit": True,
                                                           "auto.commit.interval.ms": 1000})
            c.subscribe([topic])
            mine = 0
            while time.time() < deadline:
                with lock:
                    if total[0] >= n:
                        break
                msgs = [m for m in c.consume(2000, 0.5) if m.error() is None]
                batch = [check_message(m.key(), m.value(), m.headers() or [], m.timestamp()[1], "m") for m in msgs]
                with lock:
                    for i in batch:
                        # A duplicate can only come from a rebalance before the first commit.
                        if not seen[i]:
                            seen[i] = 1
                            total[0] += 1
                mine += len(batch)
            with lock:
                counts[name] = mine
            c.close()
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    t1 = time.time()
    threads = [threading.Thread(target=member, args=(f"m{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1, deadline - time.time()))
    consume_s = time.time() - t1
    assert not errors, errors
    assert total[0] == n, f"consumed {total[0]} distinct of {n}"
    assert len(counts) == 3 and all(counts.values()), counts
    print(f"ok {n} produce={n / produce_s:.0f}/s consume={n / consume_s:.0f}/s members={sorted(counts.values())}")


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
