"""Decide: /decide and /flags served by ngx_decide_module from the Redis
snapshots that the ingest-worker publishes (spec/decide.md, DESIGN.md
"Decide data"), flags created with `ingest-worker flag put`."""

import base64
import contextlib
import gzip
import json
import os
import re
import resource
import signal
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import requests

from conftest import FIXTURES, S, ST, wait_for

DECIDE = os.path.join(FIXTURES, "decide")


def load(name):
    with open(os.path.join(DECIDE, name)) as f:
        return json.load(f)


def put_flags(stack, team, flags):
    """`ingest-worker flag put` with a file, as a person would."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(flags, f)
        path = f.name
    try:
        out = stack.worker.run_cmd("flag", "put", "--team", str(team),
                                   "--file", path)
    finally:
        os.unlink(path)
    return out.stdout


def flags_v2(stack, token, body=None, session=None, path="/flags?v=2",
             **kw):
    payload = {"token": token, "distinct_id": "probe", "geoip_disable": True}
    payload.update(body or {})
    r = (session or requests).post(stack.nginx.url + path, json=payload,
                                   timeout=10, **kw)
    return r


def wait_flag(stack, token, key, timeout=30.0, pred=None):
    """Polls until the snapshot in nginx shows `key` (and pred holds)."""
    def probe():
        r = flags_v2(stack, token)
        if r.status_code != 200:
            return None
        f = r.json()["flags"].get(key)
        if f is None or (pred and not pred(f)):
            return None
        return f
    return wait_for(probe, timeout=timeout, what=f"flag {key} in /flags",
                    interval=0.05)


@pytest.fixture(scope="module")
def team(stack):
    tid, token = stack.worker.team_create("decide tests")
    return tid, token


def test_flag_put_reaches_flags_endpoint(stack, team):
    tid, token = team
    put_flags(stack, token, {"key": "smoke", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 100}]}})
    f = wait_flag(stack, token, "smoke")
    assert f["enabled"] is True
    assert f["reason"]["code"] == "condition_match"


def test_flag_put_of_an_array_is_all_or_nothing(stack, team, tmp_path):
    """One bad flag in the file: none of them is written, so decide never
    serves part of a file."""
    tid, token = team
    path = tmp_path / "flags.json"
    path.write_text(json.dumps([
        {"key": "atomic-first", "filters": {"groups": [
            {"properties": [], "rollout_percentage": 100}]}},
        {"key": "atomic-bad", "filters": []}]))
    out = stack.worker.run_cmd("flag", "put", "--team", str(tid), "--file",
                               str(path), check=False)
    assert out.returncode != 0
    assert '"filters" must be an object' in out.stderr
    assert psql(stack, "SELECT count(*) FROM posthog_featureflag WHERE "
                f"team_id = {tid} AND key LIKE 'atomic-%'").strip() == "0"


def psql(stack, sql):
    return stack.postgres.psql(sql, dbname="edgehog")


def redis_client(stack):
    import redis
    return redis.Redis(host="127.0.0.1", port=stack.redis.port,
                       socket_timeout=5)


# --- A. hash consistency (fixtures/decide/consistency.json) -------------------

@pytest.fixture(scope="module")
def consistency(stack):
    data = load("consistency.json")
    tid, token = stack.worker.team_create("consistency")
    flags = [{k: v for k, v in f.items() if k not in ("id", "team_id")}
             for f in data["flags"]]
    put_flags(stack, token, flags)
    for f in flags:
        wait_flag(stack, token, f["key"])
    return token, data


def test_consistency_2000_cases_over_http(stack, consistency):
    """All 2000 cases through /decide?v=3: both flags of one team, so 1000
    keep-alive requests answer every case."""
    token, data = consistency
    want = {}
    for c in data["cases"]:
        want.setdefault(c["distinct_id"], {})[c["flag"]] = c["expected"]
    s = requests.Session()
    bad = []
    for did, flags in want.items():
        r = s.post(stack.nginx.url + "/decide?v=3", timeout=10,
                   json={"token": token, "distinct_id": did})
        assert r.status_code == 200, r.text
        got = r.json()["featureFlags"]
        for key, exp in flags.items():
            if got.get(key) != exp:
                bad.append((did, key, got.get(key), exp))
    assert len(data["cases"]) == 2000
    assert not bad, bad[:10]


@pytest.mark.parametrize("flag,did,value,code", [
    ("simple-flag", "distinct_id_0", False, "out_of_rollout_bound"),
    ("simple-flag", "distinct_id_1", True, "condition_match"),
    ("simple-flag", "distinct_id_3", False, "out_of_rollout_bound"),
    ("simple-flag", "distinct_id_4", True, "condition_match"),
    ("multivariate-flag", "distinct_id_0", "second-variant",
     "condition_match"),
    ("multivariate-flag", "distinct_id_2", "first-variant",
     "condition_match"),
    ("multivariate-flag", "distinct_id_3", False, "out_of_rollout_bound"),
    ("multivariate-flag", "distinct_id_11", "third-variant",
     "condition_match"),
    ("multivariate-flag", "distinct_id_18", "fourth-variant",
     "condition_match"),
    ("multivariate-flag", "distinct_id_81", "fifth-variant",
     "condition_match"),
])
def test_acceptance_a_hash_cases(stack, consistency, flag, did, value, code):
    token, _ = consistency
    f = flags_v2(stack, token, {"distinct_id": did}).json()["flags"][flag]
    got = f["variant"] if f["variant"] is not None else f["enabled"]
    assert got == value
    assert f["reason"]["code"] == code
    assert f["reason"]["condition_index"] == 0


# --- B. evaluation corpus (fixtures/decide/v1_evaluation.json) ---------------

V1 = load("v1_evaluation.json")["cases"]


def v1_team(stack, case, name):
    """A team with a v1_evaluation case's flags and group types; its token"""
    tid, token = stack.worker.team_create(name)
    put_flags(stack, token, case["definitions"]["flags"])
    for idx, gt in (case["definitions"].get("group_type_mapping")
                    or {}).items():
        psql(stack, "INSERT INTO posthog_grouptypemapping (team_id, "
                    "project_id, group_type, group_type_index) VALUES "
                    f"({tid}, {tid}, '{gt}', {int(idx)})")
    return token


@pytest.fixture(scope="module")
def v1_teams(stack):
    """One team per case, flags put with the CLI, all waited for at once."""
    teams = {case["id"]: v1_team(stack, case, case["id"][:190])
             for case in V1}
    for case in V1:
        keys = [k for k in case["expected"]["flags"]]
        if keys:
            wait_flag(stack, teams[case["id"]], keys[0])
    return teams


