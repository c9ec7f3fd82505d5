"""Hash-key overrides follow persons (spec/ingestion.md §3.5 step 3,
spec/decide.md 3.9): a merge moves the merged-away person's overrides to
the survivor in Postgres and in Redis (the survivor's own win), and a
wiped Redis (FLUSHALL) is refilled from Postgres by the sync thread:
snapshots, overrides, group and person entries."""

import hashlib
import json

import pytest

from conftest import wait_for
from ingest_helpers import Ingest, person_uuid, tag
from test_decide import flags_v2, put_flags, redis_client, wait_flag


def hash01(flag, ident):
    h = hashlib.sha1(f"{flag}.{ident}".encode()).hexdigest()[:15]
    return int(h, 16) / 0xFFFFFFFFFFFFFFF


def pick(flag, pred):
    """a hash key for which pred(hash) holds, deterministically"""
    for i in range(10000):
        k = f"key-{i}"
        if pred(hash01(flag, k)):
            return k
    raise AssertionError("no key found")


@pytest.fixture(scope="module")
def ing(stack):
    i = Ingest(stack)
    yield i
    i.close()


@pytest.fixture(scope="module")
def merged(ing, stack):
    """Persons PA (anon) and PU (user) with overrides, then $identify
    merges PA into PU; returns what the tests check."""
    tid, token = stack.worker.team_create("hko " + tag())
    t = tag()
    # distinct ids whose own hash is above the rollout: only an
    # override with a low hash key can turn the flag on
    anon = "anon-" + t
    while hash01("ec-1", anon) <= 0.3:
        anon += "x"
    user = "user-" + t
    while hash01("ec-1", user) <= 0.3:
        user += "x"
    seed = pick("ec-1", lambda h: h <= 0.3)

    put_flags(stack, token, [
        {"key": f, "ensure_experience_continuity": True,
         "filters": {"groups": [{"properties": [],
                                 "rollout_percentage": 30}]}}
        for f in ("ec-1", "ec-2")])
    wait_flag(stack, token, "ec-1")

    ing.send("$pageview", anon, token=token)
    ing.send("$pageview", user, token=token)
    ids = dict(ing.q("SELECT uuid::text, id FROM posthog_person WHERE "
                     "team_id = %s", tid))
    pa = ids[person_uuid(tid, anon)]
    pu = ids[person_uuid(tid, user)]

    # overrides as ngx_decide_module and the sync thread store them
    rc = redis_client(stack)
    rows = [(pa, "ec-1", seed), (pa, "ec-2", "pa-key"), (pu, "ec-2", "pu-key")]
    for pid, flag, hk in rows:
        ing.q("INSERT INTO posthog_featureflaghashkeyoverride (team_id, "
              "person_id, feature_flag_key, hash_key) VALUES (%s, %s, %s, %s)",
              tid, pid, flag, hk)
        rc.hsetnx(f"edgehog:hko:{tid}:{pid}", flag, hk)

    # decide sees the anon person's override: ec-1 on for anon, off for user
    assert flags_v2(stack, token, {"distinct_id": anon}).json()[
        "flags"]["ec-1"]["enabled"] is True
    assert flags_v2(stack, token, {"distinct_id": user}).json()[
        "flags"]["ec-1"]["enabled"] is False

    ing.send("$identify", user, {"$anon_distinct_id": anon}, token=token)
    return dict(tid=tid, token=token, anon=anon, user=user, pa=pa, pu=pu,
                seed=seed, rc=rc)


def test_merge_moves_hash_key_overrides(ing, stack, merged):
    m = merged
    tid, pa, pu = m["tid"], m["pa"], m["pu"]
    # Postgres: PA is gone, its override moved, PU's own ec-2 won
    assert ing.q("SELECT count(*) FROM posthog_person WHERE id = %s",
                 pa) == [(0,)]
    rows = ing.q("SELECT person_id, feature_flag_key, hash_key FROM "
                 "posthog_featureflaghashkeyoverride WHERE team_id = %s "
                 "ORDER BY feature_flag_key", tid)
    assert rows == [(pu, "ec-1", m["seed"]), (pu, "ec-2", "pu-key")]

    # Redis: the serving copy moved the same way
    rc = m["rc"]
    assert rc.exists(f"edgehog:hko:{tid}:{pa}") == 0
    assert rc.hgetall(f"edgehog:hko:{tid}:{pu}") == {
        b"ec-1": m["seed"].encode(), b"ec-2": b"pu-key"}

    # decide: both distinct ids now use the moved override
    for did in (m["anon"], m["user"]):
        doc = flags_v2(stack, m["token"], {"distinct_id": did}).json()
        assert doc["errorsWhileComputingFlags"] is False
        assert doc["flags"]["ec-1"]["enabled"] is True, did


