/*
 * Copyright (C) edgehog
 */

/*
 * The /decide and /flags request path: methods, query parameters, body
 * decoding, team lookup in the snapshot, evaluation, and the second pass
 * after the lookup of stored data (ngx_http_decide_lookup.c) when, and
 * only when, a flag needs stored person or group properties or hash-key
 * overrides.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"
#include "ngx_http_edgehog_response.h"
#include "eh_person_entry.h"


static void ngx_http_decide_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_decide_process(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static ngx_int_t ngx_http_decide_evaluate(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static void ngx_http_decide_ctx_cleanup(void *data);
static ngx_int_t ngx_http_decide_format(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static u_char *ngx_http_decide_body(ngx_http_request_t *r, size_t *len);
static ngx_int_t ngx_http_decide_remote_config(ngx_http_request_t *r,
    u_char *token, size_t len, ngx_uint_t js);


ngx_int_t
ngx_http_decide_handler(ngx_http_request_t *r)
{
    u_char                 *p, *token, *last;
    ngx_int_t               rc;
    ngx_str_t               type;
    ngx_table_elt_t        *h;
    ngx_http_decide_ctx_t  *ctx;

    /* remote config: <prefix>/array/<token>/config[.js] */
    p = ngx_strlcasestrn(r->uri.data, r->uri.data + r->uri.len,
                         (u_char *) "/array/", 7 - 1);

    if (p != NULL) {
        token = p + 7;
        last = r->uri.data + r->uri.len;
        p = ngx_strlchr(token, last, '/');

        if (p != NULL
            && ((last - p == 7 && ngx_strncmp(p, "/config", 7) == 0)
                || (last - p == 10 && ngx_strncmp(p, "/config.js", 10) == 0)))
        {
            if (r->method == NGX_HTTP_OPTIONS) {
                rc = ngx_http_discard_request_body(r);
                if (rc != NGX_OK) {
                    return rc;
                }

                if (ngx_http_edgehog_cors(r, 1) != NGX_OK) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                r->headers_out.status = NGX_HTTP_NO_CONTENT;
                r->headers_out.content_length_n = 0;
                r->header_only = 1;

                return ngx_http_send_header(r);
            }

            return ngx_http_decide_remote_config(r, token, p - token,
                                                 last - p == 10);
        }
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_edgehog_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, POST, OPTIONS, HEAD");

        return ngx_http_decide_send_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "invalid_request",
                                              "method_not_allowed",
                                              "Method not allowed");
    }

    /* §1.5 step 1: the address's bucket, before the body is read */
    if (ngx_http_decide_limits_check(r, NGX_HTTP_DECIDE_LIMIT_IP,
                                     r->connection->addr_text.data,
                                     r->connection->addr_text.len)
        != NGX_OK)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_decide_send_rate_limited(r);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_decide_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_decide_module);

    rc = ngx_http_decide_format(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->method == NGX_HTTP_HEAD) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&type, "application/json");
        return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, NULL);
    }

    if (r->method == NGX_HTTP_GET) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_decide_send_empty(r, ctx->format, 0);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_decide_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* spec/decide.md 1.2 */
