/*
 * Copyright (C) edgehog
 */

/*
 * Refills a wiped Redis (FLUSHALL, a restart without persistence) from
 * Postgres, the source of truth: hash-key overrides, group entries and
 * person entries (formats in common/eh_group_entry.h and
 * eh_person_entry.h).  The snapshot publisher (sync.c) notices the wipe
 * by a marker key it sets after a complete refill, so a refill cut short
 * by an error is simply done again.
 *
 * Entries are written only where missing (HSETNX, SET NX): the consumer
 * thread may write a newer person or group entry at the same time, and
 * a page read from Postgres a moment earlier must never overwrite it.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "worker.h"
#include "eh_group_entry.h"
#include "eh_person_entry.h"


#define WORKER_RP_PAGE  1000


/* appends the Redis commands of row i, returns how many */
typedef int (*worker_rp_row_pt)(redisContext *r, PGresult *res, int i);


static int worker_rp_pages(PGconn *pg, redisContext *r, const char *sql,
    worker_rp_row_pt row, long *count);
static int worker_rp_hko(redisContext *r, PGresult *res, int i);
static int worker_rp_group(redisContext *r, PGresult *res, int i);
static int worker_rp_person(redisContext *r, PGresult *res, int i);


/* keyset pages: column 0 is the row id, $1 the last id seen */

static const char  worker_rp_hko_sql[] =
    "SELECT id, team_id, person_id, feature_flag_key, hash_key"
    " FROM posthog_featureflaghashkeyoverride WHERE id > $1::bigint"
    " ORDER BY id LIMIT 1000";

static const char  worker_rp_group_sql[] =
    "SELECT id, team_id, group_type_index, group_key, group_properties,"
    "       version"
    " FROM posthog_group WHERE id > $1::bigint ORDER BY id LIMIT 1000";

static const char  worker_rp_person_sql[] =
    "SELECT d.id, d.team_id, d.distinct_id, p.id, p.uuid,"
    "       COALESCE(p.version, 0), p.properties"
    " FROM posthog_persondistinctid d JOIN posthog_person p"
    "   ON p.id = d.person_id AND p.team_id = d.team_id"
    " WHERE d.id > $1::bigint ORDER BY d.id LIMIT 1000";


int
worker_republish_needed(redisContext *r)
{
    int          rc;
    redisReply  *reply;

    reply = redisCommand(r, "EXISTS %s", WORKER_SYNC_MARKER_KEY);
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply) {
            freeReplyObject(reply);
        }

        return -1;
    }

    rc = reply->integer == 0;
    freeReplyObject(reply);

    return rc;
}


int
worker_republish_entries(void *conn, redisContext *r)
{
    long         hko, groups, persons;
    PGconn      *pg = conn;
    redisReply  *reply;

    hko = groups = persons = 0;

    if (worker_rp_pages(pg, r, worker_rp_hko_sql, worker_rp_hko, &hko) != 0
        || worker_rp_pages(pg, r, worker_rp_group_sql, worker_rp_group,
                           &groups) != 0
        || worker_rp_pages(pg, r, worker_rp_person_sql, worker_rp_person,
                           &persons) != 0)
    {
        return -1;
    }

    reply = redisCommand(r, "SET %s 1", WORKER_SYNC_MARKER_KEY);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            freeReplyObject(reply);
        }

        return -1;
    }

    freeReplyObject(reply);

    worker_log(WORKER_LOG_INFO, "redis refilled from postgres: %ld hash-key "
               "overrides, %ld groups, %ld person entries", hko, groups,
               persons);

    return 0;
}


