/*
 * Copyright (C) edgehog
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>

#include "worker.h"
#include "person.h"
#include "person_trim.h"
#include "eh_time.h"
#include "eh_person_entry.h"
#include "ingest_fast.h"
#include "ingest_hash.h"
#include "ingest_idset.h"
#include "ingest_json.h"
#include "ingest_output.h"


/* conflicts retried in place before the event gives up (§10.7) */
#define PS_ATTEMPTS           5
/* bounded memory: both caches are forgotten wholesale when full */
#define PS_PERSONLESS_CACHE   500000
#define PS_CACHE_MAX          500000
#define PS_CACHE_BUCKETS      (1 << 18)
/* other workers' person changes (see ps_cached_t) */
#define PS_CHANNEL            "edgehog_persons"

/* result of one statement */
#define PS_OK                 0
#define PS_CONFLICT           1     /* 23505, 23503, 40P01, 40001 */
#define PS_ERROR             -1     /* connection: retry the batch */
#define PS_FAIL              -2     /* anything else: DLQ the event */


typedef struct {
    int64_t                     id;
    int64_t                     version;
    int64_t                     created_at_us;
    char                        uuid[INGEST_PERSON_UUID_LEN + 1];
    json_t                     *properties;
    unsigned                    exists:1;
    unsigned                    is_identified:1;
} ps_person_t;


/*
 * The worker's view of persons (§8: budget on round trips), kept across
 * batches: misses are read in one query per batch, our own updates
 * refresh it, our own merges drop what they touch, and changes made by
 * other workers arrive as NOTIFY on PS_CHANNEL before every batch (so
 * nothing is staler than one batch, as with a per-batch prefetch).  A
 * rebalance or a lost Postgres connection drops it whole.
 */
typedef struct ps_cached_s  ps_cached_t;

struct ps_cached_s {
    int64_t                     team_id;
    char                       *distinct_id;
    uint32_t                    hash;
    ps_person_t                 p;          /* !p.exists: no person */
    /* json_dumps() of p.properties, made on first use */
    char                       *text;
    size_t                      text_len;
    ps_cached_t                *next;       /* in the distinct id bucket */
    ps_cached_t                *pnext;      /* in the person id bucket */
};


/* one key of the prefetch in flight */
typedef struct {
    int64_t                     team_id;
    size_t                      id;         /* offset in pf_ids */
    unsigned                    pl:1;
} ps_pf_key_t;


struct worker_persons_s {
    ps_cached_t               **cache;
    ps_cached_t               **by_person;
    size_t                      ncache;
    const worker_config_t      *cf;
    PGconn                     *conn;
    int                         prepared;
    redisContext               *redis;
    time_t                      redis_retry;
    worker_emit_pt              emit;
    worker_warn_pt              warn;
    void                       *data;
    ingest_idset_t             *personless;     /* team:id written */
    /*
     * the prefetch query in flight on its own connection (its keys),
     * NULL when none; early: sent while the batch before it is still
     * processed on conn
     */
    PGconn                     *pf_conn;
    ps_pf_key_t                *pf_keys;
    int                         pf_n;       /* > 0: a query in flight */
    int                         pf_size;
    ingest_str_t                pf_ids;     /* their distinct ids */
    ingest_str_t                pf_text;    /* the query's parameter */
    unsigned                    pf_stale:1;
    unsigned                    pf_early:1;
    worker_person_stats_t       stats;
    /* "SELECT pg_notify(...); COMMIT" of the open transaction, or NULL */
    char                       *commit;

    /* the event being processed */
    int64_t                     team_id;
    ingest_message_t           *m;
    ingest_props_ops_t          ops;
    int64_t                     ts_us;
};


typedef struct {
    const char                 *name;
    const char                 *sql;
} ps_stmt_t;


static int ps_connect(worker_persons_t *ps);
static int ps_prefetch_apply(worker_persons_t *ps, PGresult *res);
static int ps_pf_connect(worker_persons_t *ps);
static ps_cached_t *ps_cache_find_person(worker_persons_t *ps, int64_t id);
static int ps_exec(worker_persons_t *ps, const char *name, int n,
    const char **params, PGresult **out);
static int ps_simple(worker_persons_t *ps, const char *sql);
static int ps_person_row(PGresult *res, int row, ps_person_t *p);
static int ps_replay_merge(worker_persons_t *ps, ps_person_t *p);
static int ps_fetch(worker_persons_t *ps, const char *distinct_id, int lock,
    ps_person_t *p);
static void ps_person_free(ps_person_t *p);
static ps_cached_t *ps_cache_find(worker_persons_t *ps, int64_t team_id,
    const char *distinct_id);
static void ps_cache_put(worker_persons_t *ps, int64_t team_id,
    const char *distinct_id, const ps_person_t *p);
static void ps_cache_refresh(worker_persons_t *ps, const ps_person_t *p);
static void ps_cache_clear(worker_persons_t *ps);
static void ps_cache_forget(worker_persons_t *ps, int64_t team_id,
    const char *distinct_id);
static void ps_cache_forget_person(worker_persons_t *ps, int64_t id);
static void ps_cache_unlink_person(worker_persons_t *ps, ps_cached_t *c);
static uint32_t ps_cache_hash(int64_t team_id, const char *distinct_id);
static const char *ps_cache_text(ps_cached_t *c, size_t *len);
static int ps_no_change(json_t *props, const ingest_props_ops_t *ops);
static void ps_notifications(worker_persons_t *ps);
static int ps_notify(worker_persons_t *ps, int64_t pid1, int64_t pid2,
    const char *did1, const char *did2);
static int ps_commit(worker_persons_t *ps);
static char *ps_jsonb(json_t *v);
static int ps_create(worker_persons_t *ps, const char *primary,
    const char *second, int64_t v1, int64_t v2, int identified,
    ps_person_t *p);
static int ps_emit_created(worker_persons_t *ps, ps_person_t *p,
    const char *primary, const char *second, int64_t v1, int64_t v2);
static int ps_update(worker_persons_t *ps, ps_person_t *p, int identify,
    int no_update);
static int ps_personless_merged(worker_persons_t *ps, const char *id,
    int *existed);
static int ps_add_distinct_id(worker_persons_t *ps, ps_person_t *p,
    const char *distinct_id);
static int ps_merge_people(worker_persons_t *ps, ps_person_t *target,
    ps_person_t *source);
static int ps_identify(worker_persons_t *ps, const char *other,
    ps_person_t *p, int *done);
static int ps_personless(worker_persons_t *ps, worker_person_result_t *res,
    int team_opt_out);
static int ps_emit_person(worker_persons_t *ps, ps_person_t *p,
    int deleted, int64_t version);
static int ps_emit_distinct_id(worker_persons_t *ps, const char *uuid,
    const char *distinct_id, int64_t version);
static void ps_redis_write(worker_persons_t *ps, ps_person_t *p);


