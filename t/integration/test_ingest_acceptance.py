"""spec/ingestion.md §11: the acceptance cases of the ingest-worker,
against the session stack (real Kafka, Postgres, ClickHouse, Redis).
Messages go straight to events_plugin_ingestion so each case controls
now/timestamp/sent_at; every case uses its own distinct ids."""

import json
import time
import uuid

import pytest

from conftest import wait_for
from ingest_helpers import (Ingest, NOW, person_uuid, props, strip_creator,
                            tag)


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


def ids(*names):
    t = tag()
    return [f"{t}-{n}" for n in names]


def person_msgs(ing, pid):
    return ing.out.values("clickhouse_person", id=pid)


def wait_pdi_msgs(ing, distinct_id, n=1):
    # the output topics have several partitions: an event's arrival does
    # not mean the collector read the other topics' messages yet
    return wait_for(lambda: (lambda r: r if len(r) >= n else None)(
        ing.out.values("clickhouse_person_distinct_id",
                       distinct_id=distinct_id)), timeout=30,
        what=f"distinct id messages of {distinct_id}")


def wait_person_msgs(ing, pid, n):
    return wait_for(lambda: (lambda r: r if len(r) >= n else None)(
        person_msgs(ing, pid)), timeout=30, what=f"{n} person messages")


def test_ac01_new_anonymous_person(ing):
    anon, = ids("anon-1")
    pid = person_uuid(ing.team, anon)
    e1 = str(uuid.uuid4())
    ev = ing.send("$pageview", anon, ev_uuid=e1)

    (puuid, p, ident, ver, created), = ing.persons(anon)
    assert (puuid, p, ident, ver) == (pid, {"$creator_event_uuid": e1},
                                      False, 0)
    assert created.isoformat() == "2024-01-01T10:00:00+00:00"
    assert ing.pdis(anon) == {anon: (pid, 0)}

    msg, = wait_person_msgs(ing, pid, 1)
    assert msg == {"id": pid, "created_at": "2024-01-01 10:00:00",
                   "properties": json.dumps({"$creator_event_uuid": e1},
                                            separators=(",", ":")),
                   "team_id": ing.team, "is_identified": 0,
                   "is_deleted": 0, "version": 0,
                   **({"last_seen_at": msg["last_seen_at"]}
                      if "last_seen_at" in msg else {})}
    pdi, = wait_pdi_msgs(ing, anon)
    assert pdi == {"person_id": pid, "team_id": ing.team,
                   "distinct_id": anon, "version": 0, "is_deleted": 0}

    assert ev["uuid"] == e1 and ev["event"] == "$pageview"
    assert ev["timestamp"] == "2024-01-01 10:00:00.000"
    assert ev["person_id"] == pid
    assert ev["person_created_at"] == "2024-01-01 10:00:00"
    assert ev["person_mode"] == "full"
    assert props(ev["person_properties"]) == {"$creator_event_uuid": e1}
    m, = ing.out.get("clickhouse_events_json", uuid=e1)
    assert m["key"] == e1.encode()

    # and in ClickHouse, after the Kafka engine picked the rows up
    rows = ing.ch_wait(
        f"SELECT toString(id) AS sid, argMax(properties, version) AS p, "
        f"argMax(is_identified, version) AS i, max(version) AS v "
        f"FROM person WHERE team_id = {ing.team} AND id = toUUID('{pid}') "
        f"GROUP BY id HAVING max(is_deleted) = 0", lambda r: r,
        what="the person in ClickHouse")
    assert props(rows[0]["p"]) == {"$creator_event_uuid": e1}
    assert int(rows[0]["v"]) == 0
    rows = ing.ch_wait(
        f"SELECT toString(person_id) AS pid, toString(person_mode) AS person_mode FROM events FINAL "
        f"WHERE uuid = toUUID('{e1}')", lambda r: r,
        what="the event in ClickHouse")
    assert rows == [{"pid": pid, "person_mode": "full"}]
    rows = ing.ch_wait(
        f"SELECT toString(argMax(person_id, version)) AS pid FROM "
        f"person_distinct_id2 WHERE team_id = {ing.team} AND "
        f"distinct_id = '{anon}' GROUP BY distinct_id", lambda r: r,
        what="the distinct id in ClickHouse")
    assert rows == [{"pid": pid}]


