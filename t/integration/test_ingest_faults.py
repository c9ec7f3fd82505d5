"""Fault tests of the ingest-worker: kill -9 in the middle of a batch,
Postgres down for 20 s under load (spec/ingestion.md §6, AC-23), and
from spec/reliability.md §3: a broker refusing a row as too large
(scenario 4) and Postgres down at startup (scenario 15)."""

import json
import os
import signal
import threading
import time
import uuid

import pytest
from confluent_kafka import (Consumer, KafkaException, Producer,
                             TopicPartition)

from conftest import S, ST, wait_for
from ingest_helpers import Ingest, own_worker, person_uuid, props, tag


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


def produce_many(ing, ids, per_id, prefix="e"):
    """per_id events per distinct id, interleaved; each sets n=i and
    sets first=i once; returns the event uuids"""
    evs = []
    for i in range(per_id):
        for d in ids:
            e = str(uuid.uuid4())
            data = {"event": prefix, "distinct_id": d, "uuid": e,
                    "properties": {"$set": {"n": i},
                                   "$set_once": {"first": i}}}
            outer = {"uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                     "data": json.dumps(data), "token": ing.token,
                     "now": "2024-01-01T10:00:00.000Z",
                     "timestamp": "2024-01-01T10:00:00.000Z"}
            ing.producer.produce("events_plugin_ingestion",
                                 value=json.dumps(outer).encode(),
                                 key=f"{ing.token}:{d}".encode())
            evs.append(e)
    ing.producer.flush(30)
    return evs


def emitted(ing, evs):
    s = set(evs)
    return {v["uuid"] for v in ing.out.values("clickhouse_events_json")
            if v["uuid"] in s}


def check_persons(ing, ids, per_id):
    for d in ids:
        rows = ing.persons(d)
        assert len(rows) == 1, d
        puuid, p, ident, _, _ = rows[0]
        assert puuid == person_uuid(ing.team, d)
        assert p["n"] == per_id - 1 and p["first"] == 0, (d, p)
        assert ident is False


def check_clickhouse(ing, evs, timeout=120):
    in_list = ",".join(f"toUUID('{e}')" for e in evs)
    ing.ch_wait(f"SELECT count() AS n, uniqExact(uuid) AS u FROM events "
                f"FINAL WHERE uuid IN ({in_list})",
                lambda r: int(r[0]["n"]) == len(evs)
                and int(r[0]["u"]) == len(evs),
                timeout=timeout, what=f"{len(evs)} events under FINAL")


def test_kill9_mid_batch_then_restart(stack, ing):
    t = tag()
    ids = [f"{t}-k{i}" for i in range(20)]
    per_id = 25
    evs = produce_many(ing, ids, per_id)
    # the first outputs are out: the batch is in flight, not committed
    wait_for(lambda: emitted(ing, evs), timeout=60, interval=0.01,
             what="the first outputs")
    os.kill(stack.worker.pid, signal.SIGKILL)
    stack.worker.proc.wait()
    partial = len(emitted(ing, evs))
    stack.worker.proc = None
    stack.worker.start()
    wait_for(lambda: len(emitted(ing, evs)) == len(evs), timeout=120,
             what="every event after the restart")
    assert partial <= len(evs)
    check_persons(ing, ids, per_id)
    # versions never go backwards in ClickHouse, and equal Postgres
    for d in ids[:3]:
        (puuid, _, _, ver, _), = ing.persons(d)
        vs = [m["version"] for m in ing.out.values("clickhouse_person",
                                                    id=puuid)]
        assert max(vs) == ver
    check_clickhouse(ing, evs)


def test_ac23_postgres_down_20s_under_load(stack, ing):
    t = tag()
    ids = [f"{t}-pg{i}" for i in range(10)]
    # the team is cached; make sure the worker is idle first
    ing.send("warm-up", f"{t}-warm")
    # fast shutdown: a smart one would wait for the worker to disconnect
    os.kill(stack.postgres.pid, signal.SIGINT)
    stack.postgres.proc.wait(30)
    stack.postgres.proc = None
    try:
        evs = produce_many(ing, ids, 5, prefix="during-outage")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # nothing of the batch is produced while persons are unknown
            assert emitted(ing, evs) == set()
            time.sleep(0.5)  # poll interval through the 20 s outage
    finally:
        stack.postgres.start()
    t0 = time.monotonic()
    wait_for(lambda: len(emitted(ing, evs)) == len(evs), timeout=120,
             what="every event after Postgres returned")
    print("outputs after", time.monotonic() - t0)
    check_persons(ing, ids, 5)
    check_clickhouse(ing, evs)
    print("clickhouse after", time.monotonic() - t0)