static const ps_stmt_t  ps_stmts[] = {

    /*
     * the person through its distinct id's row, never the other way
     * round: a generic plan made while the tables were small or never
     * analyzed joined them by reading every person of the team (or
     * every distinct id row) per lookup (see ps_connect); the fences
     * (a LATERAL subquery with OFFSET 0 is planned on its own, per row
     * of what precedes it) leave the planner no other order
     */
    { "ps_fetch",
      "SELECT p.id, p.uuid, (extract(epoch FROM p.created_at) * 1000000)"
      "::bigint, p.properties, COALESCE(p.version, 0), p.is_identified "
      "FROM posthog_persondistinctid d, LATERAL (SELECT * FROM "
      "posthog_person p WHERE p.id = d.person_id AND p.team_id = $1 "
      "OFFSET 0) p WHERE d.team_id = $1 AND d.distinct_id = $2" },

    { "ps_fetch_lock",
      "SELECT p.id, p.uuid, (extract(epoch FROM p.created_at) * 1000000)"
      "::bigint, p.properties, COALESCE(p.version, 0), p.is_identified "
      "FROM posthog_persondistinctid d, LATERAL (SELECT * FROM "
      "posthog_person p WHERE p.id = d.person_id AND p.team_id = $1 "
      "FOR UPDATE) p WHERE d.team_id = $1 AND d.distinct_id = $2" },

    /* §3.7 G3 create: one round trip for the person and its ids */
    { "ps_create",
      "WITH p AS (INSERT INTO posthog_person (created_at, properties, "
      "properties_last_updated_at, properties_last_operation, team_id, "
      "is_user_id, is_identified, uuid, version) VALUES ("
      "'epoch'::timestamptz + $1::bigint * interval '1 microsecond', "
      "$2::jsonb, $3::jsonb, $4::jsonb, $5, NULL, $6::boolean, $7::uuid, 0) "
      "RETURNING id), d AS (INSERT INTO posthog_persondistinctid "
      "(distinct_id, person_id, team_id, version) SELECT x.did, p.id, $5, "
      "x.v FROM p, jsonb_to_recordset($8::jsonb) AS x(did text, v bigint)) "
      "SELECT id FROM p" },

    /*
     * the version read must still be there: a cached person changed by
     * another worker is a conflict (re-read), not a lost update; the
     * other workers hear of it through PS_CHANNEL at commit
     */
    { "ps_update",
      "WITH u AS (UPDATE posthog_person SET version = "
      "COALESCE(version, 0) + 1, properties = $3::jsonb, "
      "is_identified = $4::boolean WHERE id = $1 AND team_id = $2 "
      "AND COALESCE(version, 0) = $5 RETURNING version) "
      "SELECT version, pg_notify('" PS_CHANNEL "', $6) FROM u" },

    /*
     * a batch's misses in one round trip: the persons found (kind 0),
     * and §3.8 for the ids flagged pl that have none: inserted, with
     * those a merge already claimed coming back as kind 1 from the
     * conflict itself (the row is left as it is: merged stays merged),
     * so no scan of the table looks for them.  Measured (session 6, 100k
     * new ids in 500-key batches, backend CPU): the ON CONFLICT insert
     * is ~5.5 of its ~7 us per new id (a plain insert 3.2); looking the
     * ids up first and inserting the rest without ON CONFLICT came to
     * 6.8 against 7.1 (the lookup costs what the speculative insert
     * saved); unnest() of bigint[]/text[]/bool[] instead of
     * jsonb_to_recordset was slower (7.9-8.0 against 7.1).  Session 9
     * (batches of 2000 into a table of 50k rows, backend CPU): 8.1-8.8
     * us per new id, ~1.8 of it the lookup part alone; distinct_id
     * COLLATE "C" instead of the database's C.UTF-8 saved 7% (8.75 ->
     * 8.1), kept out: a schema change of PostHog's tables.  These
     * inserts are (a)'s Postgres work (one per new id, §3.8 and §10.6
     * require them; repeated ids are neither looked up nor written:
     * ps_cache and ps->personless)
     */
    { "ps_prefetch_batch",
      "WITH b AS (SELECT x.t, x.d, x.pl FROM jsonb_to_recordset($1::jsonb) "
      "AS x(t bigint, d text, pl boolean)), "
      "f AS (SELECT d.team_id, d.distinct_id, p.id, p.uuid, "
      "(extract(epoch FROM p.created_at) * 1000000)::bigint AS created, "
      "p.properties, COALESCE(p.version, 0) AS version, p.is_identified "
      "FROM b, LATERAL (SELECT * FROM posthog_persondistinctid d "
      "WHERE d.team_id = b.t AND d.distinct_id = b.d OFFSET 0) d, "
      "LATERAL (SELECT * FROM posthog_person p WHERE p.id = d.person_id "
      "AND p.team_id = d.team_id OFFSET 0) p),"
      " c AS (SELECT DISTINCT b.t, b.d FROM b WHERE b.pl AND NOT EXISTS "
      "(SELECT 1 FROM f WHERE f.team_id = b.t AND f.distinct_id = b.d)), "
      "i AS (INSERT INTO posthog_personlessdistinctid (team_id, distinct_id, "
      "is_merged, created_at) SELECT t, d, false, now() FROM c "
      "ORDER BY t, d ON CONFLICT (team_id, distinct_id) DO UPDATE SET "
      "is_merged = true WHERE posthog_personlessdistinctid.is_merged "
      "RETURNING team_id, distinct_id, is_merged) "
      "SELECT 0, f.* FROM f UNION ALL "
      "SELECT 1, i.team_id, i.distinct_id, NULL, NULL, NULL, NULL, NULL, "
      "NULL FROM i WHERE i.is_merged" },

    { "ps_add_did",
      "INSERT INTO posthog_persondistinctid (distinct_id, person_id, "
      "team_id, version) VALUES ($1, $2, $3, $4)" },

    /* xmax = 0: the row was inserted now, not updated */
    { "ps_personless_merged",
      "INSERT INTO posthog_personlessdistinctid (team_id, distinct_id, "
      "is_merged, created_at) VALUES ($1, $2, true, now()) "
      "ON CONFLICT (team_id, distinct_id) DO UPDATE SET is_merged = true "
      "RETURNING (xmax = 0)" },

    { "ps_personless",
      "INSERT INTO posthog_personlessdistinctid (team_id, distinct_id, "
      "is_merged, created_at) VALUES ($1, $2, false, now()) "
      "ON CONFLICT (team_id, distinct_id) DO UPDATE SET is_merged = "
      "posthog_personlessdistinctid.is_merged RETURNING is_merged" },

    { "ps_merge_target",
      "UPDATE posthog_person SET version = $3, created_at = "
      "'epoch'::timestamptz + $4::bigint * interval '1 microsecond', "
      "properties = $5::jsonb, is_identified = true "
      "WHERE id = $1 AND team_id = $2" },

    { "ps_merge_move",
      "UPDATE posthog_persondistinctid SET person_id = $1, "
      "version = COALESCE(version, 0) + 1 "
      "WHERE person_id = $2 AND team_id = $3 RETURNING distinct_id, version" },

    { "ps_merge_cohorts",
      "UPDATE posthog_cohortpeople SET person_id = $1 WHERE person_id = $2" },

    /* the target's overrides win */
    { "ps_merge_hashkeys",
      "WITH moved AS (DELETE FROM posthog_featureflaghashkeyoverride "
      "WHERE team_id = $3 AND person_id = $2 "
      "RETURNING feature_flag_key, hash_key) "
      "INSERT INTO posthog_featureflaghashkeyoverride "
      "(feature_flag_key, hash_key, person_id, team_id) "
      "SELECT feature_flag_key, hash_key, $1, $3 FROM moved "
      "ON CONFLICT DO NOTHING" },

    /*
     * the source goes, its row is kept for a replay (worker_persons_replay)
     * under the target, with the rows of persons merged into the source
     * before (old rows: worker_pg_trim_deletions)
     */
    { "ps_merge_delete",
      "WITH d AS (DELETE FROM posthog_person WHERE team_id = $1 AND id = $2 "
      "RETURNING uuid, created_at, properties, is_identified, "
      "COALESCE(version, 0) AS version), "
      "kept AS (INSERT INTO edgehog_person_deletion (team_id, uuid, "
      "person_id, created_at, properties, is_identified, version) "
      "SELECT $1, uuid, $3, created_at, properties, is_identified, version "
      "FROM d ON CONFLICT (team_id, uuid) DO UPDATE SET "
      "person_id = EXCLUDED.person_id, created_at = EXCLUDED.created_at, "
      "properties = EXCLUDED.properties, "
      "is_identified = EXCLUDED.is_identified, version = EXCLUDED.version, "
      "deleted_at = now()), "
      "moved AS (UPDATE edgehog_person_deletion SET person_id = $3 "
      "WHERE team_id = $1 AND person_id = $2) "
      "SELECT version FROM d" },

    { "ps_distinct_ids",
      "SELECT distinct_id, COALESCE(version, 0) "
      "FROM posthog_persondistinctid "
      "WHERE person_id = $1 AND team_id = $2" },

    /* ps_fetch's columns of the persons merged into person $2 */
    { "ps_replay_deleted",
      "SELECT 0, uuid, (extract(epoch FROM created_at) * 1000000)::bigint, "
      "properties, version, is_identified FROM edgehog_person_deletion "
      "WHERE team_id = $1 AND person_id = $2" },

    /* ps_fetch's columns and the distinct id's version */
    { "ps_replay",
      "SELECT p.id, p.uuid, (extract(epoch FROM p.created_at) * 1000000)"
      "::bigint, p.properties, COALESCE(p.version, 0), p.is_identified, "
      "COALESCE(d.version, 0) "
      "FROM posthog_persondistinctid d, LATERAL (SELECT * FROM "
      "posthog_person p WHERE p.id = d.person_id AND p.team_id = $1 "
      "OFFSET 0) p WHERE d.team_id = $1 AND d.distinct_id = $2" },

    { NULL, NULL }
};


worker_persons_t *
worker_persons_open(const worker_config_t *cf, worker_emit_pt emit,
    worker_warn_pt warn, void *data)
{
    worker_persons_t  *ps;

    ps = calloc(1, sizeof(worker_persons_t));
    if (ps == NULL) {
        return NULL;
    }

    ps->cf = cf;
    ps->emit = emit;
    ps->warn = warn;
    ps->data = data;
    ps->personless = ingest_idset_new(PS_PERSONLESS_CACHE);

    if (ps->personless == NULL) {
        free(ps);
        return NULL;
    }

    /* a failure here is retried on first use, like any outage */
    (void) ps_connect(ps);

    return ps;
}


void
worker_persons_close(worker_persons_t *ps)
{
    if (ps == NULL) {
        return;
    }

    free(ps->pf_keys);
    free(ps->pf_ids.data);
    free(ps->pf_text.data);

    if (ps->pf_conn) {
        PQfinish(ps->pf_conn);
    }

    if (ps->conn) {
        PQfinish(ps->conn);
    }

    if (ps->redis) {
        redisFree(ps->redis);
    }

    free(ps->commit);
    ps_cache_clear(ps);
    free(ps->cache);
    free(ps->by_person);
    ingest_idset_free(ps->personless);
    free(ps);
}


const worker_person_stats_t *
worker_persons_stats(worker_persons_t *ps)
{
    return &ps->stats;
}


static int
ps_connect(worker_persons_t *ps)
{
    PGresult         *res;
    const ps_stmt_t  *s;

    if (ps->conn && PQstatus(ps->conn) == CONNECTION_OK && ps->prepared) {
        return 0;
    }

    if (ps->conn == NULL) {
        ps->conn = PQconnectdb(ps->cf->postgres_dsn);

    } else {
        PQreset(ps->conn);
    }

    ps->prepared = 0;

    if (PQstatus(ps->conn) != CONNECTION_OK) {
        worker_log(WORKER_LOG_ERROR, "persons: postgres connection "
                   "failed: %s", PQerrorMessage(ps->conn));
        ps->stats.pg_errors++;
        return -1;
    }

    if (worker_pg_index_plans(ps->conn, "persons") != 0) {
        ps->stats.pg_errors++;
        return -1;
    }

    for (s = ps_stmts; s->name; s++) {
        res = PQprepare(ps->conn, s->name, s->sql, 0, NULL);

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            worker_log(WORKER_LOG_ERROR, "persons: prepare %s failed: %s",
                       s->name, PQresultErrorMessage(res));
            PQclear(res);
            ps->stats.pg_errors++;
            return -1;
        }

        PQclear(res);
    }

    /* notifications missed while disconnected: start from scratch */
    res = PQexec(ps->conn, "LISTEN " PS_CHANNEL);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        worker_log(WORKER_LOG_ERROR, "persons: listen failed: %s",
                   PQresultErrorMessage(res));
        PQclear(res);
        ps->stats.pg_errors++;
        return -1;
    }

    PQclear(res);
    ps_cache_clear(ps);

    ps->prepared = 1;

    return 0;
}


