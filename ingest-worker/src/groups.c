/*
 * Copyright (C) edgehog
 */

/*
 * Groups of events with person processing (spec/ingestion.md §3.9):
 * $groups {type: key} becomes properties.$group_<index>, PostHog's
 * addGroupProperties().  And $groupidentify (upsertGroup()):
 * the group type gets an index in posthog_grouptypemapping (created on
 * first sight, at most 5 per team), the group row in posthog_group
 * takes $group_set, a clickhouse_groups row follows every change, and
 * the group entry ngx_decide_module reads (common/eh_group_entry.h) is
 * written so group flags match on properties that came only through
 * ingestion.  The decisions are ingest_groups.c; this file does I/O.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "worker.h"
#include "eh_group_entry.h"
#include "ingest_groups.h"
#include "ingest_message.h"


#define GS_ATTEMPTS     5
/* bounded memory: the mapping cache is forgotten wholesale when full */
#define GS_CACHE_MAX    100000

#define GS_OK           0
#define GS_CONFLICT     1
#define GS_ERROR       -1
#define GS_FAIL        -2


struct worker_groups_s {
    const worker_config_t      *cf;
    PGconn                     *conn;
    int                         prepared;
    redisContext               *redis;
    time_t                      redis_retry;
    json_t                     *types;      /* "team:type" -> index */
    worker_groups_emit_pt       emit;
    void                       *data;
};


typedef struct {
    const char                 *name;
    const char                 *sql;
} gs_stmt_t;


static int gs_connect(worker_groups_t *gs);
static int gs_exec(worker_groups_t *gs, const char *name, int n,
    const char **params, PGresult **out);
static int gs_type_index(worker_groups_t *gs, int64_t team_id,
    const char *type, int *index);
static int gs_identify(worker_groups_t *gs, int64_t team_id,
    ingest_message_t *m, int64_t timestamp_us, int replay);
static int gs_upsert(worker_groups_t *gs, int64_t team_id, int index,
    ingest_group_ident_t *g, int64_t ts_us, int replay);
static void gs_redis_write(worker_groups_t *gs, int64_t team_id, int index,
    const char *key, int64_t version, json_t *props);


static const gs_stmt_t  gs_stmts[] = {

    { "gs_type",
      "SELECT group_type_index FROM posthog_grouptypemapping "
      "WHERE team_id = $1 AND group_type = $2" },

    /* the lowest free index; a concurrent insert makes it a conflict */
    { "gs_type_insert",
      "INSERT INTO posthog_grouptypemapping (team_id, project_id, "
      "group_type, group_type_index) SELECT $1, COALESCE((SELECT "
      "project_id FROM posthog_team WHERE id = $1), $1), $2, i "
      "FROM generate_series(0, 4) AS i WHERE i NOT IN (SELECT "
      "group_type_index FROM posthog_grouptypemapping WHERE team_id = $1) "
      "ORDER BY i LIMIT 1 ON CONFLICT DO NOTHING RETURNING group_type_index" },

    { "gs_fetch",
      "SELECT id, group_properties, COALESCE(version, 0), "
      "(extract(epoch FROM created_at) * 1000000)::bigint "
      "FROM posthog_group WHERE team_id = $1 AND group_type_index = $2 "
      "AND group_key = $3 FOR UPDATE" },

    { "gs_insert",
      "INSERT INTO posthog_group (team_id, group_key, group_type_index, "
      "group_properties, created_at, properties_last_updated_at, "
      "properties_last_operation, version) VALUES ($1, $3, $2, $4::jsonb, "
      "'epoch'::timestamptz + $5::bigint * interval '1 microsecond', "
      "'{}', '{}', 1) ON CONFLICT DO NOTHING RETURNING id" },

    { "gs_update",
      "UPDATE posthog_group SET group_properties = $2::jsonb, version = $3, "
      "created_at = 'epoch'::timestamptz + $4::bigint * interval "
      "'1 microsecond' WHERE id = $1" },

    { NULL, NULL }
};


