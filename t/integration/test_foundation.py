"""Foundation: the walking skeleton end to end, nginx -t with both
modules, worker configuration errors, and the 2x2 ClickHouse cluster."""

import json
import os
import subprocess
import uuid

import pytest
import requests

from conftest import ST, wait_for


def send_event(stack, event="skeleton", distinct_id="user-1", **extra):
    ev_uuid = str(uuid.uuid4())
    body = {"api_key": stack.token, "event": event, "distinct_id": distinct_id,
            "uuid": ev_uuid, "properties": {"plan": "free", **extra}}
    r = requests.post(stack.nginx.url + "/i/v0/e/", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "Ok"}
    return ev_uuid


def ch_rows(node, sql):
    out = node.query(sql + " FORMAT JSONEachRow")
    return [json.loads(line) for line in out.splitlines() if line]


def test_skeleton_event_reaches_clickhouse(stack):
    ev_uuid = send_event(stack, event="skeleton test", distinct_id="sk-1")
    ch = stack.ch_nodes[0]
    rows = wait_for(lambda: ch_rows(
        ch, f"SELECT event, distinct_id, team_id, properties FROM events "
            f"FINAL WHERE uuid = toUUID('{ev_uuid}')"),
        timeout=60, what="the event row in ClickHouse")
    assert len(rows) == 1
    assert rows[0]["event"] == "skeleton test"
    assert rows[0]["distinct_id"] == "sk-1"
    assert int(rows[0]["team_id"]) == stack.team_id
    assert json.loads(rows[0]["properties"])["plan"] == "free"


def test_unknown_token_is_accepted_then_dropped(stack):
    body = {"api_key": "phc_unknown_token", "event": "x", "distinct_id": "d",
            "uuid": str(uuid.uuid4())}
    r = requests.post(stack.nginx.url + "/i/v0/e/", json=body, timeout=30)
    # capture does not know projects: ingestion drops the event
    assert r.status_code == 200
    marker = send_event(stack, event="after unknown token")
    ch = stack.ch_nodes[0]
    wait_for(lambda: ch_rows(ch, f"SELECT 1 FROM events WHERE uuid = "
                                 f"toUUID('{marker}')"),
             what="a later event of a known token")
    assert not ch_rows(ch, f"SELECT 1 FROM events WHERE "
                           f"uuid = toUUID('{body['uuid']}')")


def test_errors_are_json_with_cors(stack):
    url = stack.nginx.url + "/i/v0/e/"
    origin = {"Origin": "https://app.example"}
    cases = [
        (b"{not json", 400, "failed to parse request"),
        (json.dumps({"event": "x", "distinct_id": "d"}).encode(), 401,
         "event submitted without an api_key"),
        (json.dumps({"api_key": stack.token, "event": "",
                     "distinct_id": "d"}).encode(), 400,
         "event submitted with an empty event name"),
        (json.dumps({"api_key": stack.token, "event": "x"}).encode(), 400,
         "event submitted without a distinct_id"),
        (b"", 400, "request missing data payload"),
    ]
    for body, status, message in cases:
        r = requests.post(url, data=body, headers=origin, timeout=10)
        assert r.status_code == status, (body, r.text)
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Access-Control-Allow-Origin"] == origin["Origin"]
        doc = r.json()
        assert doc["status"] == status
        assert doc["error"].startswith(message), doc
        assert doc["code"]


def test_preflight_and_method_not_allowed(stack):
    url = stack.nginx.url + "/batch"
    r = requests.options(url, headers={
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = requests.put(url, data=b"{}", timeout=10)
    assert r.status_code == 405
    assert r.json()["status"] == 405


def test_decide_skeleton_answers_json(stack):
    r = requests.post(stack.nginx.url + "/decide/?v=3",
                      json={"token": stack.token, "distinct_id": "d"},
                      timeout=10)
    assert r.status_code == 200
    assert r.json()["featureFlags"] == {}


def test_nginx_t_accepts_both_modules(tmp_path):
    nginx = ST.Nginx(str(tmp_path))
    rc, out = nginx.test_config()
    assert rc == 0, out
    assert "syntax is ok" in out
    # the modules carry the signature of Debian's binary
    assert "is not binary compatible" not in out


def test_nginx_t_rejects_bad_kafka_option(tmp_path):
    nginx = ST.Nginx(str(tmp_path), extra="")
    nginx.conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read() \
        .replace("capture_kafka_brokers",
                 "capture_kafka_option linger.ms banana;\n"
                 "    capture_kafka_brokers")
    rc, out = nginx.test_config()
    assert rc != 0
    assert 'invalid capture_kafka_option "linger.ms" "banana"' in out


@pytest.mark.parametrize("text, message", [
    ("batch_size = lots\n",
     'invalid value "lots" for "batch_size"'),
    ("no_such_key = 1\n", 'unknown key "no_such_key"'),
    ("log_level = loud\n", 'invalid value "loud" for "log_level"'),
    ("kafka_brokers\n", 'expected "key = value"'),
    ("kafka_producer_option = linger.ms banana\n",
     'invalid kafka option "linger.ms banana"'),
    ("kafka_consumer_option = no.such.thing 1\n",
     'invalid kafka option "no.such.thing 1"'),
])
def test_worker_refuses_bad_config(tmp_path, text, message):
    conf = tmp_path / "worker.conf"
    conf.write_text(text)
    out = subprocess.run([ST.WORKER_BIN, "-c", str(conf), "run"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert message in out.stderr
    assert "worker.conf:1" in out.stderr


def test_worker_refuses_missing_config(tmp_path):
    out = subprocess.run([ST.WORKER_BIN, "-c", str(tmp_path / "nope"), "run"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "cannot open config" in out.stderr


def test_cluster_event_on_one_shard_both_replicas(stack, cluster):
    ev_uuid = send_event(stack, event="cluster test", distinct_id="cl-user-7")
    where = f"uuid = toUUID('{ev_uuid}')"

    def local_counts():
        return [int(n.query(f"SELECT count() FROM sharded_events FINAL "
                            f"WHERE {where}").strip())
                for n in cluster.nodes]

    wait_for(lambda: sum(local_counts()) == 2, timeout=90,
             what="the event on two replicas")
    by_shard = [[int(n.query(f"SELECT count() FROM sharded_events FINAL "
                             f"WHERE {where}").strip()) for n in shard]
                for shard in cluster.shards]
    # exactly one shard holds it, on both of its replicas: the one that
    # Distributed's sharding key picks (equal weights: hash modulo 2)
    assert sorted(by_shard) == [[0, 0], [1, 1]], by_shard
    shard = int(cluster.nodes[0].query(
        "SELECT sipHash64('cl-user-7') % 2").strip())
    assert by_shard[shard] == [1, 1], by_shard
    for node in cluster.nodes:
        rows = ch_rows(node, f"SELECT event FROM events FINAL WHERE {where}")
        assert [r["event"] for r in rows] == ["cluster test"]
