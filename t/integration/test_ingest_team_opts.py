"""spec/ingestion.md §1.4 and §3.4: the team's person_processing_opt_out,
capture's force_disable_person_processing header, and the person
properties size limit (check_properties_size, warning
person_properties_size_violation, event to the DLQ)."""

import base64
import json
import os
import uuid

import pytest

from conftest import wait_for
from ingest_helpers import Ingest, NOW, person_uuid, props, tag


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


def produce(ing, token, distinct_id, properties, headers=None):
    ev_uuid = str(uuid.uuid4())
    data = {"event": "e", "distinct_id": distinct_id, "uuid": ev_uuid,
            "timestamp": NOW, "properties": properties}
    outer = {"uuid": ev_uuid, "distinct_id": distinct_id, "ip": "127.0.0.1",
             "data": json.dumps(data), "now": NOW, "token": token}
    ing.producer.produce("events_plugin_ingestion",
                         value=json.dumps(outer).encode(),
                         key=f"{token}:{distinct_id}".encode(),
                         headers=headers or [])
    ing.producer.flush(10)
    return ev_uuid


def persons_of(ing, team_id, distinct_id):
    return ing.q("SELECT p.properties FROM posthog_person p JOIN "
                 "posthog_persondistinctid d ON d.person_id = p.id "
                 "WHERE d.team_id = %s AND d.distinct_id = %s",
                 team_id, distinct_id)


def test_team_person_processing_opt_out(ing, stack):
    team_id, token = stack.worker.team_create("opt-out " + tag())
    ing.q("UPDATE posthog_team SET person_processing_opt_out = true "
          "WHERE id = %s", team_id)
    did = tag() + "-optout"
    e = produce(ing, token, did, {"$set": {"plan": "pro"}})
    ev = ing.out.event(e)
    assert ev["team_id"] == team_id
    assert ev["person_mode"] == "propertyless"
    assert ev["person_id"] == person_uuid(team_id, did)
    assert props(ev["properties"])["$process_person_profile"] is False
    assert persons_of(ing, team_id, did) == []


def test_force_disable_person_processing_header(ing):
    did = tag() + "-forced"
    e = produce(ing, ing.token, did, {"$set": {"plan": "pro"}},
                headers=[("force_disable_person_processing", b"true")])
    ev = ing.out.event(e)
    assert ev["person_mode"] == "propertyless"
    assert props(ev["properties"])["$process_person_profile"] is False
    assert ing.persons(did) == []
    assert ing.personless(did) == [(False,)]
    # any other value leaves person processing on
    did2 = tag() + "-not-forced"
    e = produce(ing, ing.token, did2, {"$set": {"plan": "pro"}},
                headers=[("force_disable_person_processing", b"false")])
    ev = ing.out.event(e)
    assert ev["person_mode"] == "full"
    assert len(ing.persons(did2)) == 1


def test_person_properties_size_violation(ing):
    did = tag() + "-big"
    ing.send("e", did, {"$set": {"plan": "free"}})
    (_, before, _, version, _), = ing.persons(did)
    # random base64: Postgres cannot compress it under 640 KiB
    big = base64.b64encode(os.urandom(540000)).decode()
    e = ing.send("e", did, {"$set": {"blob": big}}, wait=False)
    wait_for(lambda: [m for m in ing.out.get("events_plugin_ingestion_dlq")
                      if m["value"] and m["value"].get("uuid") == e],
             timeout=60, what="event in the DLQ")
    w, = ing.wait_warning("person_properties_size_violation", e)
    assert w["team_id"] == ing.team
    assert w["details"]["distinctId"] == did
    assert w["details"]["teamId"] == ing.team
    assert ing.out.values("clickhouse_events_json", uuid=e) == []
    (_, after, _, version2, _), = ing.persons(did)
    assert (after, version2) == (before, version)
