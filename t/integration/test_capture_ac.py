"""The acceptance cases of spec/capture.md §15, one named test each
(AC-24 and AC-25(d) live in test_capture_limits.py and
test_capture_kafka.py).  Error bodies are JSON {"status","code","error"}
as DESIGN.md decides; "error" carries the capture-rs text."""

import base64
import gzip
import json
import urllib.parse

import pytest

from capture_kit import Capture
from lzstring import compress_to_base64

NOW = "2025-07-01T11:00:00Z"
Q = "_=1751367600000"
TOKEN = "phc_test"
AC01 = {"api_key": TOKEN, "event": "$pageview", "distinct_id": "user-1",
        "properties": {"$current_url": "https://example.com/"},
        "timestamp": "2025-07-01T10:59:58Z"}
AC01_DATA = {"token": TOKEN, "distinct_id": "user-1", "uuid": None,
             "event": "$pageview",
             "properties": {"$current_url": "https://example.com/"},
             "timestamp": "2025-07-01T10:59:58Z"}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def cap(stack, tmp_path_factory):
    c = Capture(stack, tmp_path_factory.mktemp("cap_ac"))
    yield c
    bad = c.bad_log_lines()
    c.close()
    assert not bad, bad


@pytest.fixture(scope="module")
def strict(stack, tmp_path_factory):
    c = Capture(stack, tmp_path_factory.mktemp("cap_ac_strict"),
                extra_loc="capture_compat strict;")
    yield c
    bad = c.bad_log_lines()
    c.close()
    assert not bad, bad


def j(obj):
    return json.dumps(obj).encode()


def err(r, status, text=None, prefix=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    doc = r.json()
    assert doc["status"] == status and doc["code"]
    if text is not None:
        assert doc["error"] == text, doc
    if prefix is not None:
        assert doc["error"].startswith(prefix), doc
    return doc


def okay(r):
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"status": "Ok"}


def check_ac01(m):
    v = m["value"]
    assert m["kind"] == "main"
    assert m["key"] == "phc_test:user-1"
    assert list(v) == ["uuid", "distinct_id", "ip", "data", "now",
                       "sent_at", "token", "event", "timestamp"]
    assert v["uuid"][14] == "7"
    # UUIDv7 time = the pinned now
    assert int(v["uuid"][:8] + v["uuid"][9:13], 16) == 1751367600000
    assert v["ip"] == "203.0.113.7"
    assert v["now"] == NOW and v["sent_at"] == NOW
    assert v["token"] == TOKEN and v["event"] == "$pageview"
    assert v["timestamp"] == "2025-07-01T10:59:58Z"
    assert m["data"] == AC01_DATA
    h = m["headers"]
    assert h["token"] == TOKEN and h["distinct_id"] == "user-1"
    assert h["event"] == "$pageview" and h["uuid"] == v["uuid"]
    assert h["timestamp"] == "1751367598000"


def test_ac01_single_json_event(cap):
    r, msgs = cap.send("POST", "/i/v0/e/?" + Q, AC01, now=NOW)
    okay(r)
    assert len(msgs) == 1
    check_ac01(msgs[0])


AC02 = {"api_key": TOKEN, "sent_at": "2025-07-01T11:00:05Z", "batch": [
    {"event": "a", "distinct_id": "u1",
     "uuid": "0198393f-1b8a-7c2e-a269-737351f06167",
     "timestamp": "2025-07-01T10:59:55Z", "type": "capture",
     "library": "posthog-node"},
    {"event": "b", "distinct_id": "u2", "timestamp": "2025-07-01T11:00:04Z"}]}


def check_ac02(msgs):
    assert [m["value"]["event"] for m in msgs] == ["a", "b"]
    a, b = msgs
    assert a["value"]["uuid"] == "0198393f-1b8a-7c2e-a269-737351f06167"
    assert a["key"] == "phc_test:u1"
    assert a["value"]["sent_at"] == "2025-07-01T11:00:05Z"
    assert a["value"]["timestamp"] == "2025-07-01T10:59:50Z"
    # DESIGN.md: data keeps the client's fields (type, library) and no
    # token was in the event itself
    assert "token" not in a["data"]
    assert a["data"]["type"] == "capture"
    assert b["value"]["uuid"][14] == "7"
    assert b["value"]["timestamp"] == "2025-07-01T10:59:59Z"


