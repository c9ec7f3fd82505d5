/*
 * Copyright (C) edgehog
 */

/*
 * Shared types of the decide glue: the per-worker snapshot of every
 * team (ngx_http_decide_cache.c), the blocking Redis calls of its
 * refresh, a thread-pool task (ngx_http_decide_redis.c), the Redis
 * commands of requests on the event loop (ngx_http_decide_async.c) and
 * the request path (ngx_http_decide_request.c,
 * ngx_http_decide_response.c).
 */

#ifndef _NGX_HTTP_DECIDE_MODULE_H_INCLUDED_
#define _NGX_HTTP_DECIDE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>
#include <jansson.h>
#include <hiredis/hiredis.h>

#include "decide_eval.h"
#include "decide_request.h"
#include "decide_json_arena.h"


#define NGX_HTTP_DECIDE_ENDPOINT_AUTO    0
#define NGX_HTTP_DECIDE_ENDPOINT_DECIDE  1
#define NGX_HTTP_DECIDE_ENDPOINT_FLAGS   2

/* request body arena (decide_json_arena.h): slots and bytes per slot */
#define NGX_HTTP_DECIDE_ARENA_SLOTS      4096
#define NGX_HTTP_DECIDE_ARENA_SLOT       16384


typedef struct {
    int64_t                     id;
    int64_t                    *people;         /* sorted */
    size_t                      npeople;
} ngx_http_decide_static_cohort_t;


/*
 * A flags-v2 detail ("key":{...}}) as the writer rendered it, kept for
 * the next request with the same outcome of the same flag.
 */
typedef struct ngx_http_decide_detail_s  ngx_http_decide_detail_t;

struct ngx_http_decide_detail_s {
    ngx_http_decide_detail_t   *next;
    const char                 *payload_json;   /* team's, or NULL */
    size_t                      variant_len;    /* variant: after data */
    size_t                      len;
    int                         condition_index;
    unsigned                    reason:8;
    unsigned                    enabled:1;
    unsigned                    has_variant:1;
    unsigned                    groups_skipped:1;
    u_char                      data[1];
};


/*
 * One team, immutable once built (in a pool thread) but for the detail
 * cache, which the event loop fills.  Reference counted on the event
 * loop only: the snapshot holds one reference, a request waiting for a
 * person lookup another.
 */
typedef struct {
    ngx_uint_t                  refs;
    char                       *token;
    char                        etag[48];
    int64_t                     id;
    json_t                     *doc;
    json_t                     *config;         /* config fields */
    char                       *config_text;    /* the same, dumped, */
    size_t                      config_len;     /* without the braces */
    decide_team_t              *team;
    ngx_http_decide_static_cohort_t  *cohorts;
    size_t                      ncohorts;

    /* per flag, rendered with the snapshot; len 0: render per request */
    ngx_str_t                  *flag_key;       /* "key", JSON-escaped */
    ngx_str_t                  *flag_meta;      /* },"metadata":{.."payload": */
    u_char                     *frag;           /* their bytes */

    /* per flag, rendered details by outcome; event loop only */
    ngx_http_decide_detail_t  **detail;         /* NULL: none yet */
    u_char                     *ndetail;        /* entries per flag */
} ngx_http_decide_team_t;


typedef struct {
    ngx_http_decide_team_t    **teams;          /* sorted by token */
    ngx_uint_t                  nteams;
} ngx_http_decide_snapshot_t;


typedef struct {
    char                      **tokens;         /* sorted */
    ngx_uint_t                  n;
} ngx_http_decide_quota_t;


/* decide_rate_limit: rate 0 = off */
#define NGX_HTTP_DECIDE_LIMIT_IP     0
#define NGX_HTTP_DECIDE_LIMIT_TOKEN  1

typedef struct {
    ngx_uint_t                  rate;           /* per second */
    ngx_uint_t                  burst;
    ngx_uint_t                  log_only;
} ngx_http_decide_limit_t;


typedef struct {
    ngx_str_t                   redis_address;
    char                        redis_host[256];
    int                         redis_port;
    unsigned                    redis_unix:1;

    ngx_msec_t                  refresh_interval;
    ngx_msec_t                  redis_timeout;
    ngx_msec_t                  stale_max;
    ngx_str_t                   thread_pool_name;
    ngx_thread_pool_t          *thread_pool;
    ngx_flag_t                  enabled;        /* some location uses it */
    ngx_http_decide_limit_t     limits[2];      /* by NGX_HTTP_DECIDE_LIMIT_* */
    ngx_shm_zone_t             *limits_zone;

    /* per worker, from init_process on */
    ngx_http_decide_snapshot_t *snapshot;
    ngx_http_decide_quota_t    *quota;
    long long                   version;        /* -1: none loaded */
    ngx_event_t                 refresh_ev;
    ngx_thread_task_t          *refresh_task;
    ngx_msec_t                  last_ok;
    ngx_msec_t                  reset_at;       /* 0: no reset seen */
    unsigned                    refresh_busy:1;
    unsigned                    redis_down:1;
    unsigned                    no_version:1;
    unsigned                    exiting:1;
} ngx_http_decide_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  endpoint;
    size_t                      max_decompressed;
} ngx_http_decide_loc_conf_t;


