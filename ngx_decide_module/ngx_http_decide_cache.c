/*
 * Copyright (C) edgehog
 */

/*
 * The per-worker snapshot of every team's flags (spec/nginx.md 3.4 (c)).
 * A cancelable timer posts a thread-pool task that checks the version
 * key, fetches only the teams whose etag changed, decodes and compiles
 * them (decide_team_create) off the loop; its completion handler swaps
 * the snapshot on the loop.  The request path only reads memory.  While
 * Redis is down the last snapshot keeps serving.  Key layout:
 * common/eh_snapshot.h.
 *
 * Redis losing its data (FLUSHALL, a restart without persistence) is
 * not a publish: a missing version key keeps the snapshot as it is, and
 * a version that went backwards (or any version after one we saw
 * missing) means the publisher is refilling an empty Redis team by
 * team, so teams it has not written yet keep their last good snapshot
 * instead of vanishing.  That "keep absent teams"
 * mode lasts NGX_HTTP_DECIDE_RESET_GRACE after the reset was seen, long
 * enough for the publisher's refill pass; afterwards the teams hash is
 * authoritative again (a deleted team disappears at the next publish).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"
#include "eh_snapshot.h"


#define NGX_HTTP_DECIDE_QUOTA_KEY  "@posthog/quota-limits/feature_flag_requests"
#define NGX_HTTP_DECIDE_RESET_GRACE  60000


typedef struct {
    ngx_http_decide_main_conf_t  *mcf;

    /* in: what this worker has, copied on the loop */
    long long                     known_version;
    char                        **known_tokens;
    char                        **known_etags;
    size_t                        nknown;
    unsigned                      keep_absent:1;
    unsigned                      after_wipe:1;

    /* out */
    char                          errstr[160];
    long long                     version;
    char                        **tokens;
    ngx_http_decide_team_t      **built;        /* NULL: reuse the old */
    size_t                        n;
    char                        **quota;
    size_t                        nquota;
    ngx_uint_t                    rejected;
    unsigned                      error:1;
    unsigned                      unchanged:1;
    unsigned                      no_version:1;
    unsigned                      went_back:1;
} ngx_http_decide_refresh_t;


static void ngx_http_decide_refresh_timer(ngx_event_t *ev);
static void ngx_http_decide_refresh_thread(void *data, ngx_log_t *log);
static void ngx_http_decide_refresh_done(ngx_event_t *ev);
static void ngx_http_decide_refresh_reset(ngx_http_decide_refresh_t *rf);
static ngx_http_decide_team_t *ngx_http_decide_team_build(const char *token,
    const char *etag, const char *data, size_t len, char *err,
    size_t errlen);
static ngx_int_t ngx_http_decide_team_fragments(ngx_http_decide_team_t *t);
static void ngx_http_decide_team_free(ngx_http_decide_team_t *t);
static int ngx_http_decide_cmp_team(const void *a, const void *b);
static int ngx_http_decide_cmp_int64(const void *a, const void *b);
static void ngx_http_decide_snapshot_free(ngx_http_decide_snapshot_t *s);
static void ngx_http_decide_quota_free(ngx_http_decide_quota_t *q);