def test_ac02_batch_sent_at_clock_skew(cap):
    r, msgs = cap.send("POST", "/batch/", AC02, now=NOW)
    okay(r)
    check_ac02(msgs)


AC03_EVENTS = [
    {"event": "$pageview", "properties": {"distinct_id": "anon-1",
                                          "token": TOKEN, "$lib": "web"},
     "timestamp": "2025-07-01T10:59:59.5Z",
     "uuid": "01983a00-0000-7000-8000-000000000001"},
    {"event": "$autocapture", "properties": {"distinct_id": "anon-1",
                                             "token": TOKEN},
     "offset": 1500}]


def check_ac03(msgs):
    assert len(msgs) == 2
    assert all(m["key"] == "phc_test:anon-1" for m in msgs)
    assert msgs[0]["value"]["timestamp"] == "2025-07-01T10:59:59.500Z"
    assert msgs[1]["value"]["timestamp"] == "2025-07-01T10:59:58.500Z"
    assert msgs[1]["data"]["offset"] == 1500
    assert msgs[1]["data"]["uuid"] is None


def test_ac03_posthog_js_gzip_array_legacy(cap):
    r, msgs = cap.send(
        "POST", "/e/?compression=gzip-js&ip=1&" + Q + "&ver=1.200.0",
        gzip.compress(j(AC03_EVENTS)), {"Content-Type": "text/plain"},
        now=NOW)
    okay(r)
    check_ac03(msgs)


def test_ac04_gzip_magic_and_content_encoding(cap, strict):
    r, msgs = cap.send("POST", "/e/?" + Q, gzip.compress(j(AC03_EVENTS)),
                       {"Content-Type": "text/plain"}, now=NOW)
    okay(r)
    check_ac03(msgs)
    r, msgs = cap.send("POST", "/batch/", gzip.compress(j(AC02)),
                       {"Content-Type": "application/json",
                        "Content-Encoding": "gzip"}, now=NOW)
    okay(r)
    check_ac02(msgs)
    r, msgs = cap.send("POST", "/e/", b"\x1f\x8b\x08garbage-garbage",
                       {"Content-Type": "text/plain"}, now=NOW)
    err(r, 400, "failed to decode request: invalid GZIP data")
    assert msgs == []
    # (d) hint/body mismatch: form base64 with a gzip hint
    form = "data=" + urllib.parse.quote(base64.b64encode(j(AC01)).decode(),
                                        safe="")
    for c, status in ((strict, 400), (cap, 200)):
        r, msgs = c.send("POST", "/e/?compression=gzip-js&" + Q,
                         form.encode(), {"Content-Type": FORM}, now=NOW)
        if status == 400:
            err(r, 400, "failed to decode request: invalid GZIP data")
            assert msgs == []
        else:
            okay(r)
            assert len(msgs) == 1


AC05 = {"event": "$identify", "properties": {"distinct_id": "u9",
                                             "token": TOKEN,
                                             "$set": {"email": "a@b.c"}},
        "$set": {}, "$set_once": {}}


def ac05_form(plus_raw=False, obj=AC05):
    b64 = base64.b64encode(j(obj)).decode()
    if plus_raw:
        return ("data=" + b64.replace("=", "%3D")).encode()
    return ("data=" + urllib.parse.quote(b64, safe="")).encode()


def check_ac05(msgs):
    assert len(msgs) == 1
    v = msgs[0]["value"]
    assert v["distinct_id"] == "u9" and v["token"] == TOKEN
    assert msgs[0]["data"]["$set"] == {} and msgs[0]["data"]["$set_once"] == {}


