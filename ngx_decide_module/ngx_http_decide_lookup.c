/*
 * Copyright (C) edgehog
 */

/*
 * The stored data a request's flags need (the person entry, group
 * entries, hash-key overrides), read on the worker's own Redis
 * connection (ngx_http_decide_async.c) without blocking.
 *
 * The reads that do not depend on each other go out together: the
 * person entry, the $anon_distinct_id's entry and every group entry.
 * The hash-key overrides (spec 3.9 steps 2-3) need the person ids those
 * two entries name, so their commands follow once both replies are in:
 * per person (the anon id's first, the distinct id's win), one HSETNX
 * per flag then HGETALL, and for every HSETNX that wrote, the RPUSH that
 * the ingest-worker mirrors into Postgres.  Each reply is kept per
 * command and put together at the end in the order the pool thread used
 * to read them, so results and error semantics stay the thread's: a
 * failed read fails only the flags that needed it.
 *
 * The thread pool did this with blocking reads (four thread wake-ups per
 * request).  Measured against it, same run (make bench-decide,
 * BENCH_COMPARE, medians of 3 and of 5 rounds): (g), a group flag whose
 * entry is in Redis, 74.6 / 56.8 -> 25.9 / 25.6 us of nginx CPU per
 * request, 10.0k / 10.0k -> 18.3k / 16.6k req/s, p50 2.48 / 2.58 ->
 * 1.22 / 1.21 ms; (c) unchanged (21.7 against 22.2 us).  Not done: one
 * MGET for the person and group entries (one reply, one timer) answers
 * nil for a key of the wrong type where GET fails the flag, so errors
 * would change.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"
#include "eh_person_entry.h"
#include "eh_group_entry.h"


#define NGX_HTTP_DECIDE_CMD_PERSON   0
#define NGX_HTTP_DECIDE_CMD_ANON     1
#define NGX_HTTP_DECIDE_CMD_GROUP    2
#define NGX_HTTP_DECIDE_CMD_HSETNX   3
#define NGX_HTTP_DECIDE_CMD_RPUSH    4
#define NGX_HTTP_DECIDE_CMD_HGETALL  5


typedef struct ngx_http_decide_lookup_s  ngx_http_decide_lookup_t;


/* what a reply answers: the handler's data */
typedef struct {
    ngx_http_decide_lookup_t     *lk;
    ngx_uint_t                    kind;         /* NGX_HTTP_DECIDE_CMD_* */
    ngx_uint_t                    index;        /* group, or flag */
    ngx_uint_t                    pid;          /* index into pids */
} ngx_http_decide_lookup_cmd_t;


typedef struct {
    json_t                       *props;        /* stored, or NULL */
    ngx_uint_t                    failed;
} ngx_http_decide_lookup_group_t;


/* outside r->pool: it lives until the last reply, the request may not */
struct ngx_http_decide_lookup_s {
    ngx_http_request_t           *r;            /* NULL: request gone */
    ngx_http_decide_main_conf_t  *mcf;
    ngx_pool_cleanup_t           *cln;
    int64_t                       team_id;
    unsigned                      need;         /* DECIDE_NEED_* */
    char                         *distinct_id;  /* malloc'd copies */
    char                         *anon_id;      /* NULL: no write */
    json_t                       *flag_keys;    /* [continuity flag key] */
    json_t                       *groups;       /* [[gti, name, key]] */
    ngx_http_decide_lookup_group_t  *group;     /* per entry of groups */
    ngx_http_decide_lookup_cmd_t    *cmds;
    ngx_uint_t                    ncmds;        /* used of cmds */
    ngx_uint_t                    pending;      /* commands in flight */
    char                         *value;        /* person entry, malloc'd */
    size_t                        len;
    int                           person_rc;    /* 1, 0 none, -1 error */
    int                           anon_rc;      /* 0 ok, -1 error */
    int64_t                       pid_a;        /* the anon id's person */
    int64_t                       pids[2];      /* anon id's first */
    ngx_uint_t                    npids;
    json_t                       *hko[2];       /* per pid: HGETALL */
    ngx_uint_t                    hko_failed[2];
    unsigned                      person_done:1;
    unsigned                      anon_done:1;
    unsigned                      hko_started:1;
    unsigned                      hko_refused:1;
    unsigned                      hko_logged:1;
    unsigned                      groups_logged:1;
};