static ngx_int_t
ngx_http_decide_format(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    ngx_int_t                    v;
    ngx_str_t                    arg;
    ngx_uint_t                   decide, has_v, has_config, config;
    ngx_http_decide_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_decide_module);

    if (lcf->endpoint == NGX_HTTP_DECIDE_ENDPOINT_AUTO) {
        decide = ngx_strlcasestrn(r->uri.data, r->uri.data + r->uri.len,
                                  (u_char *) "decide", 6 - 1) != NULL;

    } else {
        decide = lcf->endpoint == NGX_HTTP_DECIDE_ENDPOINT_DECIDE;
    }

    v = 1;
    has_v = 0;

    if ((ngx_http_arg(r, (u_char *) "v", 1, &arg) == NGX_OK
         || ngx_http_arg(r, (u_char *) "version", 7, &arg) == NGX_OK)
        && arg.len)
    {
        has_v = 1;
        v = ngx_atoi(arg.data, arg.len);
        if (v == NGX_ERROR) {
            v = 1;
        }
    }

    config = 0;
    has_config = ngx_http_arg(r, (u_char *) "config", 6, &arg) == NGX_OK;

    if (has_config) {
        config = decide_query_bool((char *) arg.data, arg.len);
    }

    if (ngx_http_arg(r, (u_char *) "only_evaluate_survey_feature_flags",
                     34, &arg) == NGX_OK)
    {
        ctx->survey_only = decide_query_bool((char *) arg.data, arg.len);
    }

    if (decide) {
        ctx->format = v >= 4 ? NGX_HTTP_DECIDE_FMT_FLAGS_V2
                      : v == 3 ? NGX_HTTP_DECIDE_FMT_FLAGS_V1
                      : v == 2 ? NGX_HTTP_DECIDE_FMT_DECIDE_V2
                      : NGX_HTTP_DECIDE_FMT_DECIDE_V1;
        ctx->config = has_config ? config : 1;

    } else if (!has_v && !has_config) {
        ctx->format = NGX_HTTP_DECIDE_FMT_FLAGS_V2;
        ctx->config = 1;

    } else {
        ctx->format = v >= 2 ? NGX_HTTP_DECIDE_FMT_FLAGS_V2
                             : NGX_HTTP_DECIDE_FMT_FLAGS_V1;
        ctx->config = config;
    }

    return NGX_OK;
}


static void
ngx_http_decide_body_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_decide_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_decide_module);

    rc = ngx_http_decide_process(r, ctx);

    if (rc == NGX_DONE) {
        /* a lookup is in flight; its completion finalizes */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_decide_process(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    char                         err[128], detail[192];
    u_char                      *body;
    size_t                       len;
    ngx_str_t                    arg;
    json_t                      *v;
    decide_decode_e              drc;
    ngx_table_elt_t             *ce;
    ngx_pool_cleanup_t          *cln;
    decide_body_opts_t           opts;
    ngx_http_decide_team_t      *team;
    ngx_http_decide_loc_conf_t  *lcf;
    ngx_http_decide_main_conf_t *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_decide_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_decide_ctx_cleanup;
    cln->data = ctx;

    body = ngx_http_decide_body(r, &len);
    if (body == NULL) {
        return ngx_http_decide_send_api_error(r,
                                    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "validation_error", "payload_too_large",
                                    "Request body too large");
    }

    ngx_memzero(&opts, sizeof(decide_body_opts_t));

    if (r->headers_in.content_type) {
        opts.content_type = (char *) r->headers_in.content_type->value.data;
        opts.content_type_len = r->headers_in.content_type->value.len;
    }

    ce = ngx_http_edgehog_header_in(r, "Content-Encoding",
                                    sizeof("Content-Encoding") - 1);
    opts.content_encoding_gzip = ce
                                 && ngx_strlcasestrn(ce->value.data,
                                          ce->value.data + ce->value.len,
                                          (u_char *) "gzip", 4 - 1) != NULL;

    if (ngx_http_arg(r, (u_char *) "compression", 11, &arg) == NGX_OK) {
        opts.compression = decide_compression_parse((char *) arg.data,
                                                    arg.len);
    }

    opts.max_decompressed = lcf->max_decompressed;

    /* the tree lives until the request ends: see the ctx cleanup */
    decide_json_arena_take(&ctx->arena);
    decide_json_arena_begin(&ctx->arena);

    /* the common SDK body: its fields without its top-level object */
    if (decide_fields_fast(body, len, &opts, &v, &ctx->fields) == 0) {
        decide_json_arena_end();
        ctx->body = v;
        goto fields;
    }

    drc = decide_body_decode(body, len, &opts, &v, err, sizeof(err));

    decide_json_arena_end();

    if (drc == DECIDE_DECODE_TOO_LARGE) {
        return ngx_http_decide_send_api_error(r,
                                    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "validation_error", "payload_too_large",
                                    err);
    }

    if (drc != DECIDE_DECODE_OK || !json_is_object(v)) {
        json_decref(v);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "decide: undecodable body: %s",
                      drc == DECIDE_DECODE_OK ? "not an object" : err);
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "Failed to decode request: %s. Please check your "
                     "request format and try again.%Z",
                     drc == DECIDE_DECODE_OK ? "not a JSON object" : err);
        return ngx_http_decide_send_api_error(r, NGX_HTTP_BAD_REQUEST,
                                              "validation_error",
                                              "malformed_data", detail);
    }

    ctx->body = v;
    decide_fields_get(v, &ctx->fields);

