"""2x2 ClickHouse cluster fed by the cluster worker: 1000 events over 100
distinct ids land on exactly the shard sipHash64(distinct_id) picks, on
both of its replicas; `events` returns each once; `person` is complete on
every node."""

import json
import uuid

from confluent_kafka import Producer

from conftest import wait_for
from ingest_helpers import person_uuid, tag


def q(node, sql):
    return [json.loads(line) for line in
            node.query(sql + " FORMAT JSONEachRow").splitlines() if line]


def test_cluster_1000_events_100_ids(stack, cluster):
    t = tag()
    ids = [f"{t}-c{i}" for i in range(100)]
    p = Producer({"bootstrap.servers": stack.kafka.bootstrap,
                  "linger.ms": 20})
    evs = {}
    for i in range(10):
        for d in ids:
            e = str(uuid.uuid4())
            evs[e] = d
            data = {"event": "cluster", "distinct_id": d, "uuid": e,
                    "properties": {"$set": {"n": i}}}
            p.produce("events_plugin_ingestion", key=f"{stack.token}:{d}",
                      value=json.dumps({
                          "uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                          "data": json.dumps(data), "token": stack.token,
                          "now": "2024-01-01T10:00:00.000Z",
                          "timestamp": "2024-01-01T10:00:00.000Z"}))
    p.flush(30)

    where = f"team_id = {stack.team_id} AND distinct_id LIKE '{t}-c%'"
    nodes = cluster.nodes

    def local(node):
        return {r["u"]: int(r["n"]) for r in q(
            node, f"SELECT toString(uuid) AS u, count() AS n FROM "
                  f"sharded_events FINAL WHERE {where} GROUP BY uuid")}

    wait_for(lambda: all(len(local(n)) > 0 for n in nodes)
             and sum(len(local(n)) for n in nodes) == 2000,
             timeout=180, interval=1, what="1000 events on two replicas")

    shard_of = {r["d"]: int(r["s"]) for r in q(
        nodes[0], "SELECT arrayJoin([" + ",".join(f"'{d}'" for d in ids)
        + "]) AS d, sipHash64(d) % 2 AS s")}
    for si, shard in enumerate(cluster.shards):
        for node in shard:
            rows = local(node)
            assert all(n == 1 for n in rows.values())
            want = {e for e, d in evs.items() if shard_of[d] == si}
            assert set(rows) == want, (si, len(rows), len(want))

    for node in nodes:
        (r,), = [q(node, f"SELECT count() AS n, uniqExact(uuid) AS u FROM "
                         f"events FINAL WHERE {where}")]
        assert int(r["n"]) == 1000 and int(r["u"]) == 1000

    uuids = ",".join(f"toUUID('{person_uuid(stack.team_id, d)}')"
                     for d in ids)

    def persons(node):
        return q(node, f"SELECT toString(id) AS sid, "
                       f"argMax(properties, version) AS p FROM person "
                       f"WHERE team_id = {stack.team_id} AND id IN ({uuids}) "
                       f"GROUP BY id HAVING max(is_deleted) = 0")

    def pdis(node):
        return int(q(node, f"SELECT count() AS n FROM (SELECT distinct_id "
                           f"FROM person_distinct_id2 WHERE {where} GROUP "
                           f"BY distinct_id)")[0]["n"])

    for node in nodes:
        rows = wait_for(lambda: (lambda r: r if len(r) == 100 and all(
            json.loads(x["p"]).get("n") == 9 for x in r) else None)(
            persons(node)), timeout=120, interval=1,
            what="100 complete persons on every node")
        assert len(rows) == 100
        # another topic and Kafka table than the persons': it may come
        # later, but it must come, and with nothing more
        wait_for(lambda: pdis(node) >= 100, timeout=120, interval=1,
                 what="100 distinct ids on every node")
        assert pdis(node) == 100
