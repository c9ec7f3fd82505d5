/*
 * Copyright (C) edgehog
 */

/*
 * `ingest-worker flag put|list|delete`: flags from PostHog's flag JSON
 * without writing SQL.  The triggers of pg.c tell the snapshot publisher,
 * so a change reaches /decide within a second.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <jansson.h>

#include "worker.h"


static int worker_admin_team(PGconn *conn, const char *team, char *id,
    size_t size);
static int worker_flag_put(PGconn *conn, const char *team, json_t *flag);
static int worker_flag_tags(PGconn *conn, const char *team, const char *id,
    json_t *tags);
static int worker_admin_exec(PGconn *conn, const char *sql);
static int worker_flag_list(PGconn *conn, const char *team);
static int worker_flag_delete(PGconn *conn, const char *team,
    const char *key);
static void worker_flag_usage(void);


int
worker_cmd_flag(const worker_config_t *cf, int argc, char **argv)
{
    int            i, rc;
    char           id[32];
    json_t        *flag;
    PGconn        *conn;
    const char    *team, *file, *key, *sub;
    json_error_t   jerr;

    if (argc < 1) {
        worker_flag_usage();
        return 2;
    }

    sub = argv[0];
    team = NULL;
    file = NULL;
    key = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--team") == 0 && i + 1 < argc) {
            team = argv[++i];

        } else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            file = argv[++i];

        } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key = argv[++i];

        } else {
            fprintf(stderr, "ingest-worker: flag: unexpected argument "
                    "\"%s\"\n", argv[i]);
            worker_flag_usage();
            return 2;
        }
    }

    if (team == NULL
        || (strcmp(sub, "delete") == 0 && key == NULL)
        || (strcmp(sub, "put") != 0 && strcmp(sub, "list") != 0
            && strcmp(sub, "delete") != 0))
    {
        worker_flag_usage();
        return 2;
    }

    conn = PQconnectdb(cf->postgres_dsn);

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "ingest-worker: postgres: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }

    if (worker_admin_team(conn, team, id, sizeof(id)) != 0) {
        PQfinish(conn);
        return 1;
    }

    if (strcmp(sub, "put") == 0) {
        flag = file ? json_load_file(file, 0, &jerr)
                    : json_loadf(stdin, 0, &jerr);

        if (!json_is_object(flag) && !json_is_array(flag)) {
            fprintf(stderr, "ingest-worker: flag put: invalid JSON: %s "
                    "(line %d)\n", flag ? "not an object" : jerr.text,
                    jerr.line);
            json_decref(flag);
            PQfinish(conn);
            return 2;
        }

        /*
         * the flags and their tags change together: one snapshot
         * publish, and decide never sees some of the flags alone
         */
        rc = worker_admin_exec(conn, "BEGIN");

        if (json_is_array(flag)) {
            for (i = 0; rc == 0 && (size_t) i < json_array_size(flag); i++) {
                rc = worker_flag_put(conn, id, json_array_get(flag, i));
            }

        } else if (rc == 0) {
            rc = worker_flag_put(conn, id, flag);
        }

        if (rc == 0) {
            rc = worker_admin_exec(conn, "COMMIT");

        } else {
            (void) worker_admin_exec(conn, "ROLLBACK");
        }

        json_decref(flag);

    } else if (strcmp(sub, "list") == 0) {
        rc = worker_flag_list(conn, id);

    } else {
        rc = worker_flag_delete(conn, id, key);
    }

    PQfinish(conn);

    return rc;
}


static void
worker_flag_usage(void)
{
    fprintf(stderr,
            "usage: ingest-worker flag put --team T [--file F]\n"
            "       ingest-worker flag list --team T\n"
            "       ingest-worker flag delete --team T --key K\n"
            "T is a team id or its api token; put reads PostHog flag JSON\n"
            "(an object or an array of them) from F or stdin\n");
}