static ngx_http_decide_lookup_cmd_t *ngx_http_decide_lookup_cmd(
    ngx_http_decide_lookup_t *lk, ngx_uint_t kind, ngx_uint_t index,
    ngx_uint_t pid);
static int64_t ngx_http_decide_lookup_pid(redisReply *reply, int *rc,
    const char **err);
static void ngx_http_decide_lookup_reply(void *data, redisReply *reply,
    const char *err);
static void ngx_http_decide_lookup_person(ngx_http_decide_lookup_t *lk,
    redisReply *reply, const char *err);
static void ngx_http_decide_lookup_group(ngx_http_decide_lookup_t *lk,
    ngx_uint_t i, redisReply *reply, const char *err);
static void ngx_http_decide_lookup_hko_start(ngx_http_decide_lookup_t *lk);
static void ngx_http_decide_lookup_hsetnx(ngx_http_decide_lookup_cmd_t *cmd,
    redisReply *reply, const char *err);
static void ngx_http_decide_lookup_hgetall(ngx_http_decide_lookup_t *lk,
    ngx_uint_t pid, redisReply *reply, const char *err);
static void ngx_http_decide_lookup_hko_fail(ngx_http_decide_lookup_t *lk,
    ngx_uint_t pid, const char *err);
static void ngx_http_decide_lookup_done(ngx_http_decide_lookup_t *lk);
static void ngx_http_decide_lookup_free(ngx_http_decide_lookup_t *lk);
static void ngx_http_decide_lookup_cleanup(void *data);


/*
 * NGX_DONE: the lookup finalizes the request; anything else is the
 * request's status (the flags that needed stored data failed when Redis
 * could not even be asked)
 */