ngx_int_t
ngx_http_decide_cache_init(ngx_cycle_t *cycle,
    ngx_http_decide_main_conf_t *mcf)
{
    ngx_thread_task_t          *task;
    ngx_http_decide_refresh_t  *rf;

    mcf->thread_pool = ngx_thread_pool_get(cycle, &mcf->thread_pool_name);
    if (mcf->thread_pool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "decide: thread pool \"%V\" not found",
                      &mcf->thread_pool_name);
        return NGX_ERROR;
    }

    task = ngx_thread_task_alloc(cycle->pool,
                                 sizeof(ngx_http_decide_refresh_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    rf = task->ctx;
    rf->mcf = mcf;

    task->handler = ngx_http_decide_refresh_thread;
    task->event.handler = ngx_http_decide_refresh_done;
    task->event.data = task;
    task->event.log = cycle->log;

    mcf->refresh_task = task;
    mcf->version = -1;
    mcf->last_ok = ngx_current_msec;

    mcf->refresh_ev.handler = ngx_http_decide_refresh_timer;
    mcf->refresh_ev.data = mcf;
    mcf->refresh_ev.log = cycle->log;
    /* a pending refresh must not keep an exiting worker alive */
    mcf->refresh_ev.cancelable = 1;

    /*
     * The first load runs here, before the worker accepts anything, so a
     * fresh worker (start, reload) answers from a snapshot right away.
     * It blocks for at most decide_redis_timeout per call; the loop
     * takes over from the first timer on.
     */
    ngx_http_decide_refresh_reset(rf);
    rf->known_version = -1;
    ngx_http_decide_refresh_thread(rf, cycle->log);
    ngx_http_decide_redis_drop();

    mcf->refresh_busy = 1;
    ngx_http_decide_refresh_done(&task->event);

    return NGX_OK;
}


void
ngx_http_decide_cache_exit(ngx_http_decide_main_conf_t *mcf)
{
    mcf->exiting = 1;

    if (mcf->refresh_ev.timer_set) {
        ngx_del_timer(&mcf->refresh_ev);
    }

    /* an in-flight task only touches its own context */
    if (!mcf->refresh_busy) {
        ngx_http_decide_snapshot_free(mcf->snapshot);
        mcf->snapshot = NULL;
    }

    ngx_http_decide_quota_free(mcf->quota);
    mcf->quota = NULL;
}


ngx_http_decide_team_t *
ngx_http_decide_cache_team(ngx_http_decide_main_conf_t *mcf, u_char *token,
    size_t len)
{
    ngx_int_t                    rc;
    ngx_uint_t                   lo, hi, mid;
    ngx_http_decide_team_t      *t;
    ngx_http_decide_snapshot_t  *s;

    s = mcf->snapshot;

    if (s == NULL) {
        return NULL;
    }

    lo = 0;
    hi = s->nteams;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        t = s->teams[mid];

        rc = ngx_strncmp(t->token, token, len);
        if (rc == 0) {
            rc = t->token[len] == '\0' ? 0 : 1;
        }

        if (rc == 0) {
            return t;
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


ngx_uint_t
ngx_http_decide_cache_quota_limited(ngx_http_decide_main_conf_t *mcf,
    u_char *token, size_t len)
{
    ngx_uint_t                i;
    ngx_http_decide_quota_t  *q;

    q = mcf->quota;

    if (q == NULL) {
        return 0;
    }

    /* a handful of tokens at most */
    for (i = 0; i < q->n; i++) {
        if (ngx_strncmp(q->tokens[i], token, len) == 0
            && q->tokens[i][len] == '\0')
        {
            return 1;
        }
    }

    return 0;
}


void
ngx_http_decide_team_ref(ngx_http_decide_team_t *t)
{
    t->refs++;
}


void
ngx_http_decide_team_unref(ngx_http_decide_team_t *t)
{
    if (--t->refs == 0) {
        ngx_http_decide_team_free(t);
    }
}


static void
ngx_http_decide_refresh_timer(ngx_event_t *ev)
{
    ngx_http_decide_main_conf_t *mcf = ev->data;

    size_t                       i;
    ngx_http_decide_snapshot_t  *s;
    ngx_http_decide_refresh_t   *rf;

    if (mcf->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (mcf->refresh_busy) {
        return;
    }

    rf = mcf->refresh_task->ctx;
    ngx_http_decide_refresh_reset(rf);

    rf->known_version = mcf->version;
    rf->keep_absent = mcf->reset_at != 0
                      && ngx_current_msec - mcf->reset_at
                         < NGX_HTTP_DECIDE_RESET_GRACE;
    rf->after_wipe = mcf->no_version;
    s = mcf->snapshot;

    if (s && s->nteams) {
        rf->known_tokens = ngx_alloc(s->nteams * sizeof(char *), ev->log);
        rf->known_etags = ngx_alloc(s->nteams * sizeof(char *), ev->log);

        if (rf->known_tokens == NULL || rf->known_etags == NULL) {
            ngx_http_decide_refresh_reset(rf);
            ngx_add_timer(ev, mcf->refresh_interval);
            return;
        }

        /* the thread reads copies: teams may be freed meanwhile */
        for (i = 0; i < s->nteams; i++) {
            rf->known_tokens[i] = strdup(s->teams[i]->token);
            rf->known_etags[i] = strdup(s->teams[i]->etag);
            rf->nknown = i + 1;

            if (rf->known_tokens[i] == NULL || rf->known_etags[i] == NULL) {
                ngx_http_decide_refresh_reset(rf);
                ngx_add_timer(ev, mcf->refresh_interval);
                return;
            }
        }
    }

    if (ngx_thread_task_post(mcf->thread_pool, mcf->refresh_task) != NGX_OK) {
        ngx_http_decide_refresh_reset(rf);
        ngx_add_timer(ev, mcf->refresh_interval);
        return;
    }

    mcf->refresh_busy = 1;
}


/* runs in a pool thread: blocking Redis, decoding, compiling */
static void
ngx_http_decide_refresh_thread(void *data, ngx_log_t *log)
{
    ngx_http_decide_refresh_t *rf = data;

    char           key[512], now[32];
    size_t         i, j, n;
    redisReply    *reply, *team;
    redisContext  *c;

    c = ngx_http_decide_redis_get(rf->mcf);

    if (c == NULL) {
        ngx_snprintf((u_char *) rf->errstr, sizeof(rf->errstr) - 1,
                     "cannot connect%Z");
        rf->error = 1;
        return;
    }

    reply = redisCommand(c, "GET %s", EH_SNAPSHOT_VERSION_KEY);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_snprintf((u_char *) rf->errstr, sizeof(rf->errstr) - 1, "%s%Z",
                     reply ? reply->str : c->errstr);
        if (reply) {
            freeReplyObject(reply);
        }

        ngx_http_decide_redis_drop();
        rf->error = 1;
        return;
    }

    /* no version key: nothing published since Redis lost its data */
    rf->no_version = reply->type != REDIS_REPLY_STRING;
    rf->version = rf->no_version ? rf->known_version
                                 : strtoll(reply->str, NULL, 10);
    freeReplyObject(reply);

    /* quota limits: tokens whose limit ends in the future */
    ngx_snprintf((u_char *) now, sizeof(now) - 1, "%T%Z", time(NULL));
    reply = redisCommand(c, "ZRANGEBYSCORE %s %s +inf",
                         NGX_HTTP_DECIDE_QUOTA_KEY, now);

    if (reply == NULL) {
        ngx_http_decide_redis_drop();
        rf->error = 1;
        return;
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements) {
        rf->quota = calloc(reply->elements, sizeof(char *));

        for (i = 0; rf->quota && i < reply->elements; i++) {
            if (reply->element[i]->type == REDIS_REPLY_STRING) {
                rf->quota[rf->nquota++] = strdup(reply->element[i]->str);
            }
        }
    }

    freeReplyObject(reply);

    if (rf->no_version) {
        rf->unchanged = 1;
        return;
    }

    /*
     * INCR restarted from an empty Redis: a refill is under way.  After
     * a wipe we saw, even the number we had is a new publish.
     */
    if (rf->version < rf->known_version || rf->after_wipe) {
        rf->went_back = 1;
        rf->keep_absent = 1;

    } else if (rf->version == rf->known_version) {
        rf->unchanged = 1;
        return;
    }

    reply = redisCommand(c, "HGETALL %s", EH_SNAPSHOT_TEAMS_KEY);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_snprintf((u_char *) rf->errstr, sizeof(rf->errstr) - 1,
                     "HGETALL: %s%Z", reply ? "unexpected reply"
                                            : c->errstr);
        if (reply) {
            freeReplyObject(reply);

        } else {
            ngx_http_decide_redis_drop();
        }

        rf->error = 1;
        return;
    }

    n = reply->elements / 2;
    rf->tokens = calloc(n + rf->nknown + 1, sizeof(char *));
    rf->built = calloc(n + rf->nknown + 1, sizeof(ngx_http_decide_team_t *));

    if (rf->tokens == NULL || rf->built == NULL) {
        freeReplyObject(reply);
        rf->error = 1;
        return;
    }

    for (i = 0; i < n; i++) {
        const char  *token = reply->element[2 * i]->str;
        const char  *etag = reply->element[2 * i + 1]->str;

        if (token == NULL || etag == NULL || strlen(token) > 400) {
            continue;
        }

        for (j = 0; j < rf->nknown; j++) {
            if (strcmp(rf->known_tokens[j], token) == 0) {
                break;
            }
        }

        rf->tokens[rf->n] = strdup(token);
        if (rf->tokens[rf->n] == NULL) {
            continue;
        }

        if (j < rf->nknown && strcmp(rf->known_etags[j], etag) == 0) {
            rf->n++;
            continue;
        }

        ngx_snprintf((u_char *) key, sizeof(key) - 1, "%s%s%Z",
                     EH_SNAPSHOT_TEAM_PREFIX, token);

        team = redisCommand(c, "GET %s", key);

        if (team == NULL) {
            free(rf->tokens[rf->n]);
            rf->tokens[rf->n] = NULL;
            ngx_http_decide_redis_drop();
            rf->error = 1;
            ngx_snprintf((u_char *) rf->errstr, sizeof(rf->errstr) - 1,
                         "GET team: connection lost%Z");
            break;
        }

        if (team->type == REDIS_REPLY_STRING) {
            rf->built[rf->n] = ngx_http_decide_team_build(token, etag,
                                               team->str, team->len,
                                               rf->errstr,
                                               sizeof(rf->errstr));
            if (rf->built[rf->n] == NULL) {
                rf->rejected++;
            }
        }

        freeReplyObject(team);

        /* a team that failed to build keeps its old snapshot, if any */
        if (rf->built[rf->n] != NULL || j < rf->nknown) {
            rf->n++;

        } else {
            free(rf->tokens[rf->n]);
            rf->tokens[rf->n] = NULL;
        }
    }

    /* during a refill, teams not written yet keep their old snapshot */
    for (j = 0; rf->keep_absent && !rf->error && j < rf->nknown; j++) {
        for (i = 0; i < n; i++) {
            if (reply->element[2 * i]->str
                && strcmp(reply->element[2 * i]->str, rf->known_tokens[j])
                   == 0)
            {
                break;
            }
        }

        if (i == n) {
            rf->tokens[rf->n] = strdup(rf->known_tokens[j]);
            if (rf->tokens[rf->n]) {
                rf->n++;
            }
        }
    }

    freeReplyObject(reply);
}


/* back on the loop */
static void
ngx_http_decide_refresh_done(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    size_t                        i, k;
    ngx_http_decide_team_t       *t;
    ngx_http_decide_quota_t      *q;
    ngx_http_decide_refresh_t    *rf;
    ngx_http_decide_snapshot_t   *s, *old;
    ngx_http_decide_main_conf_t  *mcf;

    rf = task->ctx;
    mcf = rf->mcf;
    mcf->refresh_busy = 0;

    if (rf->error) {
        if (!mcf->redis_down) {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "decide: redis %V: %s; serving the snapshot "
                          "loaded %M ms ago", &mcf->redis_address,
                          rf->errstr, ngx_current_msec - mcf->last_ok);
            mcf->redis_down = 1;
        }

        goto done;
    }

    if (mcf->redis_down) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "decide: redis %V is back after %M ms",
                      &mcf->redis_address, ngx_current_msec - mcf->last_ok);
        mcf->redis_down = 0;
    }

    mcf->last_ok = ngx_current_msec;

    if (rf->rejected) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "decide: %ui team snapshot(s) rejected, last: %s",
                      rf->rejected, rf->errstr);
    }

    q = ngx_alloc(sizeof(ngx_http_decide_quota_t), ev->log);
    if (q) {
        q->tokens = rf->quota;
        q->n = rf->nquota;
        rf->quota = NULL;
        rf->nquota = 0;
        ngx_http_decide_quota_free(mcf->quota);
        mcf->quota = q;
    }

    if (rf->no_version && mcf->snapshot && !mcf->no_version) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "decide: redis %V has no snapshot version; serving "
                      "the last snapshot (version %L) until one is "
                      "published", &mcf->redis_address, mcf->version);
    }

    mcf->no_version = rf->no_version;

    if (rf->went_back) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "decide: snapshot republished after redis lost its "
                      "data (version %L, had %L); teams not republished "
                      "yet keep their last snapshot", rf->version,
                      mcf->version);
        mcf->reset_at = ngx_current_msec;
        if (mcf->reset_at == 0) {
            mcf->reset_at = 1;
        }
    }

    if (rf->unchanged || mcf->exiting) {
        goto done;
    }

    s = ngx_alloc(sizeof(ngx_http_decide_snapshot_t), ev->log);
    if (s == NULL) {
        goto done;
    }

    s->teams = ngx_alloc((rf->n + 1) * sizeof(ngx_http_decide_team_t *),
                         ev->log);
    if (s->teams == NULL) {
        ngx_free(s);
        goto done;
    }

    for (i = 0, k = 0; i < rf->n; i++) {
        t = rf->built[i];

        if (t != NULL) {
            rf->built[i] = NULL;

        } else {
            t = ngx_http_decide_cache_team(mcf, (u_char *) rf->tokens[i],
                                           ngx_strlen(rf->tokens[i]));
            if (t == NULL) {
                continue;
            }

            ngx_http_decide_team_ref(t);
        }

        s->teams[k++] = t;
    }

    s->nteams = k;
    ngx_qsort(s->teams, s->nteams, sizeof(ngx_http_decide_team_t *),
              ngx_http_decide_cmp_team);

    old = mcf->snapshot;
    mcf->snapshot = s;
    ngx_http_decide_snapshot_free(old);

    ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                  "decide: snapshot version %L with %ui teams",
                  rf->version, s->nteams);

    mcf->version = rf->version;