@pytest.mark.parametrize("option", [None, "message.max.bytes 50000"])
def test_broker_refusing_a_large_row_does_not_stall_the_worker(
        stack, tmp_path, option):
    """Reliability scenario 4: an output topic whose max.message.bytes is
    below the producer's limit makes the broker refuse a produce request;
    the worker must not retry that batch for ever.  The culprit row is
    dropped with message_size_too_large (spec §4.1), the rest of its
    batch is delivered and the input offsets are committed.  With the
    producer's limit set to the topic's (kafka_producer_option), the row
    is refused before it is sent."""
    t = tag()
    name, topic_in = f"big{t}", f"{t}_in"
    stack.kafka.create_topics([topic_in], partitions=1)
    stack.kafka.create_topics([f"{name}_{x}" for x in ST.OUTPUT_TOPICS
                               if x != "clickhouse_events_json"],
                              partitions=1)
    # 60 kB: under librdkafka's 1 MB, so only the broker can refuse
    stack.kafka.create_topics([f"{name}_clickhouse_events_json"],
                              partitions=1,
                              config={"max.message.bytes": "60000"})

    p = Producer({"bootstrap.servers": stack.kafka.bootstrap})
    small, big = [], None
    for i in range(7):
        e = str(uuid.uuid4())
        d = f"{t}-{i}"
        # random, so that compression cannot bring it under the limit
        blob = os.urandom(50000).hex() if i == 3 else ""
        data = {"event": "e", "distinct_id": d, "uuid": e,
                "properties": {"$process_person_profile": False,
                               "blob": blob}}
        outer = {"uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                 "data": json.dumps(data), "token": stack.token,
                 "now": "2024-01-01T10:00:00.000Z",
                 "timestamp": "2024-01-01T10:00:00.000Z"}
        p.produce(topic_in, value=json.dumps(outer).encode(),
                  key=f"{stack.token}:{d}".encode())
        if i == 3:
            big = e
        else:
            small.append(e)
    p.flush(30)

    # one batch holds all seven, so the first produce request mixes them
    extra = {"kafka_producer_option": option} if option else {}
    w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in,
                   batch_size=500, batch_wait_ms=2000, **extra)
    w.start()
    try:
        got = {}

        def drained():
            for v in consume_values(stack, f"{name}_clickhouse_events_json"):
                got[v["uuid"]] = v
            return set(small) <= set(got)
        wait_for(drained, timeout=90, what="the six small rows")

        warn = wait_for(lambda: [
            v for v in consume_values(stack,
                                      f"{name}_clickhouse_ingestion_warnings")
            if v["type"] == "message_size_too_large"],
            timeout=60, what="message_size_too_large")
        assert json.loads(warn[0]["details"]) == {
            "eventUuid": big, "distinctId": f"{t}-3"}
        assert big not in got

        # the batch was committed, not retried for ever
        c = Consumer({"bootstrap.servers": stack.kafka.bootstrap,
                      "group.id": f"t-{name}"})
        try:
            wait_for(lambda: c.committed(
                [TopicPartition(topic_in, 0)], timeout=5)[0].offset == 7,
                timeout=60, what="input offsets committed")
        finally:
            c.close()
        refused = "the broker refused a produce request as too large"
        assert (refused in w.log_tail(400)) == (option is None)
    finally:
        w.stop()


def consume_values(stack, topic, raw=False):
    """every JSON value (raw: the bytes) of one-partition topic so far:
    read up to the high watermark of the call, not until the consumer
    stays quiet for a while (a fresh consumer's first fetch can take
    seconds on a busy machine, which read as an empty topic)"""
    c = Consumer({"bootstrap.servers": stack.kafka.bootstrap,
                  "group.id": "t-" + uuid.uuid4().hex,
                  "enable.auto.commit": False})
    out = []
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                high = c.get_watermark_offsets(TopicPartition(topic, 0),
                                               timeout=10)[1]
                break
            except KafkaException:
                # a topic created moments ago may not be in this client's
                # metadata yet (every caller reads topics that exist)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # poll interval of the wait above
        c.assign([TopicPartition(topic, 0, 0)])
        pos = 0
        while pos < high:
            assert time.monotonic() < deadline, \
                f"{topic}: {pos} of {high} messages read in 60 s"
            for m in c.consume(500, 1.0):
                if m.error():
                    continue
                out.append(m.value() if raw else json.loads(m.value()))
                pos = max(pos, m.offset() + 1)
            # past control records too (the position is the next offset)
            pos = max(pos, c.position([TopicPartition(topic, 0)])[0].offset)
        return out
    finally:
        c.close()


