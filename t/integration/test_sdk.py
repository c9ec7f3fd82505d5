"""Real PostHog SDKs (posthog-python from PyPI, posthog-node from npm,
installed by make deps) as clients: their events travel nginx → Kafka →
ingest-worker → ClickHouse unchanged."""

import json
import os
import subprocess
import uuid

import pytest

from conftest import ST, wait_for

SDK_DIR = os.path.join(ST.REPO, "t", "sdk")


def ch_events(stack, prefix):
    out = stack.ch_nodes[0].query(
        "SELECT distinct_id, event, properties FROM events FINAL "
        f"WHERE distinct_id LIKE '{prefix}-%' FORMAT JSONEachRow")
    return [json.loads(line) for line in out.splitlines() if line]


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_posthog_python_sdk(stack, gzip):
    import posthog  # installed into build/venv by make deps
    prefix = f"py-{uuid.uuid4().hex[:8]}"
    errors = []
    client = posthog.Posthog(stack.token, host=stack.nginx.url, gzip=gzip,
                             sync_mode=True, max_retries=0,
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
    out = subprocess.run(["node", script, stack.nginx.url, stack.token,
                          prefix, "7", mode], cwd=SDK_DIR,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr

    rows = wait_for(lambda: len(ch_events(stack, prefix)) == 7
                    and ch_events(stack, prefix), timeout=60,
                    what="the SDK's events in ClickHouse")
    for row in rows:
        props = json.loads(row["properties"])
        assert row["event"] == "node sdk event"
        assert props["$lib"] == "posthog-node"
        assert props["nested"] == {"list": [1, "two", None]}
