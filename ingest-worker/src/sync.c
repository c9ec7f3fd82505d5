/*
 * Copyright (C) edgehog
 */

/*
 * The snapshot publisher: a thread of `ingest-worker run` that turns the
 * flag data of each team in Postgres into one msgpack document in Redis
 * (format in common/eh_snapshot.h).  It LISTENs on the channel the
 * triggers of pg.c notify with a team id, republishes those teams within
 * a second, and republishes every team periodically so a lost
 * notification or a flushed Redis heals by itself.  A document whose
 * SHA-1 equals the published one is not written again, so the periodic
 * pass costs readers nothing.
 */


#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "worker.h"
#include "eh_snapshot.h"
#include "eh_group_entry.h"


#define WORKER_SYNC_CHANNEL     "edgehog_snapshot"
#define WORKER_SYNC_PERIOD_S    30
#define WORKER_SYNC_IDS_MAX     256


typedef struct {
    const worker_config_t      *cf;
    PGconn                     *pg;
    redisContext               *redis;
    time_t                      last_full;
} worker_sync_t;


static void *worker_sync_thread(void *arg);
static int worker_sync_connect(worker_sync_t *s);
static void worker_sync_disconnect(worker_sync_t *s);
static int worker_sync_publish(worker_sync_t *s, const char *ids);
static int worker_sync_publish_one(worker_sync_t *s, const char *token,
    const char *text);
static int worker_sync_prune(worker_sync_t *s);
static int worker_sync_hko(worker_sync_t *s);
static int worker_sync_hko_one(worker_sync_t *s, const char *entry);


static pthread_t              worker_sync_tid;
static int                    worker_sync_running;
static volatile sig_atomic_t  worker_sync_quit;


/*
 * One JSON document per team; $1 is a '{1,2}' id array or NULL for all
 * teams.  Flags and cohorts belong to the project (PostHog shares them
 * between the environments of a project).
 */

static const char  worker_sync_query[] =
    "SELECT t.api_token, json_build_object("
    "  'format', 1,"
    "  'team', to_jsonb(t) - 'secret_api_token' - 'secret_api_token_backup',"
    "  'flags', COALESCE((SELECT json_agg(json_build_object("
    "      'id', f.id, 'team_id', f.team_id, 'key', f.key, 'name', f.name,"
    "      'filters', f.filters, 'active', f.active, 'deleted', f.deleted,"
    "      'version', f.version,"
    "      'ensure_experience_continuity', f.ensure_experience_continuity,"
    "      'evaluation_runtime', f.evaluation_runtime,"
    "      'bucketing_identifier', f.bucketing_identifier,"
    "      'evaluation_tags', (SELECT json_agg(g.name ORDER BY g.name)"
    "        FROM posthog_featureflagevaluationtag e"
    "        JOIN posthog_tag g ON g.id = e.tag_id"
    "        WHERE e.feature_flag_id = f.id)) ORDER BY f.id)"
    "    FROM posthog_featureflag f JOIN posthog_team ft ON ft.id = f.team_id"
    "    WHERE COALESCE(ft.project_id, ft.id) = COALESCE(t.project_id, t.id)"
    "      AND f.active AND NOT f.deleted), '[]'::json),"
    "  'cohorts', COALESCE((SELECT json_agg(json_build_object("
    "      'id', c.id, 'name', c.name, 'filters', c.filters,"
    "      'groups', c.groups, 'is_static', c.is_static,"
    "      'version', c.version, 'people', CASE WHEN c.is_static THEN"
    "        COALESCE((SELECT json_agg(cp.person_id ORDER BY cp.person_id)"
    "                  FROM posthog_cohortpeople cp"
    "                  WHERE cp.cohort_id = c.id), '[]'::json) END)"
    "      ORDER BY c.id)"
    "    FROM posthog_cohort c JOIN posthog_team ct ON ct.id = c.team_id"
    "    WHERE COALESCE(ct.project_id, ct.id) = COALESCE(t.project_id, t.id)"
    "      AND NOT c.deleted), '[]'::json),"
    "  'group_type_mapping', COALESCE((SELECT json_object_agg("
    "      g.group_type_index::text, g.group_type)"
    "    FROM posthog_grouptypemapping g WHERE g.team_id = t.id),"
    "    '{}'::json))::text"
    " FROM posthog_team t"
    " WHERE $1::int[] IS NULL OR t.id = ANY($1::int[])"
    "   OR COALESCE(t.project_id, t.id) IN (SELECT COALESCE(p.project_id, p.id)"
    "        FROM posthog_team p WHERE p.id = ANY($1::int[]))";