static int
ps_str_eq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}


static int
ps_classify(worker_persons_t *ps, PGresult *res, const char *what)
{
    const char  *state;

    ps->stats.pg_errors++;

    if (PQstatus(ps->conn) != CONNECTION_OK) {
        worker_log(WORKER_LOG_ERROR, "persons: %s: connection lost: %s",
                   what, PQerrorMessage(ps->conn));
        return PS_ERROR;
    }

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state
        && (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0
            || strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
    {
        worker_log(WORKER_LOG_INFO, "persons: %s: conflict %s, retrying",
                   what, state);
        return PS_CONFLICT;
    }

    /* §3.4: too big for check_properties_size, the event goes to DLQ */
    if (state && strcmp(state, "23514") == 0 && ps->m
        && ps_str_eq(PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME),
                     "check_properties_size"))
    {
        ps->warn(ps->data, ps->team_id, "person_properties_size_violation",
                 json_pack("{s:n, s:s, s:I, s:s, s:s}",
                           "personId", "distinctId", ps->m->distinct_id,
                           "teamId", (json_int_t) ps->team_id,
                           "eventUuid", ps->m->uuid,
                           "message", "Person properties update would "
                           "exceed size limit"),
                 0);
    }

    /* admin shutdown and friends: the server is going away */
    if (state && (strncmp(state, "57", 2) == 0 || strncmp(state, "08", 2) == 0
                  || strncmp(state, "53", 2) == 0))
    {
        worker_log(WORKER_LOG_ERROR, "persons: %s: %s", what,
                   res ? PQresultErrorMessage(res) : "");
        return PS_ERROR;
    }

    worker_log(WORKER_LOG_ERROR, "persons: %s failed: %s", what,
               res ? PQresultErrorMessage(res) : PQerrorMessage(ps->conn));

    return PS_FAIL;
}


static int
ps_exec(worker_persons_t *ps, const char *name, int n, const char **params,
    PGresult **out)
{
    int             rc;
    PGresult       *res;
    ExecStatusType  st;

    if (ps_connect(ps) != 0) {
        return PS_ERROR;
    }

    res = PQexecPrepared(ps->conn, name, n, params, NULL, NULL, 0);
    st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out) {
            *out = res;

        } else {
            PQclear(res);
        }

        return PS_OK;
    }

    rc = ps_classify(ps, res, name);
    PQclear(res);

    return rc;
}


static int
ps_simple(worker_persons_t *ps, const char *sql)
{
    int        rc;
    PGresult  *res;

    if (ps_connect(ps) != 0) {
        return PS_ERROR;
    }

    res = PQexec(ps->conn, sql);

    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return PS_OK;
    }

    rc = ps_classify(ps, res, sql);
    PQclear(res);

    return rc;
}


static void
ps_rollback(worker_persons_t *ps)
{
    free(ps->commit);
    ps->commit = NULL;

    if (ps->conn && PQstatus(ps->conn) == CONNECTION_OK) {
        PQclear(PQexec(ps->conn, "ROLLBACK"));
    }
}


static int
ps_fetch(worker_persons_t *ps, const char *distinct_id, int lock,
    ps_person_t *p)
{
    int          rc;
    char         team[24];
    PGresult     *res;
    const char   *params[2];
    ps_cached_t  *c;

    ps_person_free(p);

    if (!lock) {
        c = ps_cache_find(ps, ps->team_id, distinct_id);

        if (c) {
            if (c->p.exists) {
                *p = c->p;
                p->properties = json_deep_copy(c->p.properties);
                if (p->properties == NULL) {
                    memset(p, 0, sizeof(ps_person_t));
                    return PS_FAIL;
                }
            }

            return PS_OK;
        }
    }

    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
    params[0] = team;
    params[1] = distinct_id;

    rc = ps_exec(ps, lock ? "ps_fetch_lock" : "ps_fetch", 2, params, &res);
    if (rc != PS_OK) {
        return rc;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);

        if (!lock) {
            ps_cache_put(ps, ps->team_id, distinct_id, p);
        }

        return PS_OK;
    }

    rc = ps_person_row(res, 0, p);
    PQclear(res);

    if (rc != PS_OK) {
        return rc;
    }

    if (!lock) {
        ps_cache_put(ps, ps->team_id, distinct_id, p);
    }

    return PS_OK;
}


/* a row of ps_fetch's columns */

static int
ps_person_row(PGresult *res, int row, ps_person_t *p)
{
    p->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(p->uuid, sizeof(p->uuid), "%s", PQgetvalue(res, row, 1));
    p->created_at_us = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    /* integers beyond 64 bits become doubles, as in PostHog's JS */
    p->properties = ingest_json_loadb(PQgetvalue(res, row, 3),
                                      PQgetlength(res, row, 3));
    p->version = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    p->is_identified = PQgetvalue(res, row, 5)[0] == 't';
    p->exists = 1;

    if (!json_is_object(p->properties)) {
        /* never write a person back with its properties lost */
        worker_log(WORKER_LOG_ERROR, "persons: unreadable properties of "
                   "person %s", p->uuid);
        ps_person_free(p);
        return PS_FAIL;
    }

    return PS_OK;
}


/*
 * An event read again after its batch's outputs failed: what it changed
 * in Postgres is there already, so processing it again changes nothing
 * and emits nothing.  The rows its first pass emitted may be among the
 * failed ones: the person and the distinct id are emitted again as
 * they are now (the same versions: ClickHouse keeps one of each).  A
 * merge's rows also covered every distinct id it moved and the persons
 * it deleted: all distinct ids of the person and the delete rows of
 * the persons merged into it are emitted again.
 */

int
worker_persons_replay(worker_persons_t *ps, int64_t team_id,
    const char *distinct_id, int merge)
{
    int           rc;
    char          team[24];
    int64_t       version;
    PGresult     *res;
    ps_person_t   p;
    const char   *params[2];

    ps->team_id = team_id;

    snprintf(team, sizeof(team), "%lld", (long long) team_id);
    params[0] = team;
    params[1] = distinct_id;

    if (ps_exec(ps, "ps_replay", 2, params, &res) != PS_OK) {
        return -1;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }

    memset(&p, 0, sizeof(ps_person_t));
    version = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    rc = ps_person_row(res, 0, &p);
    PQclear(res);

    if (rc != PS_OK) {
        /* unreadable: nothing to emit, as on the first pass */
        return 0;
    }

    rc = ps_emit_person(ps, &p, 0, p.version);

    if (rc == 0) {
        rc = merge ? ps_replay_merge(ps, &p)
                   : ps_emit_distinct_id(ps, p.uuid, distinct_id, version);
    }

    ps_person_free(&p);

    return rc == 0 ? 0 : -1;
}


static int
ps_replay_merge(worker_persons_t *ps, ps_person_t *p)
{
    int           i, rc;
    char          pid[24], team[24];
    PGresult     *res;
    ps_person_t   d;
    const char   *params[2];

    snprintf(pid, sizeof(pid), "%lld", (long long) p->id);
    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
    params[0] = pid;
    params[1] = team;

    if (ps_exec(ps, "ps_distinct_ids", 2, params, &res) != PS_OK) {
        return -1;
    }

    rc = 0;

    for (i = 0; rc == 0 && i < PQntuples(res); i++) {
        rc = ps_emit_distinct_id(ps, p->uuid, PQgetvalue(res, i, 0),
                                 strtoll(PQgetvalue(res, i, 1), NULL, 10));
    }

    PQclear(res);

    params[0] = team;
    params[1] = pid;

    if (rc != 0 || ps_exec(ps, "ps_replay_deleted", 2, params, &res) != PS_OK)
    {
        return -1;
    }

    for (i = 0; rc == 0 && i < PQntuples(res); i++) {
        memset(&d, 0, sizeof(ps_person_t));

        if (ps_person_row(res, i, &d) != PS_OK) {
            continue;
        }

        rc = ps_emit_person(ps, &d, 1,
                            d.version + INGEST_DELETE_VERSION_BUMP);
        ps_person_free(&d);
    }

    PQclear(res);

    return rc;
}


static void
ps_person_free(ps_person_t *p)
{
    json_decref(p->properties);
    memset(p, 0, sizeof(ps_person_t));
}


/*
 * JSONB text: Postgres refuses \u0000 in jsonb, so it becomes \ufffd
 * (PostHog's sanitizeJsonbValue)
 */

static char *
ps_jsonb(json_t *v)
{
    char  *s, *p;

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        return NULL;
    }

    for (p = s; *p; p++) {
        if (*p != '\\') {
            continue;
        }

        if (p[1] == 'u' && strncmp(p + 2, "0000", 4) == 0) {
            memcpy(p + 2, "fffd", 4);
        }

        if (p[1] != '\0') {
            p++;
        }
    }

    return s;
}