done:

    ngx_http_decide_refresh_reset(rf);

    if (!mcf->exiting && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&mcf->refresh_ev, mcf->refresh_interval);
    }
}


static void
ngx_http_decide_refresh_reset(ngx_http_decide_refresh_t *rf)
{
    size_t  i;

    for (i = 0; i < rf->nknown; i++) {
        free(rf->known_tokens[i]);
        free(rf->known_etags[i]);
    }

    free(rf->known_tokens);
    free(rf->known_etags);

    for (i = 0; rf->tokens && i < rf->n; i++) {
        free(rf->tokens[i]);

        if (rf->built[i]) {
            ngx_http_decide_team_free(rf->built[i]);
        }
    }

    free(rf->tokens);
    free(rf->built);

    for (i = 0; i < rf->nquota; i++) {
        free(rf->quota[i]);
    }

    free(rf->quota);

    rf->known_tokens = NULL;
    rf->known_etags = NULL;
    rf->nknown = 0;
    rf->tokens = NULL;
    rf->built = NULL;
    rf->n = 0;
    rf->quota = NULL;
    rf->nquota = 0;
    rf->rejected = 0;
    rf->keep_absent = 0;
    rf->after_wipe = 0;
    rf->error = 0;
    rf->unchanged = 0;
    rf->no_version = 0;
    rf->went_back = 0;
    rf->errstr[0] = '\0';
}