typedef enum {
    NGX_HTTP_DECIDE_FMT_DECIDE_V1 = 0,      /* featureFlags: [keys] */
    NGX_HTTP_DECIDE_FMT_DECIDE_V2,          /* featureFlags: {enabled} */
    NGX_HTTP_DECIDE_FMT_FLAGS_V1,           /* featureFlags + payloads */
    NGX_HTTP_DECIDE_FMT_FLAGS_V2            /* flags: {details} */
} ngx_http_decide_format_e;


typedef struct ngx_http_decide_scratch_s  ngx_http_decide_scratch_t;


typedef struct {
    ngx_http_decide_team_t     *team;           /* referenced */
    json_t                     *body;           /* mostly in arena */
    decide_json_arena_t         arena;          /* released last */
    json_t                     *person_props;   /* merged, owned */
    json_t                     *static_cohorts; /* owned */
    json_t                     *group_props;    /* stored + request */
    json_t                     *overrides;      /* hash-key overrides */
    decide_fields_t             fields;
    decide_request_t            req;
    decide_result_t            *results;
    u_char                     *needed;         /* per flag: pass 1 lookup */
    ngx_http_decide_scratch_t  *scratch;        /* results and response */
    u_char                     *scratch_pos;
    ngx_http_decide_format_e    format;
    ngx_str_t                   person_key;
    char                       *lookup_value;   /* person entry, malloc'd */
    size_t                      lookup_len;
    int                         lookup_rc;      /* 1 found, 0 none, -1 err */
    unsigned                    config:1;
    unsigned                    survey_only:1;
    unsigned                    quota_limited:1;
    unsigned                    person_failed:1;
    unsigned                    groups_failed:1;
    unsigned                    hko_failed:1;
} ngx_http_decide_ctx_t;


extern ngx_module_t  ngx_http_decide_module;


/* ngx_http_decide_cache.c */
ngx_int_t ngx_http_decide_cache_init(ngx_cycle_t *cycle,
    ngx_http_decide_main_conf_t *mcf);
void ngx_http_decide_cache_exit(ngx_http_decide_main_conf_t *mcf);
ngx_http_decide_team_t *ngx_http_decide_cache_team(
    ngx_http_decide_main_conf_t *mcf, u_char *token, size_t len);
ngx_uint_t ngx_http_decide_cache_quota_limited(
    ngx_http_decide_main_conf_t *mcf, u_char *token, size_t len);
void ngx_http_decide_team_ref(ngx_http_decide_team_t *t);
void ngx_http_decide_team_unref(ngx_http_decide_team_t *t);

/* ngx_http_decide_redis.c: blocking, pool threads only */
redisContext *ngx_http_decide_redis_get(ngx_http_decide_main_conf_t *mcf);
void ngx_http_decide_redis_drop(void);
void ngx_http_decide_redis_set_error(const char *err);
const char *ngx_http_decide_redis_error(void);

/*
 * ngx_http_decide_async.c: Redis commands on the event loop; the handler
 * gets the reply (hiredis frees it afterwards), or NULL and why (valid
 * during the call)
 */
typedef void (*ngx_http_decide_async_handler_pt)(void *data,
    redisReply *reply, const char *err);

ngx_int_t ngx_http_decide_async_command(ngx_http_decide_main_conf_t *mcf,
    ngx_http_decide_async_handler_pt handler, void *data,
    const char *fmt, ...);
const char *ngx_http_decide_async_error(void);
void ngx_http_decide_async_exit(void);

/* ngx_http_decide_limits.c */
char *ngx_http_decide_rate_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_decide_limits_check(ngx_http_request_t *r,
    ngx_uint_t which, u_char *key, size_t len);
ngx_int_t ngx_http_decide_send_rate_limited(ngx_http_request_t *r);

/* ngx_http_decide_lookup.c */
ngx_int_t ngx_http_decide_lookup_start(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, unsigned need);

/* ngx_http_decide_request.c */
ngx_int_t ngx_http_decide_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_decide_finish(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);

/*
 * ngx_http_decide_scratch.c: what a request of a team of n flags takes
 * of its block: results, lookup marks, the response buffers (as sized
 * in ngx_http_decide_send()), 16-byte steps
 */
#define ngx_http_decide_scratch_hint(n)                                       \
    (ngx_align(((n) + 1) * sizeof(decide_result_t), 16)                       \
     + ngx_align((n) + 1, 16) + ngx_align(1024 + (n) * 256, 16) + 256)

void *ngx_http_decide_scratch_alloc(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, size_t size, size_t hint, ngx_uint_t zero);
void ngx_http_decide_scratch_release(ngx_http_decide_ctx_t *ctx);

/* ngx_http_decide_response.c */
ngx_int_t ngx_http_decide_send(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
ngx_int_t ngx_http_decide_send_empty(ngx_http_request_t *r,
    ngx_http_decide_format_e format, ngx_uint_t config);
ngx_int_t ngx_http_decide_send_api_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, const char *code,
    const char *detail);
json_t *ngx_http_decide_config_build(json_t *team);
void ngx_http_decide_detail_free(ngx_http_decide_team_t *t);


#endif /* _NGX_HTTP_DECIDE_MODULE_H_INCLUDED_ */