ngx_int_t
ngx_http_decide_lookup_start(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, unsigned need)
{
    int                            gti;
    char                          *s, *key;
    size_t                         i, n, len;
    json_t                        *v, *keys, *groups;
    ngx_uint_t                     ngroups, nflags, ncmds;
    const char                    *name;
    ngx_pool_cleanup_t            *cln;
    const decide_team_t           *team;
    ngx_http_decide_lookup_t      *lk;
    ngx_http_decide_main_conf_t   *mcf;
    ngx_http_decide_lookup_cmd_t  *cmd;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);
    team = ctx->team->team;

    lk = ngx_calloc(sizeof(ngx_http_decide_lookup_t), r->connection->log);
    if (lk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk->r = r;
    lk->mcf = mcf;
    lk->team_id = ctx->team->id;
    lk->need = need;
    lk->person_rc = -1;
    lk->anon_rc = 0;

    /* copies: the team snapshot may go away with an aborted request */
    lk->distinct_id = strdup(ctx->fields.distinct_id
                             ? ctx->fields.distinct_id : "");

    if (lk->distinct_id == NULL) {
        goto failed;
    }

    if ((need & DECIDE_NEED_HASH_KEY) && ctx->fields.anon_distinct_id
        && ctx->fields.anon_distinct_id[0] != '\0')
    {
        lk->anon_id = strdup(ctx->fields.anon_distinct_id);
        if (lk->anon_id == NULL) {
            goto failed;
        }
    }

    nflags = 0;
    ngroups = 0;

    if (need & DECIDE_NEED_HASH_KEY) {
        keys = json_array();
        lk->flag_keys = keys;

        if (keys == NULL) {
            goto failed;
        }

        n = decide_team_nflags(team);

        for (i = 0; i < n; i++) {
            if ((ctx->needed[i] & DECIDE_NEED_HASH_KEY)
                && ctx->results[i].key)
            {
                json_array_append_new(keys,
                                      json_string(ctx->results[i].key));
            }
        }

        nflags = json_array_size(keys);
    }

    if (need & DECIDE_NEED_GROUPS) {
        /* [[group type index, type name, key], ...] */
        groups = json_array();
        lk->groups = groups;

        if (groups == NULL) {
            goto failed;
        }

        json_object_foreach(ctx->fields.groups, name, v) {
            gti = decide_team_group_type_index(team, name);
            if (gti < 0) {
                continue;
            }

            if (json_is_string(v)) {
                s = strdup(json_string_value(v));

            } else if (json_is_integer(v)) {
                s = malloc(32);
                if (s) {
                    snprintf(s, 32, "%" JSON_INTEGER_FORMAT,
                             json_integer_value(v));
                }

            } else {
                continue;
            }

            if (s == NULL) {
                goto failed;
            }

            json_array_append_new(groups,
                                  json_pack("[iss]", gti, name, s));
            free(s);
        }

        ngroups = json_array_size(groups);
    }

    /*
     * person, anon id, groups; then per person id an HSETNX and an RPUSH
     * per flag and one HGETALL
     */
    ncmds = 2 + ngroups + 2 * (2 * nflags + 1);

    lk->cmds = ngx_calloc(ncmds * sizeof(ngx_http_decide_lookup_cmd_t)
                          + ngroups * sizeof(ngx_http_decide_lookup_group_t),
                          r->connection->log);
    if (lk->cmds == NULL) {
        goto failed;
    }

    lk->group = (ngx_http_decide_lookup_group_t *) (lk->cmds + ncmds);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_http_decide_lookup_cleanup;
    cln->data = lk;
    lk->cln = cln;

    /*
     * The person entry alone (the usual case) is one GET.  Measured
     * against the pool task, same run (make bench-decide, BENCH_COMPARE):
     * (c) 55.0 -> 22.9 us of nginx CPU per request, 14.9k -> 24.2k req/s;
     * open loop at 8k req/s p50 1011 -> 228 us.  Then the commands of one
     * loop iteration went out in one write (ngx_http_decide_async.c):
     * 23.5 -> 18.8 us, 34.9k -> 42.8k req/s (median of 3, same run),
     * open-loop p50 at 6k req/s unchanged (174 -> 178 us).
     */
    len = eh_person_key(NULL, 0, lk->team_id, lk->distinct_id,
                        strlen(lk->distinct_id));
    key = ngx_pnalloc(r->pool, len + 1);
    if (key == NULL) {
        cln->handler = NULL;
        goto failed;
    }

    eh_person_key(key, len + 1, lk->team_id, lk->distinct_id,
                  strlen(lk->distinct_id));

    cmd = ngx_http_decide_lookup_cmd(lk, NGX_HTTP_DECIDE_CMD_PERSON, 0, 0);

    if (ngx_http_decide_async_command(mcf, ngx_http_decide_lookup_reply,
                                      cmd, "GET %b", key, len)
        != NGX_OK)
    {
        /* the flags that need stored data fail; say why once */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "decide: redis lookup for team %L failed: %s",
                      (long long) lk->team_id, ngx_http_decide_async_error());

        cln->handler = NULL;
        ngx_http_decide_lookup_free(lk);

        ctx->person_failed = 1;
        ctx->groups_failed = 1;
        ctx->hko_failed = 1;
        return ngx_http_decide_finish(r, ctx);
    }

    lk->pending++;

    /* from here on, what cannot be asked fails as a failed reply would */

    if (lk->anon_id) {
        len = eh_person_key(NULL, 0, lk->team_id, lk->anon_id,
                            strlen(lk->anon_id));
        key = ngx_pnalloc(r->pool, len + 1);

        if (key != NULL) {
            eh_person_key(key, len + 1, lk->team_id, lk->anon_id,
                          strlen(lk->anon_id));
            cmd = ngx_http_decide_lookup_cmd(lk, NGX_HTTP_DECIDE_CMD_ANON,
                                             0, 0);
        }

        if (key != NULL
            && ngx_http_decide_async_command(mcf,
                                             ngx_http_decide_lookup_reply,
                                             cmd, "GET %b", key, len)
               == NGX_OK)
        {
            lk->pending++;

        } else {
            lk->anon_rc = -1;
            lk->anon_done = 1;
        }

    } else {
        lk->anon_done = 1;
    }

    for (i = 0; i < ngroups; i++) {
        v = json_array_get(lk->groups, i);
        gti = (int) json_integer_value(json_array_get(v, 0));
        s = (char *) json_string_value(json_array_get(v, 2));

        len = eh_group_key(NULL, 0, lk->team_id, gti, s, strlen(s));
        key = ngx_pnalloc(r->pool, len + 1);

        if (key != NULL) {
            eh_group_key(key, len + 1, lk->team_id, gti, s, strlen(s));
            cmd = ngx_http_decide_lookup_cmd(lk, NGX_HTTP_DECIDE_CMD_GROUP,
                                             i, 0);
        }

        if (key == NULL
            || ngx_http_decide_async_command(mcf,
                                             ngx_http_decide_lookup_reply,
                                             cmd, "GET %b", key, len)
               != NGX_OK)
        {
            /* the groups after it are not needed: this one fails them */
            lk->group[i].failed = 1;
            break;
        }

        lk->pending++;
    }

    return NGX_DONE;

