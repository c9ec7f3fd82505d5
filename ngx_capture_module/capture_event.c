/*
 * Copyright (C) edgehog
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "capture_event.h"
#include "capture_normalize.h"
#include "eh_time.h"
#include "eh_uuid.h"


#define CAPTURE_E_PARSE  "failed to parse request: data did not match any " \
                         "variant of untagged enum RawRequest"
#define CAPTURE_E_HYDRATE  "failed to hydrate events from request: " \
                           "non-engage request missing event name attribute"


typedef struct {
    char                       *data;
    size_t                      len;
    size_t                      cap;
    int                         failed;
} capture_sbuf_t;


typedef struct {
    const capture_request_t    *req;
    const char                 *batch_token;
    const char                 *batch_sent_at;
    size_t                      batch_sent_at_len;
    unsigned                    historical:1;
} capture_ctx_t;


static int capture_event_typed(json_t *ev, int need_event, int strict);
static const char *capture_event_token(json_t *ev);
static int capture_event_one(capture_ctx_t *ctx, json_t *ev,
    const char *token, capture_msg_t *msg, capture_error_t *err);
static char *capture_event_data(json_t *ev, const char *event_name);
static void capture_sbuf_add(capture_sbuf_t *b, const char *p, size_t len);
static void capture_sbuf_str(capture_sbuf_t *b, const char *s);
static void capture_sbuf_field(capture_sbuf_t *b, const char *name,
    const char *value, int first);
static char *capture_strdup(const char *s);
static void *capture_malloc(void *ctx, size_t size);
static void capture_free(void *ctx, void *p);


static const capture_alloc_t  capture_event_alloc = {
    capture_malloc, capture_free, NULL
};


int
capture_event_build(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    size_t          i, count, kept;
    json_t         *root, *events, *ev, *v, *bt;
    json_t        **list;
    json_error_t    jerr;
    const char     *token, *t, *name;
    capture_ctx_t   ctx;
    capture_msg_t  *out;

    *msgs = NULL;
    *n = 0;

    if (len == 0) {
        return capture_error_set(err, 400, "no_data",
                                 "request missing data payload");
    }

    /* \u0000 is legal JSON: distinct_id normalisation replaces it */
    root = json_loadb(payload, len, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        return capture_error_set(err, 400, "invalid_json",
                                 "failed to parse request: %s at line %d "
                                 "column %d", jerr.text, jerr.line,
                                 jerr.column);
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.req = req;

    events = NULL;
    list = NULL;
    out = NULL;

    /* §2.9: Array, Batch, One, Engage, tried in this order */

    if (json_is_array(root)) {
        for (i = 0; i < json_array_size(root); i++) {
            if (capture_event_typed(json_array_get(root, i), 1, req->strict)
                != 0)
            {
                capture_error_set(err, 400, "invalid_payload",
                                  CAPTURE_E_PARSE);
                goto failed;
            }
        }

        events = root;

    } else if (json_is_object(root)) {
        v = json_object_get(root, "batch");
        bt = json_object_get(root, "api_key");
        t = NULL;

        if (bt == NULL || json_is_null(bt)) {
            bt = json_object_get(root, "token");
        }

        if (json_is_string(bt) && json_is_array(v)) {
            t = json_string_value(bt);

            for (i = 0; i < json_array_size(v); i++) {
                if (capture_event_typed(json_array_get(v, i), 1,
                                        req->strict)
                    != 0)
                {
                    t = NULL;
                    break;
                }
            }

            bt = json_object_get(root, "historical_migration");
            if (bt && !json_is_boolean(bt) && !json_is_null(bt)) {
                t = NULL;
            }

            bt = json_object_get(root, "sent_at");
            if (bt && !json_is_string(bt) && !json_is_null(bt)) {
                t = NULL;
            }
        }

        if (t) {
            events = v;
            ctx.batch_token = t;
            ctx.historical = json_is_true(json_object_get(root,
                                                  "historical_migration"));

            bt = json_object_get(root, "sent_at");
            if (json_is_string(bt)) {
                ctx.batch_sent_at = json_string_value(bt);
                ctx.batch_sent_at_len = json_string_length(bt);
            }

        } else if (capture_event_typed(root, 1, req->strict) == 0) {
            events = NULL;

        } else if (capture_event_typed(root, 0, req->strict) == 0) {
            /* §2.10: a name-less object is an $identify on /engage only */
            if (!req->engage) {
                capture_error_set(err, 400, "invalid_payload",
                                  CAPTURE_E_HYDRATE);
                goto failed;
            }

            if (json_object_set_new(root, "event", json_string("$identify"))
                != 0)
            {
                goto nomem;
            }

        } else {
            capture_error_set(err, 400, "invalid_payload", CAPTURE_E_PARSE);
            goto failed;
        }

    } else {
        capture_error_set(err, 400, "invalid_payload", CAPTURE_E_PARSE);
        goto failed;
    }

    count = events ? json_array_size(events) : 1;

    if (count == 0) {
        capture_error_set(err, 400, "empty_batch", "request holds no event");
        goto failed;
    }

    list = malloc(count * sizeof(json_t *));
    if (list == NULL) {
        goto nomem;
    }

    /* §2.10: $performance_event is dropped silently */

    kept = 0;

    for (i = 0; i < count; i++) {
        ev = events ? json_array_get(events, i) : root;
        name = json_string_value(json_object_get(ev, "event"));

        if (name && strcmp(name, "$performance_event") == 0) {
            continue;
        }

        list[kept++] = ev;
    }

    if (req->filtered) {
        *req->filtered = count - kept;
    }

    if (kept == 0) {
        free(list);
        json_decref(root);
        return 0;
    }

    /* §3.1: the batch token wins, else exactly one distinct event token */

    token = ctx.batch_token;

    if (token == NULL) {
        for (i = 0; i < kept; i++) {
            t = capture_event_token(list[i]);

            if (t == NULL) {
                continue;
            }

            if (token && strcmp(token, t) != 0) {
                capture_error_set(err, 401, "invalid_token",
                                  "batch submitted with inconsistent "
                                  "api_key values");
                goto failed;
            }

            token = t;
        }
    }

    if (token == NULL) {
        capture_error_set(err, 401, "no_token",
                          "event submitted without an api_key");
        goto failed;
    }

    t = capture_token_check((const u_char *) token, strlen(token));
    if (t) {
        capture_error_set(err, 401, "invalid_token",
                          "API key is not valid: %s", t);
        goto failed;
    }

    out = calloc(kept, sizeof(capture_msg_t));
    if (out == NULL) {
        goto nomem;
    }

    /* §4: any bad event rejects the whole request */

    for (i = 0; i < kept; i++) {
        if (capture_event_one(&ctx, list[i], token, &out[i], err) != 0) {
            capture_msgs_free(out, i + 1);
            out = NULL;
            goto failed;
        }
    }

    free(list);
    json_decref(root);

    *msgs = out;
    *n = kept;

    return 0;

nomem:

    capture_error_set(err, 500, "internal",
                      "internal server error: out of memory");

failed:

    free(list);
    json_decref(root);

    return -1;
}