def test_ac02_set_and_set_once_at_creation(ing):
    x, = ids("x-1")
    ev = ing.send("e", x, {"$set_once": {"a": 1, "b": 2},
                           "$set": {"b": 3, "c": 4}})
    (_, p, _, ver, _), = ing.persons(x)
    assert strip_creator(p) == {"a": 1, "b": 3, "c": 4}
    assert p["$creator_event_uuid"] == ev["uuid"]
    assert ver == 0
    (op, upd), = ing.q("SELECT p.properties_last_operation, "
                       "p.properties_last_updated_at FROM posthog_person p "
                       "JOIN posthog_persondistinctid d ON d.person_id = p.id "
                       "WHERE d.distinct_id = %s", x)
    assert op == {"a": "set_once", "b": "set", "c": "set"}
    assert set(upd.values()) == {"2024-01-01T10:00:00.000Z"}
    assert set(upd) >= {"a", "b", "c"}
    pp = props(ev["person_properties"])
    assert strip_creator(pp) == {"a": 1, "b": 3, "c": 4}
    assert "$creator_event_uuid" in pp


def test_ac03_set_once_keeps_set_overwrites(ing):
    x, = ids("x-1")
    ing.send("e", x, {"$set_once": {"a": 1, "b": 2}, "$set": {"b": 3, "c": 4}})
    ing.send("e", x, {"$set_once": {"a": 9, "d": 5}, "$set": {"c": 7}})
    (pid, p, _, ver, _), = ing.persons(x)
    assert strip_creator(p) == {"a": 1, "b": 3, "c": 7, "d": 5}
    assert ver == 1
    assert sorted(m["version"] for m in wait_person_msgs(ing, pid, 2)) \
        == [0, 1]

    ev = ing.send("e", x, {"$set": {"c": 7}})
    (_, _, _, ver, _), = ing.persons(x)
    assert ver == 1
    ing.settle()
    assert sorted(m["version"] for m in person_msgs(ing, pid)) == [0, 1]
    assert props(ev["person_properties"])["c"] == 7


def test_ac04_unset(ing):
    x, = ids("u")
    ing.send("e", x, {"$set": {"a": 1, "b": 2}})
    ing.send("e", x, {"$unset": ["a", "zz"]})
    (_, p, _, ver, _), = ing.persons(x)
    assert (strip_creator(p), ver) == ({"b": 2}, 1)
    ing.send("e", x, {"$unset": {"b": None}})
    (_, p, _, ver, _), = ing.persons(x)
    assert (strip_creator(p), ver) == ({}, 2)
    assert "$creator_event_uuid" in p
    # G3: $unset only removes keys the person had before the event
    ing.send("e", x, {"$set": {"n": 1}, "$unset": ["n"]})
    (_, p, _, ver, _), = ing.persons(x)
    assert (strip_creator(p), ver) == ({"n": 1}, 3)


def test_ac05_top_level_set_merges_into_properties(ing):
    x, = ids("x-2")
    ev = ing.send("e", x, {"$set": {"k": "prop", "j": 1}},
                  **{"$set": {"k": "top"}})
    (_, p, _, _, _), = ing.persons(x)
    assert strip_creator(p) == {"k": "top", "j": 1}
    assert props(ev["properties"])["$set"] == {"k": "top", "j": 1}


def test_ac06_identify_only_anonymous_exists(ing):
    anon, user = ids("anon-1", "user-1")
    pa = person_uuid(ing.team, anon)
    e1 = ing.send("$pageview", anon)["uuid"]
    e2 = ing.send("$identify", user, {"$anon_distinct_id": anon,
                                      "$set": {"email": "u@x.io"}})
    rows = ing.persons(user)
    assert len(rows) == 1
    puuid, p, ident, ver, _ = rows[0]
    assert puuid == pa
    assert p == {"$creator_event_uuid": e1, "email": "u@x.io"}
    assert (ident, ver) == (True, 1)
    assert ing.pdis(anon, user) == {anon: (pa, 0), user: (pa, 0)}
    assert ing.personless(user) == [(True,)]
    assert e2["distinct_id"] == user and e2["person_id"] == pa

    pdi, = wait_pdi_msgs(ing, user)
    assert (pdi["person_id"], pdi["version"]) == (pa, 0)
    # person messages are unkeyed (several partitions): latest = max version
    last = max(wait_person_msgs(ing, pa, 2), key=lambda m: m["version"])
    assert (last["version"], last["is_identified"]) == (1, 1)

    ev = ing.send("$pageview", user)
    assert ev["person_id"] == pa
    assert ing.q("SELECT count(*) FROM posthog_person WHERE uuid = %s",
                 person_uuid(ing.team, user)) == [(0,)]