/* pool thread: malloc only, no nginx pools or logs */
static ngx_http_decide_team_t *
ngx_http_decide_team_build(const char *token, const char *etag,
    const char *data, size_t len, char *err, size_t errlen)
{
    size_t                   i, j, n;
    json_t                  *doc, *team, *cohorts, *c, *people;
    ngx_http_decide_team_t  *t;

    doc = eh_snapshot_decode(data, len, err, errlen);
    if (doc == NULL) {
        return NULL;
    }

    t = calloc(1, sizeof(ngx_http_decide_team_t));
    if (t == NULL) {
        json_decref(doc);
        return NULL;
    }

    t->refs = 1;
    t->doc = doc;
    t->token = strdup(token);
    ngx_cpystrn((u_char *) t->etag, (u_char *) etag, sizeof(t->etag));

    team = json_object_get(doc, "team");
    t->id = json_integer_value(json_object_get(team, "id"));
    cohorts = json_object_get(doc, "cohorts");

    t->team = decide_team_create(json_object_get(doc, "flags"),
                                 json_object_get(doc, "group_type_mapping"),
                                 json_is_array(cohorts) ? cohorts : NULL,
                                 err, errlen);
    t->config = ngx_http_decide_config_build(team);

    if (t->token == NULL || t->team == NULL || t->config == NULL) {
        ngx_http_decide_team_free(t);
        return NULL;
    }

    /* responses splice the config in as text: "{...}" minus the braces */
    t->config_text = json_dumps(t->config, JSON_COMPACT);
    if (t->config_text == NULL || strlen(t->config_text) < 2) {
        ngx_http_decide_team_free(t);
        return NULL;
    }

    t->config_len = strlen(t->config_text) - 2;
    memmove(t->config_text, t->config_text + 1, t->config_len);

    if (ngx_http_decide_team_fragments(t) != NGX_OK) {
        snprintf(err, errlen, "out of memory");
        ngx_http_decide_team_free(t);
        return NULL;
    }

    /* static cohorts: person ids to match the person entry's "id" */
    n = json_array_size(cohorts);
    t->cohorts = calloc(n + 1, sizeof(ngx_http_decide_static_cohort_t));

    for (i = 0; t->cohorts && i < n; i++) {
        c = json_array_get(cohorts, i);
        people = json_object_get(c, "people");

        if (!json_is_true(json_object_get(c, "is_static"))
            || !json_is_array(people))
        {
            continue;
        }

        t->cohorts[t->ncohorts].id = json_integer_value(
                                                  json_object_get(c, "id"));
        t->cohorts[t->ncohorts].people = malloc((json_array_size(people) + 1)
                                                * sizeof(int64_t));
        if (t->cohorts[t->ncohorts].people == NULL) {
            continue;
        }

        for (j = 0; j < json_array_size(people); j++) {
            t->cohorts[t->ncohorts].people[j] =
                           json_integer_value(json_array_get(people, j));
        }

        t->cohorts[t->ncohorts].npeople = j;
        qsort(t->cohorts[t->ncohorts].people, j, sizeof(int64_t),
              ngx_http_decide_cmp_int64);
        t->ncohorts++;
    }

    return t;
}