failed:

    ngx_http_decide_lookup_free(lk);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_http_decide_lookup_cmd_t *
ngx_http_decide_lookup_cmd(ngx_http_decide_lookup_t *lk, ngx_uint_t kind,
    ngx_uint_t index, ngx_uint_t pid)
{
    ngx_http_decide_lookup_cmd_t  *cmd;

    /* sized for every command the lookup can send */
    cmd = &lk->cmds[lk->ncmds++];

    cmd->lk = lk;
    cmd->kind = kind;
    cmd->index = index;
    cmd->pid = pid;

    return cmd;
}


/* a person entry's id: 0 without one; rc -1 when it could not be read */
static int64_t
ngx_http_decide_lookup_pid(redisReply *reply, int *rc, const char **err)
{
    int64_t             pid;
    eh_person_entry_t   entry;

    *rc = 0;
    pid = 0;

    if (reply == NULL) {
        *rc = -1;

    } else if (reply->type == REDIS_REPLY_STRING) {
        if (eh_person_entry_decode(reply->str, reply->len, &entry) == 0) {
            pid = entry.id;
            eh_person_entry_free(&entry);
        }

    } else if (reply->type != REDIS_REPLY_NIL) {
        *rc = -1;
        *err = reply->type == REDIS_REPLY_ERROR ? reply->str
                                                : "unexpected reply";
    }

    return pid;
}