static int
ps_create(worker_persons_t *ps, const char *primary, const char *second,
    int64_t v1, int64_t v2, int identified, ps_person_t *p)
{
    int          rc;
    char         ts[24], team[24], iso[INGEST_TIME_BUF_LEN];
    char        *props_s, *op_s, *upd_s, *ids_s;
    json_t      *props, *last_op, *last_upd, *ids;
    PGresult    *res;
    const char  *params[8];

    ps_person_free(p);

    if (ingest_person_uuid(ps->team_id, primary, strlen(primary), p->uuid)
        != 0)
    {
        return PS_FAIL;
    }

    eh_time_format_iso_ms(ps->ts_us, iso);

    last_op = last_upd = NULL;
    props = ingest_props_create(&ps->ops, ps->m->uuid, iso, &last_op,
                                &last_upd);
    ids = json_pack("[{sssI}]", "did", primary, "v", (json_int_t) v1);

    if (second && ids) {
        json_array_append_new(ids, json_pack("{sssI}", "did", second, "v",
                                             (json_int_t) v2));
    }

    props_s = props ? ps_jsonb(props) : NULL;
    op_s = last_op ? ps_jsonb(last_op) : NULL;
    upd_s = last_upd ? ps_jsonb(last_upd) : NULL;
    ids_s = ids ? ps_jsonb(ids) : NULL;

    json_decref(last_op);
    json_decref(last_upd);
    json_decref(ids);

    if (props_s == NULL || ids_s == NULL) {
        free(props_s);
        free(op_s);
        free(upd_s);
        free(ids_s);
        json_decref(props);
        return PS_FAIL;
    }

    snprintf(ts, sizeof(ts), "%lld", (long long) ps->ts_us);
    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);

    params[0] = ts;
    params[1] = props_s;
    params[2] = upd_s ? upd_s : "{}";
    params[3] = op_s ? op_s : "{}";
    params[4] = team;
    params[5] = identified ? "true" : "false";
    params[6] = p->uuid;
    params[7] = ids_s;

    rc = ps_exec(ps, "ps_create", 8, params, &res);

    free(props_s);
    free(op_s);
    free(upd_s);
    free(ids_s);

    if (rc != PS_OK) {
        json_decref(props);
        return rc;
    }

    p->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    p->properties = props;
    p->created_at_us = ps->ts_us;
    p->version = 0;
    p->is_identified = identified;
    p->exists = 1;

    ps->stats.created++;

    return PS_OK;
}


/* messages of a created person, only after its transaction committed */

static int
ps_emit_created(worker_persons_t *ps, ps_person_t *p, const char *primary,
    const char *second, int64_t v1, int64_t v2)
{
    if (ps_emit_person(ps, p, 0, 0) != 0
        || ps_emit_distinct_id(ps, p->uuid, primary, v1) != 0
        || (second && ps_emit_distinct_id(ps, p->uuid, second, v2) != 0))
    {
        return PS_ERROR;
    }

    ps_redis_write(ps, p);

    return PS_OK;
}


/*
 * §3.3 updatePersonProperties(): the event's operations, and
 * is_identified when a merge step asked for it; a 0-row UPDATE means the
 * person moved away under us (PS_CONFLICT, the caller re-fetches)
 */

static int
ps_update(worker_persons_t *ps, ps_person_t *p, int identify, int no_update)
{
    int          mask, rc, write;
    char         id[24], team[24], ver[24], note[64], *props_s;
    PGresult    *res;
    const char  *params[6];

    mask = no_update ? 0 : ingest_props_update(p->properties, &ps->ops);
    if (mask < 0) {
        return PS_FAIL;
    }

    write = (mask & INGEST_PROPS_SIGNIFICANT)
            || ((mask & INGEST_PROPS_CHANGED)
                && ingest_props_person_event(ps->m->event))
            || (identify && !p->is_identified);

    if (!write) {
        return PS_OK;
    }

    props_s = ps_jsonb(p->properties);
    if (props_s == NULL) {
        return PS_FAIL;
    }

    snprintf(id, sizeof(id), "%lld", (long long) p->id);
    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);

    params[0] = id;
    params[1] = team;
    params[2] = props_s;
    params[3] = (identify || p->is_identified) ? "true" : "false";

    snprintf(ver, sizeof(ver), "%lld", (long long) p->version);
    /* the payload ps_notifications() reads */
    snprintf(note, sizeof(note), "{\"t\":%lld,\"p\":[%lld]}",
             (long long) ps->team_id, (long long) p->id);
    params[4] = ver;
    params[5] = note;

    rc = ps_exec(ps, "ps_update", 6, params, &res);
    free(props_s);

    /* hook: a row already over the size limit is trimmed (§3.4) */
    if (rc == PS_FAIL
        && worker_person_trim(ps->conn, p->id, ps->team_id, p->properties,
                              &ps->ops))
    {
        props_s = ps_jsonb(p->properties);
        if (props_s == NULL) {
            return PS_FAIL;
        }

        params[2] = props_s;
        rc = ps_exec(ps, "ps_update", 6, params, &res);
        free(props_s);
    }

    if (rc != PS_OK) {
        return rc;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return PS_CONFLICT;
    }

    p->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    p->is_identified = identify || p->is_identified;
    PQclear(res);

    ps->stats.updated++;
    ps_cache_refresh(ps, p);

    if (ps_emit_person(ps, p, 0, p->version) != 0) {
        return PS_ERROR;
    }

    ps_redis_write(ps, p);

    return PS_OK;
}


static int
ps_personless_merged(worker_persons_t *ps, const char *id, int *existed)
{
    int          rc;
    char         team[24];
    PGresult    *res;
    const char  *params[2];

    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
    params[0] = team;
    params[1] = id;

    rc = ps_exec(ps, "ps_personless_merged", 2, params, &res);
    if (rc != PS_OK) {
        return rc;
    }

    *existed = PQntuples(res) > 0 && PQgetvalue(res, 0, 0)[0] != 't';
    PQclear(res);

    return PS_OK;
}


/* §3.5 add case: version 1 when the id was used personlessly (G3) */

static int
ps_add_distinct_id(worker_persons_t *ps, ps_person_t *p,
    const char *distinct_id)
{
    int          rc, existed;
    char         pid[24], team[24];
    const char  *params[4];

    if (ps_simple(ps, "BEGIN") != PS_OK) {
        return PS_ERROR;
    }

    rc = ps_personless_merged(ps, distinct_id, &existed);

    if (rc == PS_OK) {
        snprintf(pid, sizeof(pid), "%lld", (long long) p->id);
        snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
        params[0] = distinct_id;
        params[1] = pid;
        params[2] = team;
        params[3] = existed ? "1" : "0";

        rc = ps_exec(ps, "ps_add_did", 4, params, NULL);
    }

    if (rc == PS_OK) {
        rc = ps_notify(ps, p->id, 0, distinct_id, NULL);
    }

    if (rc == PS_OK) {
        rc = ps_commit(ps);
    }

    if (rc != PS_OK) {
        ps_rollback(ps);
        return rc;
    }

    if (ps_emit_distinct_id(ps, p->uuid, distinct_id, existed ? 1 : 0) != 0) {
        return PS_ERROR;
    }

    return PS_OK;
}


/*
 * §3.5 mergePeople() in one transaction: target update (G3 version
 * rule), distinct ids moved, cohorts and hash key overrides moved, the
 * source deleted; messages only after COMMIT
 */

static int
ps_merge_people(worker_persons_t *ps, ps_person_t *target,
    ps_person_t *source)
{
    int          rc, i, n;
    char         tid[24], sid[24], team[24], ver[24], created[24];
    char        *props_s, **dids;
    json_t      *merged;
    int64_t      version, created_at, src_version, *dvers;
    PGresult    *res;
    const char  *params[5];

    merged = ingest_props_merge(source->properties, target->properties);
    if (merged == NULL || ingest_props_update(merged, &ps->ops) < 0) {
        json_decref(merged);
        return PS_FAIL;
    }

    version = ingest_merge_version(target->version, source->version);
    created_at = target->created_at_us < source->created_at_us
                 ? target->created_at_us : source->created_at_us;

    props_s = ps_jsonb(merged);
    if (props_s == NULL) {
        json_decref(merged);
        return PS_FAIL;
    }

    snprintf(tid, sizeof(tid), "%lld", (long long) target->id);
    snprintf(sid, sizeof(sid), "%lld", (long long) source->id);
    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
    snprintf(ver, sizeof(ver), "%lld", (long long) version);
    snprintf(created, sizeof(created), "%lld", (long long) created_at);

    params[0] = tid;
    params[1] = team;
    params[2] = ver;
    params[3] = created;
    params[4] = props_s;

    res = NULL;
    dids = NULL;
    dvers = NULL;
    n = 0;
    src_version = 0;

    /*
     * every statement of the merge, and the foreign key checks its
     * DELETE fires at COMMIT (cached plans too), looks rows up by an
     * index: the connection plans them without sequential scans
     * (worker_pg_index_plans; a SET LOCAL here before cost a round trip
     * per merge)
     */
    rc = ps_exec(ps, "ps_merge_target", 5, params, NULL);

    free(props_s);

    if (rc == PS_OK) {
        params[0] = tid;
        params[1] = sid;
        params[2] = team;
        rc = ps_exec(ps, "ps_merge_move", 3, params, &res);
    }

    if (rc == PS_OK) {
        n = PQntuples(res);
        if (n == 0) {
            /* the source vanished: a race, start over */
            rc = PS_CONFLICT;
        }
    }

    if (rc == PS_OK) {
        dids = calloc(n, sizeof(char *));
        dvers = calloc(n, sizeof(int64_t));

        if (dids == NULL || dvers == NULL) {
            rc = PS_FAIL;
        }

        for (i = 0; rc == PS_OK && i < n; i++) {
            dids[i] = strdup(PQgetvalue(res, i, 0));
            dvers[i] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
            if (dids[i] == NULL) {
                rc = PS_FAIL;
            }
        }
    }

    PQclear(res);
    res = NULL;

    if (rc == PS_OK) {
        rc = ps_exec(ps, "ps_merge_cohorts", 2, params, NULL);
    }

    if (rc == PS_OK) {
        rc = ps_exec(ps, "ps_merge_hashkeys", 3, params, NULL);
    }

    if (rc == PS_OK) {
        params[0] = team;
        params[1] = sid;
        params[2] = tid;
        rc = ps_exec(ps, "ps_merge_delete", 3, params, &res);

        if (rc == PS_OK) {
            if (PQntuples(res) == 0) {
                rc = PS_CONFLICT;

            } else {
                src_version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            }

            PQclear(res);
        }
    }

    if (rc == PS_OK) {
        rc = ps_notify(ps, target->id, source->id, NULL, NULL);
    }

    if (rc == PS_OK) {
        /* deferred FK violations surface here, as a conflict */
        rc = ps_commit(ps);
    }

    if (rc != PS_OK) {
        for (i = 0; dids && i < n; i++) {
            free(dids[i]);
        }

        free(dids);
        free(dvers);
        json_decref(merged);

        return rc;
    }

    json_decref(target->properties);
    target->properties = merged;
    target->version = version;
    target->created_at_us = created_at;
    target->is_identified = 1;

    ps->stats.merged++;

    rc = ps_emit_person(ps, target, 0, version);

    for (i = 0; i < n; i++) {
        if (rc == 0) {
            rc = ps_emit_distinct_id(ps, target->uuid, dids[i], dvers[i]);
        }

        free(dids[i]);
    }

    free(dids);
    free(dvers);

    if (rc == 0) {
        rc = ps_emit_person(ps, source, 1,
                            src_version + INGEST_DELETE_VERSION_BUMP);
    }

    if (rc != 0) {
        return PS_ERROR;
    }

    ps_redis_write(ps, target);

    /* hook: the source's overrides follow in Redis too (hko.c) */
    (void) worker_hko_move(ps->redis, ps->team_id, target->id, source->id);

    return PS_OK;
}


