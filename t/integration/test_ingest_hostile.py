"""The worker is ClickHouse's gatekeeper: one row a Kafka table cannot
parse stops it for good (DESIGN.md "ClickHouse").  Hostile events and
person properties go through; later events and persons still arrive."""

import json
import uuid

import pytest

from conftest import wait_for

from ingest_helpers import Ingest, person_uuid, tag


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


HOSTILE = [
    {"nul": "a\u0000b", "ctl": "\u0001\u001f\x7f", "quote": "\"'\\\\"},
    {"lone": "\ud800x", "emoji": "\U0001f994", "rtl": "\u202e"},
    {"big": 2 ** 70, "neg": -2 ** 63, "float": 1e308, "tiny": 5e-324},
    {"nested": {"a": [1, {"b": None}], "c": []}, "": "empty key"},
    {"k\u0000ey": 1, "\\": "backslash key", "long": "x" * 100000},
]


def test_hostile_values_do_not_stop_clickhouse(stack, ing):
    t = tag()
    sent = []
    for i, p in enumerate(HOSTILE):
        d = f"{t}-h{i}"
        e = ing.send("hostile \U0001f994 event", d,
                     {**p, "$set": p, "$set_once": p}, wait=False)
        sent.append(e)
    # raw bytes that are not UTF-8 inside the data string and outside
    e = str(uuid.uuid4())
    data = ('{"event":"raw","distinct_id":"%s-raw","uuid":"%s",'
            '"properties":{"$set":{"bad":"\xff\xfe"}}}' % (t, e))
    outer = (b'{"uuid":"' + e.encode() + b'","distinct_id":"' + t.encode()
             + b'-raw\xc3\x28","ip":"127.0.0.1","now":"2024-01-01T10:00:00Z",'
             b'"token":"' + ing.token.encode() + b'","data":'
             + json.dumps(data).encode().replace(b"\\u00ff\\u00fe",
                                                 b"\xff\xfe") + b'}')
    ing.raw(outer, key=f"{ing.token}:{t}-raw".encode())
    sent.append(e)

    # a person holding an integer beyond 64 bits keeps it on update
    big = f"{t}-h2"
    if ing.persons(big):
        ing.send("after", big, {"$set": {"after": 1}})
        (_, p, _, _, _), = ing.persons(big)
        assert p["after"] == 1 and p["big"] == float(2 ** 70)
        assert p["nested"] if "nested" in p else True

    marker = f"{t}-marker"
    ev = ing.send("marker", marker, {"$set": {"ok": 1}})
    def accounted():
        emitted = [u for u in sent if ing.out.values(
            "clickhouse_events_json", uuid=u)]
        dlq = [u for u in sent if any(
            u.encode() in m["raw"]
            for m in ing.out.get("events_plugin_ingestion_dlq"))]
        return emitted if set(emitted) | set(dlq) == set(sent) else None

    # nothing is lost: every one is a row for ClickHouse (\u0000, lone
    # surrogates and bytes that are not UTF-8 are repaired, see
    # ingest_unicode.h), none in the DLQ; the output topics have several
    # partitions, so wait for all of them
    emitted = wait_for(accounted, timeout=30, what="every hostile event")
    assert len(emitted) == len(sent), stack.worker.log_tail(20)

    # everything the worker emitted parsed: the tables still move
    in_list = ",".join(f"toUUID('{u}')" for u in emitted + [ev["uuid"]])
    ing.ch_wait(f"SELECT count() AS n FROM events FINAL WHERE uuid IN "
                f"({in_list})",
                lambda r: int(r[0]["n"]) == len(emitted) + 1, timeout=90,
                what="hostile events and the marker in ClickHouse")
    pm = person_uuid(ing.team, marker)
    ing.ch_wait(f"SELECT count() AS n FROM person WHERE "
                f"id = toUUID('{pm}')", lambda r: int(r[0]["n"]) >= 1,
                timeout=90, what="the marker person in ClickHouse")
    ing.ch_wait(f"SELECT count() AS n FROM person_distinct_id2 WHERE "
                f"distinct_id = '{marker}'", lambda r: int(r[0]["n"]) >= 1,
                timeout=90, what="the marker distinct id in ClickHouse")