def one_event_processed(stack, topic_in, name, token, event):
    """Produces one event of `token` as capture would and waits until the
    worker `name` has emitted its row."""
    e = str(uuid.uuid4())
    data = {"event": event, "distinct_id": "d", "uuid": e, "properties": {}}
    p = Producer({"bootstrap.servers": stack.kafka.bootstrap})
    p.produce(topic_in, key=f"{token}:d".encode(), value=json.dumps({
        "uuid": e, "distinct_id": "d", "ip": "127.0.0.1",
        "data": json.dumps(data), "token": token,
        "now": "2024-01-01T10:00:00.000Z"}).encode())
    p.flush(30)
    wait_for(lambda: [v for v in consume_values(
                 stack, f"{name}_clickhouse_events_json")
                 if v["uuid"] == e], timeout=60, what="the event processed")


def worker_with_own_postgres(stack, tmp_path, prefix):
    """A tag, a worker name, its input topic (every topic created), a
    Postgres of its own (not started) and the worker (not started)."""
    t = tag()
    name, topic_in = f"{prefix}{t}", f"{t}_in"
    stack.kafka.create_topics([topic_in] + [f"{name}_{x}"
                                            for x in ST.OUTPUT_TOPICS],
                              partitions=1)
    pg = S.Postgres(str(tmp_path / "pg"), name=f"pg-{prefix}")
    w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in,
                   postgres_dsn=pg.dsn)
    return t, name, topic_in, pg, w


def test_worker_started_before_postgres_waits_for_it(stack, tmp_path):
    """Scenario 15: Postgres down when the worker starts.  The worker
    waits for it instead of exiting, then consumes as usual."""
    t, name, topic_in, pg, w = worker_with_own_postgres(
        stack, tmp_path, "late")
    w.start_timeout = 180.0
    starter = threading.Thread(target=w.start, daemon=True)
    starter.start()
    try:
        wait_for(lambda: "waiting for postgres" in w.log_tail(50),
                 timeout=60, what="the worker waiting for Postgres")
        assert w.running()
        pg.start()
        w.run_cmd("migrate", "postgres")
        _, token = w.team_create("late " + t)
        wait_for(lambda: "consuming" in w.log_tail(200), timeout=60,
                 what="the worker consuming")

        one_event_processed(stack, topic_in, name, token, "late")
    finally:
        w.stop()
        starter.join(10)
        pg.stop()