def test_ac07_identify_neither_exists(ing):
    user, anon = ids("user-2", "anon-2")
    pu = person_uuid(ing.team, user)
    ev = ing.send("$identify", user, {"$anon_distinct_id": anon,
                                      "$set": {"name": "N"}})
    (puuid, p, ident, ver, _), = ing.persons(user)
    assert (puuid, ident, ver) == (pu, True, 0)
    assert p == {"name": "N", "$creator_event_uuid": ev["uuid"]}
    assert ing.pdis(user, anon) == {user: (pu, 0), anon: (pu, 0)}
    assert ev["person_id"] == pu
    assert ing.personless(user) == [(True,)]
    assert ing.personless(anon) == [(True,)]


def test_ac07_g3_variant_personless_anon_is_primary(ing):
    user, anon = ids("user-2", "anon-2")
    pa = person_uuid(ing.team, anon)
    ing.send("$pageview", anon, {"$process_person_profile": False})
    ev = ing.send("$identify", user, {"$anon_distinct_id": anon})
    assert ev["person_id"] == pa
    assert ing.pdis(user, anon) == {user: (pa, 0), anon: (pa, 0)}


def _two_persons(ing, old, new):
    ing.send("e", old, {"$set": {"a": 1, "b": 2}},
             timestamp="2020-01-01T12:00:05Z")
    ing.send("e", new, {"$set": {"b": 3, "c": 4, "d": 5}},
             timestamp="2024-01-01T09:00:00Z")


def test_ac08_identify_merges_two_persons(ing):
    old, new = ids("old", "new")
    po, pn = person_uuid(ing.team, old), person_uuid(ing.team, new)
    _two_persons(ing, old, new)
    ev = ing.send("$identify", new, {"$anon_distinct_id": old,
                                     "$set": {"d": 6, "e": 7},
                                     "$set_once": {"a": 8, "f": 9}})
    assert ev["person_id"] == pn
    (puuid, p, ident, ver, created), = ing.persons(new)
    assert puuid == pn
    assert strip_creator(p) == {"a": 1, "b": 3, "c": 4, "d": 6, "e": 7,
                                "f": 9}
    assert (ident, ver) == (True, 1)
    assert created.isoformat() == "2020-01-01T12:00:05+00:00"
    assert ing.pdis(old, new) == {old: (pn, 1), new: (pn, 0)}
    assert ing.persons(uuid_=po) == []

    gone = max(wait_person_msgs(ing, po, 2), key=lambda m: m["version"])
    assert (gone["is_deleted"], gone["version"]) == (1, 100)
    last = max(wait_person_msgs(ing, pn, 2), key=lambda m: m["version"])
    assert (last["version"], last["is_deleted"]) == (1, 0)
    # unkeyed too: the collector may read them in either order
    moved = max(wait_pdi_msgs(ing, old, 2), key=lambda m: m["version"])
    assert (moved["person_id"], moved["version"]) == (pn, 1)

    live = ing.ch_wait(
        f"SELECT toString(id) AS sid FROM person WHERE team_id = {ing.team} "
        f"AND id IN (toUUID('{po}'), toUUID('{pn}')) GROUP BY id "
        f"HAVING max(is_deleted) = 0",
        lambda r: r and len(r) == 1 and ing.ch(
            f"SELECT 1 FROM person WHERE id = toUUID('{po}') "
            f"AND is_deleted = 1"), what="one live person")
    assert live == [{"sid": pn}]
    rows = ing.ch_wait(
        f"SELECT distinct_id, toString(argMax(person_id, version)) AS pid "
        f"FROM person_distinct_id2 WHERE team_id = {ing.team} AND "
        f"distinct_id IN ('{old}', '{new}') GROUP BY distinct_id "
        f"ORDER BY distinct_id",
        lambda r: len(r) == 2 and all(x["pid"] == pn for x in r),
        what="both distinct ids on the survivor")
    assert len(rows) == 2


