"""The worker's Postgres statements keep their index plans when a table
grows from (nearly) empty: a prepared statement gets a generic plan
after five executions, built from the statistics of that moment and
kept until the table's next ANALYZE.  The merge's UPDATE of
edgehog_person_deletion by (team_id, person_id) met that table empty
and analyzed (a fresh install after VACUUM ANALYZE, or the 7-day trim
emptying it) and then seq-scanned it for every merge as merges filled
it (0.75 ms per merge at 10k rows in bench-worker (d)).  The same held
for the merge's moves of cohort and hash key override rows and for the
foreign key checks of the source's DELETE (cached plans too), which
had no person id index to use at all."""

import json
import uuid

from confluent_kafka import Producer

from conftest import ST, wait_for
from ingest_helpers import Ingest, own_worker, tag

MOVE = ("UPDATE edgehog_person_deletion SET person_id = $3 "
        "WHERE team_id = $1 AND person_id = $2")


SIDE = ("posthog_cohortpeople", "posthog_featureflaghashkeyoverride")


def scans(ing):
    """index scans of edgehog_person_deletion: by primary key (the
    merge's INSERT ... ON CONFLICT probes it) and by person id; and by
    person id of the cohort and hash key override rows"""
    rows = dict(ing.q(
        "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes "
        "WHERE relname IN ('edgehog_person_deletion', %s, %s)", *SIDE))
    return (rows["edgehog_person_deletion_pkey"],
            rows["edgehog_person_deletion_person_id"],
            rows.get("posthog_cohortpeople_person_id", 0),
            rows.get("posthog_featureflaghashkeyoverride_person_id", 0))


def flushed(ing, pk, n):
    """waits until the statistics of n more merges reached the view (a
    backend sends its counters when idle, those of a transaction at
    once); returns the scans then"""
    return wait_for(lambda: (lambda s: s if s[0] >= pk + n else None)(
        scans(ing)), timeout=60, what="the merges' index scans")


def merge_pairs(ing, p, topic, pairs):
    """two anonymous persons per pair, then an $identify merging them;
    returns once every pair is one person"""
    def send(event, d, props):
        e = str(uuid.uuid4())
        data = {"event": event, "distinct_id": d, "uuid": e,
                "properties": props, "timestamp": "2024-01-01T10:00:00Z"}
        p.produce(topic, key=f"{ing.token}:{d}".encode(),
                  value=json.dumps({
                      "uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                      "data": json.dumps(data), "token": ing.token,
                      "now": "2024-01-01T10:00:00.000Z"}).encode())

    for anon, ident in pairs:
        send("$pageview", anon, {})
        send("$pageview", ident, {})
    p.flush(30)
    ids = [d for pair in pairs for d in pair]
    wait_for(lambda: len(ing.pdis(*ids)) == len(ids), timeout=60,
             what="the persons of the pairs")
    for anon, ident in pairs:
        send("$identify", ident, {"$anon_distinct_id": anon})
    p.flush(30)

    def merged():
        got = ing.pdis(*ids)
        return all(got[a][0] == got[i][0] for a, i in pairs)
    wait_for(merged, timeout=60, what="the merges")


def test_merge_keeps_index_plan_as_deletion_table_grows(stack, tmp_path):
    ing = Ingest(stack)
    t = tag()
    name, topic_in = f"plan{t}", f"{t}_in"
    stack.kafka.create_topics([topic_in], partitions=1)
    stack.kafka.create_topics([f"{name}_{x}" for x in ST.OUTPUT_TOPICS],
                              partitions=1)
    # no autoanalyze may replace the plans while the tables grow
    for table in ("edgehog_person_deletion",) + SIDE:
        ing.q(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    w = None
    try:
        for table in ("edgehog_person_deletion",) + SIDE:
            ing.q(f"ANALYZE {table}")
        # a generic plan of our own made now, to show the trap below
        ing.q("SET plan_cache_mode = force_generic_plan")
        ing.q(f"PREPARE t_move(int, bigint, bigint) AS {MOVE}")
        ing.q("EXPLAIN EXECUTE t_move(-2, 1, 2)")

        pk0 = scans(ing)[0]
        w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in)
        w.start()
        p = Producer({"bootstrap.servers": stack.kafka.bootstrap})

        # more than five merges: a generic plan would be made now
        merge_pairs(ing, p, topic_in,
                    [(f"{t}-a{i}", f"{t}-i{i}") for i in range(8)])
        pk1, pid1, cp1, hko1 = flushed(ing, pk0, 8)

        # rows of persons merged elsewhere, no ANALYZE after them
        ing.q("INSERT INTO edgehog_person_deletion (team_id, uuid, "
              "person_id, created_at, properties, is_identified, version) "
              "SELECT -1, gen_random_uuid(), g, now(), '{}', false, 0 "
              "FROM generate_series(1, 20000) g")
        plan = "\n".join(r[0] for r in
                         ing.q("EXPLAIN EXECUTE t_move(-2, 1, 2)"))
        assert "Seq Scan on edgehog_person_deletion" in plan, plan
        # cohort and override rows of persons of their own, as many
        ids = [r[0] for r in ing.q(
            "INSERT INTO posthog_person (created_at, properties, team_id, "
            "uuid, version) SELECT now(), '{}', -1, gen_random_uuid(), 0 "
            "FROM generate_series(1, 20000) RETURNING id")]
        cohort = ing.q("INSERT INTO posthog_cohort (team_id, name, "
                       "is_static) VALUES (%s, %s, true) RETURNING id",
                       ing.team, f"plans {t}")[0][0]
        ing.q("INSERT INTO posthog_cohortpeople (cohort_id, person_id) "
              "SELECT %s, unnest(%s::bigint[])", cohort, ids)
        ing.q("INSERT INTO posthog_featureflaghashkeyoverride "
              "(feature_flag_key, hash_key, person_id, team_id) "
              "SELECT 'plans', 'h', unnest(%s::bigint[]), -1", ids)

        merge_pairs(ing, p, topic_in,
                    [(f"{t}-b{i}", f"{t}-j{i}") for i in range(4)])

        # each merge moved the rows of its source by the indexes, and
        # the foreign key checks of its DELETE probed them (statistics
        # reach the view some time after the commit)
        def by_index():
            _, pid, cp, hko = scans(ing)
            got = (pid - pid1, cp - cp1, hko - hko1)
            return got if got[0] >= 4 and got[1] >= 8 and got[2] >= 4 \
                else None
        wait_for(by_index, timeout=60,
                 what="index scans of the 4 merges after the tables grew")
    finally:
        if w:
            w.stop()
        ing.q("DEALLOCATE ALL")
        ing.q("RESET plan_cache_mode")
        ing.q("DELETE FROM edgehog_person_deletion WHERE team_id = -1")
        ing.q("DELETE FROM posthog_featureflaghashkeyoverride "
              "WHERE team_id = -1")
        ing.q("DELETE FROM posthog_cohortpeople WHERE cohort_id IN "
              "(SELECT id FROM posthog_cohort WHERE name = %s)",
              f"plans {t}")
        ing.q("DELETE FROM posthog_cohort WHERE name = %s", f"plans {t}")
        ing.q("DELETE FROM posthog_person WHERE team_id = -1")
        for table in ("edgehog_person_deletion",) + SIDE:
            ing.q(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
        ing.close()