def test_worker_whose_statements_failed_half_way_prepares_again(
        stack, tmp_path):
    """The worker prepares its statements when it first needs them; if
    one of them fails (a table a concurrent `migrate` has not created
    yet, as when the worker and the migration start together), the next
    attempt must not fail for ever on those that did get prepared."""
    t, name, topic_in, pg, w = worker_with_own_postgres(
        stack, tmp_path, "prep")
    pg.start()
    try:
        w.run_cmd("migrate", "postgres")
        _, token = w.team_create("prep " + t)
        # posthog_team is there, the progress table not yet
        pg.psql("ALTER TABLE edgehog_partition_progress RENAME TO "
                "progress_later", dbname="edgehog")
        w.start()
        wait_for(lambda: "postgres prepare failed" in w.log_tail(200),
                 timeout=60, what="a prepare failing")
        pg.psql("ALTER TABLE progress_later RENAME TO "
                "edgehog_partition_progress", dbname="edgehog")

        one_event_processed(stack, topic_in, name, token, "prep")
    finally:
        w.stop()
        pg.stop()


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_rebalances_while_a_batch_fails_commit_nothing_after_it(
        stack, tmp_path, strategy):
    """Members join and leave while a batch's outputs are failing (its
    overflow messages, to an overflow topic that does not exist yet) and
    the batches read after it would go through.  Nothing read before a
    move may be committed after it: the group's offset stays at the
    failing batch until the topic exists; then every message arrives.
    Eager: every partition moves; cooperative: the newcomer takes one of
    two and the worker keeps reading the other."""
    t = tag()
    name, topic_in = f"rb{t}", f"{t}_in"
    coop = strategy == "cooperative-sticky"
    stack.kafka.create_topics([topic_in], partitions=2 if coop else 1)
    stack.kafka.create_topics([f"{t}_other"] +
                              [f"{name}_{x}" for x in ST.OUTPUT_TOPICS],
                              partitions=1)
    p = Producer({"bootstrap.servers": stack.kafka.bootstrap,
                  "linger.ms": 0})
    sent, where = [], {}    # where: value -> its partition and offset

    def send(d, **props_):
        e = str(uuid.uuid4())
        data = {"event": "rb", "distinct_id": d, "properties": dict(
            props_, **{"$process_person_profile": False})}
        value = json.dumps({
            "uuid": e, "distinct_id": d, "ip": "127.0.0.1",
            "data": json.dumps(data), "token": stack.token,
            "now": "2024-01-01T10:00:00.000Z"}).encode()
        p.produce(topic_in, key=f"{stack.token}:{d}".encode(), value=value,
                  on_delivery=lambda err, m: where.__setitem__(
                      m.value(), TopicPartition(topic_in, m.partition(),
                                                m.offset())))
        return e, value

    # personless traffic all along: batches after the bad one go through
    stop = threading.Event()

    def traffic():
        i = 0
        while not stop.is_set():
            sent.append(send(f"{t}-p{i}")[0])
            p.poll(0)
            i += 1
            stop.wait(0.02)

    # A key's second message overflows, to a topic the worker may not
    # create; long batches keep a failing one pending while the next is
    # read.
    w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in,
                   batch_wait_ms=3000, overflow_topic=f"{name}_overflow",
                   overflow_bucket_capacity=1,
                   overflow_bucket_replenish_rate=0,
                   kafka_producer_option=["message.timeout.ms 1000",
                                          "allow.auto.create.topics false"],
                   kafka_consumer_option=["partition.assignment.strategy "
                                          + strategy])
    w.start()
    feeder = threading.Thread(target=traffic, daemon=True)
    feeder.start()
    group = Consumer({"bootstrap.servers": stack.kafka.bootstrap,
                      "group.id": f"t-{name}"})
    seen = []

    def committed():
        c = group.committed([TopicPartition(topic_in, bad_at.partition)],
                            timeout=5)
        seen.append(c[0].offset)
        return c[0].offset

    try:
        p.flush(10)
        bad = [send(f"{t}-x", i=i)[1] for i in range(6)]
        p.flush(10)
        bad_at = where[bad[0]]
        mark = bad_at.offset
        wait_for(lambda: "_overflow\" failed" in w.log_tail(400),
                 timeout=60, what="the overflow messages failing")

        # members come and go while the batch fails
        for _ in range(4):
            other = Consumer({"bootstrap.servers": stack.kafka.bootstrap,
                              "group.id": f"t-{name}",
                              "enable.auto.commit": False,
                              "partition.assignment.strategy": strategy})
            try:
                other.subscribe([topic_in] if coop else [f"{t}_other"])
                # what it reads it neither processes nor commits
                wait_for(lambda: (other.poll(0.2), other.assignment())[1]
                         and committed() is not None,
                         timeout=60, what="the rebalance")
            finally:
                other.close()
            log = w.log_tail(3000)
            wait_for(lambda: committed() is not None and w.log_tail(3000)
                     .count("not committed") > log.count("not committed"),
                     timeout=60, what="a retry after the rebalance")
        assert all(o <= mark for o in seen), (seen, mark)

        # the topic is there: the messages arrive, the offset moves on
        stack.kafka.create_topics([f"{name}_overflow"], partitions=1)
        wait_for(lambda: set(bad[1:]) <= set(
            consume_values(stack, f"{name}_overflow", raw=True)),
                 timeout=120, what="every overflow message of the bad batch")
        stop.set()
        feeder.join(10)
        p.flush(10)
        # each in ClickHouse's topic or, read again past its key's bucket,
        # in the overflow topic
        wait_for(lambda: set(sent) <= {v["uuid"] for v in consume_values(
            stack, f"{name}_clickhouse_events_json")} | {
            json.loads(v)["uuid"] for v in consume_values(
                stack, f"{name}_overflow", raw=True)},
            timeout=120, what="every event of the traffic")
        assert committed() > mark
    finally:
        stop.set()
        feeder.join(10)
        group.close()
        w.stop()