def test_ac09_merge_refused_source_identified(ing):
    old, new, x = ids("old", "new", "x")
    po, pn = person_uuid(ing.team, old), person_uuid(ing.team, new)
    # `old` becomes identified by aliasing a fresh id to it
    ing.send("$create_alias", x, {"alias": old})
    ing.send("e", new)
    (_, _, ident, _, _), = ing.persons(old)
    assert ident is True
    ev = ing.send("$identify", new, {"$anon_distinct_id": old})
    assert ev["person_id"] == pn
    assert ing.persons(old)[0][0] == ing.persons(x)[0][0]
    (puuid, _, ident, ver, _), = ing.persons(new)
    assert (puuid, ident, ver) == (pn, True, 1)
    assert ing.pdis(old, new)[old][0] != pn
    w = ing.wait_warning("cannot_merge_already_identified", ev["uuid"])
    assert len(w) == 1
    assert w[0]["source"] == "plugin-server"
    assert w[0]["team_id"] == ing.team
    assert w[0]["details"]["sourcePersonDistinctId"] == old
    assert w[0]["details"]["targetPersonDistinctId"] == new
    assert po


def test_ac10_merge_dangerously_ignores_identification(ing):
    old, new, x = ids("old", "new", "x")
    pn = person_uuid(ing.team, new)
    ing.send("$create_alias", x, {"alias": old})
    src = ing.persons(old)[0]
    ing.send("e", new)
    ev = ing.send("$merge_dangerously", new, {"alias": old})
    assert ev["person_id"] == pn
    pd = ing.pdis(old, new, x)
    assert {v[0] for v in pd.values()} == {pn}
    assert pd[old][1] == 1 and pd[x][1] == 1
    assert ing.persons(uuid_=src[0]) == []
    (_, _, ident, ver, _), = ing.persons(new)
    assert ident is True and ver == max(0, src[3]) + 1
    dels = [m for m in person_msgs(ing, src[0]) if m["is_deleted"] == 1]
    wait_for(lambda: [m for m in person_msgs(ing, src[0])
                      if m["is_deleted"] == 1], timeout=30, what="delete")
    dels = [m for m in person_msgs(ing, src[0]) if m["is_deleted"] == 1]
    assert dels[-1]["version"] == src[3] + 100


@pytest.mark.parametrize("bad", ["null", "Anonymous", "  ", '"undefined"',
                                 "NaN", "0"])
def test_ac11_illegal_ids(ing, bad):
    user, = ids("user-1")
    ing.send("e", user)
    ev = ing.send("$identify", user, {"$anon_distinct_id": bad})
    assert ing.pdis(bad) == {}
    (_, _, ident, _, _), = ing.persons(user)
    assert ident is False
    w = ing.wait_warning("cannot_merge_with_illegal_distinct_id", ev["uuid"])
    assert len(w) == 1
    assert w[0]["details"]["illegalDistinctId"] == bad


@pytest.mark.parametrize("ok", ["Nan", "nan"])
def test_ac11_legal_lookalikes(ing, ok):
    user, = ids("user-1")
    other = f"{ok}"
    ing.send("e", user)
    before = ing.pdis(other)
    ing.send("$identify", user, {"$anon_distinct_id": other})
    if not before:
        assert ing.pdis(other)[other][0] == person_uuid(ing.team, user)
    else:
        # "Nan" is a shared id across runs of this test: it was added once
        assert other in ing.pdis(other)


def test_ac11_create_alias_illegal(ing):
    user, = ids("user-1")
    ing.send("e", user)
    ev = ing.send("$create_alias", user, {"alias": "null"})
    (_, _, ident, _, _), = ing.persons(user)
    assert ident is False
    assert ing.wait_warning("cannot_merge_with_illegal_distinct_id",
                            ev["uuid"])


def test_ac12_identify_with_itself(ing):
    anon, = ids("anon-1")
    ing.send("e", anon)
    n = len(ing.out.values("clickhouse_ingestion_warnings"))
    ev = ing.send("$identify", anon, {"$anon_distinct_id": anon})
    (_, _, ident, ver, _), = ing.persons(anon)
    assert (ident, ver) == (False, 0)
    ing.settle()
    assert not [w for w in ing.out.values("clickhouse_ingestion_warnings")[n:]
                if ev["uuid"] in w["details"]]


