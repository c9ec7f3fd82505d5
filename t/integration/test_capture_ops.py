"""Health, metrics, routing controls (AC-24(b), token dropper) and Kafka
failures (AC-25(d)) of the capture module."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import requests

import services as S
from capture_kit import Capture, nginx_workers
from conftest import ST, wait_for

TOKEN = "phc_test"


def ev(distinct_id="u1", token=TOKEN, event="e"):
    return {"api_key": token, "event": event, "distinct_id": distinct_id}


def test_health_endpoints(stack, tmp_path):
    c = Capture(stack, tmp_path)
    try:
        for path in ("/_readiness", "/_liveness"):
            r = requests.get(c.url + path, timeout=10)
            assert r.status_code == 200, (path, r.text)
        assert requests.get(c.url + "/_readiness").text == "capture"
        assert not c.bad_log_lines()
    finally:
        c.close()


def test_metrics_counts_requests_and_events(stack, tmp_path):
    c = Capture(stack, tmp_path)
    try:
        r, msgs = c.send("POST", "/i/v0/e/", ev())
        assert r.status_code == 200 and len(msgs) == 1
        r, _ = c.send("POST", "/batch/", b"[]")
        assert r.status_code == 400
        r, msgs = c.send("POST", "/e/", [
            dict(ev(), event="$performance_event"), ev()])
        assert len(msgs) == 1
        text = requests.get(c.url + "/metrics", timeout=10).text
        assert 'http_requests_total{path="/i/v0/e",status="200"} 1' in text
        assert 'http_requests_total{path="/batch",status="400"} 1' in text
        assert "capture_events_received_total 3" in text
        assert "capture_events_ingested_total 2" in text
        assert ('capture_events_dropped_total{cause="performance_event"} 1'
                in text)
        assert "capture_kafka_delivery_seconds_count 2" in text
        assert "capture_kafka_queue_depth" in text
    finally:
        c.close()


def test_ac24b_forced_overflow_and_rate(stack, tmp_path):
    c = Capture(stack, tmp_path / "a", extra_loc=(
        "capture_overflow_force phc_hot phc_test:u2;"))
    try:
        r, msgs = c.send("POST", "/batch/", {"api_key": TOKEN, "batch": [
            {"event": "a", "distinct_id": "u1"},
            {"event": "b", "distinct_id": "u2"}]})
        assert r.status_code == 200
        r2, msgs2 = c.send("POST", "/e/", ev("x", token="phc_hot"))
        assert r2.status_code == 200
        by = {m["value"]["event"]: m for m in msgs}
        assert by["a"]["kind"] == "main" and by["a"]["key"] == "phc_test:u1"
        assert by["b"]["kind"] == "overflow" and by["b"]["key"] is None
        assert by["b"]["headers"]["force_disable_person_processing"] == "true"
        assert msgs2[0]["kind"] == "overflow" and msgs2[0]["key"] is None
    finally:
        c.close()
    c = Capture(stack, tmp_path / "b", extra_loc=(
        "capture_overflow_rate 1; capture_overflow_burst 1;"))
    try:
        r, msgs = c.send("POST", "/e/", [ev("hot"), ev("hot"), ev("cold")])
        assert r.status_code == 200
        assert [(m["kind"], m["key"]) for m in msgs] == [
            ("main", "phc_test:hot"), ("main", "phc_test:cold"),
            ("overflow", None)] or sorted(
            (m["kind"], m["key"] or "") for m in msgs) == sorted([
                ("main", "phc_test:hot"), ("overflow", ""),
                ("main", "phc_test:cold")])
        assert "force_disable_person_processing" not in [
            k for m in msgs for k in m["headers"]]
    finally:
        c.close()


def test_token_dropper(stack, tmp_path):
    c = Capture(stack, tmp_path, extra_loc=(
        "capture_drop_events phc_drop phc_test:bad;"))
    try:
        r, msgs = c.send("POST", "/e/", [ev("bad"), ev("good")])
        assert r.status_code == 200
        assert [m["value"]["distinct_id"] for m in msgs] == ["good"]
        r, msgs = c.send("POST", "/e/", ev("any", token="phc_drop"))
        assert r.status_code == 200 and r.json() == {"status": "Ok"}
        assert msgs == []
    finally:
        c.close()


def test_nginx_t_rejects_bad_capture_directives(tmp_path):
    for bad in ("capture_compat loose;", "capture_max_decompressed_size x;",
                "capture_overflow_force :u;"):
        conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
        conf = conf.replace("capture  on;", "capture  on;\n" + bad)
        nginx = ST.Nginx(str(tmp_path / str(abs(hash(bad)))), conf=conf)
        rc, out = nginx.test_config()
        assert rc != 0, bad
        assert "emerg" in out


def test_ac25d_broker_down_503_and_liveness(stack, tmp_path):
    """A Kafka of this test's own, stopped under a running nginx."""
    kafka = S.Kafka(str(tmp_path / "k"))
    kafka.start()
    nginx = None
    try:
        kafka.create_topics(["events_plugin_ingestion"], partitions=1)
        conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
        conf = conf.replace("capture_kafka_brokers",
                            "capture_kafka_option message.timeout.ms 5000;\n"
                            "    capture_liveness_timeout 10;\n"
                            "    capture_kafka_brokers")
        # how long nginx itself took: the client's clock would add its
        # own scheduling on a busy machine to what is measured
        conf = conf.replace("    access_log            @PREFIX@/access.log;",
                            "    log_format  took  '$request_time $status';\n"
                            "    access_log  @PREFIX@/took.log  took;")
        nginx = ST.Nginx(str(tmp_path / "n"), kafka=kafka.bootstrap,
                         conf=conf)
        nginx.start()
        took = os.path.join(nginx.workdir, "took.log")
        url = nginx.url
        r = requests.post(url + "/i/v0/e/", json=ev(), timeout=30)
        assert r.status_code == 200, r.text
        wait_for(lambda: requests.get(url + "/_liveness").status_code == 200,
                 timeout=30, what="liveness 200")
        kafka.stop()
        r = requests.post(url + "/i/v0/e/", json=ev(), timeout=60)
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "transient error, please retry"
        assert r.headers["Retry-After"]
        # at message.timeout.ms, not at capture_ack_timeout (30 s)
        refused = wait_for(lambda: [
            float(l.split()[0]) for l in open(took).read().splitlines()
            if l.endswith(" 503")], timeout=30, what="the 503 logged")
        assert len(refused) == 1 and refused[0] < 5 + 3, refused
        wait_for(lambda: requests.get(url + "/_liveness").status_code == 500,
                 timeout=40, what="liveness 500")
        assert requests.get(url + "/_readiness").status_code == 200
        kafka.start()
        wait_for(lambda: requests.get(url + "/_liveness").status_code == 200,
                 timeout=60, what="liveness back to 200")
        r = requests.post(url + "/i/v0/e/", json=ev(), timeout=30)
        assert r.status_code == 200, r.text
        assert not nginx.bad_log_lines()
    finally:
        if nginx:
            nginx.stop()
        kafka.stop()