int
worker_sync_start(const worker_config_t *cf)
{
    static worker_sync_t  s;

    memset(&s, 0, sizeof(worker_sync_t));
    s.cf = cf;
    worker_sync_quit = 0;

    if (pthread_create(&worker_sync_tid, NULL, worker_sync_thread, &s) != 0) {
        worker_log(WORKER_LOG_ERROR, "snapshot sync: pthread_create failed");
        return -1;
    }

    worker_sync_running = 1;

    return 0;
}


void
worker_sync_stop(void)
{
    if (worker_sync_running) {
        worker_sync_quit = 1;
        pthread_join(worker_sync_tid, NULL);
        worker_sync_running = 0;
    }
}


int
worker_sync_once(const worker_config_t *cf)
{
    int            rc;
    worker_sync_t  s;

    memset(&s, 0, sizeof(worker_sync_t));
    s.cf = cf;

    if (worker_sync_connect(&s) != 0) {
        worker_sync_disconnect(&s);
        return -1;
    }

    rc = worker_sync_publish(&s, NULL);
    if (rc == 0) {
        rc = worker_sync_prune(&s);
    }

    worker_sync_disconnect(&s);

    return rc;
}


static void *
worker_sync_thread(void *arg)
{
    worker_sync_t  *s = arg;

    int              n, fd, full;
    char             ids[WORKER_SYNC_IDS_MAX * 12 + 4];
    size_t           len;
    time_t           now;
    PGnotify        *nf;
    struct pollfd    pfd;

    while (!worker_sync_quit && !worker_stop) {

        if (s->pg == NULL) {
            if (worker_sync_connect(s) != 0) {
                worker_sync_disconnect(s);
                sleep(1);
                continue;
            }

            /* everything may have changed while we were away */
            s->last_full = 0;
        }

        now = time(NULL);

        /*
         * a wiped Redis (FLUSHALL, a restart without persistence) is
         * noticed within a loop turn: everything is published again
         * from Postgres, not only at the next periodic pass
         */
        n = worker_republish_needed(s->redis);

        if (n != 0) {
            if (n < 0 || worker_sync_publish(s, NULL) != 0
                || worker_sync_prune(s) != 0
                || worker_republish_entries(s->pg, s->redis) != 0)
            {
                worker_sync_disconnect(s);
                sleep(1);
                continue;
            }

            s->last_full = now;
        }

        if (now - s->last_full >= WORKER_SYNC_PERIOD_S) {
            if (worker_sync_publish(s, NULL) != 0
                || worker_sync_prune(s) != 0)
            {
                worker_sync_disconnect(s);
                sleep(1);
                continue;
            }

            s->last_full = now;
        }

        /*
         * Notifications that arrived while a publish query ran are
         * already in libpq's buffer, and poll() would not see them:
         * drain first, wait only when nothing is pending.
         */
        if (!PQconsumeInput(s->pg)) {
            worker_log(WORKER_LOG_WARN, "snapshot sync: postgres: %s",
                       PQerrorMessage(s->pg));
            worker_sync_disconnect(s);
            continue;
        }

        /* hash-key overrides ngx_decide_module wrote to Redis */
        if (worker_sync_hko(s) != 0) {
            worker_sync_disconnect(s);
            sleep(1);
            continue;
        }

        nf = PQnotifies(s->pg);

        if (nf == NULL) {
            fd = PQsocket(s->pg);
            pfd.fd = fd;
            pfd.events = POLLIN;
            pfd.revents = 0;

            /* short waits keep shutdown and the periodic pass prompt */
            n = poll(&pfd, 1, 500);

            if (n < 0 && errno != EINTR) {
                worker_sync_disconnect(s);
            }

            continue;
        }

        /* a burst of notifications becomes one query */
        len = 0;
        full = 0;
        ids[len++] = '{';

        for ( /* void */ ; nf != NULL; nf = PQnotifies(s->pg)) {
            if (nf->extra[0] == '\0'
                || strspn(nf->extra, "0123456789") != strlen(nf->extra)
                || strlen(nf->extra) > 10)
            {
                /* unknown team: fall back to a full pass */
                full = 1;

            } else if (len + strlen(nf->extra) + 3 < sizeof(ids)) {
                len += sprintf(ids + len, "%s%s", len > 1 ? "," : "",
                               nf->extra);
            } else {
                full = 1;
            }

            PQfreemem(nf);
        }

        ids[len++] = '}';
        ids[len] = '\0';

        if (len == 2 && !full) {
            continue;
        }

        if (worker_sync_publish(s, full ? NULL : ids) != 0) {
            worker_sync_disconnect(s);
        }
    }

    worker_sync_disconnect(s);

    return NULL;
}