def test_ac05_legacy_form_base64(cap):
    path = "/e/?ip=1&" + Q + "&ver=1.78.5"
    r, msgs = cap.send("POST", path, ac05_form(), {"Content-Type": FORM},
                       now=NOW)
    okay(r)
    check_ac05(msgs)
    # a payload whose base64 holds '+', sent unescaped (decodes to ' ')
    obj = dict(AC05, properties=dict(AC05["properties"], k="~~~>>>???"))
    assert "+" in base64.b64encode(j(obj)).decode()
    r, msgs = cap.send("POST", path, ac05_form(True, obj),
                       {"Content-Type": FORM}, now=NOW)
    okay(r)
    assert msgs[0]["data"]["properties"]["k"] == "~~~>>>???"


def test_ac06_form_base64_on_i_v0_e(cap, strict):
    r, msgs = strict.send("POST", "/i/v0/e/?" + Q, ac05_form(),
                          {"Content-Type": FORM}, now=NOW)
    err(r, 400, prefix="failed to parse request: ")
    assert msgs == []
    r, msgs = cap.send("POST", "/i/v0/e/?" + Q, ac05_form(),
                       {"Content-Type": FORM}, now=NOW)
    okay(r)
    check_ac05(msgs)
    raw = ("data=" + urllib.parse.quote(json.dumps(AC05), safe="")).encode()
    for c in (strict, cap):
        r, msgs = c.send("POST", "/i/v0/e/?" + Q, raw,
                         {"Content-Type": FORM}, now=NOW)
        okay(r)
        check_ac05(msgs)


def test_ac07_get_with_query_data(cap):
    data = urllib.parse.quote(json.dumps(AC01), safe="")
    r, msgs = cap.send("GET", f"/e/?data={data}&" + Q, now=NOW)
    okay(r)
    check_ac01(msgs[0])
    b64 = urllib.parse.quote(base64.b64encode(j(AC01)).decode(), safe="")
    r, msgs = cap.send("GET", f"/e/?data={b64}&compression=base64&" + Q,
                       now=NOW)
    okay(r)
    check_ac01(msgs[0])
    # lenient: base64 with a raw '+' (a space once decoded) still works
    obj = dict(AC01, properties={"k": "~~~>>>???"})
    raw = base64.b64encode(j(obj)).decode()
    assert "+" in raw
    r, msgs = cap.send("GET", "/e/?data=" + raw.replace("=", "%3D") + "&"
                       + Q, now=NOW)
    okay(r)
    assert msgs[0]["data"]["properties"]["k"] == "~~~>>>???"
    r, msgs = cap.send("GET", f"/i/v0/e/?data={data}&" + Q, now=NOW)
    okay(r)
    assert len(msgs) == 1
    r, msgs = cap.send("GET", "/e/?" + Q, now=NOW)
    err(r, 400, "request missing data payload")


def test_ac08_lz64(cap):
    lz = compress_to_base64(json.dumps(AC01))
    body = ("data=" + urllib.parse.quote(lz, safe="") + "&ver=1.2.3").encode()
    r, msgs = cap.send("POST", "/e/?compression=lz64&" + Q, body,
                       {"Content-Type": FORM}, now=NOW)
    okay(r)
    check_ac01(msgs[0])
    r, msgs = cap.send("GET", "/e/?data=" + urllib.parse.quote(lz, safe="")
                       + "&compression=lz64&" + Q, now=NOW)
    okay(r)
    check_ac01(msgs[0])
    r, msgs = cap.send("POST", "/e/?compression=lz64&" + Q,
                       b"data=%21%21%21notlz", {"Content-Type": FORM},
                       now=NOW)
    doc = err(r, 400)
    assert doc["error"].startswith(("failed to decode request: "
                                    "decompress_lz64", "failed to parse"))
    assert msgs == []


def test_ac09_beacon(cap):
    r, msgs = cap.send("POST", "/i/v0/e/?" + Q + "&beacon=1", AC01, now=NOW)
    assert r.status_code == 204 and r.content == b""
    check_ac01(msgs[0])
    r, msgs = cap.send("POST", "/i/v0/e/?" + Q + "&beacon=0", AC01, now=NOW)
    okay(r)
    r, msgs = cap.send("POST", "/i/v0/e/?" + Q + "&beacon=true", AC01,
                       now=NOW)
    err(r, 400)
    assert msgs == []