/*
 * The parts of a flag's answer that depend on the flag alone, rendered
 * once here (a pool thread) instead of escaped on every response.
 */
static ngx_int_t
ngx_http_decide_team_fragments(ngx_http_decide_team_t *t)
{
    size_t       i, n, size, len;
    u_char      *p;
    json_int_t   id, version;
    const char  *key;

    n = decide_team_nflags(t->team);

    t->flag_key = calloc(n + 1, 2 * sizeof(ngx_str_t));
    if (t->flag_key == NULL) {
        return NGX_ERROR;
    }

    t->flag_meta = t->flag_key + n + 1;
    size = 1;

    for (i = 0; i < n; i++) {
        key = decide_team_flag_key(t->team, i, &id, &version);

        if (key) {
            len = ngx_strlen(key);
            size += len + ngx_escape_json(NULL, (u_char *) key, len) + 2
                    + sizeof("},\"metadata\":{\"id\":,\"version\":,"
                             "\"description\":null,\"payload\":")
                    + 2 * NGX_INT64_LEN;
        }
    }

    t->frag = malloc(size);
    if (t->frag == NULL) {
        return NGX_ERROR;
    }

    p = t->frag;

    for (i = 0; i < n; i++) {
        key = decide_team_flag_key(t->team, i, &id, &version);

        if (key == NULL) {
            continue;
        }

        len = ngx_strlen(key);

        t->flag_key[i].data = p;
        *p++ = '"';
        p = (u_char *) ngx_escape_json(p, (u_char *) key, len);
        *p++ = '"';
        t->flag_key[i].len = p - t->flag_key[i].data;

        t->flag_meta[i].data = p;
        p = ngx_sprintf(p, "},\"metadata\":{\"id\":%L,\"version\":%L,"
                        "\"description\":null,\"payload\":",
                        (int64_t) id, (int64_t) version);
        t->flag_meta[i].len = p - t->flag_meta[i].data;
    }

    return NGX_OK;
}