static int
worker_sync_connect(worker_sync_t *s)
{
    PGresult  *res;

    s->pg = PQconnectdb(s->cf->postgres_dsn);

    if (PQstatus(s->pg) != CONNECTION_OK) {
        worker_log(WORKER_LOG_WARN, "snapshot sync: postgres: %s",
                   PQerrorMessage(s->pg));
        return -1;
    }

    res = PQexec(s->pg, "LISTEN " WORKER_SYNC_CHANNEL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        worker_log(WORKER_LOG_WARN, "snapshot sync: LISTEN failed: %s",
                   PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }

    PQclear(res);

    s->redis = worker_redis_connect(s->cf->redis_address, 2,
                                    "snapshot sync");

    return s->redis ? 0 : -1;
}


static void
worker_sync_disconnect(worker_sync_t *s)
{
    if (s->pg) {
        PQfinish(s->pg);
        s->pg = NULL;
    }

    if (s->redis) {
        redisFree(s->redis);
        s->redis = NULL;
    }
}


static int
worker_sync_publish(worker_sync_t *s, const char *ids)
{
    int        i, n, failed;
    PGresult  *res;

    res = PQexecParams(s->pg, worker_sync_query, 1, NULL, &ids, NULL, NULL,
                       0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        worker_log(WORKER_LOG_WARN, "snapshot sync: query failed: %s",
                   PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }

    n = PQntuples(res);
    failed = 0;

    for (i = 0; i < n && !failed; i++) {
        failed = worker_sync_publish_one(s, PQgetvalue(res, i, 0),
                                         PQgetvalue(res, i, 1)) != 0;
    }

    PQclear(res);

    return failed ? -1 : 0;
}


static int
worker_sync_publish_one(worker_sync_t *s, const char *token,
    const char *text)
{
    int            i, rc;
    char          *blob, etag[SHA_DIGEST_LENGTH * 2 + 1], key[512];
    size_t         len;
    json_t        *doc;
    redisReply    *reply;
    json_error_t   jerr;
    unsigned char  md[SHA_DIGEST_LENGTH];

    doc = json_loads(text, 0, &jerr);
    if (doc == NULL) {
        worker_log(WORKER_LOG_ERROR, "snapshot sync: team document: %s",
                   jerr.text);
        return 0;
    }

    blob = eh_snapshot_encode(doc, &len);
    json_decref(doc);

    if (blob == NULL) {
        worker_log(WORKER_LOG_ERROR, "snapshot sync: cannot encode team %.8s",
                   token);
        return 0;
    }

    SHA1((unsigned char *) blob, len, md);

    for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
        sprintf(etag + 2 * i, "%02x", md[i]);
    }

    reply = redisCommand(s->redis, "HGET %s %s", EH_SNAPSHOT_TEAMS_KEY,
                         token);
    if (reply == NULL) {
        free(blob);
        worker_log(WORKER_LOG_WARN, "snapshot sync: redis: %s",
                   s->redis->errstr);
        return -1;
    }

    rc = reply->type == REDIS_REPLY_STRING && strcmp(reply->str, etag) == 0;
    freeReplyObject(reply);

    if (rc) {
        free(blob);
        return 0;
    }

    snprintf(key, sizeof(key), EH_SNAPSHOT_TEAM_PREFIX "%s", token);

    /* document first, then its etag, then the version readers poll */
    redisAppendCommand(s->redis, "MULTI");
    redisAppendCommand(s->redis, "SET %s %b", key, blob, len);
    redisAppendCommand(s->redis, "HSET %s %s %s", EH_SNAPSHOT_TEAMS_KEY,
                       token, etag);
    redisAppendCommand(s->redis, "INCR %s", EH_SNAPSHOT_VERSION_KEY);
    redisAppendCommand(s->redis, "EXEC");

    free(blob);
    rc = 0;

    for (i = 0; i < 5; i++) {
        if (redisGetReply(s->redis, (void **) &reply) != REDIS_OK) {
            worker_log(WORKER_LOG_WARN, "snapshot sync: redis: %s",
                       s->redis->errstr);
            return -1;
        }

        if (reply->type == REDIS_REPLY_ERROR) {
            worker_log(WORKER_LOG_WARN, "snapshot sync: redis: %s",
                       reply->str);
            rc = -1;
        }

        freeReplyObject(reply);
    }

    if (rc == 0) {
        worker_log(WORKER_LOG_DEBUG, "snapshot sync: published team %.8s... "
                   "(%zu bytes)", token, len);
    }

    return rc;
}


/* teams deleted from Postgres disappear from the hash */
static int
worker_sync_prune(worker_sync_t *s)
{
    int          found;
    char         key[512];
    size_t       i;
    PGresult    *res;
    redisReply  *reply, *r2;
    const char  *token;

    reply = redisCommand(s->redis, "HKEYS %s", EH_SNAPSHOT_TEAMS_KEY);
    if (reply == NULL) {
        return -1;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        freeReplyObject(reply);
        return 0;
    }

    for (i = 0; i < reply->elements; i++) {
        token = reply->element[i]->str;

        if (token == NULL) {
            continue;
        }

        res = PQexecParams(s->pg, "SELECT 1 FROM posthog_team "
                           "WHERE api_token = $1", 1, NULL, &token, NULL,
                           NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            PQclear(res);
            freeReplyObject(reply);
            return -1;
        }

        found = PQntuples(res) > 0;
        PQclear(res);

        if (found) {
            continue;
        }

        snprintf(key, sizeof(key), EH_SNAPSHOT_TEAM_PREFIX "%s", token);
        r2 = redisCommand(s->redis, "HDEL %s %s", EH_SNAPSHOT_TEAMS_KEY,
                          token);
        freeReplyObject(r2);
        r2 = redisCommand(s->redis, "DEL %s", key);
        freeReplyObject(r2);
        r2 = redisCommand(s->redis, "INCR %s", EH_SNAPSHOT_VERSION_KEY);
        freeReplyObject(r2);
    }

    freeReplyObject(reply);

    return 0;
}


/*
 * Drains EH_HKO_PENDING_KEY (eh_group_entry.h) into
 * posthog_featureflaghashkeyoverride; conflicts keep the first row
 * (spec/decide.md 3.9).  A row of a person merged away meanwhile
 * follows the forwarding keys hko.c leaves; other rows of persons that
 * no longer exist are dropped.
 */
static int
worker_sync_hko(worker_sync_t *s)
{
    int           i, batch;
    size_t        k;
    redisReply   *reply;

    for (batch = 0; batch < 16; batch++) {
        reply = redisCommand(s->redis, "LRANGE %s 0 99", EH_HKO_PENDING_KEY);

        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
            if (reply) {
                freeReplyObject(reply);
            }

            return -1;
        }

        if (reply->elements == 0) {
            freeReplyObject(reply);
            return 0;
        }

        for (k = 0; k < reply->elements; k++) {
            if (reply->element[k]->type != REDIS_REPLY_STRING) {
                continue;
            }

            i = worker_sync_hko_one(s, reply->element[k]->str);

            if (i != 0 && PQstatus(s->pg) != CONNECTION_OK) {
                freeReplyObject(reply);
                return -1;
            }
        }

        k = reply->elements;
        freeReplyObject(reply);

        reply = redisCommand(s->redis, "LTRIM %s %d -1", EH_HKO_PENDING_KEY,
                             (int) k);
        if (reply == NULL) {
            return -1;
        }

        freeReplyObject(reply);
    }

    return 0;
}