def test_ac10_cors(cap):
    origin = "https://app.example.com"
    r, msgs = cap.send("OPTIONS", "/i/v0/e/", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    for m in ("GET", "POST", "OPTIONS"):
        assert m in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert msgs == []
    r, msgs = cap.send("POST", "/i/v0/e/?" + Q, AC01, {"Origin": origin},
                       now=NOW)
    okay(r)
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    r, _ = cap.send("POST", "/e/", {"event": "x", "distinct_id": "u1"},
                    {"Origin": origin})
    err(r, 401)
    assert r.headers["Access-Control-Allow-Origin"] == origin


def test_ac11_missing_token(cap):
    r, msgs = cap.send("POST", "/e/", {"event": "x", "distinct_id": "u1",
                                       "properties": {}})
    err(r, 401, "event submitted without an api_key")
    assert msgs == []
    r, msgs = cap.send("POST", "/e/", {"event": "x", "distinct_id": "u1",
                                       "properties": {"token": 5}})
    err(r, 401, "event submitted without an api_key")
    r, msgs = cap.send("POST", "/e/?token=phc_test",
                       {"event": "x", "distinct_id": "u1"},
                       {"Authorization": "Bearer phc_test"})
    err(r, 401, "event submitted without an api_key")
    assert msgs == []


def test_ac12_invalid_token_shapes(cap):
    for token, reason in (("", "empty"), ("phx_abc", "personal_api_key"),
                          ("x" * 65, "too_long"), ("tök", "not_ascii")):
        r, msgs = cap.send("POST", "/e/", dict(AC01, api_key=token))
        err(r, 401, "API key is not valid: " + reason)
        assert msgs == []


def test_ac13_token_precedence(cap):
    r, msgs = cap.send("POST", "/e/", [
        {"event": "a", "distinct_id": "u", "token": "t1"},
        {"event": "b", "distinct_id": "u", "token": "t2"}])
    err(r, 401, "batch submitted with inconsistent api_key values")
    assert msgs == []
    r, msgs = cap.send("POST", "/e/", [
        {"event": "a", "distinct_id": "u", "token": "t1"},
        {"event": "b", "distinct_id": "u"}])
    okay(r)
    assert [m["value"]["token"] for m in msgs] == ["t1", "t1"]
    assert [m["key"] for m in msgs] == ["t1:u", "t1:u"]
    r, msgs = cap.send("POST", "/batch/", {"api_key": "batched", "batch": [
        {"event": "a", "distinct_id": "u", "token": "other"}]})
    okay(r)
    assert msgs[0]["value"]["token"] == "batched"
    assert msgs[0]["key"] == "batched:u"
    r, msgs = cap.send("POST", "/e/", {"event": "a", "distinct_id": "u",
                                       "$token": "single"})
    okay(r)
    assert msgs[0]["value"]["token"] == "single"


def test_ac14_missing_distinct_id(cap):
    r, msgs = cap.send("POST", "/batch/", {"api_key": TOKEN, "batch": [
        {"event": "ok", "distinct_id": "u1"},
        {"event": "bad", "properties": {}}]})
    err(r, 400, "event submitted without a distinct_id")
    assert msgs == []
    for did in (None, ""):
        r, msgs = cap.send("POST", "/e/", {"api_key": TOKEN, "event": "x",
                                           "distinct_id": did})
        err(r, 400, "event submitted without a distinct_id")
        assert msgs == []
    r, msgs = cap.send("POST", "/e/", {"api_key": TOKEN, "event": "x",
                                       "properties": {"distinct_id": "p1"}})
    okay(r)
    assert msgs[0]["value"]["distinct_id"] == "p1"


HYDRATE = ("failed to hydrate events from request: non-engage request "
           "missing event name attribute")


def test_ac15_event_name_rules(cap):
    r, msgs = cap.send("POST", "/e/", {"api_key": TOKEN, "event": "",
                                       "distinct_id": "u"})
    err(r, 400, "event submitted with an empty event name")
    r, msgs = cap.send("POST", "/e/", {"api_key": TOKEN, "distinct_id": "u"})
    err(r, 400, HYDRATE)
    r, msgs = cap.send("POST", "/batch/", {"api_key": TOKEN, "batch": [
        {"event": "a", "distinct_id": "u"}, {"distinct_id": "u"}]})
    err(r, 400, HYDRATE)
    assert msgs == []


def test_ac16_empty_inputs(cap):
    r, msgs = cap.send("POST", "/e/", [])
    err(r, 400, "request holds no event")
    r, msgs = cap.send("POST", "/batch/", {"api_key": TOKEN, "batch": []})
    err(r, 400, "request holds no event")
    r, msgs = cap.send("POST", "/e/", b"")
    err(r, 400, "request missing data payload")
    assert msgs == []


UNTAGGED = ("failed to parse request: data did not match any variant of "
            "untagged enum RawRequest")


def test_ac17_malformed_json_and_types(cap):
    r, msgs = cap.send("POST", "/e/", b"not json",
                       {"Content-Type": "text/plain"})
    err(r, 400, prefix="failed to parse request: ")
    base = {"api_key": TOKEN, "event": "x", "distinct_id": "u"}
    r, msgs = cap.send("POST", "/e/", dict(base, timestamp=1751367600))
    err(r, 400, UNTAGGED)
    r, msgs = cap.send("POST", "/e/", dict(base, offset="5"))
    err(r, 400, UNTAGGED)
    r, msgs = cap.send("POST", "/batch/", {"api_key": TOKEN, "batch": [
        dict(base, timestamp=1751367600)]})
    err(r, 400, HYDRATE)
    r, msgs = cap.send("POST", "/e/", j(base), {"Content-Type": FORM})
    err(r, 400, "failed to decode request: expected form data in POST "
                "request payload")
    assert msgs == []


def test_ac18_distinct_id_normalization(cap):
    long = "d" * 300
    ids = [42, 23.4, True, ["a", "b"], {"string": "a", "number": 3}, long,
           "a\u0000b"]
    want = ["42", "23.4", "true", '["a","b"]', '{"number":3,"string":"a"}',
            long[:200], "a\ufffdb"]
    r, msgs = cap.send("POST", "/e/", [
        {"event": "e", "distinct_id": d, "properties": {"token": TOKEN}}
        for d in ids])
    okay(r)
    assert [m["value"]["distinct_id"] for m in msgs] == want
    assert [m["key"] for m in msgs] == ["phc_test:" + w for w in want]
    assert msgs[0]["data"]["distinct_id"] == 42
    assert msgs[5]["data"]["distinct_id"] == long


def test_ac19_uuid_handling(cap):
    u = "550e8400-e29b-41d4-a716-446655440000"
    r, msgs = cap.send("POST", "/e/", dict(AC01, uuid=u), now=NOW)
    okay(r)
    assert msgs[0]["value"]["uuid"] == u and msgs[0]["headers"]["uuid"] == u
    r, msgs = cap.send("POST", "/e/", dict(AC01, uuid=""), now=NOW)
    okay(r)
    assert msgs[0]["value"]["uuid"][14] == "7"
    assert msgs[0]["data"]["uuid"] is None
    r, msgs = cap.send("POST", "/e/", dict(AC01, uuid="not-a-uuid"))
    err(r, 400, UNTAGGED)
    r, msgs = cap.send("POST", "/batch/", {"api_key": TOKEN, "batch": [
        {"event": "x", "distinct_id": "u", "uuid": "not-a-uuid"}]})
    err(r, 400, HYDRATE)
    assert msgs == []


def test_ac20_performance_event_filtering(cap):
    r, msgs = cap.send("POST", "/e/", {"api_key": TOKEN, "distinct_id": "u",
                                       "event": "$performance_event"})
    okay(r)
    assert msgs == []
    r, msgs = cap.send("POST", "/e/", [
        {"event": e, "distinct_id": "u", "properties": {"token": TOKEN}}
        for e in ("$pageview", "$performance_event", "custom")])
    okay(r)
    assert [m["value"]["event"] for m in msgs] == ["$pageview", "custom"]


def test_ac21_engage(cap):
    body = {"api_key": TOKEN, "distinct_id": "known@example.com",
            "$set": {"plan": "pro"}, "properties": {}}
    r, msgs = cap.send("POST", "/engage/", body)
    okay(r)
    assert len(msgs) == 1
    assert msgs[0]["value"]["event"] == "$identify"
    assert msgs[0]["data"]["event"] == "$identify"
    assert msgs[0]["data"]["$set"] == {"plan": "pro"}
    assert msgs[0]["key"] == "phc_test:known@example.com"
    r, msgs = cap.send("POST", "/e/", body)
    err(r, 400, HYDRATE)
    r, msgs = cap.send("POST", "/engage/", dict(body, event="custom"))
    okay(r)
    assert msgs[0]["value"]["event"] == "custom"


def test_ac22_historical_migration(cap):
    r, msgs = cap.send("POST", "/batch", {
        "api_key": TOKEN, "historical_migration": True, "batch": [
            {"event": "old", "distinct_id": "u",
             "timestamp": "2023-04-24T06:34:00+00:00"},
            {"event": "$exception", "distinct_id": "u"}]})
    okay(r)
    assert [m["kind"] for m in msgs] == ["historical", "exceptions"]
    v = msgs[0]["value"]
    assert v["historical_migration"] is True and "sent_at" not in v
    assert v["timestamp"] == "2023-04-24T06:34:00Z"
    assert msgs[0]["headers"]["historical_migration"] == "true"
    r, msgs = cap.send("POST", "/batch", {"api_key": TOKEN, "batch": [
        {"event": "new", "distinct_id": "u"}]})
    okay(r)
    assert msgs[0]["kind"] == "main"
    assert "historical_migration" not in msgs[0]["value"]


def test_ac23_cookieless_and_ip(cap):
    ev = {"api_key": TOKEN, "event": "x", "distinct_id": "u"}
    r, msgs = cap.send("POST", "/e/", dict(ev, properties={
        "$cookieless_mode": True}))
    okay(r)
    assert msgs[0]["value"]["is_cookieless_mode"] is True
    assert msgs[0]["key"] == "phc_test:203.0.113.7"
    r, msgs = cap.send("POST", "/e/", dict(ev, properties={
        "$cookieless_mode": "yes"}))
    err(r, 400, "event submitted with invalid cookieless mode")
    r, msgs = cap.send("POST", "/e/", dict(ev, properties={
        "capture_internal": True}))
    assert msgs[0]["value"]["ip"] == "127.0.0.1"
    r, msgs = cap.send("POST", "/e/", ev, xff="198.51.100.1, 10.0.0.1")
    assert msgs[0]["value"]["ip"] == "198.51.100.1"
    r, msgs = cap.send("POST", "/e/", ev, {"X-Real-Ip": "192.0.2.5"},
                       xff=None)
    assert msgs[0]["value"]["ip"] == "192.0.2.5"
    r, msgs = cap.send("POST", "/e/", ev, xff=None)
    assert msgs[0]["value"]["ip"] == "127.0.0.1"     # the TCP peer


def test_ac25_size_limits(cap):
    pad = "x" * 1000
    events = [{"event": "e", "distinct_id": f"u{i}",
               "properties": {"token": TOKEN, "pad": pad}}
              for i in range(4000)]
    body = j(events)
    assert 4_000_000 < len(body) < 5_000_000
    r, msgs = cap.send("POST", "/e/", body)
    okay(r)
    assert len(msgs) == 4000
    big = j([{"event": "e", "distinct_id": "u",
              "properties": {"token": TOKEN, "pad": "y" * (20 << 20)}}])
    r, msgs = cap.send("POST", "/e/", big)
    err(r, 413)
    assert msgs == []
    # (b) a gzip bomb over the 100 MiB decompressed cap
    bomb = gzip.compress(b"[" + b" " * (101 << 20) + b"]", 9)
    r, msgs = cap.send("POST", "/batch/", bomb,
                       {"Content-Type": "application/json"})
    err(r, 413, prefix="maximum event size exceeded: ")
    # (c) one event over message.max.bytes
    r, msgs = cap.send("POST", "/e/", j(dict(AC01, properties={
        "pad": "z" * 1_100_000})))
    err(r, 413, "maximum event size exceeded: Event rejected by kafka "
                "during send")
    assert msgs == []
