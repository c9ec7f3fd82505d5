"""Every request of fixtures/capture/requests_dump.jsonl replayed over HTTP
produces the Kafka messages Django produced, compared by the rules of
spec/capture.md §11.1 (data keeps every client field per DESIGN.md, so the
keys capture-rs drops are removed from both sides)."""

import base64
import json
import os
from datetime import datetime

import pytest

from capture_kit import Capture
from conftest import FIXTURES

DUMP = os.path.join(FIXTURES, "capture", "requests_dump.jsonl")
DROPPED = ("type", "library", "library_version")


def cases():
    with open(DUMP) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            yield pytest.param(n, json.loads(line), id=f"line{n}")


def instant(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def cap(stack, tmp_path_factory):
    c = Capture(stack, tmp_path_factory.mktemp("cap_replay"))
    yield c
    bad = c.bad_log_lines()
    c.close()
    assert not bad, bad


@pytest.mark.parametrize("n,case", list(cases()))
def test_replay_fixture_line(cap, n, case):
    headers = {"Content-Type": case["content_type"]}
    if case["content_encoding"]:
        headers["Content-Encoding"] = case["content_encoding"]
    r, msgs = cap.send("POST", case["path"], base64.b64decode(case["body"]),
                       headers=headers, now=case["now"],
                       xff=case["ip"] or None)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "Ok"}
    expected = case["output"]
    assert len(msgs) == len(expected)
    topic = "historical" if case.get("historical_migration") else "main"
    for got, want in zip(msgs, expected):
        v = got["value"]
        assert got["kind"] == topic
        for field in ("uuid", "distinct_id", "ip", "token"):
            assert v[field] == want[field], field
        assert instant(v["now"]) == instant(want["now"])
        if want["sent_at"] == "":
            assert "sent_at" not in v
        else:
            d = instant(v["sent_at"]) - instant(want["sent_at"])
            assert abs(d.total_seconds()) < 0.001
        want_data = json.loads(want["data"])
        got_data = dict(got["data"])
        for k in DROPPED:
            want_data.pop(k, None)
            got_data.pop(k, None)
        assert got_data == want_data
        assert v["event"] == got_data["event"]
        assert got["key"] == f"{v['token']}:{v['distinct_id']}"
        assert list(v)[:5] == ["uuid", "distinct_id", "ip", "data", "now"]