/*
 * §3.5 mergeDistinctIds(other, into).  On success *p is the surviving
 * person and *done tells that the event's properties are already applied
 */

static int
ps_identify(worker_persons_t *ps, const char *other, ps_person_t *p,
    int *done)
{
    int                     rc, attempt, existed_o, existed_i;
    const char             *into, *primary, *second;
    ps_person_t             o, i;
    ingest_merge_action_e   action;
    ingest_person_state_t   so, si;

    into = ps->m->distinct_id;
    memset(&o, 0, sizeof(ps_person_t));
    memset(&i, 0, sizeof(ps_person_t));

    rc = PS_CONFLICT;
    *done = 0;

    for (attempt = 0; attempt < PS_ATTEMPTS && rc == PS_CONFLICT; attempt++)
    {
        if (ps_simple(ps, "BEGIN") != PS_OK) {
            rc = PS_ERROR;
            break;
        }

        rc = ps_fetch(ps, other, 1, &o);
        if (rc == PS_OK) {
            rc = ps_fetch(ps, into, 1, &i);
        }

        if (rc != PS_OK) {
            ps_rollback(ps);
            continue;
        }

        /* whatever happens next changes these two ids and persons */
        ps_cache_forget(ps, ps->team_id, other);
        ps_cache_forget(ps, ps->team_id, into);

        if (o.exists) {
            ps_cache_forget_person(ps, o.id);
        }

        if (i.exists) {
            ps_cache_forget_person(ps, i.id);
        }

        memset(&so, 0, sizeof(so));
        memset(&si, 0, sizeof(si));
        so.id = o.id;
        so.version = o.version;
        so.exists = o.exists;
        so.is_identified = o.is_identified;
        si.id = i.id;
        si.version = i.version;
        si.exists = i.exists;
        si.is_identified = i.is_identified;

        action = ingest_merge_decide(ps->m->event, &so, &si);

        if (action != INGEST_MERGE_PEOPLE) {
            /* the row locks only matter to the merge transaction */
            ps_rollback(ps);
        }

        switch (action) {

        case INGEST_MERGE_CREATE:
            /* personless bookkeeping decides the primary id (G3) */
            rc = ps_simple(ps, "BEGIN");
            if (rc == PS_OK) {
                rc = ps_personless_merged(ps, into, &existed_i);
            }
            if (rc == PS_OK) {
                rc = ps_personless_merged(ps, other, &existed_o);
            }

            if (rc == PS_OK) {
                primary = into;
                second = other;

                if (existed_o && !existed_i) {
                    primary = other;
                    second = into;
                    existed_i = 0;
                }

                rc = ps_create(ps, primary, second, 0,
                               existed_o && existed_i ? 1 : 0, 1, p);
            }

            if (rc == PS_OK) {
                rc = ps_notify(ps, 0, 0, primary, second);
            }

            if (rc == PS_OK) {
                rc = ps_commit(ps);
            }

            if (rc != PS_OK) {
                ps_rollback(ps);
                ps_person_free(p);
                break;
            }

            rc = ps_emit_created(ps, p, primary, second, 0,
                                 existed_o && existed_i ? 1 : 0);
            *done = 1;
            break;

        case INGEST_MERGE_ADD_TO_OTHER:
            rc = ps_add_distinct_id(ps, &o, into);
            if (rc == PS_OK) {
                *p = o;
                memset(&o, 0, sizeof(ps_person_t));
            }
            break;

        case INGEST_MERGE_ADD_TO_INTO:
            rc = ps_add_distinct_id(ps, &i, other);
            if (rc == PS_OK) {
                *p = i;
                memset(&i, 0, sizeof(ps_person_t));
            }
            break;

        case INGEST_MERGE_ALREADY_SAME:
            *p = i;
            memset(&i, 0, sizeof(ps_person_t));
            rc = PS_OK;
            break;

        case INGEST_MERGE_PEOPLE:
            rc = ps_merge_people(ps, &i, &o);
            if (rc == PS_OK) {
                *p = i;
                memset(&i, 0, sizeof(ps_person_t));
                *done = 1;

            } else {
                ps_rollback(ps);
            }
            break;

        case INGEST_MERGE_REFUSE_IDENTIFIED:
        default:
            ps->warn(ps->data, ps->team_id, "cannot_merge_already_identified",
                     ingest_warning_merge(other, into, ps->m->uuid), 1);
            *p = i;
            memset(&i, 0, sizeof(ps_person_t));
            rc = PS_OK;
            break;
        }
    }

    ps_person_free(&o);
    ps_person_free(&i);

    if (rc == PS_CONFLICT) {
        ps->warn(ps->data, ps->team_id, "merge_race_condition",
                 ingest_warning_merge(other, into, ps->m->uuid), 1);
        ps_person_free(p);
        *done = 0;
        return PS_OK;
    }

    return rc;
}


/* §3.8 */

static int
ps_personless(worker_persons_t *ps, worker_person_result_t *res,
    int team_opt_out)
{
    int          rc, merged;
    char         team[24];
    size_t       len;
    PGresult    *r;
    ps_person_t  p;
    const char  *params[2];

    memset(&p, 0, sizeof(ps_person_t));

    rc = ps_fetch(ps, ps->m->distinct_id, 0, &p);
    if (rc != PS_OK) {
        return rc;
    }

    len = strlen(ps->m->distinct_id);

    if (!p.exists
        && !ingest_idset_has(ps->personless, ps->team_id, ps->m->distinct_id,
                             len))
    {
        snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
        params[0] = team;
        params[1] = ps->m->distinct_id;

        rc = ps_exec(ps, "ps_personless", 2, params, &r);
        if (rc != PS_OK) {
            return rc;
        }

        merged = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);

        /* out of memory: written again next time, which is harmless */
        (void) ingest_idset_add(ps->personless, ps->team_id,
                                ps->m->distinct_id, len);

        if (merged) {
            /* a merge raced us: the person exists by now */
            ps_cache_forget(ps, ps->team_id, ps->m->distinct_id);
            rc = ps_fetch(ps, ps->m->distinct_id, 0, &p);
            if (rc != PS_OK) {
                return rc;
            }
        }
    }

    res->properties = NULL;

    if (p.exists) {
        memcpy(res->uuid, p.uuid, sizeof(res->uuid));
        res->created_at_us = p.created_at_us;
        res->mode = ingest_personless_mode(1, ps->ts_us, p.created_at_us,
                                           team_opt_out);
        ps_person_free(&p);
        return PS_OK;
    }

    if (ingest_person_uuid(ps->team_id, ps->m->distinct_id,
                           strlen(ps->m->distinct_id), res->uuid)
        != 0)
    {
        return PS_FAIL;
    }

    res->created_at_us = INGEST_PERSONLESS_CREATED_AT_US;
    res->mode = INGEST_PERSON_MODE_PROPERTYLESS;

    return PS_OK;
}