worker_groups_t *
worker_groups_open(const worker_config_t *cf, worker_groups_emit_pt emit,
    void *data)
{
    worker_groups_t  *gs;

    gs = calloc(1, sizeof(worker_groups_t));
    if (gs == NULL) {
        return NULL;
    }

    gs->cf = cf;
    gs->emit = emit;
    gs->data = data;
    gs->types = json_object();

    if (gs->types == NULL) {
        free(gs);
        return NULL;
    }

    return gs;
}


void
worker_groups_close(worker_groups_t *gs)
{
    if (gs == NULL) {
        return;
    }

    if (gs->conn) {
        PQfinish(gs->conn);
    }

    if (gs->redis) {
        redisFree(gs->redis);
    }

    json_decref(gs->types);
    free(gs);
}


int
worker_groups_process(worker_groups_t *gs, int64_t team_id,
    ingest_message_t *m, int64_t timestamp_us, int replay)
{
    int          rc, index;
    char         name[24];
    json_t      *groups, *key;
    const char  *type;

    groups = json_object_get(m->properties, "$groups");

    if (json_is_object(groups)) {
        json_object_foreach(groups, type, key) {
            rc = gs_type_index(gs, team_id, type, &index);

            if (rc == GS_ERROR) {
                return rc;
            }

            if (rc != GS_OK || index < 0) {
                /* no room for the type, or a broken one: as PostHog */
                continue;
            }

            snprintf(name, sizeof(name), "$group_%d", index);

            if (json_object_set(m->properties, name, key) != 0) {
                return GS_FAIL;
            }
        }
    }

    if (strcmp(m->event, "$groupidentify") != 0) {
        return GS_OK;
    }

    return gs_identify(gs, team_id, m, timestamp_us, replay);
}


static int
gs_identify(worker_groups_t *gs, int64_t team_id, ingest_message_t *m,
    int64_t timestamp_us, int replay)
{
    int                   rc, index, attempt;
    ingest_group_ident_t  g;

    rc = ingest_group_identify(m->properties, &g);

    if (rc != 0) {
        /* nothing to do (PostHog returns silently), or ENOMEM */
        return rc > 0 ? 0 : GS_FAIL;
    }

    rc = gs_type_index(gs, team_id, g.type, &index);

    if (rc == GS_OK && index >= 0) {
        for (attempt = 0; attempt < GS_ATTEMPTS; attempt++) {
            rc = gs_upsert(gs, team_id, index, &g, timestamp_us, replay);
            if (rc != GS_CONFLICT) {
                break;
            }
        }

        if (rc == GS_CONFLICT) {
            rc = GS_FAIL;
        }
    }

    if (rc == GS_FAIL) {
        worker_log(WORKER_LOG_WARN, "group of event %s not stored", m->uuid);
    }

    ingest_group_ident_free(&g);

    return rc;
}


static int
gs_connect(worker_groups_t *gs)
{
    int         i;
    PGresult   *res;

    if (gs->conn && PQstatus(gs->conn) == CONNECTION_OK && gs->prepared) {
        return GS_OK;
    }

    if (gs->conn) {
        PQfinish(gs->conn);
    }

    gs->prepared = 0;
    gs->conn = PQconnectdb(gs->cf->postgres_dsn);

    if (PQstatus(gs->conn) != CONNECTION_OK) {
        worker_log(WORKER_LOG_WARN, "groups: postgres: %s",
                   PQerrorMessage(gs->conn));
        return GS_ERROR;
    }

    if (worker_pg_index_plans(gs->conn, "groups") != 0) {
        return GS_ERROR;
    }

    for (i = 0; gs_stmts[i].name; i++) {
        res = PQprepare(gs->conn, gs_stmts[i].name, gs_stmts[i].sql, 0, NULL);

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            worker_log(WORKER_LOG_ERROR, "groups: prepare %s: %s",
                       gs_stmts[i].name, PQresultErrorMessage(res));
            PQclear(res);
            return GS_ERROR;
        }

        PQclear(res);
    }

    gs->prepared = 1;

    return GS_OK;
}


/* as person.c: lost connection = retry the batch, races = retry here */