def test_ac13_alias_chain(ing):
    a, b, c = ids("A", "B", "C")
    pa = person_uuid(ing.team, a)
    e1 = ing.send("$pageview", a)
    e2 = ing.send("$create_alias", b, {"alias": a})
    assert ing.pdis(b) == {b: (pa, 0)}
    (_, _, ident, ver, _), = ing.persons(a)
    assert (ident, ver) == (True, 1)
    e3 = ing.send("$create_alias", c, {"alias": b})
    assert ing.pdis(a, b, c) == {a: (pa, 0), b: (pa, 0), c: (pa, 0)}
    (_, _, ident, ver, _), = ing.persons(a)
    assert (ident, ver) == (True, 1)
    assert {e["person_id"] for e in (e1, e2, e3)} == {pa}


def test_ac14_alias_merge_property_precedence(ing):
    old, new = ids("old", "new")
    pn = person_uuid(ing.team, new)
    ing.send("e", new, {"$set": {"key_on_both": "new value both",
                                 "key_on_new": "new value"}})
    ing.send("e", old, {"$set": {"key_on_both": "old value both",
                                 "key_on_old": "old value"}})
    ing.send("$create_alias", new, {"alias": old})
    (puuid, p, _, _, _), = ing.persons(old)
    assert puuid == pn
    assert strip_creator(p) == {"key_on_both": "new value both",
                                "key_on_new": "new value",
                                "key_on_old": "old value"}
    assert set(ing.pdis(old, new)) == {old, new}


def test_ac15_personless_no_person(ing):
    pl, = ids("pl-1")
    ev = ing.send("e", pl, {"$process_person_profile": False,
                            "$set": {"x": 1}, "$group_0": "g"})
    assert ing.persons(pl) == []
    assert ing.personless(pl) == [(False,)]
    assert ev["person_id"] == person_uuid(ing.team, pl)
    assert ev["person_properties"] == "{}"
    assert ev["person_created_at"] == "1970-01-01 00:00:05"
    assert ev["person_mode"] == "propertyless"
    p = props(ev["properties"])
    assert p["$process_person_profile"] is False
    assert "$set" not in p and "$group_0" not in p
    assert ing.out.values("clickhouse_person_distinct_id",
                          distinct_id=pl) == []


def test_ac16_personless_existing_person_force_upgrade(ing):
    user, = ids("user-1")
    ing.send("e", user, {"$set": {"email": "u@x.io"}},
             timestamp="2024-01-01T08:00:00Z")
    pu = person_uuid(ing.team, user)
    before = ing.persons(user)
    ev = ing.send("e", user, {"$process_person_profile": False})
    assert ev["person_id"] == pu
    assert ev["person_properties"] == "{}"
    assert ev["person_mode"] == "force_upgrade"
    ev = ing.send("e", user, {"$process_person_profile": False},
                  timestamp="2024-01-01T08:00:30Z")
    assert ev["person_mode"] == "propertyless"
    assert ing.persons(user) == before


def test_ac17_personless_identify_and_invalid_flag(ing):
    user, anon, x = ids("user", "anon", "x")
    e = ing.send("$identify", user, {"$process_person_profile": False,
                                     "$anon_distinct_id": anon}, wait=False)
    ing.wait_warning("invalid_event_when_process_person_profile_is_false", e)
    assert ing.persons(user) == [] and ing.persons(anon) == []
    assert ing.out.values("clickhouse_events_json", uuid=e) == []

    ev = ing.send("$pageview", x, {"$process_person_profile": "no"})
    assert ev["person_mode"] == "full"
    assert len(ing.persons(x)) == 1
    # debounced: at most one per team per hour, so maybe sent earlier
    wait_for(lambda: ing.warnings("invalid_process_person_profile"),
             timeout=30, what="invalid_process_person_profile")


def test_ac18_timestamps(ing):
    a, b, c, d = ids("ts-a", "ts-b", "ts-c", "ts-d")
    ev = ing.send("e", a, timestamp="2021-10-30T03:02:00.000Z",
                  now="2021-10-29T01:44:00.000Z",
                  sent_at="2021-10-30T03:12:00.000Z")
    assert ev["timestamp"] == "2021-10-29 01:34:00.000"
    (_, _, _, _, created), = ing.persons(a)
    assert created.isoformat() == "2021-10-29T01:34:00+00:00"
    ev = ing.send("e", b, timestamp=None, offset=6000,
                  now="2021-10-29T01:44:00.000Z")
    assert ev["timestamp"] == "2021-10-29 01:43:54.000"
    ev = ing.send("e", c, timestamp="2021-10-29T02:30Z",
                  sent_at="2021-10-28T01:00Z", now="2021-10-29T01:00Z")
    assert ev["timestamp"] == "2021-10-29 01:00:00.000"
    # debounced per team and type: assert the first one's shape only
    w = wait_for(lambda: ing.warnings("event_timestamp_in_future"),
                 timeout=30, what="event_timestamp_in_future")
    assert w and w[0]["details"]["result"].startswith("20")
    if w[-1]["details"]["eventUuid"] == ev["uuid"]:
        assert w[-1]["details"]["result"] == "2021-10-30T02:30:00.000Z"
    ev = ing.send("e", d, outer_timestamp="2021-10-29T01:34:00Z",
                  timestamp="2021-10-30T03:02:00.000Z",
                  sent_at="2021-10-30T03:12:00.000Z",
                  now="2021-10-29T01:44:00.000Z")
    assert ev["timestamp"] == "2021-10-29 01:34:00.000"


