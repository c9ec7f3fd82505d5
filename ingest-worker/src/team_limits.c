/*
 * Copyright (C) edgehog
 */

/*
 * Team settings that drop events before any person work, read apart
 * from the token cache (consumer.c) and cached as long: today
 * posthog_team.drop_events_older_than_seconds (spec/ingestion.md §1.4,
 * G3 drop-old-events-step).  The decision is ingest_drop.c.
 */


#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <libpq-fe.h>
#include <jansson.h>

#include "worker.h"
#include "ingest_drop.h"
#include "ingest_message.h"


/* bounded memory: forgotten wholesale when full */
#define WORKER_LIMITS_MAX  100000


struct worker_team_limits_s {
    const worker_config_t      *cf;
    PGconn                     *conn;
    json_t                     *teams;      /* "id" -> [threshold, exp] */
    /* the last team asked for: a batch is mostly one team, no lookup */
    int64_t                     last_team;
    int64_t                     last_threshold;
    time_t                      last_exp;
};


static int worker_team_threshold(worker_team_limits_t *tl, int64_t team_id,
    int64_t *threshold_s);


worker_team_limits_t *
worker_team_limits_open(const worker_config_t *cf)
{
    worker_team_limits_t  *tl;

    tl = calloc(1, sizeof(worker_team_limits_t));
    if (tl == NULL) {
        return NULL;
    }

    tl->cf = cf;
    tl->teams = json_object();

    if (tl->teams == NULL) {
        free(tl);
        return NULL;
    }

    return tl;
}


void
worker_team_limits_close(worker_team_limits_t *tl)
{
    if (tl == NULL) {
        return;
    }

    if (tl->conn) {
        PQfinish(tl->conn);
    }

    json_decref(tl->teams);
    free(tl);
}


int
worker_team_too_old(worker_team_limits_t *tl, int64_t team_id,
    struct ingest_message_s *m, int64_t ts_us, int64_t now_us,
    json_t **details)
{
    int64_t  threshold;

    *details = NULL;

    if (worker_team_threshold(tl, team_id, &threshold) != 0) {
        return -1;
    }

    if (!ingest_drop_too_old(ts_us, now_us, threshold)) {
        return 0;
    }

    *details = ingest_drop_details(m->uuid, m->event, m->distinct_id, ts_us,
                                   now_us, threshold);

    return 1;
}


static int
worker_team_threshold(worker_team_limits_t *tl, int64_t team_id,
    int64_t *threshold_s)
{
    char         key[24];
    time_t       now;
    json_t      *e;
    PGresult    *res;
    const char  *params[1];

    now = time(NULL);

    if (team_id == tl->last_team && now < tl->last_exp) {
        *threshold_s = tl->last_threshold;
        return 0;
    }

    snprintf(key, sizeof(key), "%lld", (long long) team_id);

    e = json_object_get(tl->teams, key);

    if (e && json_integer_value(json_array_get(e, 1)) > now) {
        *threshold_s = json_integer_value(json_array_get(e, 0));
        tl->last_team = team_id;
        tl->last_threshold = *threshold_s;
        tl->last_exp = json_integer_value(json_array_get(e, 1));
        return 0;
    }

    if (tl->conn == NULL || PQstatus(tl->conn) != CONNECTION_OK) {
        if (tl->conn) {
            PQfinish(tl->conn);
        }

        tl->conn = PQconnectdb(tl->cf->postgres_dsn);

        if (PQstatus(tl->conn) != CONNECTION_OK) {
            worker_log(WORKER_LOG_WARN, "team limits: postgres: %s",
                       PQerrorMessage(tl->conn));
            return -1;
        }
    }

    params[0] = key;

    res = PQexecParams(tl->conn, "SELECT COALESCE("
                       "drop_events_older_than_seconds, 0) FROM posthog_team "
                       "WHERE id = $1", 1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        worker_log(WORKER_LOG_WARN, "team limits: %s",
                   PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }

    *threshold_s = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                  : 0;
    PQclear(res);

    if (json_object_size(tl->teams) > WORKER_LIMITS_MAX) {
        json_object_clear(tl->teams);
    }

    json_object_set_new(tl->teams, key,
                        json_pack("[II]", (json_int_t) *threshold_s,
                                  (json_int_t) (now
                                                + tl->cf->team_refresh_s)));

    tl->last_team = team_id;
    tl->last_threshold = *threshold_s;
    tl->last_exp = now + tl->cf->team_refresh_s;

    return 0;
}
