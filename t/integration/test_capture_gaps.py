"""Capture behaviours beyond the acceptance cases: a slow body's 408 in
JSON, event restrictions (spec §7.5), the query token on GET (§3.1) and
the survey exemption from the events quota (§7.1)."""

import json
import os
import re
import socket
import uuid as uuidlib

import requests
from confluent_kafka import TopicPartition

from capture_kit import Capture
from conftest import ST

TOKEN = "phc_test"


def ev(distinct_id="u1", token=TOKEN, event="e", **extra):
    return dict({"api_key": token, "event": event,
                 "distinct_id": distinct_id}, **extra)


def http_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length from sock."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_slow_body_gets_json_408_and_nothing_is_produced(stack, tmp_path):
    c = Capture(stack, tmp_path, extra_loc="client_body_timeout 1s;")
    try:
        before = c.marks()
        body = json.dumps(ev()).encode()
        s = socket.create_connection(("127.0.0.1", c.nginx.port), timeout=60)
        try:
            s.sendall(b"POST /i/v0/e/ HTTP/1.1\r\nHost: t\r\n"
                      b"Origin: https://app.example.com\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            # the rest never comes: nginx's client_body_timeout fires
            status, headers, text = http_response(s)
        finally:
            s.close()
        assert status == 408
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert headers["access-control-allow-origin"] == \
            "https://app.example.com"
        assert json.loads(text) == {"status": 408, "code": "timeout",
                                    "error": "client stopped sending data"}
        assert c.read(before) == []
        # the worker goes on serving
        r, msgs = c.send("POST", "/i/v0/e/", ev())
        assert r.status_code == 200 and len(msgs) == 1
        assert not c.bad_log_lines()
    finally:
        c.close()


def test_event_restrictions(stack, tmp_path):
    custom = f"cap_restricted_{uuidlib.uuid4().hex[:8]}"
    stack.kafka.create_topics([custom], partitions=1)
    dlq_uuid = "0198393f-1b8a-7c2e-a269-737351f06167"
    c = Capture(stack, tmp_path, extra_loc=(
        "capture_event_restriction drop_event token=phc_r event=gone,lost;\n"
        "capture_event_restriction force_overflow token=phc_r "
        "distinct_id=hot;\n"
        "capture_event_restriction skip_person_processing token=phc_r "
        "distinct_id=hot,quiet;\n"
        f"capture_event_restriction redirect_to_dlq token=phc_r "
        f"uuid={dlq_uuid};\n"
        f"capture_event_restriction redirect_to_topic token=phc_r "
        f"session_id=s-9 event=moved topic={custom};\n"))
    c.tps.append(TopicPartition(custom, 0))
    c.kind_of[custom] = "custom"
    try:
        batch = {"api_key": "phc_r", "batch": [
            {"event": "gone", "distinct_id": "u"},
            {"event": "x", "distinct_id": "hot"},
            {"event": "x", "distinct_id": "quiet"},
            {"event": "x", "distinct_id": "u", "uuid": dlq_uuid},
            {"event": "moved", "distinct_id": "u",
             "properties": {"$session_id": "s-9"}},
            # every filter of a rule must match
            {"event": "moved", "distinct_id": "u",
             "properties": {"$session_id": "s-8"}},
            {"event": "x", "distinct_id": "u"}]}
        r, msgs = c.send("POST", "/batch/", batch)
        assert r.status_code == 200 and r.json() == {"status": "Ok"}
        got = {(m["value"]["distinct_id"], m["value"]["event"],
                m["value"]["uuid"] == dlq_uuid): m for m in msgs
               if m["value"]["event"] != "moved"}
        assert len(msgs) == 6 and len(got) == 4
        hot = got[("hot", "x", False)]
        assert hot["kind"] == "overflow" and hot["key"] is None
        assert hot["headers"]["force_disable_person_processing"] == "true"
        quiet = got[("quiet", "x", False)]
        assert quiet["kind"] == "main" and quiet["key"] == "phc_r:quiet"
        assert quiet["headers"]["force_disable_person_processing"] == "true"
        dlq = got[("u", "x", True)]
        assert dlq["kind"] == "dlq"
        assert dlq["headers"]["dlq_reason"] == "event_restriction"
        assert dlq["headers"]["dlq_step"] == "capture"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                            dlq["headers"]["dlq_timestamp"])
        moved = [m for m in msgs if m["value"]["event"] == "moved"]
        assert sorted((m["data"]["properties"]["$session_id"], m["kind"])
                      for m in moved) == [("s-8", "main"), ("s-9", "custom")]
        plain = got[("u", "x", False)]
        assert plain["kind"] == "main" and plain["key"] == "phc_r:u"
        assert "force_disable_person_processing" not in plain["headers"]
        # rules are per token
        r, msgs = c.send("POST", "/e/", ev(event="gone"))
        assert r.status_code == 200 and len(msgs) == 1
        assert msgs[0]["kind"] == "main"
        text = requests.get(c.url + "/metrics").text
        assert 'capture_events_dropped_total{cause="event_restriction"} 1' \
            in text
        assert not c.bad_log_lines()
    finally:
        c.close()


def test_nginx_t_rejects_bad_restrictions(tmp_path):
    for bad in ("capture_event_restriction drop token=t;",
                "capture_event_restriction drop_event event=x;",
                "capture_event_restriction redirect_to_topic token=t;",
                "capture_event_restriction drop_event token=t topic=x;",
                "capture_event_restriction drop_event token=t colour=red;",
                "capture_event_restriction drop_event token=t event=a,,b;"):
        conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
        conf = conf.replace("capture  on;", "capture  on;\n" + bad)
        nginx = ST.Nginx(str(tmp_path / uuidlib.uuid4().hex[:8]), conf=conf)
        rc, out = nginx.test_config()
        assert rc != 0, bad
        assert "emerg" in out, out


def test_query_token_on_get(stack, tmp_path):
    data = json.dumps({"event": "q", "distinct_id": "u1"})
    path = "/e/?data=" + requests.utils.quote(data, safe="")
    c = Capture(stack, tmp_path, extra_loc="capture_query_token on;")
    try:
        r, msgs = c.send("GET", path + "&token=phc_test")
        assert r.status_code == 200 and len(msgs) == 1
        assert msgs[0]["key"] == "phc_test:u1"
        assert msgs[0]["value"]["token"] == "phc_test"
        r, msgs = c.send("GET", path + "&api_key=phc_other")
        assert r.status_code == 200 and msgs[0]["key"] == "phc_other:u1"
        # the payload's token wins over the query's
        r, msgs = c.send("GET", "/e/?token=phc_q&data=" + requests.utils.quote(
            json.dumps(ev(event="q")), safe=""))
        assert r.status_code == 200 and msgs[0]["value"]["token"] == TOKEN
        r, msgs = c.send("GET", path + "&token=phx_personal")
        assert r.status_code == 401 and msgs == []
        assert r.json()["error"] == "API key is not valid: personal_api_key"
        # GET only, as Django did
        r, msgs = c.send("POST", "/e/?token=phc_test", data.encode(),
                         {"Content-Type": "application/json"})
        assert r.status_code == 401 and msgs == []
        assert not c.bad_log_lines()
    finally:
        c.close()
    # off by default: capture-rs never reads the query
    c = Capture(stack, tmp_path / "off")
    try:
        r, msgs = c.send("GET", path + "&token=phc_test")
        assert r.status_code == 401 and msgs == []
    finally:
        c.close()
