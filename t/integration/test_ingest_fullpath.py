"""The full path for a posthog-js-style session: HTTP capture through
nginx, the ingest-worker, Kafka and ClickHouse's Kafka engine."""

import json
import uuid

import requests

from ingest_helpers import Ingest, person_uuid, props, tag


def capture(stack, event, distinct_id, properties=None, **extra):
    ev_uuid = str(uuid.uuid4())
    body = {"api_key": stack.token, "event": event,
            "distinct_id": distinct_id, "uuid": ev_uuid,
            "properties": {"$lib": "web", "$current_url": "https://x.io/",
                           "$browser": "Firefox", **(properties or {})},
            **extra}
    r = requests.post(stack.nginx.url + "/i/v0/e/", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return ev_uuid


def test_posthog_js_session_resolves_to_one_person(stack):
    ing = Ingest(stack)
    try:
        t = tag()
        anon, user = f"0190-{t}-anon", f"user-{t}@x.io"
        evs = [capture(stack, "$pageview", anon) for _ in range(3)]
        evs.append(capture(stack, "$identify", user,
                           {"$anon_distinct_id": anon,
                            "$set": {"email": user, "plan": "pro"}}))
        evs += [capture(stack, "$pageview", user) for _ in range(2)]
        evs.append(capture(stack, "clicked", user,
                           {"$set": {"plan": "team"}}))
        for e in evs:
            ing.out.event(e)

        # anon and user ids sit on different partitions, so $identify may
        # be processed before the anonymous pageviews: either UUID wins
        candidates = {person_uuid(stack.team_id, anon),
                      person_uuid(stack.team_id, user)}
        in_list = ",".join(f"toUUID('{e}')" for e in evs)
        rows = ing.ch_wait(
            f"SELECT toString(uuid) AS u, toString(person_id) AS pid "
            f"FROM events FINAL WHERE uuid IN ({in_list})",
            lambda r: len(r) == len(evs), timeout=90,
            what="all events in ClickHouse")
        pids = {r["pid"] for r in rows}
        assert len(pids) == 1 and pids <= candidates, pids
        pa = pids.pop()

        live = ing.ch_wait(
            f"SELECT toString(id) AS sid, argMax(properties, version) AS p, "
            f"argMax(is_identified, version) AS i FROM person WHERE "
            f"team_id = {stack.team_id} AND id = toUUID('{pa}') GROUP BY id "
            f"HAVING max(is_deleted) = 0",
            lambda r: r and props(r[0]["p"]).get("plan") == "team",
            timeout=90, what="the merged person")
        p = props(live[0]["p"])
        assert p["email"] == user and p["plan"] == "team"
        assert p["$initial_browser"] == "Firefox"
        assert int(live[0]["i"]) == 1

        dids = ing.ch_wait(
            f"SELECT distinct_id, toString(argMax(person_id, version)) AS "
            f"pid FROM person_distinct_id2 WHERE team_id = {stack.team_id} "
            f"AND distinct_id IN ('{anon}', '{user}') GROUP BY distinct_id "
            f"HAVING argMax(is_deleted, version) = 0",
            lambda r: len(r) == 2, timeout=90, what="both distinct ids")
        assert {d["pid"] for d in dids} == {pa}

        # the decide module's Redis entry for the identified id
        import redis
        r = redis.Redis(port=stack.redis.port)
        entry = r.get(f"edgehog:person:{stack.team_id}:{user}".encode())
        assert entry, "person entry in Redis"
        doc = json.loads(entry)
        assert doc["uuid"] == pa and doc["properties"]["plan"] == "team"
    finally:
        ing.close()