/* one pending override; 0, or -1 when Postgres failed */

static int
worker_sync_hko_one(worker_sync_t *s, const char *entry)
{
    int           hop, exists;
    char          pid[24], team[24];
    PGresult     *res;
    redisReply   *reply;
    const char   *params[2];

    params[0] = entry;
    params[1] = NULL;

    for (hop = 0; hop < 5; hop++) {
        res = PQexecParams(s->pg,
            "WITH x AS (SELECT (j->>'team_id')::int AS t,"
            "    COALESCE($2::bigint, (j->>'person_id')::bigint) AS p,"
            "    j->>'feature_flag_key' AS f, j->>'hash_key' AS h"
            "  FROM (SELECT $1::jsonb AS j) y),"
            " ins AS (INSERT INTO posthog_featureflaghashkeyoverride"
            "    (team_id, person_id, feature_flag_key, hash_key)"
            "  SELECT t, p, f, h FROM x WHERE EXISTS (SELECT 1"
            "    FROM posthog_person pp WHERE pp.id = x.p AND pp.team_id = x.t)"
            "  ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT EXISTS (SELECT 1 FROM posthog_person pp"
            "    WHERE pp.id = x.p AND pp.team_id = x.t), x.t, x.p FROM x",
            2, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            worker_log(WORKER_LOG_WARN, "hash key override: %s",
                       PQresultErrorMessage(res));
            PQclear(res);
            return -1;
        }

        exists = PQgetvalue(res, 0, 0)[0] == 't';
        snprintf(team, sizeof(team), "%s", PQgetvalue(res, 0, 1));
        snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 2));
        PQclear(res);

        if (exists || team[0] == '\0' || pid[0] == '\0') {
            return 0;
        }

        /* merged away after decide wrote it: follow to the survivor */
        reply = redisCommand(s->redis, "GET " WORKER_HKO_MOVED_PREFIX "%s:%s",
                             team, pid);

        if (reply == NULL || reply->type != REDIS_REPLY_STRING
            || reply->len == 0 || reply->len >= (int) sizeof(pid))
        {
            if (reply) {
                freeReplyObject(reply);
            }

            return 0;
        }

        snprintf(pid, sizeof(pid), "%s", reply->str);
        freeReplyObject(reply);
        params[1] = pid;
    }

    return 0;
}