fields:

    if (ctx->fields.token == NULL
        && (ngx_http_arg(r, (u_char *) "token", 5, &arg) == NGX_OK
            || ngx_http_arg(r, (u_char *) "api_key", 7, &arg) == NGX_OK)
        && arg.len)
    {
        ctx->fields.token = (char *) ngx_pnalloc(r->pool, arg.len + 1);
        if (ctx->fields.token == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_cpystrn((u_char *) ctx->fields.token, arg.data, arg.len + 1);
    }

    if (ctx->fields.token == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_UNAUTHORIZED,
                   "authentication_error", "not_authenticated",
                   "No API token provided. Please include a valid API token "
                   "in your request.");
    }

    if (ngx_http_decide_limits_check(r, NGX_HTTP_DECIDE_LIMIT_TOKEN,
                                     (u_char *) ctx->fields.token,
                                     ngx_strlen(ctx->fields.token))
        != NGX_OK)
    {
        return ngx_http_decide_send_rate_limited(r);
    }

    if (mcf->snapshot == NULL) {
        /* nothing was ever loaded: we cannot tell a bad token */
        return ngx_http_decide_send_api_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
                   "service_unavailable",
                   "Flag definitions are not loaded yet.");
    }

    if (mcf->stale_max && mcf->redis_down
        && ngx_current_msec - mcf->last_ok > mcf->stale_max)
    {
        /* the operator chose an error over answers this old */
        return ngx_http_decide_send_api_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
                   "service_unavailable",
                   "Flag definitions are stale.");
    }

    team = ngx_http_decide_cache_team(mcf, (u_char *) ctx->fields.token,
                                      ngx_strlen(ctx->fields.token));
    if (team == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_UNAUTHORIZED,
                   "authentication_error", "authentication_failed",
                   "The provided API key is invalid or has expired. Please "
                   "check your API key and try again.");
    }

    ngx_http_decide_team_ref(team);
    ctx->team = team;

    if (ctx->fields.disable_flags) {
        return ngx_http_decide_send(r, ctx);
    }

    if (ngx_http_decide_cache_quota_limited(mcf, (u_char *) ctx->fields.token,
                                            ngx_strlen(ctx->fields.token)))
    {
        ctx->quota_limited = 1;
        return ngx_http_decide_send(r, ctx);
    }

    if (ctx->fields.distinct_id == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_BAD_REQUEST,
                   "validation_error", "missing_distinct_id",
                   "The distinct_id field is missing from the request. "
                   "Please include a valid identifier.");
    }

    return ngx_http_decide_evaluate(r, ctx);
}