# a worker whose person rows cannot be delivered yet: its producer gives
# up fast and never creates the topics that are missing
UNDELIVERED = ["message.timeout.ms 1000", "allow.auto.create.topics false"]


def topics_without(stack, prefix, rows):
    """A tag, a worker name and its input topic, with every output topic
    of that worker created but `rows`."""
    t = tag()
    name, topic_in = f"{prefix}{t}", f"{t}_in"
    stack.kafka.create_topics([topic_in] + [f"{name}_{x}" for x in
                                            ST.OUTPUT_TOPICS if x not in rows],
                              partitions=1)
    return t, name, topic_in


def produce_captured(stack, topic, events):
    """(distinct_id, event, properties) as capture would have sent them"""
    p = Producer({"bootstrap.servers": stack.kafka.bootstrap})
    for d, ev, pr in events:
        e = str(uuid.uuid4())
        p.produce(topic, key=f"{stack.token}:{d}".encode(),
                  value=json.dumps({
                      "uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                      "data": json.dumps({"event": ev, "distinct_id": d,
                                          "uuid": e, "properties": pr}),
                      "token": stack.token,
                      "now": "2024-01-01T10:00:00.000Z"}).encode())
    p.flush(10)


def test_person_rows_of_a_failed_batch_are_emitted_again(stack, tmp_path):
    """A batch creates persons and a group, but their rows cannot be
    delivered (the person, distinct id and groups topics do not exist
    yet).  Read again, the events change nothing in Postgres, yet the
    rows are emitted again: once the topics exist, every row arrives."""
    rows = ["clickhouse_person", "clickhouse_person_distinct_id",
            "clickhouse_groups"]
    t, name, topic_in = topics_without(stack, "pr", rows)
    w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in,
                   kafka_producer_option=UNDELIVERED)
    w.start()
    try:
        ids = [f"{t}-{i}" for i in range(3)]
        produce_captured(stack, topic_in, [
            (ids[0], "$groupidentify", {"$group_type": "company",
                                        "$group_key": f"{t}-co",
                                        "$group_set": {"name": "co"}})] + [
            (d, "pr", {"$set": {"n": 1}}) for d in ids[1:]])
        wait_for(lambda: w.log_tail(400).count("not committed") >= 2,
                 timeout=60, what="the batch failing twice")

        stack.kafka.create_topics([f"{name}_{x}" for x in rows],
                                  partitions=1)
        want = {person_uuid(stack.team_id, d) for d in ids}
        wait_for(lambda: want <= {v["id"] for v in consume_values(
            stack, f"{name}_clickhouse_person")},
            timeout=60, what="every person row")
        pdi = wait_for(lambda: (lambda got: got if set(ids) <= set(got)
                                else None)({
            v["distinct_id"]: v for v in consume_values(
                stack, f"{name}_clickhouse_person_distinct_id")}),
            timeout=60, what="every distinct id row")
        for d in ids:
            assert pdi[d]["person_id"] == person_uuid(stack.team_id, d)
            assert pdi[d]["version"] == 0
        wait_for(lambda: [v for v in consume_values(
            stack, f"{name}_clickhouse_groups")
            if v["group_key"] == f"{t}-co"
            and json.loads(v["group_properties"]) == {"name": "co"}],
            timeout=60, what="the group row")
        persons = {v["id"]: v for v in consume_values(
            stack, f"{name}_clickhouse_person")}
        for d in ids:
            u = person_uuid(stack.team_id, d)
            assert persons[u]["version"] == 0
            assert json.loads(persons[u]["properties"]).get("n") == (
                None if d == ids[0] else 1)
    finally:
        w.stop()