static int
gs_exec(worker_groups_t *gs, const char *name, int n, const char **params,
    PGresult **out)
{
    PGresult        *res;
    const char      *state;
    ExecStatusType   st;

    if (out) {
        *out = NULL;
    }

    if (name[0] == '\0') {
        res = PQexec(gs->conn, params[0]);

    } else {
        res = PQexecPrepared(gs->conn, name, n, params, NULL, NULL, 0);
    }

    st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out) {
            *out = res;

        } else {
            PQclear(res);
        }

        return GS_OK;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (PQstatus(gs->conn) != CONNECTION_OK || state == NULL) {
        worker_log(WORKER_LOG_WARN, "groups: postgres: %s",
                   PQerrorMessage(gs->conn));
        PQclear(res);
        return GS_ERROR;
    }

    worker_log(WORKER_LOG_WARN, "groups: %s: %s", name[0] ? name : "sql",
               PQresultErrorMessage(res));

    /* unique/FK violation, deadlock, serialization failure */
    if (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0
        || strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)
    {
        PQclear(res);
        return GS_CONFLICT;
    }

    /* 08xxx, 57Pxx, 53xxx: the server, not the event */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0
        || strncmp(state, "53", 2) == 0)
    {
        PQclear(res);
        return GS_ERROR;
    }

    PQclear(res);

    return GS_FAIL;
}


/*
 * GroupTypeManager.fetchGroupTypeIndex(): known types from memory, new
 * ones inserted at the lowest free index; *index = -1 when the team
 * already has 5 types (PostHog then ignores the group)
 */

static int
gs_type_index(worker_groups_t *gs, int64_t team_id, const char *type,
    int *index)
{
    int          rc, attempt;
    char         team[24], ckey[512];
    json_t      *v;
    PGresult    *res;
    const char  *params[2];

    snprintf(ckey, sizeof(ckey), "%lld:%s", (long long) team_id, type);

    v = json_object_get(gs->types, ckey);
    if (v) {
        *index = (int) json_integer_value(v);
        return GS_OK;
    }

    if (gs_connect(gs) != GS_OK) {
        return GS_ERROR;
    }

    snprintf(team, sizeof(team), "%lld", (long long) team_id);
    params[0] = team;
    params[1] = type;
    *index = -1;

    for (attempt = 0; attempt < GS_ATTEMPTS; attempt++) {
        rc = gs_exec(gs, attempt & 1 ? "gs_type_insert" : "gs_type", 2,
                     params, &res);

        if (rc == GS_CONFLICT) {
            continue;
        }

        if (rc != GS_OK) {
            return rc;
        }

        if (PQntuples(res) > 0) {
            *index = atoi(PQgetvalue(res, 0, 0));
            PQclear(res);
            break;
        }

        PQclear(res);

        if (attempt & 1) {
            /* nothing inserted: full, or another worker won; look again */
            rc = gs_exec(gs, "gs_type", 2, params, &res);
            if (rc != GS_OK) {
                return rc == GS_CONFLICT ? GS_FAIL : rc;
            }

            if (PQntuples(res) > 0) {
                *index = atoi(PQgetvalue(res, 0, 0));
            }

            PQclear(res);
            break;
        }
    }

    if (*index < 0 || *index >= INGEST_GROUP_TYPES_MAX) {
        /* remembered too: events of such a type cost no query */
        worker_log(WORKER_LOG_INFO, "groups: team %lld has no room for "
                   "group type \"%.64s\"", (long long) team_id, type);
        *index = -1;
    }

    if (json_object_size(gs->types) > GS_CACHE_MAX) {
        json_object_clear(gs->types);
    }

    json_object_set_new(gs->types, ckey, json_integer(*index));

    return GS_OK;
}


/* upsertGroup(): one short transaction, the row locked while we decide */