static int
worker_rp_pages(PGconn *pg, redisContext *r, const char *sql,
    worker_rp_row_pt row, long *count)
{
    int          i, n, k, cmds, failed;
    char         last[24];
    PGresult    *res;
    redisReply  *reply;
    const char  *params[1];

    snprintf(last, sizeof(last), "0");
    params[0] = last;

    for ( ;; ) {
        res = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            worker_log(WORKER_LOG_WARN, "redis refill: %s",
                       PQresultErrorMessage(res));
            PQclear(res);
            return -1;
        }

        n = PQntuples(res);
        cmds = 0;

        /* one page is one pipeline: a round trip per 1000 rows */
        for (i = 0; i < n; i++) {
            cmds += row(r, res, i);
        }

        failed = 0;

        for (k = 0; k < cmds; k++) {
            if (redisGetReply(r, (void **) &reply) != REDIS_OK) {
                worker_log(WORKER_LOG_WARN, "redis refill: %s", r->errstr);
                PQclear(res);
                return -1;
            }

            failed |= reply->type == REDIS_REPLY_ERROR;
            freeReplyObject(reply);
        }

        if (n > 0) {
            snprintf(last, sizeof(last), "%s", PQgetvalue(res, n - 1, 0));
        }

        PQclear(res);

        if (failed) {
            return -1;
        }

        *count += n;

        if (n < WORKER_RP_PAGE) {
            return 0;
        }
    }
}


static int
worker_rp_hko(redisContext *r, PGresult *res, int i)
{
    char  key[128];

    eh_hko_key(key, sizeof(key), strtoll(PQgetvalue(res, i, 1), NULL, 10),
               strtoll(PQgetvalue(res, i, 2), NULL, 10));

    redisAppendCommand(r, "HSETNX %s %b %b", key,
                       PQgetvalue(res, i, 3),
                       (size_t) PQgetlength(res, i, 3),
                       PQgetvalue(res, i, 4),
                       (size_t) PQgetlength(res, i, 4));

    return 1;
}


static int
worker_rp_group(redisContext *r, PGresult *res, int i)
{
    int            gti;
    char          *key, *value;
    size_t         klen;
    json_t        *props;
    int64_t        team;
    json_error_t   jerr;

    team = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    gti = atoi(PQgetvalue(res, i, 2));

    klen = eh_group_key(NULL, 0, team, gti, PQgetvalue(res, i, 3),
                        PQgetlength(res, i, 3));
    key = malloc(klen + 1);
    props = json_loads(PQgetvalue(res, i, 4), 0, &jerr);
    value = eh_group_entry_encode(strtoll(PQgetvalue(res, i, 5), NULL, 10),
                                  props);
    json_decref(props);

    if (key == NULL || value == NULL) {
        free(key);
        free(value);
        return 0;
    }

    eh_group_key(key, klen + 1, team, gti, PQgetvalue(res, i, 3),
                 PQgetlength(res, i, 3));

    redisAppendCommand(r, "SET %b %s NX", key, klen, value);

    free(key);
    free(value);

    return 1;
}


static int
worker_rp_person(redisContext *r, PGresult *res, int i)
{
    char          *key, *value;
    size_t         klen;
    json_t        *props;
    int64_t        team;
    json_error_t   jerr;

    team = strtoll(PQgetvalue(res, i, 1), NULL, 10);

    klen = eh_person_key(NULL, 0, team, PQgetvalue(res, i, 2),
                         PQgetlength(res, i, 2));
    key = malloc(klen + 1);
    props = json_loads(PQgetvalue(res, i, 6), 0, &jerr);
    value = eh_person_entry_encode(strtoll(PQgetvalue(res, i, 3), NULL, 10),
                                   PQgetvalue(res, i, 4),
                                   strtoll(PQgetvalue(res, i, 5), NULL, 10),
                                   props);
    json_decref(props);

    if (key == NULL || value == NULL) {
        free(key);
        free(value);
        return 0;
    }

    eh_person_key(key, klen + 1, team, PQgetvalue(res, i, 2),
                  PQgetlength(res, i, 2));

    redisAppendCommand(r, "SET %b %s NX", key, klen, value);

    free(key);
    free(value);

    return 1;
}