/* the team id of an id or api token */
static int
worker_admin_team(PGconn *conn, const char *team, char *id, size_t size)
{
    PGresult  *res;

    res = PQexecParams(conn,
                       "SELECT id FROM posthog_team WHERE api_token = $1 "
                       "OR ($1 ~ '^[0-9]{1,9}$' AND id = $1::int)",
                       1, NULL, &team, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0) {
        fprintf(stderr, "ingest-worker: unknown team \"%s\"%s%s", team,
                PQntuples(res) == 0 ? "\n" : ": ",
                PQntuples(res) == 0 ? "" : PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }

    snprintf(id, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    return 0;
}


/* characters as VARCHAR(n) counts them: UTF-8 lead bytes */

static size_t
worker_admin_chars(json_t *s)
{
    size_t                i, n, len;
    const unsigned char  *p;

    p = (const unsigned char *) json_string_value(s);
    len = json_string_length(s);

    for (i = 0, n = 0; i < len; i++) {
        n += (p[i] & 0xc0) != 0x80;
    }

    return n;
}


static int
worker_flag_put(PGconn *conn, const char *team, json_t *flag)
{
    int          rc;
    char        *text, *id;
    json_t      *tags;
    PGresult    *res;
    const char  *params[2];

    if (!json_is_object(flag)
        || !json_is_string(json_object_get(flag, "key"))
        || json_string_length(json_object_get(flag, "key")) == 0
        || worker_admin_chars(json_object_get(flag, "key")) > 400)
    {
        fprintf(stderr, "ingest-worker: flag put: a flag needs a "
                "non-empty \"key\" of at most 400 characters\n");
        return 2;
    }

    if (json_object_get(flag, "filters") != NULL
        && !json_is_object(json_object_get(flag, "filters")))
    {
        fprintf(stderr, "ingest-worker: flag put: \"filters\" must be an "
                "object\n");
        return 2;
    }

    /* PostHog's flag JSON names them; null or absent: no tags */
    tags = json_object_get(flag, "evaluation_tags");

    if (tags != NULL && !json_is_null(tags)) {
        size_t  i;

        for (i = 0; json_is_array(tags) && i < json_array_size(tags); i++) {
            if (json_string_length(json_array_get(tags, i)) == 0
                || worker_admin_chars(json_array_get(tags, i)) > 255)
            {
                break;
            }
        }

        if (!json_is_array(tags) || i < json_array_size(tags)) {
            fprintf(stderr, "ingest-worker: flag put: \"evaluation_tags\" "
                    "must be an array of non-empty strings of at most 255 "
                    "characters\n");
            return 2;
        }
    }

    text = json_dumps(flag, JSON_COMPACT);
    if (text == NULL) {
        return 1;
    }

    params[0] = team;
    params[1] = text;

    /*
     * Upsert by (team, key).  A given "version" is kept, otherwise an
     * update bumps it, as PostHog's API does.
     */
    res = PQexecParams(conn,
        "WITH f AS (SELECT $2::jsonb AS j)"
        " INSERT INTO posthog_featureflag (team_id, key, name, filters,"
        "  active, deleted, ensure_experience_continuity, version,"
        "  evaluation_runtime, bucketing_identifier, rollout_percentage)"
        " SELECT $1::int, j->>'key', COALESCE(j->>'name', ''),"
        "  COALESCE(j->'filters', '{}'::jsonb),"
        "  COALESCE((j->>'active')::boolean, true),"
        "  COALESCE((j->>'deleted')::boolean, false),"
        "  COALESCE((j->>'ensure_experience_continuity')::boolean, false),"
        "  COALESCE((j->>'version')::int, 1),"
        "  COALESCE(j->>'evaluation_runtime', 'all'),"
        "  j->>'bucketing_identifier',"
        "  (j->>'rollout_percentage')::int"
        " FROM f"
        " ON CONFLICT (team_id, key) DO UPDATE SET"
        "  name = EXCLUDED.name, filters = EXCLUDED.filters,"
        "  active = EXCLUDED.active, deleted = EXCLUDED.deleted,"
        "  ensure_experience_continuity ="
        "   EXCLUDED.ensure_experience_continuity,"
        "  version = COALESCE(((SELECT j FROM f)->>'version')::int,"
        "                     posthog_featureflag.version + 1),"
        "  evaluation_runtime = EXCLUDED.evaluation_runtime,"
        "  bucketing_identifier = EXCLUDED.bucketing_identifier,"
        "  rollout_percentage = EXCLUDED.rollout_percentage"
        " RETURNING id, key, version",
        2, NULL, params, NULL, NULL, 0);

    free(text);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "ingest-worker: flag put failed: %s",
                PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }

    id = PQgetvalue(res, 0, 0);
    rc = worker_flag_tags(conn, team, id, json_is_array(tags) ? tags : NULL);

    if (rc != 0) {
        PQclear(res);
        return 1;
    }

    printf("id=%s key=%s version=%s\n", id, PQgetvalue(res, 0, 1),
           PQgetvalue(res, 0, 2));
    PQclear(res);

    return 0;
}


/* the flag's evaluation tags become exactly these names (NULL: none) */
static int
worker_flag_tags(PGconn *conn, const char *team, const char *id,
    json_t *tags)
{
    int          i;
    char        *text;
    PGresult    *res;
    const char  *params[3];

    /* int4, int4, jsonb: the first statement leaves $1 unused */
    static const Oid    types[] = { 23, 23, 3802 };

    static const char  *sql[] = {
        "INSERT INTO posthog_tag (name, team_id)"
        " SELECT DISTINCT n, $2::int FROM jsonb_array_elements_text($3::jsonb)"
        " n ON CONFLICT (name, team_id) DO NOTHING",

        "DELETE FROM posthog_featureflagevaluationtag"
        " WHERE feature_flag_id = $1::int AND tag_id NOT IN"
        "  (SELECT id FROM posthog_tag WHERE team_id = $2::int AND name IN"
        "   (SELECT jsonb_array_elements_text($3::jsonb)))",

        "INSERT INTO posthog_featureflagevaluationtag (feature_flag_id, tag_id)"
        " SELECT $1::int, id FROM posthog_tag WHERE team_id = $2::int"
        "  AND name IN (SELECT jsonb_array_elements_text($3::jsonb))"
        " ON CONFLICT (feature_flag_id, tag_id) DO NOTHING"
    };

    text = tags ? json_dumps(tags, JSON_COMPACT) : strdup("[]");
    if (text == NULL) {
        return 1;
    }

    params[0] = id;
    params[1] = team;
    params[2] = text;

    for (i = 0; i < 3; i++) {
        res = PQexecParams(conn, sql[i], 3, types, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "ingest-worker: flag put: evaluation tags: %s",
                    PQresultErrorMessage(res));
            PQclear(res);
            free(text);
            return 1;
        }

        PQclear(res);
    }

    free(text);

    return 0;
}


