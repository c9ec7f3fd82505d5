"""Real PostHog SDKs (posthog-python from PyPI, posthog-node from npm,
posthog-go from the Go proxy, installed by make deps) as clients: their
events travel nginx → Kafka → ingest-worker → ClickHouse unchanged, and
their remote flag evaluation returns what the engine decides."""

import json
import os
import subprocess
import uuid

import pytest
import requests

from conftest import ST, wait_for

SDK_DIR = os.path.join(ST.REPO, "t", "sdk")
GO_CLIENT = os.path.join(ST.REPO, "build", "sdk-go", "posthog-go-client")


def run_client(argv):
    """Runs an SDK client program; its last stdout line is returned."""
    if not os.path.exists(argv[0]) and argv[0] != "node":
        pytest.fail(f"{argv[0]} missing: run make deps")
    out = subprocess.run(argv, cwd=SDK_DIR, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def ch_events(stack, prefix, where="distinct_id LIKE '{}-%'"):
    out = stack.ch_nodes[0].query(
        "SELECT distinct_id, event, properties FROM events FINAL "
        f"WHERE {where.format(prefix)} FORMAT JSONEachRow")
    return [json.loads(line) for line in out.splitlines() if line]


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_posthog_python_sdk(stack, gzip):
    import posthog  # installed into build/venv by make deps
    prefix = f"py-{uuid.uuid4().hex[:8]}"
    errors = []
    client = posthog.Posthog(stack.token, host=stack.nginx.url, gzip=gzip,
                             sync_mode=True, max_retries=0, timeout=30,
                             on_error=lambda e, batch: errors.append(e))
    for i in range(5):
        client.capture("python sdk event", distinct_id=f"{prefix}-{i}",
                       properties={"i": i, "gzip": gzip})
    client.flush()
    client.shutdown()
    assert not errors

    rows = wait_for(lambda: len(ch_events(stack, prefix)) == 5
                    and ch_events(stack, prefix), timeout=60,
                    what="the SDK's events in ClickHouse")
    by_id = {r["distinct_id"]: r for r in rows}
    for i in range(5):
        row = by_id[f"{prefix}-{i}"]
        assert row["event"] == "python sdk event"
        props = json.loads(row["properties"])
        assert props["i"] == i
        assert props["$lib"] == "posthog-python"


@pytest.mark.parametrize("mode", ["plain", "gzip"])
def test_posthog_node_sdk(stack, mode):
    script = os.path.join(SDK_DIR, "node_capture.mjs")
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "posthog-node")):
        pytest.fail("posthog-node missing: run make deps")
    prefix = f"node-{uuid.uuid4().hex[:8]}"
    run_client(["node", script, stack.nginx.url, stack.token, prefix, "7",
                mode])

    rows = wait_for(lambda: len(ch_events(stack, prefix)) == 7
                    and ch_events(stack, prefix), timeout=60,
                    what="the SDK's events in ClickHouse")
    for row in rows:
        props = json.loads(row["properties"])
        assert row["event"] == "node sdk event"
        assert props["$lib"] == "posthog-node"
        assert props["nested"] == {"list": [1, "two", None]}


def test_posthog_go_sdk(stack):
    prefix = f"go-{uuid.uuid4().hex[:8]}"
    run_client([GO_CLIENT, "capture", stack.nginx.url, stack.token, prefix,
                "25"])

    rows = wait_for(lambda: len(ch_events(stack, prefix)) == 25
                    and ch_events(stack, prefix), timeout=60,
                    what="the SDK's events in ClickHouse")
    assert sorted(json.loads(r["properties"])["i"] for r in rows) \
        == list(range(25))
    for row in rows:
        props = json.loads(row["properties"])
        assert row["event"] == "go sdk event"
        assert props["$lib"] == "posthog-go"
        assert props["nested"] == {"list": [1, "two", None]}


# --- feature flags through the server SDKs (remote evaluation via /flags) -----

SDK_FLAGS = [
    {"key": "sdk-on", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "payloads": {"true": "{\"tier\":\"gold\"}"}}},
    {"key": "sdk-off", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 0}]}},
    {"key": "sdk-mv", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": [
            {"key": "control", "rollout_percentage": 50},
            {"key": "test", "rollout_percentage": 50}]},
        "payloads": {"control": "\"plain\"", "test": "{\"t\":1}"}}},
    {"key": "sdk-email", "filters": {"groups": [{
        "properties": [{"key": "email", "operator": "icontains",
                        "value": "@example.com", "type": "person"}],
        "rollout_percentage": 100}]}},
]
SDK_FLAG_KEYS = [f["key"] for f in SDK_FLAGS]
# sdk-email matches only when the request carries the person property
BY_EMAIL = pytest.mark.parametrize("email", ["a@example.com", None],
                                   ids=["matching", "no-email"])


