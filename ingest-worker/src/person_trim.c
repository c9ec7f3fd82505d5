/*
 * Copyright (C) edgehog
 */

/*
 * §3.4 (G3 handleOversizedPersonProperties): an update that fails
 * check_properties_size is rejected, unless the row in Postgres is
 * already over the limit (written before the NOT VALID constraint, or
 * imported): such a person could never be updated again, so its
 * properties are trimmed (ingest_trim.c) and the update retried once.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "ingest_trim.h"
#include "person_trim.h"


int
worker_person_trim(PGconn *conn, int64_t person_id, int64_t team_id,
    json_t *props, const ingest_props_ops_t *ops)
{
    long         n;
    char         id[24], team[24];
    int64_t      stored;
    PGresult    *res;
    const char  *params[2];

    snprintf(id, sizeof(id), "%lld", (long long) person_id);
    snprintf(team, sizeof(team), "%lld", (long long) team_id);
    params[0] = id;
    params[1] = team;

    res = PQexecParams(conn, "SELECT pg_column_size(properties) FROM "
                       "posthog_person WHERE id = $1 AND team_id = $2",
                       2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }

    stored = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    if (stored < INGEST_PERSON_PROPERTIES_LIMIT) {
        /* the update itself would grow it past the limit: rejected */
        return 0;
    }

    n = ingest_props_trim(props, ops, INGEST_PERSON_TRIM_TARGET);

    worker_log(WORKER_LOG_INFO, "person %lld of team %lld is %lld bytes "
               "in postgres: %ld properties trimmed", (long long) person_id,
               (long long) team_id, (long long) stored, n);

    return n > 0;
}
