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
had no person id index to use at all.

The everyday statements of the person path met the same: a fresh
install's tables, small or never analyzed when the worker made its
generic plans, were seq-scanned (the distinct ids of every batch's
prefetch) or read person by person of the whole team (a fetch joined
the team's persons to the distinct id row) on every execution, until
autovacuum analyzed them."""

import json
import uuid

import psycopg2
from confluent_kafka import Consumer, Producer

from conftest import S, ST, wait_for
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


PERSON_TABLES = ("posthog_person", "posthog_persondistinctid",
                 "posthog_personlessdistinctid")
GROWN = 20000


def table_reads(pg):
    """per table: sequential scans, rows read by them, rows fetched
    through indexes, rows inserted"""
    with pg.cursor() as c:
        c.execute("SELECT relname, seq_scan, seq_tup_read, "
                  "COALESCE(idx_tup_fetch, 0), n_tup_ins "
                  "FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                  (list(PERSON_TABLES),))
        return {r[0]: r[1:] for r in c.fetchall()}


def test_person_statements_keep_index_plans_as_tables_grow(stack, tmp_path):
    """A worker starts on a fresh install (its own Postgres, the person
    tables never analyzed, no autovacuum while the test runs) and
    executes its statements often enough to get generic plans; then
    every person table gets 20000 rows of the same team.  The next
    events look their rows up by the indexes: no sequential scan, and
    a few rows read per event instead of the team's."""
    t = tag()
    name, topic_in = f"pspl{t}", f"{t}_in"
    stack.kafka.create_topics([topic_in] + [f"{name}_{x}"
                                            for x in ST.OUTPUT_TOPICS],
                              partitions=1)
    pg = S.Postgres(str(tmp_path / "pg"), name="pg-plans")
    w = own_worker(stack, tmp_path / "w", name, input_topic=topic_in,
                   postgres_dsn=pg.dsn)
    pg.start()
    conn = out = None
    try:
        w.run_cmd("migrate", "postgres")
        team, token = w.team_create("plans " + t)
        conn = psycopg2.connect(pg.dsn)
        conn.autocommit = True
        with conn.cursor() as c:
            # nor do the foreign key checks of the test's own inserts
            c.execute("SET enable_seqscan = off")
            for table in PERSON_TABLES:
                c.execute(f"ALTER TABLE {table} "
                          "SET (autovacuum_enabled = false)")

        def q(sql, *args):
            with conn.cursor() as c:
                c.execute(sql, args)
                return c.fetchall()

        p = Producer({"bootstrap.servers": stack.kafka.bootstrap})

        def send(event, d, props):
            e = str(uuid.uuid4())
            data = {"event": event, "distinct_id": d, "uuid": e,
                    "properties": props,
                    "timestamp": "2024-01-01T10:00:00Z"}
            p.produce(topic_in, key=f"{token}:{d}".encode(),
                      value=json.dumps({
                          "uuid": e, "distinct_id": d, "ip": "127.0.0.1",
                          "data": json.dumps(data), "token": token,
                          "now": "2024-01-01T10:00:00.000Z"}).encode())
            return e

        # the events' rows (the test reads no person row while it
        # counts reads): a row is produced once its person work is done
        out = Consumer({"bootstrap.servers": stack.kafka.bootstrap,
                        "group.id": f"t-{name}-rows",
                        "auto.offset.reset": "earliest",
                        "enable.auto.commit": False})
        out.subscribe([f"{name}_clickhouse_events_json"])
        seen = set()

        def emitted(uuids):
            for m in out.consume(500, timeout=0.5):
                if m.error() is None:
                    seen.add(json.loads(m.value())["uuid"])
            return uuids <= seen

        def rounds(phase, n):
            """per round: three new persons, a $set changing the
            previous round's first person, an $identify giving its
            second a new distinct id, two personless ids; waits for
            each round's rows (one batch or more per round)"""
            for r in range(n):
                sent = {send("$pageview", f"{t}-{phase}{r}-{k}", {})
                        for k in range(3)}
                sent |= {send("$pageview", f"{t}-{phase}{r}-pl{k}",
                              {"$process_person_profile": False})
                         for k in range(2)}
                if r:
                    prev = f"{t}-{phase}{r - 1}"
                    sent.add(send("e", f"{prev}-0", {"$set": {"round": r}}))
                    sent.add(send("$identify", f"{prev}-i",
                                  {"$anon_distinct_id": f"{prev}-1"}))
                p.flush(30)
                wait_for(lambda: emitted(sent), timeout=90,
                         what=f"the rows of round {phase}{r}")

        w.start()
        # more than five executions of each statement: generic plans
        rounds("a", 7)

        # the team grows, with no ANALYZE after it
        q("WITH p AS (INSERT INTO posthog_person (created_at, properties, "
          "team_id, uuid, version) SELECT now(), '{}', %s, "
          "gen_random_uuid(), 0 FROM generate_series(1, %s) RETURNING id) "
          "INSERT INTO posthog_persondistinctid (distinct_id, person_id, "
          "team_id, version) SELECT 'grown-' || id, id, %s, 0 FROM p "
          "RETURNING 1", team, GROWN, team)
        q("INSERT INTO posthog_personlessdistinctid (team_id, distinct_id, "
          "is_merged, created_at) SELECT %s, 'grown-pl-' || g, false, now() "
          "FROM generate_series(1, %s) g RETURNING 1", team, GROWN)
        # the inserts' own statistics are in the view before the count
        q("SELECT pg_stat_force_next_flush()")
        before = table_reads(conn)

        rounds("b", 3)

        # each backend of the worker reports its statistics when idle
        # (within 10 s): those of the person connection are in once its
        # inserts of the nine new persons are, those of the prefetch
        # connection once the personless inserts are (a lookup after
        # the last write may be counted later: that could hide a bad
        # plan, never fail a good one)
        def reported():
            now = table_reads(conn)

            def ins(table):
                return now[table][3] - before[table][3]
            return now if ins("posthog_person") >= 9 \
                and ins("posthog_personlessdistinctid") >= 6 else None
        after = wait_for(reported, timeout=90,
                         what="the worker's statistics of the rounds")

        for table in PERSON_TABLES:
            seq = after[table][0] - before[table][0]
            read = (after[table][1] + after[table][2]
                    - before[table][1] - before[table][2])
            assert seq == 0 and read < GROWN // 10, (table, seq, read,
                                                     before, after)
    finally:
        w.stop()
        if out:
            out.close()
        if conn:
            conn.close()
        pg.stop()