int
worker_persons_process(worker_persons_t *ps, int64_t team_id,
    ingest_message_t *m, int64_t timestamp_us, int team_opt_out,
    worker_person_result_t *res)
{
    int                      rc, attempt, done, identify, no_update;
    char                    *other, iso[INGEST_TIME_BUF_LEN];
    ps_person_t              p;
    ps_cached_t             *c;
    const char              *illegal;
    ingest_merge_trigger_e   trig;

    memset(res, 0, sizeof(worker_person_result_t));
    memset(&p, 0, sizeof(ps_person_t));

    ps->team_id = team_id;
    ps->m = m;
    ps->ts_us = timestamp_us;

    if (!m->process_person) {
        rc = ps_personless(ps, res, team_opt_out);
        return rc == PS_OK ? WORKER_PERSON_OK
               : rc == PS_FAIL ? WORKER_PERSON_FAIL : WORKER_PERSON_RETRY;
    }

    memset(&ps->ops, 0, sizeof(ingest_props_ops_t));

    /* §1.6: $exception and $$heatmap never update persons */
    no_update = (m->route != INGEST_ROUTE_EVENT);

    if (!no_update) {
        ingest_props_ops(m->properties, &ps->ops);

        if (strcmp(m->event, "survey shown") == 0) {
            eh_time_format_iso_ms(timestamp_us, iso);
            ps->ops.survey_last_seen = iso;
        }
    }

    done = 0;
    identify = 0;
    rc = PS_OK;

    trig = no_update ? INGEST_MERGE_NONE
           : ingest_merge_trigger(m->event, m->distinct_id, m->properties,
                                  &other, &illegal);

    if (trig == INGEST_MERGE_ILLEGAL_ID) {
        ps->warn(ps->data, team_id, "cannot_merge_with_illegal_distinct_id",
                 ingest_warning_illegal_id(illegal,
                                           illegal == other
                                           ? m->distinct_id : other,
                                           m->uuid),
                 1);
        free(other);

    } else if (trig == INGEST_MERGE_FETCH) {
        identify = 1;
        /* forgets the ids and persons it touches (ps_cached_t) */
        rc = ps_identify(ps, other, &p, &done);
        free(other);

    } else if (trig == INGEST_MERGE_NONE && !no_update) {
        /*
         * the common case: a known person and nothing to change; no
         * copy, no write, and the row reuses the properties' text
         */
        c = ps_cache_find(ps, team_id, m->distinct_id);

        if (c && c->p.exists && ps_no_change(c->p.properties, &ps->ops)) {
            res->properties_text = ps_cache_text(c, &res->properties_len);

            if (res->properties_text) {
                memcpy(res->uuid, c->p.uuid, sizeof(res->uuid));
                res->created_at_us = c->p.created_at_us;
                res->mode = INGEST_PERSON_MODE_FULL;

                return WORKER_PERSON_OK;
            }
        }
    }

    /* §3.3 handleUpdate(): fetch, create or update, retried on races */

    for (attempt = 0; rc == PS_OK && !done && attempt < PS_ATTEMPTS;
         attempt++)
    {
        if (!p.exists) {
            rc = ps_fetch(ps, m->distinct_id, 0, &p);
            if (rc != PS_OK) {
                break;
            }
        }

        if (!p.exists) {
            rc = ps_create(ps, m->distinct_id, NULL, 0, 0, identify, &p);

            if (rc == PS_OK) {
                ps_cache_put(ps, team_id, m->distinct_id, &p);
                rc = ps_emit_created(ps, &p, m->distinct_id, NULL, 0, 0);
            }

        } else {
            rc = ps_update(ps, &p, identify, no_update);
        }

        if (rc == PS_CONFLICT) {
            /* someone else changed the person: read it from Postgres */
            ps_cache_forget(ps, team_id, m->distinct_id);

            if (p.exists) {
                ps_cache_forget_person(ps, p.id);
            }

            ps_person_free(&p);
            rc = PS_OK;
            continue;
        }

        done = 1;
    }

    if (rc == PS_OK && !done) {
        rc = PS_FAIL;
    }

    if (rc != PS_OK) {
        ps_person_free(&p);
        return rc == PS_FAIL ? WORKER_PERSON_FAIL : WORKER_PERSON_RETRY;
    }

    memcpy(res->uuid, p.uuid, sizeof(res->uuid));
    res->created_at_us = p.created_at_us;
    res->properties = p.properties;
    res->mode = INGEST_PERSON_MODE_FULL;

    return WORKER_PERSON_OK;
}


static int
ps_emit_person(worker_persons_t *ps, ps_person_t *p, int deleted,
    int64_t version)
{
    int     rc;
    char   *v;
    size_t  len;

    v = ingest_output_person(p->uuid, ps->team_id, p->created_at_us,
                             p->properties, p->is_identified, deleted,
                             version, INGEST_TIME_NONE, &len);
    if (v == NULL) {
        return -1;
    }

    rc = ps->emit(ps->data, ps->cf->person_topic, v, len);
    free(v);

    return rc;
}


static int
ps_emit_distinct_id(worker_persons_t *ps, const char *uuid,
    const char *distinct_id, int64_t version)
{
    int     rc;
    char   *v;
    size_t  len;

    v = ingest_output_distinct_id(uuid, ps->team_id, distinct_id,
                                  strlen(distinct_id), version, 0, &len);
    if (v == NULL) {
        return -1;
    }

    rc = ps->emit(ps->data, ps->cf->distinct_id_topic, v, len);
    free(v);

    return rc;
}


/*
 * The decide module's person entries (common/eh_person_entry.h), one
 * per distinct id.  Best effort: decide falls back to the request's
 * properties, so a Redis outage must not stop ingestion.
 */

static void
ps_redis_write(worker_persons_t *ps, ps_person_t *p)
{
    int           i;
    char         *value, key[1024], pid[24], team[24];
    size_t        klen;
    PGresult     *res;
    redisReply   *reply;
    const char   *params[2];

    if (ps->redis == NULL && time(NULL) < ps->redis_retry) {
        return;
    }

    snprintf(pid, sizeof(pid), "%lld", (long long) p->id);
    snprintf(team, sizeof(team), "%lld", (long long) ps->team_id);
    params[0] = pid;
    params[1] = team;

    if (ps_exec(ps, "ps_distinct_ids", 2, params, &res) != PS_OK) {
        return;
    }

    value = eh_person_entry_encode(p->id, p->uuid, p->version,
                                   p->properties);

    for (i = 0; value && i < PQntuples(res); i++) {
        klen = eh_person_key(key, sizeof(key), ps->team_id,
                             PQgetvalue(res, i, 0), PQgetlength(res, i, 0));
        if (klen >= sizeof(key)) {
            continue;
        }

        reply = worker_redis_command(&ps->redis, &ps->redis_retry,
                                     ps->cf->redis_address, 1, "persons",
                                     "SET %b %s", key, klen, value);

        if (reply == NULL) {
            break;
        }

        freeReplyObject(reply);
    }

    free(value);
    PQclear(res);
}


/*
 * A batch starts: other workers' changes are applied to the cache, the
 * misses are read in one query, and the personless ids are recorded in
 * one statement (§3.8).  Failures only cost round trips later: the
 * per-event path does the same work one event at a time.
 */

int
worker_persons_prefetch(worker_persons_t *ps, const worker_person_key_t *keys,
    int n)
{
    if (worker_persons_prefetch_send(ps, keys, n, NULL, 0) != 0) {
        return -1;
    }

    return worker_persons_prefetch_finish(ps);
}


/*
 * A set of team:distinct_id for one batch (open addressing on the
 * cache's hash), cheaper than a JSON object per key; the ids are
 * borrowed from the caller
 */

typedef struct {
    uint32_t                    hash;
    int64_t                     team_id;
    const char                 *distinct_id;
} ps_key_slot_t;


typedef struct {
    ps_key_slot_t              *slots;
    size_t                      mask;
} ps_keyset_t;


static int
ps_keyset_init(ps_keyset_t *ks, int n)
{
    size_t  size;

    for (size = 16; size < (size_t) n * 2 + 2; size <<= 1) { /* void */ }

    ks->mask = size - 1;
    ks->slots = calloc(size, sizeof(ps_key_slot_t));

    return ks->slots ? 0 : -1;
}


/* 1 when added, 0 when already there */

static int
ps_keyset_add(ps_keyset_t *ks, int64_t team_id, const char *distinct_id,
    int add)
{
    size_t          i;
    uint32_t        h;
    ps_key_slot_t  *e;

    h = ps_cache_hash(team_id, distinct_id);

    for (i = h & ks->mask; ; i = (i + 1) & ks->mask) {
        e = &ks->slots[i];

        if (e->distinct_id == NULL) {
            if (add) {
                e->hash = h;
                e->team_id = team_id;
                e->distinct_id = distinct_id;
            }

            return 1;
        }

        if (e->hash == h && e->team_id == team_id
            && strcmp(e->distinct_id, distinct_id) == 0)
        {
            return 0;
        }
    }
}


/*
 * The query is sent without waiting for it, on a connection of its
 * own: Postgres works on it while the worker processes the batch
 * before (early) and parses the next one.  early: the keys of the
 * batch still to process, whose persons that batch may change; they
 * are left to the per-event path, and the caller sends early only
 * when that batch merges nobody (a merge moves ids it does not name).
 */

