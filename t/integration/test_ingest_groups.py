"""Groups through ingestion (spec/ingestion.md §3.9): a $groupidentify
captured over HTTP upserts posthog_group (type index from
posthog_grouptypemapping, created on first sight), produces
clickhouse_groups, and writes the group entry ngx_decide_module reads,
so a group flag matches on properties that only ingestion knows."""

import json
import uuid

import pytest
import requests

from conftest import wait_for
from ingest_helpers import Ingest, props, tag
from test_decide import flags_v2, put_flags


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


def capture(stack, token, event, distinct_id, properties):
    ev_uuid = str(uuid.uuid4())
    r = requests.post(stack.nginx.url + "/i/v0/e/", json={
        "api_key": token, "event": event, "distinct_id": distinct_id,
        "uuid": ev_uuid, "properties": properties}, timeout=30)
    assert r.status_code == 200, r.text
    return ev_uuid


def group_identify(stack, token, key, group_set, group_type="company"):
    return capture(stack, token, "$groupidentify", "admin-" + tag(), {
        "$group_type": group_type, "$group_key": key,
        "$group_set": group_set})


def test_groupidentify_feeds_group_flags(ing, stack):
    tid, token = stack.worker.team_create("groups-ingest " + tag())
    put_flags(stack, token, [
        {"key": "big-company", "filters": {
            "aggregation_group_type_index": 0,
            "groups": [{"properties": [
                {"key": "size", "type": "group", "group_type_index": 0,
                 "operator": "gt", "value": 100}],
                "rollout_percentage": 100}]}}])

    def flag(key):
        r = flags_v2(stack, token, {"groups": {"company": key}})
        f = r.json()["flags"].get("big-company") if r.ok else None
        return f

    # the flag is served, but nothing is known about the group yet
    wait_for(lambda: flag("acme") is not None, timeout=30,
             what="flag big-company in /flags")
    assert flag("acme")["enabled"] is False

    e1 = group_identify(stack, token, "acme", {"size": 500, "name": "Acme"})
    ev = ing.out.event(e1)
    assert ev["event"] == "$groupidentify"
    assert "$set" not in props(ev["properties"])

    # Postgres: the mapping and the group, PostHog's shapes
    assert ing.q("SELECT group_type, group_type_index FROM "
                 "posthog_grouptypemapping WHERE team_id = %s", tid) == [
        ("company", 0)]
    assert ing.q("SELECT group_properties, version FROM posthog_group "
                 "WHERE team_id = %s AND group_type_index = 0 AND "
                 "group_key = 'acme'", tid) == [
        ({"size": 500, "name": "Acme"}, 1)]

    # decide: the group flag matches on properties only ingestion knows
    got = wait_for(lambda: (lambda f: f if f and f["enabled"] else None)(
        flag("acme")), timeout=30, what="big-company enabled for acme")
    assert got["enabled"] is True
    assert flag("other")["enabled"] is False

    # Kafka and ClickHouse: one clickhouse_groups row per change
    rows = wait_for(lambda: [v for v in ing.out.values(
        "clickhouse_groups", team_id=tid, group_key="acme")], timeout=30,
        what="clickhouse_groups message")
    assert len(rows) == 1
    r = rows[0]
    assert r["group_type_index"] == 0 and r["version"] == 1
    assert json.loads(r["group_properties"]) == {"size": 500, "name": "Acme"}
    assert len(r["created_at"]) == len("2024-01-01 10:00:00.000")

    ch = ing.ch_wait(
        f"SELECT group_key, argMax(group_properties, _timestamp) AS p "
        f"FROM groups WHERE team_id = {tid} GROUP BY group_key",
        lambda x: len(x) == 1, timeout=90, what="the group in ClickHouse")
    assert ch[0]["group_key"] == "acme"
    assert json.loads(ch[0]["p"])["size"] == 500

    # $group_set changes a key: version 2, the flag follows
    e2 = group_identify(stack, token, "acme", {"size": 5})
    ing.out.event(e2)
    assert ing.q("SELECT group_properties, version FROM posthog_group "
                 "WHERE team_id = %s AND group_key = 'acme'", tid) == [
        ({"size": 5, "name": "Acme"}, 2)]
    wait_for(lambda: flag("acme")["enabled"] is False, timeout=30,
             what="big-company disabled for acme")

    # the same $group_set again changes nothing: no version, no row
    e3 = group_identify(stack, token, "acme", {"size": 5})
    ing.out.event(e3)
    ing.settle()
    assert ing.q("SELECT version FROM posthog_group WHERE team_id = %s",
                 tid) == [(2,)]
    assert len(ing.out.values("clickhouse_groups", team_id=tid)) == 2


def test_groups_become_group_n_properties(ing, stack):
    """$groups {type: key} adds $group_<index> with person processing
    (addGroupProperties); personless events carry no $group_N."""
    tid, token = stack.worker.team_create("groups-props " + tag())
    e = capture(stack, token, "$pageview", "u-" + tag(),
                {"$groups": {"company": "acme", "project": 42}})
    p = props(ing.out.event(e)["properties"])
    mapping = dict(ing.q("SELECT group_type, group_type_index FROM "
                         "posthog_grouptypemapping WHERE team_id = %s", tid))
    assert sorted(mapping.values()) == [0, 1]
    assert p["$group_%d" % mapping["company"]] == "acme"
    assert p["$group_%d" % mapping["project"]] == 42
    assert p["$groups"] == {"company": "acme", "project": 42}

    e = capture(stack, token, "$pageview", "u-" + tag(),
                {"$groups": {"company": "acme"},
                 "$process_person_profile": False})
    p = props(ing.out.event(e)["properties"])
    assert not [k for k in p if k.startswith("$group_")]


def test_group_types_get_indexes_and_a_limit(ing, stack):
    """A second type gets index 1; a sixth type has no room and is
    ignored (PostHog's limit of 5), the event still lands; events
    without $group_key change nothing."""
    tid, token = stack.worker.team_create("groups-types " + tag())
    evs = [group_identify(stack, token, f"k{i}", {"i": i},
                          group_type=f"type{i}") for i in range(6)]
    evs.append(capture(stack, token, "$groupidentify", "x",
                       {"$group_type": "type0", "$group_set": {"a": 1}}))
    for e in evs:
        ing.out.event(e)
    mapping = dict(ing.q("SELECT group_type, group_type_index FROM "
                         "posthog_grouptypemapping WHERE team_id = %s", tid))
    assert sorted(mapping.values()) == [0, 1, 2, 3, 4]
    assert len(mapping) == 5
    groups = ing.q("SELECT group_type_index, group_key, group_properties "
                   "FROM posthog_group WHERE team_id = %s ORDER BY 1", tid)
    assert len(groups) == 5
    for gti, key, p in groups:
        assert key == "k%d" % p["i"]
        assert mapping["type%d" % p["i"]] == gti