def over_quota_drops(c):
    text = requests.get(c.url + "/metrics").text
    for line in text.splitlines():
        if line.startswith('capture_events_dropped_total'
                           '{cause="events_over_quota"}'):
            return int(line.split()[-1])
    return 0


def test_ac24a_quota_limits_from_redis(stack, tmp_path):
    import redis
    prefix = f"q{os.getpid()}{int(time.time())}:"
    key = prefix + "@posthog/quota-limits/events"
    rds = redis.Redis(port=stack.redis.port)
    c = Capture(stack, tmp_path / "a", extra_http=(
        f"capture_quota_redis 127.0.0.1:{stack.redis.port} {prefix};\n"
        "capture_quota_interval 1s;"))
    # a product tour's survey event is an ordinary event (§7.1)
    batch = {"api_key": TOKEN, "batch": [
        {"event": e, "distinct_id": "u"}
        for e in ("$pageview", "click", "$exception", "survey sent",
                  "survey shown")] + [
        {"event": "survey sent", "distinct_id": "u",
         "properties": {"$product_tour_id": "tour-1"}}]}
    probe = {"api_key": TOKEN, "batch": [
        {"event": "$pageview", "distinct_id": "probe"}]}

    def limited():
        return c.send("POST", "/batch/", probe)[1] == []

    try:
        rds.zadd(key, {TOKEN: int(time.time()) + 3600})
        # the next refresh (every 1s, off the request path) loads the set
        wait_for(limited, timeout=30, what="the quota set to load")
        drops = over_quota_drops(c)
        r, msgs = c.send("POST", "/batch/", batch)
        assert r.status_code == 200 and r.json() == {"status": "Ok"}
        assert sorted((m["value"]["event"], m["kind"]) for m in msgs) == [
            ("$exception", "exceptions"), ("survey sent", "main"),
            ("survey shown", "main")]
        assert "$product_tour_id" not in json.dumps([m["data"]
                                                     for m in msgs])
        r, msgs = c.send("POST", "/batch/", {"api_key": TOKEN, "batch": [
            {"event": "$pageview", "distinct_id": "u"}]})
        assert r.status_code == 200 and msgs == []
        assert over_quota_drops(c) - drops == 4
        # an expired score no longer limits
        rds.zadd(key, {TOKEN: int(time.time()) - 10})
        wait_for(lambda: not limited(), timeout=30,
                 what="the expired quota to lift")
        r, msgs = c.send("POST", "/batch/", batch)
        assert len(msgs) == 6
        assert not c.bad_log_lines()
    finally:
        rds.delete(key)
        c.close()
    # Redis unreachable: fail open, once a refresh has failed
    port = S.free_port()
    c = Capture(stack, tmp_path / "b", extra_http=(
        f"capture_quota_redis 127.0.0.1:{port};\n"
        "capture_quota_interval 1s;"))
    try:
        # the quota client is this nginx's only upstream connection
        wait_for(lambda: "recv() failed (111: Connection refused)"
                 in c.nginx.log_text(),
                 timeout=30, what="a failed quota refresh")
        r, msgs = c.send("POST", "/batch/", batch)
        assert r.status_code == 200 and len(msgs) == 6
        assert not c.bad_log_lines()
    finally:
        c.close()