@pytest.mark.parametrize("case", V1, ids=[c["id"] for c in V1])
def test_v1_evaluation_over_flags_v2(stack, v1_teams, case):
    token = v1_teams[case["id"]]
    body = dict(case["context"])
    r = flags_v2(stack, token, body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["errorsWhileComputingFlags"] is False
    for key, exp in case["expected"]["flags"].items():
        f = doc["flags"][key]
        assert f["enabled"] == exp["enabled"], key
        assert f["variant"] == exp["variant"], key
        assert f["metadata"]["payload"] == exp["payload"], key
        assert f["reason"]["code"] == exp["reason"]["code"], key
        assert f["reason"]["condition_index"] == \
            exp["reason"]["condition_index"], key
    for key in case["expected"]["omitted_flags"]:
        assert key not in doc["flags"]


def test_detail_cache_repeats_the_rendered_bytes(stack):
    """A flags-v2 detail is rendered the first time a flag has an outcome
    and copied from the team afterwards: on fresh teams (readiness polled
    in flags-v1, which never fills that cache) the first answer of every
    v1_evaluation context, rendered, and the second, copied, must be the
    same bytes but for the request id and time."""
    import re
    mask = re.compile(rb'"requestId":"[0-9a-f-]{36}"|"evaluatedAt":\d+')
    tokens = {case["id"]: v1_team(stack, case, "cache " + case["id"][:180])
              for case in V1}
    for case in V1:
        keys = list(case["expected"]["flags"])
        if keys:
            wait_for(lambda: keys[0] in flags_v2(
                         stack, tokens[case["id"]], path="/flags?v=1")
                     .json().get("featureFlags", {}),
                     timeout=30, what=f"{case['id']} in /flags?v=1",
                     interval=0.05)
    details = 0
    for case in V1:
        body = dict(case["context"])
        first = flags_v2(stack, tokens[case["id"]], body)
        second = flags_v2(stack, tokens[case["id"]], body)
        assert first.status_code == 200, first.text
        assert mask.sub(b"", first.content) == mask.sub(b"", second.content)
        details += len(first.json()["flags"])
    assert details > 0


def test_detail_cache_does_not_mix_outcomes(stack):
    """Two fresh teams with the same flags, asked the same 240 contexts in
    opposite orders, fill their detail caches from different first
    outcomes: every answer must still be the same bytes on both (an
    outcome key that missed a field would hand one the other's detail);
    only the flag ids, one sequence for both teams, differ."""
    import re
    mask = re.compile(rb'"requestId":"[0-9a-f-]{36}"|"evaluatedAt":\d+'
                      rb'|"metadata":\{"id":\d+')
    pay = {"control": json.dumps({"c": 1}), "test": "[1,2]", "b": "\"s\"",
           "true": json.dumps({"t": True})}
    flags = [
        {"key": "multi", "filters": {
            "groups": [
                {"properties": [{"key": "plan", "type": "person",
                                 "operator": "exact", "value": ["pro"]}],
                 "rollout_percentage": 50},
                {"properties": [], "rollout_percentage": 30},
                {"properties": [{"key": "email", "type": "person",
                                 "operator": "icontains",
                                 "value": "example"}],
                 "rollout_percentage": 100, "variant": "b"}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 40},
                {"key": "test", "rollout_percentage": 40},
                {"key": "b", "rollout_percentage": 20}]},
            "payloads": pay}},
        {"key": "bool", "filters": {
            "groups": [
                {"properties": [{"key": "plan", "type": "person",
                                 "operator": "exact", "value": ["free"]}],
                 "rollout_percentage": 100},
                {"properties": [], "rollout_percentage": 40}],
            "payloads": {"true": pay["true"]}}},
        {"key": "never", "filters": {"groups": [
            {"properties": [{"key": "plan", "type": "person",
                             "operator": "is_set", "value": "is_set"}],
             "rollout_percentage": 0}]}},
    ]
    tokens = []
    for name in ("cache order a", "cache order b"):
        tid, token = stack.worker.team_create(name)
        put_flags(stack, token, flags)
        tokens.append(token)
    for token in tokens:
        wait_for(lambda: "never" in flags_v2(stack, token, path="/flags?v=1")
                 .json().get("featureFlags", {}),
                 timeout=30, what="cache teams in /flags?v=1", interval=0.05)
    contexts = []
    for i in range(240):
        props = {}
        if i % 3:
            props["plan"] = ("pro", "free")[i % 3 - 1]
        if i % 4 == 0:
            props["email"] = f"u{i}@example.com"
        contexts.append({"distinct_id": f"user-{i}",
                         "person_properties": props})
    answers, raw = [], []
    for token, order in zip(tokens, (contexts, contexts[::-1])):
        got = {}
        for body in order:
            r = flags_v2(stack, token, body)
            assert r.status_code == 200, r.text
            got[body["distinct_id"]] = mask.sub(b"", r.content)
            raw.append(r.json())
        answers.append(got)
    assert answers[0] == answers[1]
    seen = {(f["reason"]["code"], f["reason"]["condition_index"],
             f["variant"])
            for doc in raw for f in doc["flags"].values()}
    assert len(seen) >= 8, seen


# --- legacy_projection.json: one outcome in every response format ------------

PROJ = load("legacy_projection.json")["cases"]


def _find_v1_source(outcome):
    """A v1_evaluation case whose evaluation yields this outcome."""
    for case in V1:
        exp = case["expected"]["flags"].get(outcome["key"])
        if exp is None:
            continue
        if (exp["enabled"] == outcome["enabled"]
                and exp["variant"] == outcome["variant"]
                and exp["payload"] == outcome["payload"]
                and exp["reason"] == outcome["reason"]):
            return case
    return None


def _project(stack, token, body, fmt):
    path = {"flags_v2": "/flags?v=2", "flags_v1": "/flags?v=1",
            "decide_v2": "/decide?v=2", "decide_v1": "/decide"}[fmt]
    r = requests.post(stack.nginx.url + path, timeout=10,
                      json={"token": token, **body})
    assert r.status_code == 200, r.text
    return r.json()


def _check_projection(doc, fmt, key, want):
    if fmt == "flags_v2":
        assert doc["errorsWhileComputingFlags"] == \
            want["errorsWhileComputingFlags"]
        if key not in want["flags"]:
            assert key not in doc["flags"]
            return
        got, exp = doc["flags"][key], want["flags"][key]
        assert got["enabled"] == exp["enabled"]
        assert got["variant"] == exp["variant"]
        assert got.get("failed", False) == exp.get("failed", False)
        assert got["metadata"]["payload"] == exp["metadata"]["payload"]
        assert got["reason"]["condition_index"] == \
            exp["reason"]["condition_index"]
        if not exp.get("failed"):
            assert got["reason"]["code"] == exp["reason"]["code"]
    elif fmt == "flags_v1":
        assert doc["errorsWhileComputingFlags"] == \
            want["errorsWhileComputingFlags"]
        assert doc["featureFlags"].get(key) == want["featureFlags"].get(key)
        assert doc["featureFlagPayloads"].get(key) == \
            want["featureFlagPayloads"].get(key)
        assert (key in doc["featureFlags"]) == (key in want["featureFlags"])
    elif fmt == "decide_v2":
        assert doc["featureFlags"].get(key) == want["featureFlags"].get(key)
        assert (key in doc["featureFlags"]) == (key in want["featureFlags"])
    else:
        assert (key in doc["featureFlags"]) == (key in want["featureFlags"])


@pytest.mark.parametrize("case", PROJ, ids=[c["id"] for c in PROJ])
def test_legacy_projection_every_format(stack, v1_teams, case):
    outcome = case["outcome"]
    if outcome["failed"]:
        # a failed read: the flag needs a person property that only a
        # (here corrupt) Redis person entry could supply
        tid, token = stack.worker.team_create("projection failed")
        put_flags(stack, token, {"key": outcome["key"], "filters": {
            "groups": [{"properties": [_pf("plan", "exact", "enterprise")],
                        "rollout_percentage": 100}]}})
        wait_flag(stack, token, outcome["key"])
        redis_client(stack).set(f"edgehog:person:{tid}:failing", b"{")
        for fmt, want in case["projections"].items():
            doc = _project(stack, token, {"distinct_id": "failing"}, fmt)
            _check_projection(doc, fmt, outcome["key"], want)
        return
    if outcome["omitted"]:
        src = next(c for c in V1 if outcome["key"] in
                   c["expected"]["omitted_flags"])
    else:
        src = _find_v1_source(outcome)
    assert src is not None, "no corpus case produces this outcome"
    token = v1_teams[src["id"]]
    for fmt, want in case["projections"].items():
        doc = _project(stack, token, src["context"], fmt)
        _check_projection(doc, fmt, outcome["key"], want)


# --- C. property operators (spec/decide.md §10 C) ---------------------------

def _pf(key, op, value=None, **extra):
    f = {"key": key, "type": "person", "operator": op, **extra}
    if value is not None:
        f["value"] = value
    return f


