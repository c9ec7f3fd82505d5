"""AC-22 overflow routing with a worker of its own (own input, output
and overflow topics), the overflow consumer mode, metrics and SIGTERM."""

import json
import os
import signal
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from conftest import ST, S, wait_for
from ingest_helpers import own_worker as worker, person_uuid, tag


def consume_all(bootstrap, topic, want, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": "t-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out = []
    try:
        wait_for(lambda: (out.extend(m for m in c.consume(500, 0.5)
                                     if not m.error()) or len(out) >= want),
                 timeout=timeout, what=f"{want} messages on {topic}")
    finally:
        c.close()
    return out


def test_ac22_overflow_routing_and_overflow_consumer(stack, tmp_path):
    t = tag()
    names = {k: f"{t}_{k}" for k in ("in", "ovf", "main", "second")}
    main_out = f"main{t}"
    second_out = f"second{t}"
    topics = [names["in"], names["ovf"]] + [
        f"{p}_{x}" for p in (main_out, second_out) for x in ST.OUTPUT_TOPICS]
    stack.kafka.create_topics(topics, partitions=1)

    hot, cold = f"{t}-hot", f"{t}-cold"
    p = Producer({"bootstrap.servers": stack.kafka.bootstrap,
                  "linger.ms": 50})
    values = []
    for i in range(1505):
        d = hot if i < 1500 else cold
        e = str(uuid.uuid4())
        data = {"event": "e", "distinct_id": d, "uuid": e, "properties": {}}
        v = json.dumps({"uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                        "data": json.dumps(data), "token": stack.token,
                        "now": "2024-01-01T10:00:00.000Z",
                        "timestamp": "2024-01-01T10:00:00.000Z"}).encode()
        values.append(v)
        # one Kafka timestamp for the whole group, as in AC-22
        p.produce(names["in"], value=v, key=f"{stack.token}:{d}".encode(),
                  timestamp=1704103200000, headers={"token": stack.token})
    p.flush(30)

    metrics_port = S.free_port()
    w = worker(stack, tmp_path / "main", main_out, input_topic=names["in"],
               overflow_topic=names["ovf"], batch_size=5000,
               batch_wait_ms=3000, overflow_bucket_capacity=1000,
               metrics_port=metrics_port)
    w.start()
    try:
        ovf = consume_all(stack.kafka.bootstrap, names["ovf"], 1500)
        assert len(ovf) == 1500
        assert sorted(m.value() for m in ovf) == sorted(values[:1500])
        assert all(m.key() is None for m in ovf)
        assert all(dict(m.headers())["token"] == stack.token.encode()
                   for m in ovf)
        evs = consume_all(stack.kafka.bootstrap,
                          f"{main_out}_clickhouse_events_json", 5)
        assert {json.loads(m.value())["distinct_id"] for m in evs} == {cold}

        def metrics():
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{metrics_port}/metrics",
                    timeout=30) as r:
                return r.read().decode()
        # published after each batch is committed, which is after its
        # outputs arrived: wait for the batches of all 1505 events (the
        # 1500 and the 5 may be read in two)
        text = wait_for(lambda: (lambda x: x if "overflow\"} 1500" in x
                                 and 'ingested"} 5\n' in x else None)(
                                     metrics()), timeout=60,
                        what="metrics")
        assert 'edgehog_ingest_events_total{outcome="ingested"} 5' in text
        assert "edgehog_ingest_persons_total{op=\"created\"} 1" in text
        assert "edgehog_ingest_batch_seconds_count" in text
        assert "edgehog_ingest_consumer_lag 0" in text

        # SIGTERM: a clean exit
        os.kill(w.pid, signal.SIGTERM)
        assert w.proc.wait(30) == 0
    finally:
        w.stop()

    # the overflow consumer: same binary, overflow disabled
    o = worker(stack, tmp_path / "second", second_out,
               input_topic=names["ovf"], overflow_enabled=0)
    o.start()
    try:
        evs = consume_all(stack.kafka.bootstrap,
                          f"{second_out}_clickhouse_events_json", 1500,
                          timeout=120)
        rows = [json.loads(m.value()) for m in evs]
        assert {r["distinct_id"] for r in rows} == {hot}
        assert {r["person_id"] for r in rows} == {
            person_uuid(stack.team_id, hot)}
        # G2's overflow consumer tells the team, once per distinct id
        ws = [json.loads(m.value()) for m in consume_all(
            stack.kafka.bootstrap,
            f"{second_out}_clickhouse_ingestion_warnings", 1)]
        ws = [w for w in ws if w["type"] == "ingestion_capacity_overflow"]
        assert len(ws) == 1
        assert json.loads(ws[0]["details"]) == {"overflowDistinctId": hot}
        assert ws[0]["team_id"] == stack.team_id
    finally:
        o.stop()