static void
ngx_http_decide_lookup_reply(void *data, redisReply *reply, const char *err)
{
    ngx_http_decide_lookup_cmd_t *cmd = data;

    int                        rc;
    ngx_http_decide_lookup_t  *lk;

    lk = cmd->lk;

    switch (cmd->kind) {

    case NGX_HTTP_DECIDE_CMD_PERSON:
        ngx_http_decide_lookup_person(lk, reply, err);
        break;

    case NGX_HTTP_DECIDE_CMD_ANON:
        lk->pid_a = ngx_http_decide_lookup_pid(reply, &rc, &err);
        lk->anon_rc = rc;
        lk->anon_done = 1;

        if (rc < 0) {
            ngx_http_decide_lookup_hko_fail(lk, 0, err);
        }

        break;

    case NGX_HTTP_DECIDE_CMD_GROUP:
        ngx_http_decide_lookup_group(lk, cmd->index, reply, err);
        break;

    case NGX_HTTP_DECIDE_CMD_HSETNX:
        ngx_http_decide_lookup_hsetnx(cmd, reply, err);
        break;

    case NGX_HTTP_DECIDE_CMD_RPUSH:
        /* as the pool thread did: only a lost connection counts */
        if (reply == NULL) {
            ngx_http_decide_lookup_hko_fail(lk, cmd->pid, err);
        }

        break;

    default: /* NGX_HTTP_DECIDE_CMD_HGETALL */
        ngx_http_decide_lookup_hgetall(lk, cmd->pid, reply, err);
        break;
    }

    if (!lk->hko_started && lk->person_done && lk->anon_done
        && (lk->need & DECIDE_NEED_HASH_KEY))
    {
        ngx_http_decide_lookup_hko_start(lk);
    }

    if (--lk->pending == 0) {
        ngx_http_decide_lookup_done(lk);
    }
}


static void
ngx_http_decide_lookup_person(ngx_http_decide_lookup_t *lk,
    redisReply *reply, const char *err)
{
    lk->person_done = 1;
    lk->person_rc = -1;

    if (reply == NULL) {
        /* err says why */

    } else if (reply->type == REDIS_REPLY_STRING) {
        /* malloc'd, NUL-terminated: the request keeps it */
        lk->value = malloc(reply->len + 1);

        if (lk->value == NULL) {
            err = "out of memory";

        } else {
            memcpy(lk->value, reply->str, reply->len);
            lk->value[reply->len] = '\0';
            lk->len = reply->len;
            lk->person_rc = 1;
        }

    } else if (reply->type == REDIS_REPLY_NIL) {
        lk->person_rc = 0;

    } else {
        err = reply->type == REDIS_REPLY_ERROR ? reply->str
                                               : "unexpected reply";
    }

    if (lk->person_rc < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "decide: person lookup for team %L failed: %s",
                      (long long) lk->team_id, err);
    }
}


static void
ngx_http_decide_lookup_group(ngx_http_decide_lookup_t *lk, ngx_uint_t i,
    redisReply *reply, const char *err)
{
    json_t  *props;

    if (reply == NULL) {
        /* err says why */

    } else if (reply->type == REDIS_REPLY_STRING) {
        props = eh_group_entry_decode(reply->str, reply->len);

        if (props != NULL) {
            lk->group[i].props = props;
            return;
        }

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "decide: malformed group entry for team %L",
                      (long long) lk->team_id);
        lk->group[i].failed = 1;
        return;

    } else if (reply->type == REDIS_REPLY_NIL) {
        return;

    } else {
        err = reply->type == REDIS_REPLY_ERROR ? reply->str
                                               : "unexpected reply";
    }

    lk->group[i].failed = 1;

    if (lk->groups_logged) {
        return;
    }

    lk->groups_logged = 1;

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "decide: group lookup for team %L failed: %s",
                  (long long) lk->team_id, err);
}