/*
 * serde's typing of RawEvent: a wrong type in any known field fails the
 * element, which fails the whole shape
 */

static int
capture_event_typed(json_t *ev, int need_event, int strict)
{
    json_t         *v;
    unsigned char   u[16];
    size_t          i, aliases;
    static const char  *tokens[] = { "token", "$token", "api_key" };

    if (!json_is_object(ev)) {
        return -1;
    }

    aliases = 0;

    for (i = 0; i < 3; i++) {
        v = json_object_get(ev, tokens[i]);

        if (v == NULL) {
            continue;
        }

        aliases++;

        if (!json_is_string(v) && !json_is_null(v)) {
            return -1;
        }
    }

    /* aliases of one field: serde calls a second one a duplicate */
    if (strict
        && (aliases > 1
            || (json_object_get(ev, "distinct_id")
                && json_object_get(ev, "$distinct_id"))))
    {
        return -1;
    }

    v = json_object_get(ev, "event");
    if (v == NULL || json_is_null(v)) {
        if (need_event) {
            return -1;
        }

    } else if (!json_is_string(v)) {
        return -1;
    }

    v = json_object_get(ev, "uuid");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            return -1;
        }

        if (json_string_length(v)
            && eh_uuid_parse(json_string_value(v), json_string_length(v), u)
               != 0)
        {
            return -1;
        }
    }

    v = json_object_get(ev, "properties");
    if (v && !json_is_object(v) && !json_is_null(v)) {
        return -1;
    }

    v = json_object_get(ev, "timestamp");
    if (v && !json_is_string(v) && !json_is_null(v)) {
        return -1;
    }

    v = json_object_get(ev, "offset");
    if (v && !json_is_integer(v) && !json_is_null(v)) {
        return -1;
    }

    v = json_object_get(ev, "$set");
    if (v && !json_is_object(v) && !json_is_null(v)) {
        return -1;
    }

    v = json_object_get(ev, "$set_once");
    if (v && !json_is_object(v) && !json_is_null(v)) {
        return -1;
    }

    return 0;
}