OPERATOR_CASES = [
    ("c23-exact-list", _pf("country", "exact", ["US", "CA", "Uk"]),
     [({"country": "uk"}, True), ({"country": "de"}, False)]),
    ("c24-exact-bool", _pf("is_beta", "exact", ["true"]),
     [({"is_beta": True}, True), ({"is_beta": "False"}, False)]),
    ("c25-is-not", _pf("plan", "is_not", "free"),
     [({}, True), ({"plan": "FREE"}, False)]),
    ("c26-is-set", _pf("email", "is_set"),
     [({"email": None}, True)]),
    ("c26-is-not-set", _pf("email", "is_not_set"), [({}, True)]),
    ("c27-icontains", _pf("code", "icontains", "3"),
     [({"code": 323}, True), ({"code": "three"}, False)]),
    ("c27-not-icontains", _pf("code", "not_icontains", "3"), [({}, True)]),
    ("c28-regex", _pf("email", "regex", "\\.com$"),
     [({"email": "value.com"}, True), ({"email": ".com343tfvalue5"}, False)]),
    ("c28-invalid-regex", _pf("email", "regex", "?*"),
     [({"email": "x"}, False)]),
    ("c28-invalid-not-regex", _pf("email", "not_regex", "?*"),
     [({"email": "x"}, False)]),
    ("c29-gt", _pf("age", "gt", 1),
     [({"age": "23"}, True), ({"age": "abc"}, False)]),
    ("c29-gt-numeric", _pf("age", "gt", 25), [({"age": "100"}, True)]),
    ("c30-date-before", _pf("signup", "is_date_before", "2024-01-01"),
     [({"signup": "2023-06-01T12:00:00Z"}, True),
      ({"signup": 1718000000}, False)]),
    ("c30-date-after", _pf("signup", "is_date_after", "2024-01-01"),
     [({"signup": 1718000000}, True)]),
    ("c31-semver-gte", _pf("app_version", "semver_gte", "1.2.0"),
     [({"app_version": "v1.10.0"}, True)]),
    ("c31-semver-tilde", _pf("app_version", "semver_tilde", "1.2.3"),
     [({"app_version": "1.2.9"}, True), ({"app_version": "1.3.0"}, False)]),
]


@pytest.fixture(scope="module")
def operator_team(stack):
    tid, token = stack.worker.team_create("operators")
    flags = [{"key": name, "filters": {"groups": [
        {"properties": [flt], "rollout_percentage": 100}]}}
        for name, flt, _ in OPERATOR_CASES]
    flags.append({"key": "order-test", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 100},
                   {"properties": [_pf("email", "icontains", "@vip.com")],
                    "rollout_percentage": 100, "variant": "vip-variant"}],
        "multivariate": {"variants": [
            {"key": "control", "rollout_percentage": 100},
            {"key": "vip-variant", "rollout_percentage": 0}]}}})
    put_flags(stack, token, flags)
    wait_flag(stack, token, "order-test")
    return token


@pytest.mark.parametrize("name,flt,checks", OPERATOR_CASES,
                         ids=[c[0] for c in OPERATOR_CASES])
def test_acceptance_c_operators(stack, operator_team, name, flt, checks):
    for props, enabled in checks:
        r = flags_v2(stack, operator_team,
                     {"distinct_id": "op-user", "person_properties": props,
                      "flag_keys": [name]})
        f = r.json()["flags"][name]
        assert f["enabled"] is enabled, (props, f)
        if not enabled:
            assert f["reason"]["code"] == "no_condition_match"


def test_acceptance_c32_conditions_in_stored_order(stack, operator_team):
    f = flags_v2(stack, operator_team, {
        "distinct_id": "user123",
        "person_properties": {"email": "user@vip.com"}}).json()["flags"]
    assert f["order-test"]["variant"] == "control"
    assert f["order-test"]["reason"]["condition_index"] == 0


# --- D. protocol and errors ---------------------------------------------------

@pytest.fixture(scope="module")
def checkout(stack):
    """Case 15's flag (checkout-layout) plus a flag that is false."""
    tid, token = stack.worker.team_create("checkout")
    case = next(c for c in V1 if c["id"] == "v1.multivariate.variant_override")
    flags = list(case["definitions"]["flags"])
    flags.append({"key": "never", "filters": {"groups": [
        {"properties": [_pf("plan", "exact", "none")],
         "rollout_percentage": 100}]}})
    put_flags(stack, token, flags)
    wait_flag(stack, token, "never")
    return token


CHECKOUT_BODY = {"distinct_id": "user-61", "person_properties": {"plan": "free"}}


def test_acceptance_d33_every_format(stack, checkout):
    token = checkout
    url = stack.nginx.url
    body = {"token": token, **CHECKOUT_BODY}
    d1 = requests.post(url + "/decide", json=body, timeout=10).json()
    assert d1["featureFlags"] == ["checkout-layout"]
    assert d1["supportedCompression"] == ["gzip", "gzip-js"]
    d2 = requests.post(url + "/decide?v=2", json=body, timeout=10).json()
    assert d2["featureFlags"] == {"checkout-layout": "compact"}
    d3 = requests.post(url + "/decide?v=3", json=body, timeout=10).json()
    assert d3["featureFlags"] == {"checkout-layout": "compact",
                                  "never": False}
    assert d3["featureFlagPayloads"] == {
        "checkout-layout": "{\"density\":\"compact\"}"}
    assert d3["errorsWhileComputingFlags"] is False
    assert "sessionRecording" in d3 and "config" in d3
    d4 = requests.post(url + "/decide?v=4", json=body, timeout=10).json()
    f = d4["flags"]["checkout-layout"]
    assert f["variant"] == "compact" and f["enabled"] is True
    assert f["reason"] == {"code": "condition_match", "condition_index": 1,
                           "description": "Matched condition set 2"}
    assert f["metadata"]["payload"] == "{\"density\":\"compact\"}"
    assert f["metadata"]["description"] is None
    assert "supportedCompression" in d4
    f2 = requests.post(url + "/flags?v=2", json=body, timeout=10).json()
    assert "supportedCompression" not in f2
    assert f2["flags"]["never"]["enabled"] is False
    assert isinstance(f2["requestId"], str) and len(f2["requestId"]) == 36
    assert isinstance(f2["evaluatedAt"], int)
    f1 = requests.post(url + "/flags?v=1", json=body, timeout=10).json()
    assert f1["featureFlags"]["checkout-layout"] == "compact"
    fc = requests.post(url + "/flags?v=2&config=true", json=body,
                       timeout=10).json()
    assert fc["supportedCompression"] == ["gzip", "gzip-js"]
    assert fc["sessionRecording"] is False
    assert fc["analytics"] == {"endpoint": "/i/v0/e/"}
    fd = requests.post(url + "/flags", json=body, timeout=10).json()
    assert "flags" in fd and "supportedCompression" in fd