static void
ngx_http_decide_team_free(ngx_http_decide_team_t *t)
{
    size_t  i;

    if (t->team) {
        /* it needs the flag count */
        ngx_http_decide_detail_free(t);
        decide_team_free(t->team);
    }

    for (i = 0; t->cohorts && i < t->ncohorts; i++) {
        free(t->cohorts[i].people);
    }

    free(t->cohorts);
    free(t->flag_key);
    free(t->frag);
    free(t->config_text);
    json_decref(t->config);
    json_decref(t->doc);
    free(t->token);
    free(t);
}


static void
ngx_http_decide_snapshot_free(ngx_http_decide_snapshot_t *s)
{
    ngx_uint_t  i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < s->nteams; i++) {
        ngx_http_decide_team_unref(s->teams[i]);
    }

    ngx_free(s->teams);
    ngx_free(s);
}


static void
ngx_http_decide_quota_free(ngx_http_decide_quota_t *q)
{
    ngx_uint_t  i;

    if (q == NULL) {
        return;
    }

    for (i = 0; i < q->n; i++) {
        free(q->tokens[i]);
    }

    free(q->tokens);
    ngx_free(q);
}


static int
ngx_http_decide_cmp_team(const void *a, const void *b)
{
    const ngx_http_decide_team_t  *ta = *(ngx_http_decide_team_t **) a;
    const ngx_http_decide_team_t  *tb = *(ngx_http_decide_team_t **) b;

    return strcmp(ta->token, tb->token);
}


static int
ngx_http_decide_cmp_int64(const void *a, const void *b)
{
    int64_t  x = *(const int64_t *) a, y = *(const int64_t *) b;

    return x < y ? -1 : x > y;
}