static int
gs_upsert(worker_groups_t *gs, int64_t team_id, int index,
    ingest_group_ident_t *g, int64_t ts_us, int replay)
{
    int           rc, changed, found;
    char          team[24], gti[24], ver[24], created[24], id[24], *props_s;
    char         *row;
    size_t        len;
    json_t       *props;
    int64_t       version, created_at;
    PGresult     *res;
    const char   *params[5], *sql;
    json_error_t  jerr;

    if (gs_connect(gs) != GS_OK) {
        return GS_ERROR;
    }

    snprintf(team, sizeof(team), "%lld", (long long) team_id);
    snprintf(gti, sizeof(gti), "%d", index);

    sql = "BEGIN";
    rc = gs_exec(gs, "", 0, &sql, NULL);
    if (rc != GS_OK) {
        return rc;
    }

    params[0] = team;
    params[1] = gti;
    params[2] = g->key;

    rc = gs_exec(gs, "gs_fetch", 3, params, &res);
    if (rc != GS_OK) {
        goto rollback;
    }

    found = PQntuples(res) > 0;
    props = NULL;
    version = 0;
    created_at = ts_us;

    if (found) {
        snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
        props = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
        version = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        created_at = strtoll(PQgetvalue(res, 0, 3), NULL, 10);

        if (ts_us < created_at) {
            created_at = ts_us;
        }
    }

    PQclear(res);

    if (!json_is_object(props)) {
        json_decref(props);
        props = json_object();
    }

    changed = ingest_group_props_update(props, g->set);

    if (changed < 0 || props == NULL) {
        json_decref(props);
        rc = GS_FAIL;
        goto rollback;
    }

    if (!found || changed) {
        version++;

        props_s = json_dumps(props, JSON_COMPACT);
        if (props_s == NULL) {
            json_decref(props);
            rc = GS_FAIL;
            goto rollback;
        }

        snprintf(ver, sizeof(ver), "%lld", (long long) version);
        snprintf(created, sizeof(created), "%lld", (long long) created_at);

        if (found) {
            params[0] = id;
            params[1] = props_s;
            params[2] = ver;
            params[3] = created;
            rc = gs_exec(gs, "gs_update", 4, params, NULL);

        } else {
            params[3] = props_s;
            params[4] = created;
            rc = gs_exec(gs, "gs_insert", 5, params, &res);

            if (rc == GS_OK) {
                /* someone else inserted it first: read theirs */
                rc = PQntuples(res) > 0 ? GS_OK : GS_CONFLICT;
                PQclear(res);
            }
        }

        free(props_s);

        if (rc != GS_OK) {
            json_decref(props);
            goto rollback;
        }
    }

    sql = "COMMIT";
    rc = gs_exec(gs, "", 0, &sql, NULL);

    if (rc != GS_OK) {
        json_decref(props);
        return rc;
    }

    /*
     * replay: read again after its outputs failed, the row may be among
     * them; Postgres has the change already, so it is emitted as it is
     */
    if (!found || changed || replay) {
        row = ingest_output_group(team_id, index, g->key, props, created_at,
                                  version, &len);

        rc = (row == NULL
              || gs->emit(gs->data, gs->cf->groups_topic, row, len) != 0)
             ? GS_ERROR : GS_OK;
        free(row);
    }

    /* also when unchanged: a flushed Redis heals on the next identify */
    if (rc == GS_OK) {
        gs_redis_write(gs, team_id, index, g->key, version, props);
    }

    json_decref(props);

    return rc;

rollback:

    sql = "ROLLBACK";
    (void) gs_exec(gs, "", 0, &sql, NULL);

    return rc;
}


/* best effort, like the person entries: decide copes without it */

static void
gs_redis_write(worker_groups_t *gs, int64_t team_id, int index,
    const char *key, int64_t version, json_t *props)
{
    char        *value, *rkey;
    size_t       klen;
    redisReply  *reply;

    if (gs->redis == NULL && time(NULL) < gs->redis_retry) {
        return;
    }

    klen = eh_group_key(NULL, 0, team_id, index, key, strlen(key));
    rkey = malloc(klen + 1);
    value = eh_group_entry_encode(version, props);

    if (rkey == NULL || value == NULL) {
        free(rkey);
        free(value);
        return;
    }

    eh_group_key(rkey, klen + 1, team_id, index, key, strlen(key));

    reply = worker_redis_command(&gs->redis, &gs->redis_retry,
                                 gs->cf->redis_address, 1, "groups",
                                 "SET %b %s", rkey, klen, value);

    if (reply != NULL) {
        freeReplyObject(reply);
    }

    free(rkey);
    free(value);
}