int
worker_persons_prefetch_send(worker_persons_t *ps,
    const worker_person_key_t *keys, int n,
    const worker_person_key_t *early, int nearly)
{
    int           i, k, merges, pl;
    char          num[24];
    ps_pf_key_t  *pk;
    ps_cached_t  *c;
    const char   *params[1];
    ps_keyset_t   seen, full, before;

    if (ps->pf_n) {
        ps->pf_stale = 1;
        (void) worker_persons_prefetch_finish(ps);
    }

    ps_notifications(ps);

    seen.slots = full.slots = before.slots = NULL;
    merges = 0;
    k = 0;

    if (n > ps->pf_size) {
        pk = realloc(ps->pf_keys, n * sizeof(ps_pf_key_t));
        if (pk == NULL) {
            goto failed;
        }

        ps->pf_keys = pk;
        ps->pf_size = n;
    }

    if (ps_keyset_init(&seen, n) != 0 || ps_keyset_init(&full, n) != 0
        || ps_keyset_init(&before, early ? nearly : 0) != 0)
    {
        goto failed;
    }

    for (i = 0; early && i < nearly; i++) {
        (void) ps_keyset_add(&before, early[i].team_id, early[i].distinct_id,
                             1);
    }

    for (i = 0; i < n; i++) {
        merges |= keys[i].merge;

        if (!keys[i].personless) {
            (void) ps_keyset_add(&full, keys[i].team_id,
                                 keys[i].distinct_id, 1);
        }
    }

    ps->pf_ids.len = 0;
    ps->pf_ids.failed = 0;
    ps->pf_text.len = 0;
    ps->pf_text.failed = 0;

    /* [{"t": team, "d": id, "pl": bool}, ...] for jsonb_to_recordset */
    ingest_str_lit(&ps->pf_text, "[");

    for (i = 0; i < n; i++) {
        if (early && !ps_keyset_add(&before, keys[i].team_id,
                                    keys[i].distinct_id, 0))
        {
            continue;
        }

        c = ps_cache_find(ps, keys[i].team_id, keys[i].distinct_id);

        /*
         * a personless id without a person is written once (§3.8): not
         * when a merge of the batch could read the table first, nor for
         * an id whose person an earlier event of the batch may create
         */
        pl = !merges && keys[i].personless && (c == NULL || !c->p.exists)
             && ps_keyset_add(&full, keys[i].team_id, keys[i].distinct_id,
                              0)
             && !ingest_idset_has(ps->personless, keys[i].team_id,
                                  keys[i].distinct_id,
                                  strlen(keys[i].distinct_id));

        if ((c && !pl)
            || !ps_keyset_add(&seen, keys[i].team_id, keys[i].distinct_id, 1))
        {
            continue;
        }

        pk = &ps->pf_keys[k];
        pk->team_id = keys[i].team_id;
        pk->id = ps->pf_ids.len;
        pk->pl = pl;
        ingest_str_add(&ps->pf_ids, keys[i].distinct_id,
                       strlen(keys[i].distinct_id) + 1);

        ingest_str_add(&ps->pf_text, k ? ",{\"t\":" : "{\"t\":", k ? 6 : 5);
        ingest_str_add(&ps->pf_text, num,
                       snprintf(num, sizeof(num), "%lld",
                                (long long) keys[i].team_id));
        ingest_str_lit(&ps->pf_text, ",\"d\":");
        ingest_str_add_json(&ps->pf_text, keys[i].distinct_id,
                            strlen(keys[i].distinct_id));

        if (pl) {
            ingest_str_lit(&ps->pf_text, ",\"pl\":true}");

        } else {
            ingest_str_lit(&ps->pf_text, ",\"pl\":false}");
        }

        k++;
    }

    ingest_str_lit(&ps->pf_text, "]");

    free(seen.slots);
    free(full.slots);
    free(before.slots);
    seen.slots = full.slots = before.slots = NULL;

    if (k == 0) {
        return 0;
    }

    if (ps->pf_text.failed || ps->pf_ids.failed || ps_pf_connect(ps) != 0) {
        goto failed;
    }

    params[0] = ps->pf_text.data;

    if (!PQsendQueryPrepared(ps->pf_conn, "ps_prefetch_batch", 1, params,
                             NULL, NULL, 0))
    {
        worker_log(WORKER_LOG_ERROR, "persons: prefetch: %s",
                   PQerrorMessage(ps->pf_conn));
        ps->stats.pg_errors++;
        goto failed;
    }

    ps->pf_n = k;
    ps->pf_stale = 0;
    ps->pf_early = (early != NULL);

    return 0;

failed:

    free(seen.slots);
    free(full.slots);
    free(before.slots);

    return -1;
}


/* the answer of the query sent: into the cache unless it went stale */

int
worker_persons_prefetch_finish(worker_persons_t *ps)
{
    int         rc;
    PGresult   *res, *more;

    if (ps->pf_n == 0) {
        return 0;
    }

    res = PQgetResult(ps->pf_conn);

    /* a query's results end with NULL: the connection is free then */
    while ((more = PQgetResult(ps->pf_conn)) != NULL) {
        PQclear(more);
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* the events pay with round trips of their own, or retry */
        worker_log(WORKER_LOG_ERROR, "persons: prefetch failed: %s",
                   res ? PQresultErrorMessage(res)
                       : PQerrorMessage(ps->pf_conn));
        ps->stats.pg_errors++;
        rc = -1;

    } else {
        rc = ps->pf_stale ? 0 : ps_prefetch_apply(ps, res);
    }

    PQclear(res);
    ps->pf_n = 0;

    return rc;
}


/* a batch read again: what its query answers is not needed */

void
worker_persons_prefetch_drop(worker_persons_t *ps)
{
    ps->pf_stale = 1;
    (void) worker_persons_prefetch_finish(ps);
}


static int
ps_pf_connect(worker_persons_t *ps)
{
    PGresult         *res;
    const ps_stmt_t  *s;

    if (ps->pf_conn && PQstatus(ps->pf_conn) == CONNECTION_OK) {
        return 0;
    }

    if (ps->pf_conn == NULL) {
        ps->pf_conn = PQconnectdb(ps->cf->postgres_dsn);

    } else {
        PQreset(ps->pf_conn);
    }

    if (PQstatus(ps->pf_conn) != CONNECTION_OK) {
        worker_log(WORKER_LOG_ERROR, "persons: prefetch connection "
                   "failed: %s", PQerrorMessage(ps->pf_conn));
        ps->stats.pg_errors++;
        return -1;
    }

    if (worker_pg_index_plans(ps->pf_conn, "persons: prefetch") != 0) {
        ps->stats.pg_errors++;
        PQfinish(ps->pf_conn);
        ps->pf_conn = NULL;
        return -1;
    }

    for (s = ps_stmts; strcmp(s->name, "ps_prefetch_batch") != 0; s++) {
        /* void */
    }

    res = PQprepare(ps->pf_conn, s->name, s->sql, 0, NULL);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        worker_log(WORKER_LOG_ERROR, "persons: prepare %s failed: %s",
                   s->name, PQresultErrorMessage(res));
        PQclear(res);
        ps->stats.pg_errors++;

        /* prepared again on a fresh connection next time */
        PQfinish(ps->pf_conn);
        ps->pf_conn = NULL;
        return -1;
    }

    PQclear(res);

    return 0;
}


static int
ps_prefetch_apply(worker_persons_t *ps, PGresult *res)
{
    int           i, rows;
    int64_t       team;
    ps_pf_key_t  *pk;
    ps_person_t   p;
    const char   *did;
    ps_keyset_t   found;

    rows = PQntuples(res);

    if (ps_keyset_init(&found, rows) != 0) {
        return -1;
    }

    for (i = 0; i < rows; i++) {
        if (PQgetvalue(res, i, 0)[0] != '0') {
            continue;
        }

        memset(&p, 0, sizeof(ps_person_t));
        team = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        p.id = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        snprintf(p.uuid, sizeof(p.uuid), "%s", PQgetvalue(res, i, 4));
        p.created_at_us = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        p.properties = ingest_json_loadb(PQgetvalue(res, i, 6),
                                         PQgetlength(res, i, 6));
        p.version = strtoll(PQgetvalue(res, i, 7), NULL, 10);
        p.is_identified = PQgetvalue(res, i, 8)[0] == 't';
        p.exists = 1;

        /*
         * unreadable rows are left to the normal fetch and its error;
         * sent early, a person the batch before processed since may
         * have changed after the query read it: fetched when needed
         */
        if (json_is_object(p.properties)
            && !(ps->pf_early
                 && (ps_cache_find(ps, team, PQgetvalue(res, i, 2))
                     || ps_cache_find_person(ps, p.id))))
        {
            ps_cache_put(ps, team, PQgetvalue(res, i, 2), &p);
        }

        json_decref(p.properties);

        /* the result lives until PQclear(): its strings are borrowed */
        (void) ps_keyset_add(&found, team, PQgetvalue(res, i, 2), 1);
    }

    /* the ids without a person are known too */
    for (i = 0; i < ps->pf_n; i++) {
        pk = &ps->pf_keys[i];
        team = pk->team_id;
        did = ps->pf_ids.data + pk->id;

        if (!ps_keyset_add(&found, team, did, 0)) {
            continue;
        }

        if (ps_cache_find(ps, team, did) == NULL) {
            memset(&p, 0, sizeof(ps_person_t));
            ps_cache_put(ps, team, did, &p);
        }

        if (pk->pl) {
            (void) ingest_idset_add(ps->personless, team, did, strlen(did));
        }
    }

    free(found.slots);

    /* a merge claimed these ids: their person is read again */
    for (i = 0; i < rows; i++) {
        if (PQgetvalue(res, i, 0)[0] == '1') {
            ps_cache_forget(ps, strtoll(PQgetvalue(res, i, 1), NULL, 10),
                            PQgetvalue(res, i, 2));
        }
    }

    return 0;
}


void
worker_persons_reset(worker_persons_t *ps)
{
    /* partitions moved: their distinct ids may have changed elsewhere */
    if (ps) {
        ps_cache_clear(ps);

        /* the answer in flight may predate the move: not cached */
        ps->pf_stale = 1;
    }
}


/*
 * Another worker's change (ps_update, ps_notify): payload
 * {"t": team, "p": [person ids], "d": [distinct ids]}
 */

static void
ps_notifications(worker_persons_t *ps)
{
    size_t        i;
    json_t       *v, *e;
    int64_t       team;
    PGnotify     *n;
    json_error_t  err;

    if (ps->conn == NULL || PQstatus(ps->conn) != CONNECTION_OK) {
        return;
    }

    if (PQconsumeInput(ps->conn) == 0) {
        /* the connection broke: ps_connect() resets and drops all */
        return;
    }

    while ((n = PQnotifies(ps->conn)) != NULL) {
        if (n->be_pid == PQbackendPID(ps->conn)) {
            /* our own change, already in the cache */
            PQfreemem(n);
            continue;
        }

        v = json_loads(n->extra, 0, &err);
        team = json_integer_value(json_object_get(v, "t"));

        if (!json_is_object(v)) {
            ps_cache_clear(ps);
        }

        json_array_foreach(json_object_get(v, "p"), i, e) {
            ps_cache_forget_person(ps, json_integer_value(e));
        }

        json_array_foreach(json_object_get(v, "d"), i, e) {
            if (json_is_string(e)) {
                ps_cache_forget(ps, team, json_string_value(e));
            }
        }

        json_decref(v);
        PQfreemem(n);
    }
}


/* inside the caller's transaction: delivered at COMMIT */