@pytest.fixture(scope="module")
def sdk_flags(stack):
    """A team with SDK_FLAGS, created through the admin CLI."""
    import test_decide
    tid, token = stack.worker.team_create("sdk flags")
    test_decide.put_flags(stack, token, SDK_FLAGS)
    test_decide.wait_flag(stack, token, "sdk-email")
    return token


def engine_answer(stack, token, distinct_id, person_properties):
    """What edgehog's engine decides, asked over plain HTTP."""
    r = requests.post(stack.nginx.url + "/flags?v=2", timeout=10, json={
        "token": token, "distinct_id": distinct_id,
        "person_properties": person_properties})
    assert r.status_code == 200, r.text
    out = {}
    for key, f in r.json()["flags"].items():
        payload = f["metadata"]["payload"]
        out[key] = {"enabled": f["enabled"],
                    "value": (f["variant"] or True) if f["enabled"] else False,
                    "payload": json.loads(payload) if payload else None}
    return out


def check_sdk_answers(stack, token, did, props, got_evaluate, got_all):
    """The SDK's answers equal the engine's; returns the engine's."""
    want = engine_answer(stack, token, did, props)
    # absolute expectations first, so a wrong engine cannot pass by agreeing
    # with itself
    assert want["sdk-email"]["value"] is ("email" in props)
    assert want["sdk-on"] == {"enabled": True, "value": True,
                              "payload": {"tier": "gold"}}
    assert want["sdk-off"]["value"] is False
    assert want["sdk-mv"]["value"] in ("control", "test")
    for key in SDK_FLAG_KEYS:
        assert got_evaluate[key] == want[key], key
        assert got_all[key] == want[key]["value"], key
    return want


def check_flag_called_events(stack, did, want):
    """The SDK reports each flag it was asked about as $feature_flag_called;
    those events travel the capture path like any other."""
    def called():
        rows = ch_events(stack, did, "distinct_id = '{}' AND "
                         "event = '$feature_flag_called'")
        return len(rows) >= len(SDK_FLAG_KEYS) and rows
    rows = wait_for(called, timeout=60, what="$feature_flag_called events")
    seen = {}
    for row in rows:
        p = json.loads(row["properties"])
        seen[p["$feature_flag"]] = p["$feature_flag_response"]
    assert seen == {k: want[k]["value"] for k in SDK_FLAG_KEYS}


@BY_EMAIL
def test_posthog_python_sdk_flags(stack, sdk_flags, email):
    import posthog
    token = sdk_flags
    did = f"pyflags-{uuid.uuid4().hex[:8]}"
    props = {"email": email} if email else {}
    errors = []
    # the default 3 s flags timeout is a production latency budget; a
    # slow answer on a busy test machine would read as "no flags"
    client = posthog.Posthog(token, host=stack.nginx.url, sync_mode=True,
                             max_retries=0, timeout=30,
                             feature_flags_request_timeout_seconds=30,
                             on_error=lambda e, batch: errors.append(e))
    flags = client.evaluate_flags(did, person_properties=props)
    got = {k: {"enabled": flags.is_enabled(k),
               "value": flags.get_flag(k),
               "payload": flags.get_flag_payload(k)} for k in SDK_FLAG_KEYS}
    got_all = client.get_all_flags(did, person_properties=props)
    client.flush()
    client.shutdown()
    assert not errors

    want = check_sdk_answers(stack, token, did, props, got, got_all)

    check_flag_called_events(stack, did, want)


@BY_EMAIL
def test_posthog_node_sdk_flags(stack, sdk_flags, email):
    token = sdk_flags
    did = f"nodeflags-{uuid.uuid4().hex[:8]}"
    props = {"email": email} if email else {}
    got = json.loads(run_client(["node", os.path.join(SDK_DIR,
                                                      "node_flags.mjs"),
                                 stack.nginx.url, token, did,
                                 json.dumps(props), *SDK_FLAG_KEYS]))

    want = check_sdk_answers(stack, token, did, props, got["evaluate"],
                             got["all"])
    for key in SDK_FLAG_KEYS:
        assert got["legacy"][key] == {"value": want[key]["value"],
                                      "payload": want[key]["payload"]}, key


@BY_EMAIL
def test_posthog_go_sdk_flags(stack, sdk_flags, email):
    token = sdk_flags
    did = f"goflags-{uuid.uuid4().hex[:8]}"
    props = {"email": email} if email else {}
    got = json.loads(run_client([GO_CLIENT, "flags", stack.nginx.url, token,
                                 did, json.dumps(props), *SDK_FLAG_KEYS]))

    evaluate = {}
    for key, a in got["flags"].items():
        # posthog-go hands payloads over as the raw JSON text
        evaluate[key] = {"enabled": a["value"] is not False,
                         "value": a["value"],
                         "payload": a["payload"] and json.loads(a["payload"])}
    want = check_sdk_answers(stack, token, did, props, evaluate, got["all"])

    check_flag_called_events(stack, did, want)