/* spec 3.9 steps 2-3 against the Redis copy, once both person ids are in */
static void
ngx_http_decide_lookup_hko_start(ngx_http_decide_lookup_t *lk)
{
    char                           key[96];
    size_t                         k, len;
    int64_t                        pid_d;
    ngx_uint_t                     i;
    const char                    *flag;
    eh_person_entry_t              entry;
    ngx_http_decide_lookup_cmd_t  *cmd;

    lk->hko_started = 1;

    if (lk->person_rc < 0 || lk->anon_rc < 0) {
        lk->hko_refused = 1;
        return;
    }

    pid_d = 0;

    if (lk->person_rc == 1
        && eh_person_entry_decode(lk->value, lk->len, &entry) == 0)
    {
        pid_d = entry.id;
        eh_person_entry_free(&entry);
    }

    /* A's overrides first, D's win (step 2c) */
    if (lk->pid_a && lk->pid_a != pid_d) {
        lk->pids[lk->npids++] = lk->pid_a;
    }

    if (pid_d) {
        lk->pids[lk->npids++] = pid_d;
    }

    for (i = 0; i < lk->npids; i++) {
        len = eh_hko_key(key, sizeof(key), lk->team_id, lk->pids[i]);

        /* step 2b: the first write wins, like ON CONFLICT DO NOTHING */
        for (k = 0; lk->anon_id && k < json_array_size(lk->flag_keys); k++) {
            flag = json_string_value(json_array_get(lk->flag_keys, k));
            cmd = ngx_http_decide_lookup_cmd(lk, NGX_HTTP_DECIDE_CMD_HSETNX,
                                             k, i);

            if (ngx_http_decide_async_command(lk->mcf,
                                              ngx_http_decide_lookup_reply,
                                              cmd, "HSETNX %b %s %s", key,
                                              len, flag, lk->anon_id)
                != NGX_OK)
            {
                ngx_http_decide_lookup_hko_fail(lk, i,
                                                ngx_http_decide_async_error());
                return;
            }

            lk->pending++;
        }

        cmd = ngx_http_decide_lookup_cmd(lk, NGX_HTTP_DECIDE_CMD_HGETALL, 0,
                                         i);

        if (ngx_http_decide_async_command(lk->mcf,
                                          ngx_http_decide_lookup_reply, cmd,
                                          "HGETALL %b", key, len)
            != NGX_OK)
        {
            ngx_http_decide_lookup_hko_fail(lk, i,
                                            ngx_http_decide_async_error());
            return;
        }

        lk->pending++;
    }
}


static void
ngx_http_decide_lookup_hsetnx(ngx_http_decide_lookup_cmd_t *cmd,
    redisReply *reply, const char *err)
{
    char                          *pending;
    const char                    *flag;
    ngx_http_decide_lookup_t      *lk;
    ngx_http_decide_lookup_cmd_t  *push;

    lk = cmd->lk;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer < 0)
    {
        ngx_http_decide_lookup_hko_fail(lk, cmd->pid,
            reply == NULL ? err
            : reply->type == REDIS_REPLY_ERROR ? reply->str
            : "unexpected reply");
        return;
    }

    if (reply->integer == 0) {
        return;
    }

    /* mirrored into Postgres by the ingest-worker */
    flag = json_string_value(json_array_get(lk->flag_keys, cmd->index));

    pending = eh_hko_pending_encode(lk->team_id, lk->pids[cmd->pid], flag,
                                    lk->anon_id, strlen(lk->anon_id));
    if (pending == NULL) {
        ngx_http_decide_lookup_hko_fail(lk, cmd->pid, "out of memory");
        return;
    }

    push = ngx_http_decide_lookup_cmd(lk, NGX_HTTP_DECIDE_CMD_RPUSH,
                                      cmd->index, cmd->pid);

    if (ngx_http_decide_async_command(lk->mcf, ngx_http_decide_lookup_reply,
                                      push, "RPUSH %s %s", EH_HKO_PENDING_KEY,
                                      pending)
        == NGX_OK)
    {
        lk->pending++;

    } else {
        ngx_http_decide_lookup_hko_fail(lk, cmd->pid,
                                        ngx_http_decide_async_error());
    }

    free(pending);
}


static void
ngx_http_decide_lookup_hgetall(ngx_http_decide_lookup_t *lk, ngx_uint_t pid,
    redisReply *reply, const char *err)
{
    size_t       k;
    json_t      *o;
    redisReply  *name, *value;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_decide_lookup_hko_fail(lk, pid,
            reply == NULL ? err
            : reply->type == REDIS_REPLY_ERROR ? reply->str
            : "unexpected reply");
        return;
    }

    o = json_object();
    if (o == NULL) {
        ngx_http_decide_lookup_hko_fail(lk, pid, "out of memory");
        return;
    }

    for (k = 0; k + 1 < reply->elements; k += 2) {
        name = reply->element[k];
        value = reply->element[k + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        json_object_setn_new(o, name->str, name->len,
                             json_stringn(value->str, value->len));
    }

    lk->hko[pid] = o;
}