static int
ps_notify(worker_persons_t *ps, int64_t pid1, int64_t pid2,
    const char *did1, const char *did2)
{
    char        *s, *lit;
    size_t       len;
    json_t      *v, *pids, *dids;

    v = json_object();
    pids = json_array();
    dids = json_array();

    if (pid1) {
        json_array_append_new(pids, json_integer(pid1));
    }

    if (pid2) {
        json_array_append_new(pids, json_integer(pid2));
    }

    if (did1) {
        json_array_append_new(dids, json_string(did1));
    }

    if (did2) {
        json_array_append_new(dids, json_string(did2));
    }

    json_object_set_new(v, "t", json_integer(ps->team_id));
    json_object_set_new(v, "p", pids);
    json_object_set_new(v, "d", dids);

    s = json_dumps(v, JSON_COMPACT);
    json_decref(v);

    if (s == NULL) {
        return PS_FAIL;
    }

    /* sent with the COMMIT (ps_commit): no round trip of its own */
    lit = PQescapeLiteral(ps->conn, s, strlen(s));
    free(s);

    if (lit == NULL) {
        return PS_FAIL;
    }

    len = strlen(lit) + sizeof("SELECT pg_notify('" PS_CHANNEL "', ); COMMIT");
    free(ps->commit);
    ps->commit = malloc(len);

    if (ps->commit) {
        snprintf(ps->commit, len, "SELECT pg_notify('" PS_CHANNEL "', %s); "
                 "COMMIT", lit);
    }

    PQfreemem(lit);

    return ps->commit ? PS_OK : PS_FAIL;
}


static int
ps_commit(worker_persons_t *ps)
{
    int    rc;
    char  *sql;

    sql = ps->commit;
    ps->commit = NULL;

    /* PQexec() answers with the last statement's result: COMMIT's */
    rc = ps_simple(ps, sql ? sql : "COMMIT");
    free(sql);

    return rc;
}


/*
 * 1 if the operations change nothing and {...props, ...$set} prints
 * exactly as props does (same scalar types and values): the cached
 * text can stand for the updated properties
 */

static int
ps_no_change(json_t *props, const ingest_props_ops_t *ops)
{
    json_t      *v, *cur;
    const char  *key;

    if (ops->unset || ops->survey_last_seen) {
        return 0;
    }

    if (ops->set_once) {
        json_object_foreach(ops->set_once, key, v) {
            if (json_object_get(props, key) == NULL) {
                return 0;
            }
        }
    }

    if (ops->set == NULL) {
        return 1;
    }

    json_object_foreach(ops->set, key, v) {
        cur = json_object_get(props, key);

        if (cur == NULL || json_typeof(cur) != json_typeof(v)) {
            return 0;
        }

        switch (json_typeof(v)) {

        case JSON_STRING:
            if (json_string_length(cur) != json_string_length(v)
                || memcmp(json_string_value(cur), json_string_value(v),
                          json_string_length(v)) != 0)
            {
                return 0;
            }

            break;

        case JSON_INTEGER:
            if (json_integer_value(cur) != json_integer_value(v)) {
                return 0;
            }

            break;

        case JSON_TRUE:
        case JSON_FALSE:
        case JSON_NULL:
            break;

        default:
            return 0;
        }
    }

    return 1;
}


static uint32_t
ps_cache_hash(int64_t team_id, const char *distinct_id)
{
    /* a word at a time (ingest_hash.h), not a multiply per byte */
    return ingest_hash(distinct_id, strlen(distinct_id))
           ^ (uint32_t) team_id ^ (uint32_t) (team_id >> 32);
}


static ps_cached_t *
ps_cache_find(worker_persons_t *ps, int64_t team_id, const char *distinct_id)
{
    uint32_t      h;
    ps_cached_t  *c;

    if (ps->cache == NULL) {
        return NULL;
    }

    h = ps_cache_hash(team_id, distinct_id);

    for (c = ps->cache[h % PS_CACHE_BUCKETS]; c; c = c->next) {
        if (c->hash == h && c->team_id == team_id
            && strcmp(c->distinct_id, distinct_id) == 0)
        {
            return c;
        }
    }

    return NULL;
}


static void
ps_cache_unlink_person(worker_persons_t *ps, ps_cached_t *c)
{
    ps_cached_t  **pp;

    if (!c->p.exists) {
        return;
    }

    for (pp = &ps->by_person[(uint64_t) c->p.id % PS_CACHE_BUCKETS]; *pp;
         pp = &(*pp)->pnext)
    {
        if (*pp == c) {
            *pp = c->pnext;
            break;
        }
    }

    c->pnext = NULL;
}


static void
ps_cache_put(worker_persons_t *ps, int64_t team_id, const char *distinct_id,
    const ps_person_t *p)
{
    uint32_t      h;
    json_t       *copy;
    ps_cached_t  *c, **b;

    copy = NULL;

    if (p->exists) {
        copy = json_deep_copy(p->properties);

        if (copy == NULL) {
            /* no memory: an entry that says "no person" would lie */
            ps_cache_forget(ps, team_id, distinct_id);
            return;
        }
    }

    if (ps->cache == NULL) {
        ps->cache = calloc(PS_CACHE_BUCKETS, sizeof(ps_cached_t *));
        ps->by_person = calloc(PS_CACHE_BUCKETS, sizeof(ps_cached_t *));

        if (ps->cache == NULL || ps->by_person == NULL) {
            free(ps->cache);
            free(ps->by_person);
            ps->cache = ps->by_person = NULL;
            json_decref(copy);
            return;
        }
    }

    c = ps_cache_find(ps, team_id, distinct_id);

    if (c == NULL) {
        if (ps->ncache >= PS_CACHE_MAX) {
            ps_cache_clear(ps);
        }

        c = calloc(1, sizeof(ps_cached_t));
        if (c == NULL) {
            json_decref(copy);
            return;
        }

        c->distinct_id = strdup(distinct_id);
        if (c->distinct_id == NULL) {
            free(c);
            json_decref(copy);
            return;
        }

        h = ps_cache_hash(team_id, distinct_id);
        c->hash = h;
        c->team_id = team_id;
        b = &ps->cache[h % PS_CACHE_BUCKETS];
        c->next = *b;
        *b = c;
        ps->ncache++;

    } else {
        ps_cache_unlink_person(ps, c);
        json_decref(c->p.properties);
        free(c->text);
        c->text = NULL;
    }

    c->p = *p;
    c->p.properties = copy;

    if (p->exists) {
        b = &ps->by_person[(uint64_t) p->id % PS_CACHE_BUCKETS];
        c->pnext = *b;
        *b = c;
    }
}


/* every cached distinct id of the person gets its new state */

static void
ps_cache_refresh(worker_persons_t *ps, const ps_person_t *p)
{
    json_t       *copy;
    ps_cached_t  *c;

    if (ps->by_person == NULL) {
        return;
    }

    copy = json_deep_copy(p->properties);
    if (copy == NULL) {
        ps_cache_forget_person(ps, p->id);
        return;
    }

    for (c = ps->by_person[(uint64_t) p->id % PS_CACHE_BUCKETS]; c;
         c = c->pnext)
    {
        if (c->p.id != p->id) {
            continue;
        }

        /* cached properties are never changed in place: shared */
        json_decref(c->p.properties);
        c->p.properties = json_incref(copy);
        c->p.version = p->version;
        c->p.is_identified = p->is_identified;
        c->p.created_at_us = p->created_at_us;
        free(c->text);
        c->text = NULL;
    }

    json_decref(copy);
}


static void
ps_cache_free_entry(ps_cached_t *c)
{
    free(c->distinct_id);
    free(c->text);
    json_decref(c->p.properties);
    free(c);
}


static void
ps_cache_forget(worker_persons_t *ps, int64_t team_id,
    const char *distinct_id)
{
    ps_cached_t  *c, **pp;

    c = ps_cache_find(ps, team_id, distinct_id);
    if (c == NULL) {
        return;
    }

    /* the query in flight may have read what made this entry go */
    if (ps->pf_n && ps->pf_early) {
        ps->pf_stale = 1;
    }

    ps_cache_unlink_person(ps, c);

    for (pp = &ps->cache[c->hash % PS_CACHE_BUCKETS]; *pp;
         pp = &(*pp)->next)
    {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }

    ps_cache_free_entry(c);
    ps->ncache--;
}


static ps_cached_t *
ps_cache_find_person(worker_persons_t *ps, int64_t id)
{
    ps_cached_t  *c;

    if (ps->by_person == NULL) {
        return NULL;
    }

    for (c = ps->by_person[(uint64_t) id % PS_CACHE_BUCKETS]; c;
         c = c->pnext)
    {
        if (c->p.id == id) {
            return c;
        }
    }

    return NULL;
}


static void
ps_cache_forget_person(worker_persons_t *ps, int64_t id)
{
    ps_cached_t  *c;

    if (ps->by_person == NULL) {
        return;
    }

    for ( ;; ) {
        for (c = ps->by_person[(uint64_t) id % PS_CACHE_BUCKETS]; c;
             c = c->pnext)
        {
            if (c->p.id == id) {
                break;
            }
        }

        if (c == NULL) {
            return;
        }

        ps_cache_forget(ps, c->team_id, c->distinct_id);
    }
}


static void
ps_cache_clear(worker_persons_t *ps)
{
    size_t        i;
    ps_cached_t  *c, *next;

    if (ps->pf_n && ps->pf_early) {
        ps->pf_stale = 1;
    }

    if (ps->cache == NULL) {
        return;
    }

    for (i = 0; i < PS_CACHE_BUCKETS; i++) {
        for (c = ps->cache[i]; c; c = next) {
            next = c->next;
            ps_cache_free_entry(c);
        }

        ps->cache[i] = NULL;
        ps->by_person[i] = NULL;
    }

    ps->ncache = 0;
}


static const char *
ps_cache_text(ps_cached_t *c, size_t *len)
{
    if (c->text == NULL) {
        c->text = json_dumps(c->p.properties, JSON_COMPACT | JSON_ENCODE_ANY);
        if (c->text == NULL) {
            return NULL;
        }

        c->text_len = strlen(c->text);
    }

    *len = c->text_len;

    return c->text;
}