def test_ac25d_queue_full_is_immediate_503(tmp_path):
    """No broker at all and a one-message queue: the second request is
    refused at once, in either ack mode."""
    conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
    conf = conf.replace("capture_kafka_brokers",
                        "capture_kafka_option queue.buffering.max.messages 1;"
                        "\n    capture_kafka_brokers")
    conf = conf.replace("capture  on;", "capture  on;\ncapture_ack enqueue;")
    # how long nginx itself took: the client's clock would add its own
    # scheduling on a busy machine to what is measured
    conf = conf.replace("    access_log            @PREFIX@/access.log;",
                        "    log_format  took  '$request_time $status';\n"
                        "    access_log  @PREFIX@/took.log  took;")
    nginx = ST.Nginx(str(tmp_path), kafka=f"127.0.0.1:{S.free_port()}",
                     conf=conf)
    nginx.start()
    took = os.path.join(nginx.workdir, "took.log")
    try:
        r = requests.post(nginx.url + "/i/v0/e/", json=ev(), timeout=10)
        assert r.status_code == 200, r.text
        r = requests.post(nginx.url + "/i/v0/e/", json=ev(), timeout=10)
        assert r.status_code == 503, r.text
        refused = wait_for(lambda: [
            l.split()[0] for l in open(took).read().splitlines()
            if l.endswith(" 503")], timeout=30, what="the 503 logged")
        assert len(refused) == 1 and float(refused[0]) < 1, refused
        assert r.headers["Retry-After"]
        assert not nginx.bad_log_lines()
    finally:
        nginx.stop()