static int
worker_admin_exec(PGconn *conn, const char *sql)
{
    PGresult  *res;

    res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "ingest-worker: %s failed: %s", sql,
                PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }

    PQclear(res);

    return 0;
}


static int
worker_flag_list(PGconn *conn, const char *team)
{
    PGresult  *res;

    res = PQexecParams(conn,
        "SELECT COALESCE(json_agg(json_build_object('id', id, 'key', key,"
        " 'name', name, 'filters', filters, 'active', active,"
        " 'deleted', deleted, 'version', version,"
        " 'ensure_experience_continuity', ensure_experience_continuity,"
        " 'evaluation_runtime', evaluation_runtime,"
        " 'bucketing_identifier', bucketing_identifier,"
        " 'evaluation_tags', (SELECT json_agg(g.name ORDER BY g.name)"
        "   FROM posthog_featureflagevaluationtag e"
        "   JOIN posthog_tag g ON g.id = e.tag_id"
        "   WHERE e.feature_flag_id = f.id)) ORDER BY id),"
        " '[]'::json) FROM posthog_featureflag f"
        " WHERE team_id = $1::int AND NOT deleted",
        1, NULL, &team, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "ingest-worker: flag list failed: %s",
                PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }

    printf("%s\n", PQgetvalue(res, 0, 0));
    PQclear(res);

    return 0;
}


static int
worker_flag_delete(PGconn *conn, const char *team, const char *key)
{
    int          n;
    PGresult    *res;
    const char  *params[2];

    params[0] = team;
    params[1] = key;

    res = PQexecParams(conn,
                       "UPDATE posthog_featureflag SET deleted = true,"
                       " active = false WHERE team_id = $1::int AND key = $2"
                       " AND NOT deleted",
                       2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "ingest-worker: flag delete failed: %s",
                PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }

    n = atoi(PQcmdTuples(res));
    PQclear(res);

    if (n == 0) {
        fprintf(stderr, "ingest-worker: no flag \"%s\"\n", key);
        return 1;
    }

    printf("deleted key=%s\n", key);

    return 0;
}
