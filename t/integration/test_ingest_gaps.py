"""Spec gaps of the worker (spec/ingestion.md): lone surrogates and
\\u0000 kept as the spec says instead of the DLQ (§1.3, §3.7, §4), team
settings re-read after a TTL (§1.4), message_size_too_large (§4.1, §7),
and trimming of a person stored over the size limit (§3.4)."""

import base64
import json
import os
import uuid

import pytest

from conftest import wait_for
from ingest_helpers import Ingest, NOW, props, tag


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


def raw_event(ing, token, outer_distinct_id, data_text, ev_uuid):
    """a capture message built by hand, so escapes reach Kafka as typed"""
    outer = ('{"uuid":"%s","distinct_id":"%s","ip":"127.0.0.1",'
             '"now":"%s","token":"%s","data":%s}'
             % (ev_uuid, outer_distinct_id, NOW, token,
                json.dumps(data_text)))
    ing.raw(outer.encode(), key=f"{token}:x".encode())


def test_lone_surrogates_and_nul_keys_are_kept(ing):
    t = tag()
    e = str(uuid.uuid4())
    # inner: a lone high surrogate in the name, \u0000 in a key, a lone
    # low surrogate before a proper pair; outer: a lone one in distinct_id
    data = ('{"event":"ev\\ud800-%s","uuid":"%s","properties":'
            '{"k\\u0000":"\\udc00\\ud83d\\ude00","$set":{"s\\u0000":1}}}'
            % (t, e))
    raw_event(ing, ing.token, "d-%s\\udfff" % t, data, e)
    ev = ing.out.event(e)
    assert ev["event"] == "ev\\ud800-" + t
    assert ev["distinct_id"] == "d-%s\\udfff" % t
    p = props(ev["properties"])
    assert p["k\ufffd"] == "\\udc00\U0001f600"
    assert props(ev["person_properties"])["s\ufffd"] == 1
    ing.settle()
    assert not [m for m in ing.out.get("events_plugin_ingestion_dlq")
                if e.encode() in m["raw"]]
    # ClickHouse took the row (one bad row would stop its Kafka table)
    ing.ch_wait(f"SELECT distinct_id FROM events WHERE uuid = toUUID('{e}')",
                lambda r: r and r[0]["distinct_id"] == "d-%s\\udfff" % t,
                timeout=90, what="the event in ClickHouse")


def test_team_settings_change_reaches_the_worker(ing, stack):
    tid, token = stack.worker.team_create("settings " + tag())
    did = tag()
    ev = ing.send("e", did, token=token)
    assert props(ev["properties"])["$ip"] == "127.0.0.1"
    ing.q("UPDATE posthog_team SET anonymize_ips = true WHERE id = %s", tid)

    # team_refresh_s (2 s in the test config): a later event sees it
    def anonymized():
        ev = ing.send("e", did, token=token)
        return "$ip" not in props(ev["properties"])
    wait_for(anonymized, timeout=30, what="anonymize_ips applied",
             interval=0.5)


def test_message_size_too_large_drops_with_warning(ing, stack):
    tid, token = stack.worker.team_create("size " + tag())
    did = tag()
    # $set lands in properties and in person_properties: a row > 1 MB,
    # while the person itself stays under the Postgres limit
    blob = base64.b64encode(os.urandom(390000)).decode()
    e = ing.send("big", did, {"$set": {"blob": blob}}, token=token,
                 wait=False)
    w, = ing.wait_warning("message_size_too_large", e)
    assert w["team_id"] == tid
    assert w["details"] == {"eventUuid": e, "distinctId": did}
    # the batch was committed: later events flow, nothing else of it
    after = ing.send("after", did, token=token)
    assert after["event"] == "after"
    ing.settle()
    assert ing.out.values("clickhouse_events_json", uuid=e) == []
    assert not [m for m in ing.out.get("events_plugin_ingestion_dlq")
                if e.encode() in m["raw"]]


def test_person_stored_over_the_limit_is_trimmed(ing, stack):
    tid, token = stack.worker.team_create("trim " + tag())
    did = tag()
    ing.send("e", did, {"$set": {"a": 1, "email": "x@y.io"}}, token=token)
    (pid, version), = ing.q(
        "SELECT p.id, p.version FROM posthog_person p JOIN "
        "posthog_persondistinctid d ON d.person_id = p.id WHERE "
        "d.team_id = %s AND d.distinct_id = %s", tid, did)

    # a row written before the NOT VALID constraint existed, by a writer
    # that bumps the version as every person write does (the worker's
    # cached copy is then stale and re-read)
    b1 = base64.b64encode(os.urandom(300000)).decode()
    b2 = base64.b64encode(os.urandom(300000)).decode()
    ing.q("ALTER TABLE posthog_person DROP CONSTRAINT check_properties_size")
    try:
        ing.q("UPDATE posthog_person SET properties = properties || "
              "jsonb_build_object('big1', %s::text, 'big2', %s::text), "
              "version = version + 1 WHERE id = %s", b1, b2, pid)
        version += 1
    finally:
        ing.q("ALTER TABLE posthog_person ADD CONSTRAINT "
              "check_properties_size CHECK (pg_column_size(properties) "
              "<= 655360) NOT VALID")
    (size,), = ing.q("SELECT pg_column_size(properties) FROM posthog_person "
                     "WHERE id = %s", pid)
    assert size > 655360

    ev = ing.send("e", did, {"$set": {"plan": "pro"}}, token=token)
    (p, v), = ing.q("SELECT properties, version FROM posthog_person "
                    "WHERE id = %s", pid)
    # sorted order: "a", then "big1" brings it under 512 KiB; the
    # protected and the event's own keys stay
    assert set(p) == {"$creator_event_uuid", "email", "big2", "plan"}
    assert p["plan"] == "pro" and p["big2"] == b2
    assert v == version + 1
    assert props(ev["person_properties"])["plan"] == "pro"
    assert "big1" not in props(ev["person_properties"])


def test_team_drops_events_older_than_its_threshold(ing, stack):
    """§1.4 G3: drop_events_older_than_seconds drops old events with the
    debounced warning event_dropped_too_old; recent ones are kept."""
    import datetime
    tid, token = stack.worker.team_create("drop-old " + tag())
    ing.q("UPDATE posthog_team SET drop_events_older_than_seconds = 3600 "
          "WHERE id = %s", tid)
    did, did_old = tag(), tag() + "-old"
    old = ing.send("old", did_old, token=token, outer_timestamp=NOW,
                   wait=False)
    w, = ing.wait_warning("event_dropped_too_old", old)
    assert w["team_id"] == tid
    d = w["details"]
    assert (d["event"], d["distinctId"], d["dropThresholdSeconds"]) == (
        "old", did_old, 3600)
    assert d["eventTimestamp"] == "2024-01-01T10:00:00.000Z"
    assert d["ageInSeconds"] > 3600

    now = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    fresh = ing.send("fresh", did, token=token, now=now, outer_timestamp=now)
    assert fresh["event"] == "fresh"
    ing.settle()
    assert ing.out.values("clickhouse_events_json", uuid=old) == []
    # dropped before person processing: only the fresh event's person
    assert ing.q("SELECT distinct_id FROM posthog_persondistinctid WHERE "
                 "team_id = %s", tid) == [(did,)]