def test_ack_timeout_answers_every_waiter_503(tmp_path):
    """No broker and messages that never expire: each request waiting for
    its delivery report gets 503 at capture_ack_timeout, the concurrent
    ones and one that comes after the queue of waiters emptied."""
    conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
    conf = conf.replace("capture_kafka_brokers",
                        "capture_kafka_option message.timeout.ms 300000;"
                        "\n    capture_kafka_brokers")
    conf = conf.replace("capture  on;",
                        "capture  on;\ncapture_ack_timeout 1s;")
    nginx = ST.Nginx(str(tmp_path), kafka=f"127.0.0.1:{S.free_port()}",
                     conf=conf)
    nginx.start()
    try:
        def post(i):
            return requests.post(nginx.url + "/i/v0/e/",
                                 json=ev(distinct_id=f"u{i}"), timeout=30)
        with ThreadPoolExecutor(5) as pool:
            got = list(pool.map(post, range(5)))
        got.append(post(5))
        for r in got:
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "transient", r.text
            assert r.headers["Retry-After"]
        assert nginx.log_text().count(
            "no kafka acknowledgement in time, 1 messages pending") == 6
        assert not nginx.bad_log_lines()
    finally:
        nginx.stop()


def test_chunked_body_over_the_cap_is_413(stack, tmp_path):
    c = Capture(stack, tmp_path, extra_loc="client_max_body_size 64k;")
    try:
        def gen():
            for _ in range(100):
                yield b"[" + b" " * 1000 + b"]"
        r = requests.post(c.url + "/e/", data=gen(), timeout=30)
        assert r.status_code == 413
        r, msgs = c.send("POST", "/e/", b"[" + b" " * 70000 + b"]")
        assert r.status_code == 413 and r.json()["status"] == 413
        r, msgs = c.send("POST", "/e/", {"api_key": TOKEN, "event": "x",
                                         "distinct_id": "u"})
        assert r.status_code == 200 and len(msgs) == 1
        assert not c.bad_log_lines()
    finally:
        c.close()


def test_routes_methods_and_reload(stack, tmp_path):
    import signal
    c = Capture(stack, tmp_path)
    try:
        body = {"api_key": TOKEN, "event": "x", "distinct_id": "u"}
        for route in ("/e", "/capture", "/track", "/engage", "/i/v0/e",
                      "/batch"):
            for path in (route, route + "/"):
                b = body if route != "/batch" else {
                    "api_key": TOKEN, "batch": [
                        {"event": "x", "distinct_id": "u"}]}
                r, msgs = c.send("POST", path, b)
                assert r.status_code == 200, (path, r.text)
                assert len(msgs) == 1, path
        r = requests.head(c.url + "/e/?data=" + requests.utils.quote(
            json.dumps(body)), timeout=10)
        assert r.status_code == 200 and r.content == b""
        for method in ("PUT", "DELETE", "PATCH"):
            r = requests.request(method, c.url + "/e/", data=b"{}")
            assert r.status_code == 405 and r.json()["status"] == 405
        old = nginx_workers(c.nginx.pid)
        c.nginx.signal(signal.SIGHUP)
        wait_for(lambda: nginx_workers(c.nginx.pid) and not (
                 nginx_workers(c.nginx.pid) & old), timeout=30,
                 what="workers replaced by the reload")
        r, msgs = c.send("POST", "/i/v0/e/", body)
        assert r.status_code == 200 and len(msgs) == 1
        text = requests.get(c.url + "/metrics").text
        # counters live in shared memory and survive the reload
        assert 'http_requests_total{path="/e",status="200"}' in text
        assert not c.bad_log_lines()
    finally:
        c.close()