/* top-level token, $token, api_key, then properties.token (strings only) */

static const char *
capture_event_token(json_t *ev)
{
    json_t      *v;
    const char  *keys[] = { "token", "$token", "api_key" };
    size_t       i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        v = json_object_get(ev, keys[i]);
        if (json_is_string(v)) {
            return json_string_value(v);
        }
    }

    v = json_object_get(ev, "properties");
    v = json_is_object(v) ? json_object_get(v, "token") : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}


static int
capture_event_one(capture_ctx_t *ctx, json_t *ev, const char *token,
    capture_msg_t *msg, capture_error_t *err)
{
    int                     cookieless;
    char                   *data, *did, *key;
    char                    now[EH_TIME_STR_MAX], ts[EH_TIME_STR_MAX];
    char                    sent[EH_TIME_STR_MAX], ms[24];
    char                    uuid[EH_UUID_STR_LEN + 1];
    size_t                  did_len, klen;
    json_t                 *props, *v;
    u_char                 *p;
    const char             *event, *ip;
    unsigned char           u[16], rnd[10];
    capture_sbuf_t          b;
    capture_topic_e         topic;
    eh_time_resolve_in_t    tin;
    eh_time_resolve_out_t   tout;
    const capture_request_t *req;

    req = ctx->req;

    event = json_string_value(json_object_get(ev, "event"));

    /* §4.1 */
    if (event[0] == '\0') {
        return capture_error_set(err, 400, "invalid_event",
                                 "event submitted with an empty event name");
    }

    props = json_object_get(ev, "properties");
    if (!json_is_object(props)) {
        props = NULL;
    }

    /* §4.2 */

    switch (capture_distinct_id_normalize(capture_distinct_id_find(ev),
                                          &capture_event_alloc, &p, &did_len))
    {
    case CAPTURE_DID_OK:
        break;

    case CAPTURE_DID_NOMEM:
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");

    default:
        return capture_error_set(err, 400, "invalid_distinct_id",
                                 "event submitted without a distinct_id");
    }

    did = (char *) p;

    /* §4.5 */

    cookieless = 0;
    v = props ? json_object_get(props, "$cookieless_mode") : NULL;

    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            free(did);
            return capture_error_set(err, 400, "invalid_cookieless",
                                     "event submitted with invalid "
                                     "cookieless mode");
        }

        cookieless = json_is_true(v);
    }

    /* §4.3: the type check already ran */

    v = json_object_get(ev, "uuid");

    if (json_is_string(v) && json_string_length(v)) {
        eh_uuid_parse(json_string_value(v), json_string_length(v), u);

    } else {
        /* arc4random_buf never blocks once the kernel pool is ready */
        arc4random_buf(rnd, sizeof(rnd));
        eh_uuid_v7((uint64_t) (req->now_us / 1000), rnd, u);
    }

    eh_uuid_format(u, uuid);

    /* §4.4 */

    memset(&tin, 0, sizeof(tin));
    tin.now = req->now_us;

    v = json_object_get(ev, "timestamp");
    if (json_is_string(v)) {
        tin.timestamp = json_string_value(v);
        tin.timestamp_len = json_string_length(v);
    }

    sent[0] = '\0';

    if (ctx->batch_sent_at
        && eh_time_parse(ctx->batch_sent_at, ctx->batch_sent_at_len,
                         EH_TIME_PARSE_CAPTURE, &tin.sent_at_us) == 0)
    {
        tin.has_sent_at_us = 1;

    } else if (req->has_sent_at) {
        tin.sent_at_us = req->sent_at_us;
        tin.has_sent_at_us = 1;
    }

    if (tin.has_sent_at_us) {
        eh_time_format_sent_at(tin.sent_at_us, sent);
    }

    v = json_object_get(ev, "offset");
    if (json_is_integer(v)) {
        tin.offset_ms = json_integer_value(v);
        tin.has_offset = 1;
    }

    tin.ignore_sent_at = props
                         && json_is_true(json_object_get(props,
                                                         "$ignore_sent_at"));

    eh_time_capture_resolve(&tin, &tout);

    eh_time_format_now(req->now_us, now);
    eh_time_format_now(tout.result, ts);
    snprintf(ms, sizeof(ms), "%lld",
             (long long) (tout.result >= 0 ? tout.result / 1000
                                           : (tout.result - 999) / 1000));

    /* §4.6 */
    ip = (props && json_object_get(props, "capture_internal"))
         ? "127.0.0.1" : req->ip;

    /* §4.7 */

    if (strcmp(event, "$$client_ingestion_warning") == 0) {
        topic = CAPTURE_TOPIC_WARNINGS;

    } else if (strcmp(event, "$exception") == 0) {
        topic = CAPTURE_TOPIC_EXCEPTIONS;

    } else if (strcmp(event, "$$heatmap") == 0) {
        topic = CAPTURE_TOPIC_HEATMAPS;

    } else if (ctx->historical) {
        topic = CAPTURE_TOPIC_HISTORICAL;

    } else {
        topic = CAPTURE_TOPIC_MAIN;
    }

    /* §6.4 with DESIGN.md: known fields first, then the client's others */

    data = capture_event_data(ev, event);
    if (data == NULL) {
        free(did);
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    /* §6.3: field order is the contract */

    memset(&b, 0, sizeof(b));
    capture_sbuf_add(&b, "{", 1);
    capture_sbuf_field(&b, "uuid", uuid, 1);
    capture_sbuf_field(&b, "distinct_id", did, 0);
    capture_sbuf_field(&b, "ip", ip, 0);
    capture_sbuf_field(&b, "data", data, 0);
    capture_sbuf_field(&b, "now", now, 0);

    if (sent[0]) {
        capture_sbuf_field(&b, "sent_at", sent, 0);
    }

    capture_sbuf_field(&b, "token", token, 0);
    capture_sbuf_field(&b, "event", event, 0);
    capture_sbuf_field(&b, "timestamp", ts, 0);

    if (cookieless) {
        capture_sbuf_add(&b, ",\"is_cookieless_mode\":true", 26);
    }

    if (ctx->historical) {
        capture_sbuf_add(&b, ",\"historical_migration\":true", 28);
    }

    capture_sbuf_add(&b, "}", 2);

    free(data);

    klen = strlen(token) + 1 + (cookieless ? strlen(ip) : did_len) + 1;
    key = malloc(klen);

    if (b.failed || key == NULL) {
        free(b.data);
        free(key);
        free(did);
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    snprintf(key, klen, "%s:%s", token, cookieless ? ip : did);

    msg->topic = topic;
    msg->key = key;
    msg->value = b.data;
    msg->value_len = b.len - 1;

    msg->headers[0].name = "token";
    msg->headers[0].value = capture_strdup(token);
    msg->headers[1].name = "distinct_id";
    msg->headers[1].value = did;
    msg->headers[2].name = "timestamp";
    msg->headers[2].value = capture_strdup(ms);
    msg->headers[3].name = "event";
    msg->headers[3].value = capture_strdup(event);
    msg->headers[4].name = "uuid";
    msg->headers[4].value = capture_strdup(uuid);
    msg->headers[5].name = "now";
    msg->headers[5].value = capture_strdup(now);
    msg->headers[6].name = "historical_migration";
    msg->headers[6].value = capture_strdup(ctx->historical ? "true"
                                                           : "false");
    msg->nheaders = 7;

    msg->token = msg->headers[0].value;
    msg->distinct_id = did;
    msg->event = msg->headers[3].value;

    if (msg->headers[0].value == NULL || msg->headers[2].value == NULL
        || msg->headers[3].value == NULL || msg->headers[4].value == NULL
        || msg->headers[5].value == NULL || msg->headers[6].value == NULL)
    {
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    /* §8: what Kafka would refuse is refused before anything is sent */
    if (req->max_message_size
        && msg->value_len + klen > req->max_message_size)
    {
        return capture_error_set(err, 413, "payload_too_large",
                                 "maximum event size exceeded: Event "
                                 "rejected by kafka during send");
    }

    return 0;
}


/*
 * capture-rs's RawEvent layout (token, distinct_id, uuid, event,
 * properties, timestamp, offset, $set, $set_once) followed by every other
 * field of the client's object in its order, as DESIGN.md keeps them
 */

static char *
capture_event_data(json_t *ev, const char *event_name)
{
    char         *s;
    json_t       *d, *v;
    size_t        i;
    const char   *k;
    static const char  *known[] = {
        "token", "$token", "api_key", "distinct_id", "$distinct_id", "uuid",
        "event", "properties", "timestamp", "offset", "$set", "$set_once"
    };

    d = json_object();
    if (d == NULL) {
        return NULL;
    }

    v = json_object_get(ev, "token");
    if (!json_is_string(v)) {
        v = json_object_get(ev, "$token");
    }
    if (!json_is_string(v)) {
        v = json_object_get(ev, "api_key");
    }
    if (json_is_string(v)) {
        json_object_set(d, "token", v);
    }

    v = json_object_get(ev, "distinct_id");
    if (v == NULL || json_is_null(v)) {
        v = json_object_get(ev, "$distinct_id");
    }
    if (v) {
        json_object_set(d, "distinct_id", v);
    }

    v = json_object_get(ev, "uuid");
    if (json_is_string(v) && json_string_length(v)) {
        json_object_set(d, "uuid", v);

    } else {
        json_object_set_new(d, "uuid", json_null());
    }

    json_object_set_new(d, "event", json_string(event_name));

    v = json_object_get(ev, "properties");
    if (json_is_object(v)) {
        json_object_set(d, "properties", v);

    } else {
        json_object_set_new(d, "properties", json_object());
    }

    for (i = 8; i < sizeof(known) / sizeof(known[0]); i++) {
        v = json_object_get(ev, known[i]);
        if (v && !json_is_null(v)) {
            json_object_set(d, known[i], v);
        }
    }

    json_object_foreach(ev, k, v) {
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strcmp(k, known[i]) == 0) {
                break;
            }
        }

        if (i == sizeof(known) / sizeof(known[0])) {
            json_object_set(d, k, v);
        }
    }

    s = json_dumps(d, JSON_COMPACT);
    json_decref(d);

    return s;
}