/* the flags with continuity fail; say why once per request */
static void
ngx_http_decide_lookup_hko_fail(ngx_http_decide_lookup_t *lk,
    ngx_uint_t pid, const char *err)
{
    lk->hko_failed[pid] = 1;

    if (lk->hko_logged) {
        return;
    }

    lk->hko_logged = 1;

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "decide: hash key override lookup for team %L failed: %s",
                  (long long) lk->team_id, err);
}


/* every reply is in: the second pass, as the pool thread's results */
static void
ngx_http_decide_lookup_done(ngx_http_decide_lookup_t *lk)
{
    int                     groups_rc, hko_rc;
    json_t                 *g;
    ngx_int_t               rc;
    ngx_uint_t              i;
    const char             *name;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_decide_ctx_t  *ctx;

    r = lk->r;

    if (r == NULL) {
        ngx_http_decide_lookup_free(lk);
        return;
    }

    lk->cln->handler = NULL;

    ctx = ngx_http_get_module_ctx(r, ngx_http_decide_module);

    /* groups in request order up to the first that failed */
    groups_rc = 0;

    if (lk->need & DECIDE_NEED_GROUPS) {
        ctx->group_props = json_object();
        groups_rc = ctx->group_props ? 0 : -1;

        for (i = 0; groups_rc == 0 && i < json_array_size(lk->groups); i++) {
            if (lk->group[i].failed) {
                groups_rc = -1;
                break;
            }

            if (lk->group[i].props == NULL) {
                continue;
            }

            g = json_array_get(lk->groups, i);
            name = json_string_value(json_array_get(g, 1));

            json_object_set_new(ctx->group_props, name, lk->group[i].props);
            lk->group[i].props = NULL;
        }
    }

    /* the anon id's overrides, then the distinct id's over them */
    hko_rc = -1;

    if ((lk->need & DECIDE_NEED_HASH_KEY) && !lk->hko_refused) {
        ctx->overrides = json_object();
        hko_rc = ctx->overrides ? 0 : -1;

        for (i = 0; hko_rc == 0 && i < lk->npids; i++) {
            if (lk->hko_failed[i] || lk->hko[i] == NULL) {
                hko_rc = -1;
                break;
            }

            json_object_update(ctx->overrides, lk->hko[i]);
        }
    }

    ctx->lookup_rc = lk->person_rc;
    ctx->lookup_value = lk->value;
    ctx->lookup_len = lk->len;
    lk->value = NULL;

    ctx->person_failed = lk->person_rc < 0;
    ctx->groups_failed = groups_rc < 0;
    ctx->hko_failed = (lk->need & DECIDE_NEED_HASH_KEY) && hko_rc < 0;

    ngx_http_decide_lookup_free(lk);

    c = r->connection;

    rc = ngx_http_decide_finish(r, ctx);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_decide_lookup_free(ngx_http_decide_lookup_t *lk)
{
    size_t  i;

    if (lk->cmds) {
        for (i = 0; i < json_array_size(lk->groups); i++) {
            json_decref(lk->group[i].props);
        }

        ngx_free(lk->cmds);
    }

    free(lk->distinct_id);
    free(lk->anon_id);
    free(lk->value);
    json_decref(lk->flag_keys);
    json_decref(lk->groups);
    json_decref(lk->hko[0]);
    json_decref(lk->hko[1]);
    ngx_free(lk);
}


static void
ngx_http_decide_lookup_cleanup(void *data)
{
    ngx_http_decide_lookup_t *lk = data;

    lk->r = NULL;
}