def test_ac19_invalid_timestamp_and_sent_at(ing):
    a, b = ids("ts-a", "ts-b")
    t0 = time.time()
    ev = ing.send("e", a, timestamp="notISO")
    t1 = time.time()
    got = time.mktime(time.strptime(ev["timestamp"][:19],
                                    "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert t0 - 2 <= got <= t1 + 2
    w = wait_for(lambda: ing.warnings("ignored_invalid_timestamp"),
                 timeout=30, what="ignored_invalid_timestamp")
    assert w
    mine = [x for x in w if x["details"]["eventUuid"] == ev["uuid"]]
    if mine:
        assert mine[0]["details"]["field"] == "timestamp"
        assert mine[0]["details"]["value"] == "notISO"
    ev = ing.send("e", b, timestamp="2021-10-31T00:44Z", sent_at="invalid",
                  now="2021-10-30T01:44:00.000Z")
    assert ev["timestamp"] == "2021-10-31 00:44:00.000"


def test_ac20_duplicate_delivery(ing):
    x, = ids("x-1")
    ing.send("e", x, {"$set_once": {"a": 1, "b": 2}, "$set": {"b": 3, "c": 4}})
    e = str(uuid.uuid4())
    for _ in range(2):
        ing.send("e", x, {"$set_once": {"a": 9, "d": 5}, "$set": {"c": 7}},
                 ev_uuid=e)
    wait_for(lambda: len(ing.out.values("clickhouse_events_json",
                                        uuid=e)) == 2, timeout=30,
             what="two copies")
    (pid, p, _, ver, _), = ing.persons(x)
    assert ver == 1
    # the person messages are on other partitions than the events: all
    # of them read, so that none is missing and no third version hides
    ing.settle()
    assert {m["version"] for m in person_msgs(ing, pid)} == {0, 1}
    ing.ch_wait(f"SELECT count() AS n FROM events FINAL WHERE "
                f"uuid = toUUID('{e}')",
                lambda r: int(r[0]["n"]) == 1, what="one row under FINAL")


def test_ac21_bad_input(ing):
    x, = ids("x")
    # (a) unknown token: dropped
    e = ing.send("e", x, token="phc_no_such_token_" + tag(), wait=False)
    # (b) data not JSON: original bytes and key to the DLQ
    raw = json.dumps({"uuid": str(uuid.uuid4()), "distinct_id": x,
                      "data": "{not json", "now": NOW,
                      "token": ing.token}).encode()
    key = f"{ing.token}:{x}".encode()
    ing.raw(raw, key=key)
    dlq = wait_for(lambda: [m for m in ing.out.get(
        "events_plugin_ingestion_dlq") if m["raw"] == raw], timeout=30,
        what="the DLQ copy")
    assert dlq[0]["key"] == key
    # (c) invalid uuid: never an event row
    bad = ing.send("e", x, ev_uuid="not-a-uuid", wait=False)
    # (d) event names
    ev = ing.send({"event name": "as object"}, x)
    assert ev["event"] == '{"event name":"as object"}'
    ev = ing.send("n" * 300, x)
    assert ev["event"] == "n" * 200
    assert ing.out.values("clickhouse_events_json", uuid=e) == []
    assert ing.out.values("clickhouse_events_json", uuid=bad) == []
    assert ing.out.values("clickhouse_events_json", distinct_id=x) \
        and all(v["event"] in ('{"event name":"as object"}', "n" * 200)
                for v in ing.out.values("clickhouse_events_json",
                                        distinct_id=x))


# AC-22 is in test_ingest_overflow.py, AC-23 in test_ingest_faults.py