def test_pending_override_of_merged_person_follows(ing, stack, merged):
    """decide wrote an override for PA just before the merge; the sync
    thread drains it after PA is gone: it is stored for PU."""
    m = merged
    tid, pa, pu, rc = m["tid"], m["pa"], m["pu"], m["rc"]
    assert rc.get(f"edgehog:hko:moved:{tid}:{pa}") == str(pu).encode()
    rc.rpush("edgehog:hko:pending", json.dumps(
        {"team_id": tid, "person_id": pa, "feature_flag_key": "ec-3",
         "hash_key": "late-key"}))
    rows = wait_for(lambda: ing.q(
        "SELECT person_id, hash_key FROM posthog_featureflaghashkeyoverride "
        "WHERE team_id = %s AND feature_flag_key = 'ec-3'", tid),
        timeout=30, what="the late override in Postgres")
    assert rows == [(pu, "late-key")]


def test_flushall_refills_redis_from_postgres(ing, stack, merged):
    m = merged
    tid, pu, rc = m["tid"], m["pu"], m["rc"]
    # a group entry too, through ingestion
    ing.send("$groupidentify", m["user"], {
        "$group_type": "company", "$group_key": "acme",
        "$group_set": {"size": 7}}, token=m["token"])
    gkey = f"edgehog:group:{tid}:0:acme"
    wait_for(lambda: rc.get(gkey), timeout=30, what="group entry")
    pkey = f"edgehog:person:{tid}:{m['anon']}"
    before_person = json.loads(rc.get(pkey))
    assert before_person["id"] == pu

    # one MULTI: the sync thread may notice the wipe and refill at once
    _, gone = (rc.pipeline(transaction=True).flushall()
               .exists(gkey, pkey, f"edgehog:hko:{tid}:{pu}").execute())
    assert gone == 0

    wait_for(lambda: rc.exists("edgehog:sync:marker"), timeout=30,
             what="the sync thread to refill Redis")
    # every override Postgres holds for PU, ec-1 and ec-2 among them
    pg = {f.encode(): h.encode() for f, h in ing.q(
        "SELECT feature_flag_key, hash_key FROM "
        "posthog_featureflaghashkeyoverride WHERE person_id = %s", pu)}
    assert pg[b"ec-1"] == m["seed"].encode() and pg[b"ec-2"] == b"pu-key"
    assert rc.hgetall(f"edgehog:hko:{tid}:{pu}") == pg
    assert json.loads(rc.get(gkey)) == {"version": 1,
                                        "properties": {"size": 7}}
    after_person = json.loads(rc.get(pkey))
    assert after_person["id"] == pu
    assert after_person["uuid"] == before_person["uuid"]
    assert after_person["properties"] == before_person["properties"]
    assert rc.hexists("edgehog:snapshot:teams", m["token"])

    # and decide answers as before the wipe
    def on():
        r = flags_v2(stack, m["token"], {"distinct_id": m["anon"]})
        return r.ok and r.json()["flags"].get("ec-1", {}).get("enabled")
    wait_for(on, timeout=30, what="ec-1 served again from refilled Redis")


def test_entries_written_after_a_redis_restart(ing, stack):
    """Redis restarted (empty, no persistence) under a running worker: the
    sync thread refills it, and the person and group entries of the next
    events are written too, although the consumer's connections to Redis
    died with the old server (the first command on such a connection
    fails: it must be sent again on a new one, not dropped, since nothing
    rewrites an entry until its person or group changes)."""
    tid, token = stack.worker.team_create("redis restart " + tag())
    t = tag()

    def identify(d, key):
        ing.send("$groupidentify", d, {
            "$group_type": "company", "$group_key": key,
            "$group_set": {"key": key}}, token=token)

    # both connections of the consumer in use before the restart
    identify(f"{t}-before", "before")
    rc = redis_client(stack)
    wait_for(lambda: rc.get(f"edgehog:person:{tid}:{t}-before")
             and rc.get(f"edgehog:group:{tid}:0:before"), timeout=30,
             what="the entries before the restart")

    stack.redis.stop()
    stack.redis.start()
    rc = redis_client(stack)
    wait_for(lambda: rc.exists("edgehog:sync:marker"), timeout=60,
             what="the sync thread to refill Redis")

    identify(f"{t}-after", "after")
    wait_for(lambda: rc.get(f"edgehog:person:{tid}:{t}-after"), timeout=30,
             what="the person entry written after the restart")
    wait_for(lambda: rc.get(f"edgehog:group:{tid}:0:after"), timeout=30,
             what="the group entry written after the restart")
    assert json.loads(rc.get(f"edgehog:group:{tid}:0:after"))[
        "properties"] == {"key": "after"}