int
capture_event_sent_at_ms(const char *p, size_t len, int64_t *us,
    int *valid_int)
{
    size_t   i;
    int64_t  ms;

    *valid_int = 0;

    if (len == 0 || len > 18) {
        return -1;
    }

    ms = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            if (!(i == 0 && p[i] == '-' && len > 1)) {
                return -1;
            }

            continue;
        }

        ms = ms * 10 + (p[i] - '0');
    }

    if (p[0] == '-') {
        ms = -ms;
    }

    *valid_int = 1;

    /* seconds-based values land in 1970: ignored, as capture-rs does */
    if (eh_time_year(ms * 1000) <= 2020) {
        return -1;
    }

    *us = ms * 1000;

    return 0;
}


static void
capture_sbuf_add(capture_sbuf_t *b, const char *p, size_t len)
{
    char    *n;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + len > b->cap) {
        cap = b->cap ? b->cap * 2 : 512;

        while (cap < b->len + len) {
            cap *= 2;
        }

        n = realloc(b->data, cap);
        if (n == NULL) {
            b->failed = 1;
            return;
        }

        b->data = n;
        b->cap = cap;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;
}


/* serde_json's escaping: '"', '\\', control characters; UTF-8 as is */

static void
capture_sbuf_str(capture_sbuf_t *b, const char *s)
{
    char                 esc[8];
    const char          *start;
    const unsigned char *p;
    static const char    hex[] = "0123456789abcdef";

    capture_sbuf_add(b, "\"", 1);

    start = s;

    for (p = (const unsigned char *) s; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\') {
            continue;
        }

        capture_sbuf_add(b, start, (const char *) p - start);
        start = (const char *) p + 1;

        switch (*p) {
        case '"':  capture_sbuf_add(b, "\\\"", 2); break;
        case '\\': capture_sbuf_add(b, "\\\\", 2); break;
        case '\n': capture_sbuf_add(b, "\\n", 2); break;
        case '\r': capture_sbuf_add(b, "\\r", 2); break;
        case '\t': capture_sbuf_add(b, "\\t", 2); break;
        case '\b': capture_sbuf_add(b, "\\b", 2); break;
        case '\f': capture_sbuf_add(b, "\\f", 2); break;
        default:
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[*p >> 4]; esc[5] = hex[*p & 0xf];
            capture_sbuf_add(b, esc, 6);
        }
    }

    capture_sbuf_add(b, start, (const char *) p - start);
    capture_sbuf_add(b, "\"", 1);
}


static void
capture_sbuf_field(capture_sbuf_t *b, const char *name, const char *value,
    int first)
{
    if (!first) {
        capture_sbuf_add(b, ",", 1);
    }

    capture_sbuf_add(b, "\"", 1);
    capture_sbuf_add(b, name, strlen(name));
    capture_sbuf_add(b, "\":", 2);
    capture_sbuf_str(b, value);
}


static char *
capture_strdup(const char *s)
{
    return strdup(s);
}


static void *
capture_malloc(void *ctx, size_t size)
{
    return malloc(size);
}


static void
capture_free(void *ctx, void *p)
{
    free(p);
}


int
capture_error_set(capture_error_t *err, int status, const char *code,
    const char *fmt, ...)
{
    va_list  args;

    err->status = status;
    err->code = code;

    va_start(args, fmt);
    vsnprintf(err->error, sizeof(err->error), fmt, args);
    va_end(args);

    return -1;
}


void
capture_msgs_free(capture_msg_t *msgs, size_t n)
{
    size_t  i, h;

    if (msgs == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        free(msgs[i].key);
        free(msgs[i].value);

        for (h = 0; h < msgs[i].nheaders; h++) {
            free(msgs[i].headers[h].value);
        }
    }

    free(msgs);
}