def test_acceptance_d34_errors(stack, checkout):
    url = stack.nginx.url + "/flags?v=2"
    r = requests.post(url, json={"token": checkout}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "missing_distinct_id"
    r = requests.post(url, json={"distinct_id": "u1"}, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = requests.post(url, json={"token": "phc_unknown", "distinct_id": "u1"},
                      timeout=10)
    assert r.status_code == 401
    assert r.json()["code"] == "authentication_failed"
    r = requests.post(url, data="not json",
                      headers={"Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 400
    r = requests.post(url, json={"token": checkout, "disable_flags": True},
                      timeout=10)
    assert r.status_code == 200 and r.json()["flags"] == {}
    r = requests.post(url, data="<x/>",
                      headers={"Content-Type": "application/xml"}, timeout=10)
    assert r.status_code == 400
    r = requests.put(url, json={}, timeout=10)
    assert r.status_code == 405
    r = requests.options(url, headers={"Origin": "https://app.example"},
                         timeout=10)
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.json()["flags"] == {}


def test_acceptance_d35_encodings_give_identical_results(stack, checkout):
    body = json.dumps({"token": checkout, **CHECKOUT_BODY}).encode()
    url = stack.nginx.url + "/flags?v=2"
    gz = gzip.compress(body)
    b64 = base64.b64encode(body)
    variants = [
        (url + "&compression=gzip", gz, {"Content-Type": "application/json"}),
        (url, gz, {"Content-Type": "application/json",
                   "Content-Encoding": "gzip"}),
        (url, gz, {"Content-Type": "application/json"}),
        (url, b64, {"Content-Type": "application/json"}),
        (url + "&compression=base64",
         b"data=" + urllib.parse.quote(b64).encode(),
         {"Content-Type": "application/x-www-form-urlencoded"}),
        (url, body + b"", {"Content-Type": "text/plain"}),
    ]
    results = []
    for u, data, headers in variants:
        r = requests.post(u, data=data, headers=headers, timeout=10)
        assert r.status_code == 200, (u, headers, r.text)
        results.append({k: (v["enabled"], v["variant"])
                        for k, v in r.json()["flags"].items()})
    assert all(x == results[0] for x in results)
    assert results[0]["checkout-layout"] == (True, "compact")
    r = requests.post(url + "&compression=lz64", data=body, timeout=10)
    assert r.status_code == 400
    r = requests.post(url, data=b'{"token":"%s","distinct_id":"u",'
                      b'"person_properties":{"x":NaN}}' % checkout.encode(),
                      headers={"Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 200


def test_acceptance_d36_quota_limited(stack):
    tid, token = stack.worker.team_create("quota")
    put_flags(stack, token, {"key": "q", "filters": {"groups": [
        {"properties": [], "rollout_percentage": 100}]}})
    wait_flag(stack, token, "q")
    rc = redis_client(stack)
    rc.zadd("@posthog/quota-limits/feature_flag_requests",
            {token: time.time() + 3600})
    try:
        doc = wait_for(lambda: (lambda d: d if "quotaLimited" in d else None)(
            flags_v2(stack, token).json()), timeout=30, what="quota limit")
        assert doc["flags"] == {}
        assert doc["quotaLimited"] == ["feature_flags"]
        assert doc["errorsWhileComputingFlags"] is False
    finally:
        rc.zrem("@posthog/quota-limits/feature_flag_requests", token)


# --- data path acceptance -----------------------------------------------------

def _propagation(stack, tid, token, key, args, seen):
    """Seconds from the commit of `ingest-worker <args>` to the first
    /flags answer that shows it (seen(flags) holds): an upper bound of
    what issue 4 limits ("Flag changes reach /decide within 1 s").  It
    starts at the commit's own timestamp in Postgres (set before the
    commit is visible) rather than when the CLI process is spawned, and
    ends when a response that shows the change has been read; /flags is
    polled on one keep-alive connection while the CLI still runs, so
    neither the CLI's start and exit nor a new connection per probe is
    counted."""
    s = requests.Session()
    cli = subprocess.Popen([ST.WORKER_BIN, "-c", stack.worker.conf_path,
                            *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    try:
        while True:
            r = flags_v2(stack, token, session=s)
            shown = time.time()
            if r.status_code == 200 and seen(r.json()["flags"]):
                break
            assert time.monotonic() < deadline, \
                f"{key}: change not in /flags after 30 s"
            time.sleep(0.02)  # poll interval of the wait above
    finally:
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, out + err
    committed = float(psql(stack, "SELECT extract(epoch FROM "
                                  "pg_xact_commit_timestamp(xmin)) FROM "
                                  f"posthog_featureflag WHERE team_id = "
                                  f"{tid} AND key = '{key}'"))
    return shown - committed


def test_cli_flag_change_visible_within_1s(stack, team):
    tid, token = team
    flag = {"key": "cli-change", "filters": {"groups": [
        {"properties": [], "rollout_percentage": 100}]}}
    put_flags(stack, token, flag)
    wait_flag(stack, token, "cli-change", pred=lambda f: f["enabled"])
    flag["filters"]["groups"][0]["rollout_percentage"] = 0
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(flag, f)
        f.flush()
        elapsed = _propagation(
            stack, tid, token, "cli-change",
            ["flag", "put", "--team", token, "--file", f.name],
            lambda flags: "cli-change" in flags
            and not flags["cli-change"]["enabled"])
    print(f"change visible {elapsed:.3f} s after its commit")
    assert elapsed < 1.0, f"change took {elapsed:.3f}s"
    elapsed = _propagation(
        stack, tid, token, "cli-change",
        ["flag", "delete", "--team", token, "--key", "cli-change"],
        lambda flags: "cli-change" not in flags)
    print(f"delete visible {elapsed:.3f} s after its commit")
    assert elapsed < 1.0, f"delete took {elapsed:.3f}s"


def test_cli_flag_list(stack, team):
    tid, token = team
    out = stack.worker.run_cmd("flag", "list", "--team", str(tid)).stdout
    keys = [f["key"] for f in json.loads(out)]
    assert "smoke" in keys


def _person_entry(stack, tid, did, props, person_id=1):
    rc = redis_client(stack)
    rc.set(f"edgehog:person:{tid}:{did}", json.dumps(
        {"id": person_id, "uuid": "00000000-0000-5000-8000-000000000001",
         "version": 1, "properties": props}))


@pytest.fixture(scope="module")
def person_team(stack):
    tid, token = stack.worker.team_create("persons")
    put_flags(stack, token, [
        {"key": "needs-plan", "filters": {"groups": [
            {"properties": [_pf("plan", "exact", "enterprise")],
             "rollout_percentage": 100}]}},
        {"key": "everyone", "filters": {"groups": [
            {"properties": [], "rollout_percentage": 100}]}}])
    # `flag put` commits flag by flag: a snapshot may show the first alone
    wait_flag(stack, token, "needs-plan")
    wait_flag(stack, token, "everyone")
    return tid, token


def test_person_properties_only_in_redis_match(stack, person_team):
    tid, token = person_team
    _person_entry(stack, tid, "redis-user", {"plan": "enterprise"})
    f = flags_v2(stack, token, {"distinct_id": "redis-user"}).json()
    assert f["flags"]["needs-plan"]["enabled"] is True
    assert f["errorsWhileComputingFlags"] is False
    # request values win over stored ones
    f = flags_v2(stack, token, {"distinct_id": "redis-user",
                                "person_properties": {"plan": "free"}}).json()
    assert f["flags"]["needs-plan"]["enabled"] is False
    # no entry: a normal anonymous user
    f = flags_v2(stack, token, {"distinct_id": "nobody"}).json()
    assert f["flags"]["needs-plan"]["enabled"] is False
    assert f["errorsWhileComputingFlags"] is False


def test_person_lookup_failure_marks_only_affected_flags(stack, person_team):
    tid, token = person_team
    redis_client(stack).set(f"edgehog:person:{tid}:broken", b"\xff{not json")
    doc = flags_v2(stack, token, {"distinct_id": "broken"}).json()
    assert doc["errorsWhileComputingFlags"] is True
    assert doc["flags"]["needs-plan"]["failed"] is True
    assert doc["flags"]["needs-plan"]["enabled"] is False
    assert doc["flags"]["everyone"]["enabled"] is True
    assert "failed" not in doc["flags"]["everyone"]
    v1 = flags_v2(stack, token, {"distinct_id": "broken"},
                  path="/flags?v=1").json()
    assert v1["featureFlags"] == {"needs-plan": False, "everyone": True}
    assert v1["errorsWhileComputingFlags"] is True


def test_snapshot_serves_while_redis_is_down(stack, person_team):
    """Redis stopped: /decide still answers from the in-memory snapshot;
    person lookups fail only the flags that need them."""
    tid, token = person_team
    before = flags_v2(stack, token, {"distinct_id": "u-down"}).json()
    assert before["flags"]["everyone"]["enabled"] is True
    seen = stack.nginx.log_text().count("serving the snapshot")
    stack.redis.stop()
    try:
        # a refresh has failed: what follows is served without Redis
        wait_for(lambda: stack.nginx.log_text().count(
                 "serving the snapshot") > seen, timeout=30,
                 what="a failed snapshot refresh logged")
        r = flags_v2(stack, token, {"distinct_id": "u-down",
                                    "person_properties": {"plan": "x"}})
        assert r.status_code == 200
        assert r.json()["flags"]["everyone"]["enabled"] is True
        assert r.json()["errorsWhileComputingFlags"] is False
        r = flags_v2(stack, token, {"distinct_id": "u-down"})
        assert r.status_code == 200
        doc = r.json()
        assert doc["flags"]["everyone"]["enabled"] is True
        assert doc["flags"]["needs-plan"].get("failed") is True
        assert doc["errorsWhileComputingFlags"] is True
        # and ops see why the flag failed
        logged = re.compile(r"\[warn\].*decide: (redis|person) lookup "
                            rf"for team {tid} failed: \S")
        wait_for(lambda: logged.search(stack.nginx.log_text()),
                 timeout=30, what="the failed lookup logged")
    finally:
        stack.redis.start()
    # the publisher repopulates the fresh Redis, nginx picks it up
    wait_for(lambda: redis_client(stack).hget("edgehog:snapshot:teams",
                                               token), timeout=40,
             what="republished snapshot")
    put_flags(stack, token, {"key": "after-restart", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 100}]}})
    wait_flag(stack, token, "after-restart", timeout=30)


@contextlib.contextmanager
def copied_redis(stack, tmp_path, entries):
    """A Redis of the test's own holding a copy of the stack's snapshot
    and entries, and an nginx reading from it: (that Redis, a client of
    it, the nginx).  Stopping it (SIGSTOP) leaves the stack's Redis, and
    so the ingest-worker, alone."""
    import redis as redis_py
    own = S.Redis(str(tmp_path))
    own.start()
    nginx = None
    try:
        src = redis_client(stack)
        dst = redis_py.Redis(host="127.0.0.1", port=own.port,
                             socket_timeout=5)
        for key in src.scan_iter("edgehog:snapshot*"):
            dst.restore(key, 0, src.dump(key), replace=True)
        for key, value in entries.items():
            dst.set(key, value)
        nginx = ST.Nginx(str(tmp_path / "nginx"), kafka=stack.kafka.bootstrap,
                         redis=f"127.0.0.1:{own.port}")
        nginx.start()
        yield own, dst, nginx
    finally:
        if nginx:
            nginx.stop()
        own.stop()


def test_person_lookup_gives_up_while_redis_hangs(stack, person_team,
                                                 tmp_path):
    """Redis that accepts connections but does not answer (a stopped
    process): a person lookup gives up after decide_redis_timeout with
    only the flags that need it failed, and once Redis answers again so
    do lookups (the connection the timeout dropped is made anew).  Its
    own Redis, a copy of the stack's snapshot: stopping the stack's would
    stall the ingest-worker too."""
    tid, token = person_team
    with copied_redis(stack, tmp_path, {
            f"edgehog:person:{tid}:hang-user": json.dumps(
                {"id": 7, "uuid": "00000000-0000-5000-8000-000000000007",
                 "version": 1, "properties": {"plan": "enterprise"}})}) \
            as (own, _, nginx):
        def lookup():
            r = requests.post(nginx.url + "/flags?v=2", timeout=60,
                              json={"token": token,
                                    "distinct_id": "hang-user"})
            assert r.status_code == 200, r.text
            return r.json()

        wait_for(lambda: lookup()["flags"]["needs-plan"]["enabled"],
                 timeout=60, what="a lookup in the copied Redis")
        os.kill(own.pid, signal.SIGSTOP)
        try:
            doc = lookup()
        finally:
            os.kill(own.pid, signal.SIGCONT)
        assert doc["flags"]["needs-plan"].get("failed") is True
        assert doc["flags"]["needs-plan"]["enabled"] is False
        assert doc["flags"]["everyone"]["enabled"] is True
        assert doc["errorsWhileComputingFlags"] is True
        wait_for(lambda: lookup()["flags"]["needs-plan"]["enabled"],
                 timeout=60, what="lookups once Redis answers again")


def company_team(stack, name, extra=()):
    """A team with group type "company" (index 0) and the flags
    big-company (the company's size > 100), everyone, and extra, all
    served before it returns."""
    tid, token = stack.worker.team_create(name)
    psql(stack, "INSERT INTO posthog_grouptypemapping (team_id, project_id, "
                f"group_type, group_type_index) VALUES ({tid}, {tid}, "
                "'company', 0)")
    flags = [
        {"key": "big-company", "filters": {
            "aggregation_group_type_index": 0,
            "groups": [{"properties": [
                {"key": "size", "type": "group", "group_type_index": 0,
                 "operator": "gt", "value": 100}],
                "rollout_percentage": 100}]}},
        {"key": "everyone", "filters": {"groups": [
            {"properties": [], "rollout_percentage": 100}]}}] + list(extra)
    put_flags(stack, token, flags)
    for flag in flags:
        wait_flag(stack, token, flag["key"])
    return tid, token


def test_group_and_continuity_lookups_give_up_while_redis_hangs(stack,
                                                                tmp_path):
    """Group entries and hash-key overrides are read on the worker's own
    Redis connection like person entries: with Redis answering, a group
    flag matches on the stored group entry and a continuity flag writes
    its override (HSETNX and the pending row for the ingest-worker) and
    reads it back; a hash that is not a hash fails only the continuity
    flag; with Redis hung (SIGSTOP) both give up after
    decide_redis_timeout with only their flags failed, and recover once
    Redis answers.  Its own Redis, a copy of the stack's snapshot."""
    tid, token = company_team(stack, "async lookups", [
        # variants: hashing decides, so continuity needs the overrides
        {"key": "ec-flag", "ensure_experience_continuity": True,
         "filters": {"groups": [{"properties": [],
                                 "rollout_percentage": 100}],
                     "multivariate": {"variants": [
                         {"key": "a", "rollout_percentage": 50},
                         {"key": "b", "rollout_percentage": 50}]}}}])
    entries = {f"edgehog:group:{tid}:0:acme":
               json.dumps({"version": 1, "properties": {"size": 500}}),
               # not a hash: every HSETNX and HGETALL on it is an error
               f"edgehog:hko:{tid}:43": "not a hash"}
    for did, pid in (("ec-user", 41), ("ec-anon", 42), ("ec-odd", 43)):
        entries[f"edgehog:person:{tid}:{did}"] = json.dumps(
            {"id": pid, "uuid": "00000000-0000-5000-8000-0000000000"
             f"{pid}", "version": 1, "properties": {}})
    with copied_redis(stack, tmp_path, entries) as (own, dst, nginx):
        def lookup(did="ec-user"):
            r = requests.post(nginx.url + "/flags?v=2", timeout=60,
                              json={"token": token, "distinct_id": did,
                                    "$anon_distinct_id": "ec-anon",
                                    "groups": {"company": "acme"}})
            assert r.status_code == 200, r.text
            return r.json()

        def healthy():
            r = requests.post(nginx.url + "/flags?v=2", timeout=60,
                              json={"token": token, "distinct_id": "ec-user",
                                    "$anon_distinct_id": "ec-anon",
                                    "groups": {"company": "acme"}})
            doc = r.status_code == 200 and r.json()
            return (doc and not doc["errorsWhileComputingFlags"]
                    and doc["flags"]["big-company"]["enabled"]
                    and doc["flags"]["ec-flag"]["enabled"]) and doc

        wait_for(healthy, timeout=60, what="lookups in the copied Redis")
        # the anon id's person (42) got the override, and so did the
        # user's (41), each with a pending row for the ingest-worker
        for pid in (41, 42):
            assert dst.hgetall(f"edgehog:hko:{tid}:{pid}") == \
                {b"ec-flag": b"ec-anon"}
        rows = sorted((p["team_id"], p["person_id"], p["feature_flag_key"],
                       p["hash_key"]) for p in map(
                           json.loads,
                           dst.lrange("edgehog:hko:pending", 0, -1)))
        want = [(tid, 41, "ec-flag", "ec-anon"), (tid, 42, "ec-flag",
                                                  "ec-anon")]
        if "lookup for team" in nginx.log_text():
            # a write whose reply a slow box lost has no row (as before)
            assert set(rows) <= set(want) and len(set(rows)) == len(rows)
        else:
            assert rows == want

        def groups_answered():
            # a request of a slow box whose lookup met the deadline
            doc = lookup("ec-odd")
            return "failed" not in doc["flags"]["big-company"] and doc

        doc = wait_for(groups_answered, timeout=60,
                       what="a group lookup beside the broken override")
        assert doc["flags"]["ec-flag"].get("failed") is True
        assert doc["flags"]["ec-flag"]["reason"]["code"] == \
            "hash_key_override_error"
        assert doc["flags"]["big-company"]["enabled"] is True
        assert "failed" not in doc["flags"]["big-company"]
        assert doc["flags"]["everyone"]["enabled"] is True
        assert doc["errorsWhileComputingFlags"] is True
        assert re.search(rf"\[warn\].*decide: hash key override lookup for "
                         rf"team {tid} failed: WRONGTYPE", nginx.log_text()) \
            or "timed out" in nginx.log_text()

        os.kill(own.pid, signal.SIGSTOP)
        try:
            doc = lookup()
        finally:
            os.kill(own.pid, signal.SIGCONT)
        assert doc["flags"]["big-company"].get("failed") is True
        assert doc["flags"]["big-company"]["enabled"] is False
        assert doc["flags"]["ec-flag"].get("failed") is True
        assert doc["flags"]["ec-flag"]["enabled"] is False
        assert doc["flags"]["everyone"]["enabled"] is True
        assert doc["errorsWhileComputingFlags"] is True
        assert re.search(rf"\[warn\].*decide: \w+ lookup for team {tid} "
                         r"failed: timed out", nginx.log_text())
        wait_for(healthy, timeout=60, what="lookups once Redis answers again")


def test_nginx_t_rejects_redis_timeout_0(tmp_path):
    """No lookup may wait for good on a hung Redis: 0 (no bound) is
    refused at nginx -t, naming the value."""
    nginx = ST.Nginx(str(tmp_path), extra="")
    nginx.conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")) \
        .read().replace("decide_redis_address",
                        "decide_redis_timeout 0;\n    decide_redis_address")
    rc, out = nginx.test_config()
    assert rc != 0 and 'invalid value "0"' in out, out


def test_no_snapshot_yet_is_503_with_retry_after(stack, tmp_path):
    """Redis unreachable since startup: nothing to answer from, so every
    route says 503 (SDKs retry it, Retry-After says when), as JSON with
    CORS, rather than a 401 for a token it cannot check."""
    nginx = ST.Nginx(str(tmp_path), kafka=stack.kafka.bootstrap,
                     redis=f"127.0.0.1:{S.free_port()}")
    nginx.start()
    try:
        for method, path, body in [
                ("POST", "/flags?v=2", {"token": "phc_x", "distinct_id": "a"}),
                ("POST", "/decide?v=3", {"token": "phc_x",
                                         "distinct_id": "a"}),
                ("GET", "/array/phc_x/config", None)]:
            r = requests.request(method, nginx.url + path, json=body,
                                 headers={"Origin": "https://app.example"},
                                 timeout=10)
            assert r.status_code == 503, (path, r.text)
            assert r.headers["Retry-After"] == "1"
            assert r.headers["Access-Control-Allow-Origin"]
            assert r.json()["code"] == "service_unavailable"
    finally:
        nginx.stop()


def test_worker_crash_is_reported_with_its_core(stack, tmp_path):
    """The harness keeps evidence of a crash: a worker that aborts is a
    report (its log lines, where the core went) that fails whichever test
    was running, and the core lands in the nginx prefix when the system's
    core_pattern writes a plain file and the hard core limit allows it."""
    nginx = ST.Nginx(str(tmp_path), kafka=stack.kafka.bootstrap,
                     redis=f"127.0.0.1:{S.free_port()}")
    nginx.start()
    try:
        def workers():
            try:
                with open(f"/proc/{nginx.pid}/task/{nginx.pid}/children") as f:
                    return {int(p) for p in f.read().split()}
            except OSError:
                return set()
        old = wait_for(workers, timeout=30, what="an nginx worker")
        os.kill(min(old), signal.SIGABRT)
        wait_for(lambda: "exited on signal 6" in nginx.log_text(),
                 timeout=30, what="the master logging the crash")
        report = nginx.crash_report()
        assert report and "exited on signal 6" in report, report
        # read once: the fixture's check after this test sees nothing new
        assert nginx.crash_report() is None
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        if not pattern.startswith("|") and "/" not in pattern and hard:
            assert "core file(s): " + nginx.workdir in report, report
        wait_for(lambda: workers() - old, timeout=30,
                 what="the master's new worker")
        # a SIGKILL comes from outside (a test, the OOM killer): no crash
        os.kill(min(workers()), signal.SIGKILL)
        wait_for(lambda: "exited on signal 9" in nginx.log_text(),
                 timeout=30, what="the master logging the kill")
        assert nginx.crash_report() is None
    finally:
        nginx.stop()


def test_rate_limits_token_429_and_ip_log_only(stack, tmp_path):
    """§1.5 step 1 and §7: a token over its bucket gets 429 with the JSON
    error; another token has its own bucket; an address limit in log_only
    mode only logs."""
    conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read() \
        .replace("decide_redis_address   @REDIS@;",
                 "decide_redis_address   @REDIS@;\n"
                 "    decide_rate_limit token 1 3;\n"
                 "    decide_rate_limit ip 1 2 log_only;")
    nginx = ST.Nginx(str(tmp_path), kafka=stack.kafka.bootstrap,
                     redis=f"127.0.0.1:{stack.redis.port}", conf=conf)
    nginx.start()
    try:
        url = nginx.url + "/flags?v=2"
        body = {"token": stack.token, "distinct_id": "rl"}
        # waited for in the log: a request would take a token from the
        # bucket whether or not a snapshot is there to answer it (503), so
        # polling on a slow start could empty it before the burst below
        wait_for(lambda: "decide: snapshot version" in nginx.log_text(),
                 timeout=30, what="snapshot loaded")
        start = time.monotonic()
        rs = [requests.post(url, json=body, timeout=10,
                            headers={"Origin": "https://app.example"})
              for _ in range(10)]
        elapsed = time.monotonic() - start
        codes = [r.status_code for r in rs]
        # a full bucket of 3, then 1 per second
        assert set(codes) == {200, 429}
        assert codes.count(200) <= 3 + int(elapsed) + 1
        r = rs[codes.index(429)]
        assert r.json() == {"type": "validation_error",
                            "code": "rate_limit_exceeded",
                            "detail": "Rate limit exceeded", "attr": None}
        assert r.headers["Access-Control-Allow-Origin"]
        # another token: its own bucket (unknown, so 401, never 429)
        r = requests.post(url, json={"token": "phc_other",
                                     "distinct_id": "rl"}, timeout=10)
        assert r.status_code == 401
        # the address is over its limit too, but only logged
        assert "ip rate limit exceeded" in nginx.log_text()
        assert "(log only)" in nginx.log_text()
    finally:
        nginx.stop()


def test_nginx_t_rejects_bad_rate_limit(tmp_path):
    for args, msg in [("user 1 1", 'invalid decide_rate_limit key "user"'),
                      ("ip 0 1", 'invalid decide_rate_limit rate "0"'),
                      ("ip 1 1 always",
                       'invalid decide_rate_limit parameter "always"')]:
        nginx = ST.Nginx(str(tmp_path / args.replace(" ", "_")),
                         extra="")
        nginx.conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")) \
            .read().replace("decide_redis_address",
                            f"decide_rate_limit {args};\n"
                            "    decide_redis_address")
        rc, out = nginx.test_config()
        assert rc != 0 and msg in out, out


# --- remote config (posthog-js 1.449 loads it before /flags) -----------------

def test_remote_config_json_and_js(stack, checkout):
    token = checkout
    url = stack.nginx.url + f"/array/{token}/config"
    r = requests.get(url, headers={"Origin": "https://site.example"},
                     timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Cache-Control"] == "public, max-age=300"
    assert r.headers["Access-Control-Allow-Origin"] == "https://site.example"
    cfg = r.json()
    assert cfg["token"] == token
    assert cfg["hasFeatureFlags"] is True
    assert cfg["supportedCompression"] == ["gzip", "gzip-js"]
    assert cfg["sessionRecording"] is False
    assert cfg["analytics"] == {"endpoint": "/i/v0/e/"}
    r = requests.get(url + ".js", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/javascript")
    assert f"window._POSTHOG_REMOTE_CONFIG['{token}']" in r.text
    body = r.text.split("config: ", 1)[1].rsplit(",\n    siteApps", 1)[0]
    assert json.loads(body) == cfg
    r = requests.get(stack.nginx.url + "/array/phc_nope/config", timeout=10)
    assert r.status_code == 404
    r = requests.get(stack.nginx.url + "/array/bad%20token!/config.js",
                     timeout=10)
    assert r.status_code == 400
    r = requests.options(url + ".js", headers={"Origin": "https://x.example"},
                         timeout=10)
    assert r.status_code == 204


def test_cohorts_static_from_person_entry_and_dynamic(stack):
    """Static cohort membership: posthog_cohortpeople rows published in the
    snapshot, matched against the person entry's id from Redis; dynamic
    cohorts evaluate person properties."""
    tid, token = stack.worker.team_create("cohorts")
    pid = int(psql(stack, "INSERT INTO posthog_person (created_at, uuid, "
                          f"team_id, properties) VALUES (now(), "
                          f"gen_random_uuid(), {tid}, '{{}}') RETURNING id")
              .split()[0])
    static = int(psql(stack, "INSERT INTO posthog_cohort (team_id, name, "
                             f"is_static) VALUES ({tid}, 'vips', true) "
                             "RETURNING id").split()[0])
    psql(stack, "INSERT INTO posthog_cohortpeople (cohort_id, person_id) "
                f"VALUES ({static}, {pid})")
    dyn = int(psql(stack, "INSERT INTO posthog_cohort (team_id, name, "
                          "filters) VALUES "
                          f"({tid}, 'gmail', '{json.dumps({'properties': {'type': 'OR', 'values': [{'type': 'AND', 'values': [_pf('email', 'icontains', 'gmail')]}]}})}') "
                          "RETURNING id").split()[0])
    put_flags(stack, token, [
        {"key": "static-cohort", "filters": {"groups": [
            {"properties": [{"key": "id", "type": "cohort",
                             "value": static}],
             "rollout_percentage": 100}]}},
        {"key": "dynamic-cohort", "filters": {"groups": [
            {"properties": [{"key": "id", "type": "cohort", "value": dyn}],
             "rollout_percentage": 100}]}}])
    wait_flag(stack, token, "dynamic-cohort")
    _person_entry(stack, tid, "member", {"email": "a@gmail.com"},
                  person_id=pid)
    _person_entry(stack, tid, "outsider", {"email": "a@corp.com"},
                  person_id=pid + 1000)
    f = flags_v2(stack, token, {"distinct_id": "member"}).json()["flags"]
    assert f["static-cohort"]["enabled"] is True
    assert f["dynamic-cohort"]["enabled"] is True
    f = flags_v2(stack, token, {"distinct_id": "outsider"}).json()["flags"]
    assert f["static-cohort"]["enabled"] is False
    assert f["dynamic-cohort"]["enabled"] is False
    f = flags_v2(stack, token, {"distinct_id": "anon",
                                "person_properties": {
                                    "email": "b@gmail.com"}}).json()["flags"]
    assert f["static-cohort"]["enabled"] is False
    assert f["dynamic-cohort"]["enabled"] is True


# --- experience continuity and stored group properties ------------------------

def _hash01(prefix, ident):
    import hashlib
    return int(hashlib.sha1(f"{prefix}.{ident}".encode()).hexdigest()[:15],
               16) / 0xFFFFFFFFFFFFFFF


def test_acceptance_37_experience_continuity(stack):
    """§10 #37: a request with $anon_distinct_id writes one hash-key
    override row (team, P, flag, anon id); the result equals anon-1's
    and stays so for user-1 without $anon_distinct_id.  Rollout 25 (not
    50) so that user-1 and anon-1 hash to different answers."""
    tid, token = stack.worker.team_create("continuity")
    pid = int(psql(stack, "INSERT INTO posthog_person (created_at, uuid, "
                          f"team_id, properties) VALUES (now(), "
                          f"gen_random_uuid(), {tid}, '{{}}') RETURNING id")
              .split()[0])
    for did in ("anon-1", "user-1"):
        psql(stack, "INSERT INTO posthog_persondistinctid (distinct_id, "
                    f"person_id, team_id) VALUES ('{did}', {pid}, {tid})")
        # the entry the ingestion side writes for each distinct id
        _person_entry(stack, tid, did, {}, person_id=pid)
    put_flags(stack, token, [
        {"key": "ec-flag", "ensure_experience_continuity": True,
         "filters": {"groups": [{"properties": [],
                                 "rollout_percentage": 25}]}},
        {"key": "plain", "filters": {"groups": [
            {"properties": [], "rollout_percentage": 100}]}}])
    wait_flag(stack, token, "ec-flag")
    wait_flag(stack, token, "plain")
    assert _hash01("ec-flag", "anon-1") <= 0.25 < _hash01("ec-flag", "user-1")

    before = flags_v2(stack, token, {"distinct_id": "user-1"}).json()
    assert before["flags"]["ec-flag"]["enabled"] is False

    doc = flags_v2(stack, token, {"distinct_id": "user-1",
                                  "$anon_distinct_id": "anon-1"}).json()
    assert doc["errorsWhileComputingFlags"] is False
    assert doc["flags"]["ec-flag"]["enabled"] is True
    assert doc["flags"]["plain"]["enabled"] is True

    rows = wait_for(lambda: psql(
        stack, "SELECT person_id, feature_flag_key, hash_key FROM "
               f"posthog_featureflaghashkeyoverride WHERE team_id = {tid}"
    ).strip() or None, timeout=30, what="override row")
    assert rows.split("\n") == [f"{pid}|ec-flag|anon-1"]

    for _ in range(2):
        doc = flags_v2(stack, token, {"distinct_id": "user-1"}).json()
        assert doc["flags"]["ec-flag"]["enabled"] is True
        assert doc["errorsWhileComputingFlags"] is False
    # a second request with another anon id changes nothing
    flags_v2(stack, token, {"distinct_id": "user-1",
                            "$anon_distinct_id": "anon-2"})
    doc = flags_v2(stack, token, {"distinct_id": "user-1"}).json()
    assert doc["flags"]["ec-flag"]["enabled"] is True
    assert psql(stack, "SELECT count(*) FROM posthog_featureflaghashkeyoverride"
                       f" WHERE team_id = {tid}").strip() == "1"


def test_group_properties_from_redis_entry(stack):
    """A group flag filtering on a group property that only the stored
    group entry (edgehog:group:<team>:<gti>:<key>) has matches; the
    request's group_properties win; a broken entry fails only that flag."""
    tid, token = company_team(stack, "groups")
    rc = redis_client(stack)
    # as the ingestion side writes it on $groupidentify
    rc.set(f"edgehog:group:{tid}:0:acme",
           json.dumps({"version": 1, "properties": {"size": 500}}))
    rc.set(f"edgehog:group:{tid}:0:tiny",
           json.dumps({"version": 1, "properties": {"size": 3}}))
    rc.set(f"edgehog:group:{tid}:0:broken", b"\xff{")

    f = flags_v2(stack, token, {"groups": {"company": "acme"}}).json()
    assert f["flags"]["big-company"]["enabled"] is True
    assert f["errorsWhileComputingFlags"] is False
    f = flags_v2(stack, token, {"groups": {"company": "tiny"}}).json()
    assert f["flags"]["big-company"]["enabled"] is False
    f = flags_v2(stack, token, {"groups": {"company": "acme"},
                                "group_properties": {
                                    "company": {"size": 5}}}).json()
    assert f["flags"]["big-company"]["enabled"] is False
    f = flags_v2(stack, token, {"groups": {"company": "unknown"}}).json()
    assert f["flags"]["big-company"]["enabled"] is False
    assert f["errorsWhileComputingFlags"] is False
    f = flags_v2(stack, token, {"groups": {"company": "broken"}}).json()
    assert f["errorsWhileComputingFlags"] is True
    assert f["flags"]["big-company"]["failed"] is True
    assert f["flags"]["everyone"]["enabled"] is True


def test_distinct_id_is_an_implicit_person_property(stack):
    """spec 1.6: a person filter on "distinct_id" sees the request's
    distinct id when person_properties lack it; a sent value wins."""
    tid, token = stack.worker.team_create("implicit distinct_id")
    put_flags(stack, token, {"key": "by-did", "filters": {"groups": [{
        "properties": [{"key": "distinct_id", "type": "person",
                        "operator": "exact", "value": ["alice"]}],
        "rollout_percentage": 100}]}})
    wait_flag(stack, token, "by-did")

    doc = flags_v2(stack, token, {"distinct_id": "alice"}).json()
    assert doc["flags"]["by-did"]["enabled"] is True
    assert doc["errorsWhileComputingFlags"] is False

    doc = flags_v2(stack, token, {"distinct_id": "bob"}).json()
    assert doc["flags"]["by-did"]["enabled"] is False

    doc = flags_v2(stack, token, {"distinct_id": "bob", "person_properties":
                                  {"distinct_id": "alice"}}).json()
    assert doc["flags"]["by-did"]["enabled"] is True


def test_explicit_evaluation_runtime_overrides_detection(stack):
    """spec 1.4/5.2: a body evaluation_runtime wins over the runtime the
    headers suggest; "all" gets every flag."""
    tid, token = stack.worker.team_create("explicit runtime")
    on = {"groups": [{"properties": [], "rollout_percentage": 100}]}
    put_flags(stack, token, [
        {"key": "rt-server", "evaluation_runtime": "server", "filters": on},
        {"key": "rt-client", "evaluation_runtime": "client", "filters": on},
        {"key": "rt-all", "filters": on}])
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
               "Origin": "https://app.example.com"}
    wait_flag(stack, token, "rt-all")

    def keys(body):
        r = flags_v2(stack, token, body, headers=browser)
        assert r.status_code == 200, r.text
        return set(r.json()["flags"])

    assert wait_for(lambda: keys({}) == {"rt-client", "rt-all"},
                    timeout=30, what="client flags", interval=0.05)
    assert keys({"evaluation_runtime": "server"}) == {"rt-server", "rt-all"}
    assert keys({"evaluation_runtime": "all"}) == {"rt-server", "rt-client",
                                                   "rt-all"}


def test_flushall_keeps_last_snapshot_until_republished(stack):
    """Redis wiped (FLUSHALL) while the ingest-worker is stopped: the
    missing version key is not an empty publish, /flags keeps answering
    from the last snapshot; once the worker refills Redis, a flag changed
    in Postgres meanwhile is served."""
    tid, token = stack.worker.team_create("flushall")
    on = {"groups": [{"properties": [], "rollout_percentage": 100}]}
    put_flags(stack, token, [{"key": "kept", "filters": on},
                             {"key": "changed", "filters": on}])
    wait_flag(stack, token, "changed")
    mark = len(stack.nginx.log_text())
    stack.worker.stop()
    try:
        redis_client(stack).flushall()
        # nginx saw the empty Redis (it logs the missing version once)
        wait_for(lambda: "has no snapshot version"
                 in stack.nginx.log_text()[mark:], timeout=30,
                 what="nginx refresh after FLUSHALL")
        for _ in range(3):
            doc = flags_v2(stack, token).json()
            assert doc["flags"]["kept"]["enabled"] is True
            assert doc["flags"]["changed"]["enabled"] is True
        # the change lands in Postgres only; nobody publishes it yet
        put_flags(stack, token, {"key": "changed", "filters": {
            "groups": [{"properties": [], "rollout_percentage": 0}]}})
        assert flags_v2(stack, token).json()["flags"]["changed"][
            "enabled"] is True
    finally:
        stack.worker.start()
    wait_flag(stack, token, "changed", timeout=40,
              pred=lambda f: f["enabled"] is False)
    assert flags_v2(stack, token).json()["flags"]["kept"]["enabled"] is True


def test_evaluation_tags_filter_by_environment(stack):
    """spec 1.4/5.1: evaluation tags stored through `flag put` in
    posthog_tag/posthog_featureflagevaluationtag, carried in the snapshot;
    a request naming evaluation_environments (or evaluation_contexts) gets
    untagged flags and flags with a matching tag only."""
    tid, token = stack.worker.team_create("evaluation tags")
    on = {"groups": [{"properties": [], "rollout_percentage": 100}]}
    put_flags(stack, token, [
        {"key": "tag-web", "evaluation_tags": ["web", "app"], "filters": on},
        {"key": "tag-server", "evaluation_tags": ["server"], "filters": on},
        {"key": "untagged", "filters": on}])
    rows = psql(stack, "SELECT f.key || ':' || g.name FROM "
                "posthog_featureflagevaluationtag e JOIN posthog_tag g "
                "ON g.id = e.tag_id JOIN posthog_featureflag f ON "
                f"f.id = e.feature_flag_id WHERE f.team_id = {tid} "
                "ORDER BY 1")
    assert rows.split() == ["tag-server:server", "tag-web:app",
                            "tag-web:web"]
    listed = {f["key"]: f["evaluation_tags"] for f in json.loads(
        stack.worker.run_cmd("flag", "list", "--team", token).stdout)}
    assert listed == {"tag-web": ["app", "web"], "tag-server": ["server"],
                      "untagged": None}
    wait_flag(stack, token, "untagged")

    def keys(body):
        r = flags_v2(stack, token, body)
        assert r.status_code == 200, r.text
        return set(r.json()["flags"])

    assert keys({}) == {"tag-web", "tag-server", "untagged"}
    assert keys({"evaluation_environments": ["web"]}) == {"tag-web",
                                                          "untagged"}
    assert keys({"evaluation_contexts": ["server", "x"]}) == {
        "tag-server", "untagged"}
    assert keys({"evaluation_environments": ["nowhere"]}) == {"untagged"}

    # a put without the field clears the tags, and nginx follows
    put_flags(stack, token, {"key": "tag-server", "filters": on})
    assert wait_for(lambda: keys({"evaluation_environments": ["web"]}) == {
        "tag-web", "tag-server", "untagged"}, timeout=30,
        what="tags cleared", interval=0.05)

    # tags must be a list of names; nothing is written otherwise
    with pytest.raises(Exception, match="evaluation_tags"):
        put_flags(stack, token, {"key": "bad-tags", "filters": on,
                                 "evaluation_tags": "web"})
    # Postgres' column widths, in characters: a clear error, not SQL's
    with pytest.raises(Exception, match="at most 255 characters"):
        put_flags(stack, token, {"key": "bad-tags", "filters": on,
                                 "evaluation_tags": ["é" * 256]})
    with pytest.raises(Exception, match="at most 400 characters"):
        put_flags(stack, token, {"key": "ü" * 401, "filters": on})
    put_flags(stack, token, {"key": "long-tag", "filters": on,
                             "evaluation_tags": ["é" * 255]})
    listed = {f["key"]: f["evaluation_tags"] for f in json.loads(
        stack.worker.run_cmd("flag", "list", "--team", token).stdout)}
    assert listed == {"tag-web": ["app", "web"], "tag-server": None,
                      "untagged": None, "long-tag": ["é" * 255]}