static ngx_int_t
ngx_http_decide_evaluate(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    int                          browser;
    size_t                       i, n;
    unsigned                     need;
    ngx_time_t                  *tp;
    ngx_table_elt_t             *ua;
    decide_request_t            *req;

    n = decide_team_nflags(ctx->team->team);

    ctx->results = ngx_http_decide_scratch_alloc(r, ctx,
                                        (n + 1) * sizeof(decide_result_t),
                                        ngx_http_decide_scratch_hint(n), 1);
    ctx->needed = ngx_http_decide_scratch_alloc(r, ctx, n + 1,
                                        ngx_http_decide_scratch_hint(n), 1);

    if (ctx->results == NULL || ctx->needed == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req = &ctx->req;
    req->distinct_id = ctx->fields.distinct_id;
    req->device_id = ctx->fields.device_id;
    req->anon_distinct_id = ctx->fields.anon_distinct_id;
    req->person_properties = ctx->fields.person_properties;
    req->groups = ctx->fields.groups;
    req->group_properties = ctx->fields.group_properties;
    req->environments = ctx->fields.environments;

    tp = ngx_timeofday();
    req->now = (double) tp->sec + tp->msec / 1000.0;

    ua = r->headers_in.user_agent;

    if (ctx->fields.runtime_set) {
        req->runtime = ctx->fields.runtime;

    } else {
        browser = ngx_http_edgehog_header_in(r, "Origin", 6) != NULL
                  || r->headers_in.referer != NULL
                  || ngx_http_edgehog_header_in(r, "Sec-Fetch-Mode", 14)
                     != NULL;

        req->runtime = decide_runtime_detect(
                           ua ? (char *) ua->value.data : NULL,
                           ua ? ua->value.len : 0, browser);
    }

    /*
     * First pass with the request's values only; whatever stored data
     * a flag needs (person, groups, hash-key overrides) is fetched from
     * Redis on the event loop and merged in for the second pass.
     */
    need = decide_eval_flags(ctx->team->team, req, ctx->results);

    if (need == 0) {
        return ngx_http_decide_send(r, ctx);
    }

    for (i = 0; i < n; i++) {
        if (ctx->results[i].status == DECIDE_STATUS_NEEDS_LOOKUP) {
            ctx->needed[i] = (u_char) (ctx->results[i].need
                                       ? ctx->results[i].need
                                       : DECIDE_NEED_PERSON);
        }
    }

    return ngx_http_decide_lookup_start(r, ctx, need);
}


/* second pass with stored data merged under the request's values */
ngx_int_t
ngx_http_decide_finish(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    size_t                    i, j, n;
    unsigned                  failed;
    json_t                   *merged, *ids, *v;
    const char               *name;
    eh_person_entry_t         entry;
    ngx_http_decide_team_t   *t;
    ngx_http_decide_static_cohort_t  *sc;

    t = ctx->team;
    n = decide_team_nflags(t->team);

    if (ctx->lookup_rc == 1) {
        if (eh_person_entry_decode(ctx->lookup_value, ctx->lookup_len,
                                   &entry)
            != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "decide: malformed person entry for team %L",
                          t->id);
            ctx->person_failed = 1;

        } else {
            merged = entry.properties;
            entry.properties = NULL;

            if (ctx->fields.person_properties) {
                json_object_update(merged, ctx->fields.person_properties);
            }

            ctx->person_props = merged;
            ctx->req.person_properties = merged;

            ids = json_array();

            for (i = 0; ids && entry.id && i < t->ncohorts; i++) {
                sc = &t->cohorts[i];

                for (j = 0; j < sc->npeople; j++) {
                    if (sc->people[j] == entry.id) {
                        json_array_append_new(ids, json_integer(sc->id));
                        break;
                    }
                }
            }

            ctx->static_cohorts = ids;
            ctx->req.static_cohorts = ids;
        }
    }

    if (ctx->group_props) {
        /* the request's group properties win, key by key */
        json_object_foreach(ctx->fields.group_properties, name, v) {
            merged = json_object_get(ctx->group_props, name);

            if (json_is_object(merged) && json_is_object(v)) {
                json_object_update(merged, v);

            } else {
                json_object_set(ctx->group_props, name, v);
            }
        }

        ctx->req.group_properties = ctx->group_props;
    }

    if (ctx->overrides) {
        ctx->req.hash_key_overrides = ctx->overrides;
    }

    ctx->req.person_loaded = 1;
    ctx->req.groups_loaded = 1;
    ctx->req.overrides_loaded = 1;
    (void) decide_eval_flags(t->team, &ctx->req, ctx->results);

    failed = (ctx->person_failed ? DECIDE_NEED_PERSON : 0)
             | (ctx->groups_failed ? DECIDE_NEED_GROUPS : 0)
             | (ctx->hko_failed ? DECIDE_NEED_HASH_KEY : 0);

    if (failed) {
        /* only the flags that needed the failed data are in doubt */
        for (i = 0; i < n; i++) {
            if ((ctx->needed[i] & failed)
                && ctx->results[i].status != DECIDE_STATUS_OMITTED)
            {
                ctx->results[i].status = DECIDE_STATUS_FAILED;
                ctx->results[i].reason = DECIDE_REASON_ERROR;
                ctx->results[i].error =
                    (ctx->needed[i] & failed) == DECIDE_NEED_HASH_KEY
                    ? "hash_key_override_error" : "database_unavailable";
                ctx->results[i].enabled = 0;
                ctx->results[i].variant = NULL;
                ctx->results[i].payload = NULL;
                ctx->results[i].payload_json = NULL;
                ctx->results[i].condition_index = -1;
                ctx->results[i].errors = 1;
            }
        }
    }

    return ngx_http_decide_send(r, ctx);
}