def test_rows_a_killed_worker_never_emitted_come_from_the_next(
        stack, tmp_path):
    """A worker changes persons in Postgres, but their rows cannot be
    delivered (the person and distinct id topics do not exist) and it is
    killed before it commits.  The next worker of the group reads the
    messages again; they change nothing in Postgres, yet it emits the rows
    the killed one never delivered."""
    rows = ["clickhouse_person", "clickhouse_person_distinct_id"]
    t, name, topic_in = topics_without(stack, "kr", rows)
    opts = dict(input_topic=topic_in, kafka_producer_option=UNDELIVERED)
    w = own_worker(stack, tmp_path / "w1", name, **opts)
    w.start()
    ids = [f"{t}-{i}" for i in range(3)]
    try:
        produce_captured(stack, topic_in,
                         [(d, "kr", {"$set": {"n": 1}}) for d in ids])
        wait_for(lambda: w.log_tail(400).count("not committed") >= 1,
                 timeout=60, what="the batch failing")
        assert all(stack.postgres.psql(
            f"SELECT 1 FROM posthog_persondistinctid WHERE distinct_id = "
            f"'{d}'", dbname="edgehog").strip() for d in ids)
    finally:
        if w.proc:
            os.kill(w.pid, signal.SIGKILL)
            w.proc.wait()
            w.proc = None

    stack.kafka.create_topics([f"{name}_{x}" for x in rows], partitions=1)
    w = own_worker(stack, tmp_path / "w2", name, **opts)
    w.start()
    try:
        pdi = wait_for(lambda: (lambda got: got if set(ids) <= set(got)
                                else None)({
            v["distinct_id"]: v for v in consume_values(
                stack, f"{name}_clickhouse_person_distinct_id")}),
            timeout=60, what="every distinct id row")
        persons = wait_for(lambda: (lambda got: got if {
            person_uuid(stack.team_id, d) for d in ids} <= set(got)
            else None)({v["id"]: v for v in consume_values(
                stack, f"{name}_clickhouse_person")}),
            timeout=60, what="every person row")
        for d in ids:
            u = person_uuid(stack.team_id, d)
            assert pdi[d]["person_id"] == u
            assert persons[u]["version"] == 0
            assert json.loads(persons[u]["properties"])["n"] == 1
    finally:
        w.stop()


def test_merge_rows_of_a_failed_batch_are_emitted_again(stack, tmp_path):
    """A batch merges two persons, but its person and distinct id rows
    cannot be delivered.  Postgres no longer has the merged-away person,
    yet once the topics exist its delete row arrives, and every distinct
    id points at the surviving person with its moved version."""
    rows = ["clickhouse_person", "clickhouse_person_distinct_id"]
    t, name, topic_in = topics_without(stack, "mr", rows)
    w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in,
                   kafka_producer_option=UNDELIVERED)
    w.start()
    try:
        anon, user, third = f"{t}-anon", f"{t}-user", f"{t}-third"
        produce_captured(stack, topic_in, [
            (anon, "pageview", {"$set": {"a": 1}}),
            (third, "pageview", {"$set": {"c": 1}}),
            (user, "pageview", {"$set": {"u": 1}}),
            # third's person goes into anon's, then anon's (identified
            # by that) into user's
            (anon, "$create_alias", {"alias": third}),
            (user, "$merge_dangerously", {"alias": anon}),
        ])
        wait_for(lambda: w.log_tail(400).count("not committed") >= 2,
                 timeout=60, what="the batch failing twice")

        stack.kafka.create_topics([f"{name}_{x}" for x in rows],
                                  partitions=1)
        survivor = person_uuid(stack.team_id, user)
        gone = {person_uuid(stack.team_id, d) for d in (anon, third)}

        def deleted():
            got = {v["id"]: v for v in consume_values(
                stack, f"{name}_clickhouse_person") if v["is_deleted"]}
            return got if gone <= set(got) else None
        dels = wait_for(deleted, timeout=60, what="both delete rows")
        for u in gone:
            assert dels[u]["version"] >= 100
        assert survivor not in dels

        def pointing():
            got = {v["distinct_id"]: v for v in consume_values(
                stack, f"{name}_clickhouse_person_distinct_id")
                if v["person_id"] == survivor}
            return got if {anon, user, third} <= set(got) else None
        pdi = wait_for(pointing, timeout=60,
                       what="every distinct id at the survivor")
        assert pdi[user]["version"] == 0
        assert pdi[anon]["version"] >= 1
        assert pdi[third]["version"] >= 1
        persons = [v for v in consume_values(
            stack, f"{name}_clickhouse_person")
            if v["id"] == survivor and not v["is_deleted"]]
        assert persons
        merged = json.loads(max(persons, key=lambda v: v["version"])
                            ["properties"])
        merged.pop("$creator_event_uuid", None)
        assert merged == {"a": 1, "c": 1, "u": 1}
    finally:
        w.stop()