static void
ngx_http_decide_ctx_cleanup(void *data)
{
    ngx_http_decide_ctx_t *ctx = data;

    free(ctx->lookup_value);
    json_decref(ctx->person_props);
    json_decref(ctx->static_cohorts);
    json_decref(ctx->group_props);
    json_decref(ctx->overrides);
    json_decref(ctx->body);

    /* after everything that could hold a reference into the body */
    decide_json_arena_release(&ctx->arena);
    ngx_http_decide_scratch_release(ctx);

    if (ctx->team) {
        ngx_http_decide_team_unref(ctx->team);
    }
}


/* the body as one memory block; NULL when it went to a temp file */
static u_char *
ngx_http_decide_body(ngx_http_request_t *r, size_t *len)
{
    u_char       *p, *data;
    size_t        n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return (u_char *) "";
    }

    n = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            return NULL;
        }

        n += b->last - b->pos;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        *len = n;
        return n ? cl->buf->pos : (u_char *) "";
    }

    data = ngx_pnalloc(r->pool, n + 1);
    if (data == NULL) {
        return NULL;
    }

    p = data;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *len = n;

    return data;
}


/*
 * posthog-js loads /array/<token>/config.js and /array/<token>/config
 * before /flags (PostHog's RemoteConfig): the config part of the team,
 * plus token and hasFeatureFlags.
 */
static ngx_int_t
ngx_http_decide_remote_config(ngx_http_request_t *r, u_char *token,
    size_t len, ngx_uint_t js)
{
    char                         *s;
    size_t                        i, n;
    u_char                       *p, c;
    json_t                       *doc;
    ngx_int_t                     rc;
    ngx_str_t                     type, body;
    ngx_table_elt_t              *h;
    ngx_http_decide_team_t       *team;
    ngx_http_decide_main_conf_t  *mcf;

    static const char  *skip[] = {
        "config", "toolbarParams", "isAuthenticated", NULL
    };

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "invalid_request",
                                              "method_not_allowed",
                                              "Method not allowed");
    }

    if (len == 0 || len > 200) {
        goto malformed;
    }

    for (i = 0; i < len; i++) {
        c = token[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            goto malformed;
        }
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);

    if (mcf->snapshot == NULL) {
        return ngx_http_decide_send_api_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
                   "service_unavailable",
                   "Flag definitions are not loaded yet.");
    }

    team = ngx_http_decide_cache_team(mcf, token, len);
    if (team == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_NOT_FOUND,
                                              "invalid_request", "not_found",
                                              "Not found.");
    }

    doc = json_object();
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_set_new(doc, "token", json_string(team->token));
    json_object_set_new(doc, "hasFeatureFlags",
                        json_boolean(decide_team_nflags(team->team) > 0));
    json_object_update(doc, team->config);

    for (i = 0; skip[i]; i++) {
        json_object_del(doc, skip[i]);
    }

    json_object_set_new(doc, "surveys", json_false());
    json_object_set_new(doc, "productTours", json_false());

    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, n + len + 256);

    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (js) {
        /* the token is [A-Za-z0-9_-]: safe inside the quotes */
        p = ngx_sprintf(body.data,
                        "(function() {\n"
                        "  window._POSTHOG_REMOTE_CONFIG = "
                        "window._POSTHOG_REMOTE_CONFIG || {};\n"
                        "  window._POSTHOG_REMOTE_CONFIG['%*s'] = {\n"
                        "    config: %s,\n"
                        "    siteApps: []\n"
                        "  }\n"
                        "})();\n", len, token, s);
        ngx_str_set(&type, "application/javascript");

    } else {
        p = ngx_cpymem(body.data, s, n);
        ngx_str_set(&type, "application/json");
    }

    free(s);
    body.len = p - body.data;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "public, max-age=300");

    return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, &body);

malformed:

    return ngx_http_decide_send_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "validation_error",
                                          "invalid_token",
                                          "Invalid token.");
}
