/*
 * Copyright (C) edgehog
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "capture_event.h"
#include "capture_json.h"
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


/* what capture_event_emit() needs of one event, from either parser */
typedef struct {
    const char                 *event;
    const char                 *token;
    /* owned: normalised distinct_id */
    char                       *did;
    size_t                      did_len;
    const char                 *timestamp;
    size_t                      timestamp_len;
    int64_t                     offset_ms;
    /* bytes "data" is likely to take, to size the value once */
    size_t                      data_hint;
    /* empty: a v7 is generated */
    char                        uuid[EH_UUID_STR_LEN + 1];
    unsigned                    has_offset:1;
    unsigned                    ignore_sent_at:1;
    unsigned                    cookieless:1;
    unsigned                    internal:1;
} capture_fields_t;


typedef void (*capture_data_pt)(capture_sbuf_t *b, void *arg);


/* token indices of the fields of one event object; 0: absent */
typedef struct {
    uint32_t                    obj;
    uint32_t                    token;
    uint32_t                    dtoken;
    uint32_t                    api_key;
    uint32_t                    did;
    uint32_t                    ddid;
    uint32_t                    uuid;
    uint32_t                    event;
    uint32_t                    props;
    uint32_t                    timestamp;
    uint32_t                    offset;
    uint32_t                    set;
    uint32_t                    set_once;
} capture_fast_ev_t;


typedef struct {
    const capture_json_t       *js;
    const char                 *text;
    const capture_fast_ev_t    *ev;
} capture_fast_data_t;


static int capture_event_build_dom(const capture_request_t *req,
    const char *payload, size_t len, capture_msg_t **msgs, size_t *n,
    capture_error_t *err);
static int capture_event_typed(json_t *ev, int need_event, int strict);
static const char *capture_event_token(json_t *ev);
static int capture_event_one(capture_ctx_t *ctx, json_t *ev,
    const char *token, capture_msg_t *msg, capture_error_t *err);
static void capture_event_data_str(capture_sbuf_t *b, void *data);
static int capture_event_emit(capture_ctx_t *ctx, capture_fields_t *f,
    capture_data_pt data, void *arg, capture_msg_t *msg,
    capture_error_t *err);
static char *capture_event_data(json_t *ev, const char *event_name);
static int capture_fast_build(const capture_request_t *req,
    const char *text, size_t len, capture_msg_t **msgs, size_t *n,
    capture_error_t *err);
static int capture_fast_typed(const capture_json_t *js, const char *text,
    uint32_t obj, int strict, capture_fast_ev_t *f);
static int capture_fast_keys(const capture_json_t *js, const char *text,
    uint32_t obj);
static int capture_fast_token(const capture_json_t *js, const char *text,
    const capture_fast_ev_t *f, uint32_t *tok);
static int capture_fast_one(capture_ctx_t *ctx, const capture_json_t *js,
    const char *text, const capture_fast_ev_t *ev, const char *token,
    capture_msg_t *msg, capture_error_t *err);
static void capture_fast_data(capture_sbuf_t *b, void *arg);
static void capture_fast_raw(capture_sbuf_t *b, const capture_json_t *js,
    const char *text, uint32_t i);
static void capture_fast_copy(capture_sbuf_t *b, const char *p, size_t len);
static int capture_fast_quote8(const char *p);
static char *capture_strndup(const char *s, size_t len);
static void capture_sbuf_reserve(capture_sbuf_t *b, size_t len);
static void capture_sbuf_add(capture_sbuf_t *b, const char *p, size_t len);
static void capture_sbuf_str(capture_sbuf_t *b, const char *s);
static void capture_sbuf_esc(capture_sbuf_t *b, const char *s, size_t len);
static void capture_sbuf_field(capture_sbuf_t *b, const char *name,
    const char *value, int first);
static char *capture_strdup(const char *s);
static void *capture_malloc(void *ctx, size_t size);
static void capture_free(void *ctx, void *p);


static const capture_alloc_t  capture_event_alloc = {
    capture_malloc, capture_free, NULL
};


/*
 * the token array outlives a request so most need no allocation for it:
 * one per process, as an nginx worker runs one request at a time here
 */
static capture_json_t  capture_event_json;


int
capture_event_build(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    int  rc;

    rc = capture_fast_build(req, payload, len, msgs, n, err);

    /* keep the reused token array bounded after a huge payload */
    if (capture_event_json.cap > 65536) {
        capture_json_free(&capture_event_json);
    }

    if (rc != 1) {
        return rc;
    }

    /*
     * the DOM path owns every error, every reshaping (/engage hydration,
     * non-string distinct_id) and what the scanner declines: the fast
     * path only ever answers what it would have answered
     */
    return capture_event_build_dom(req, payload, len, msgs, n, err);
}


/*
 * The common case without a DOM: 0 and the messages, or 1 when the DOM
 * path must decide (anything unusual, and every error)
 */

static int
capture_fast_build(const capture_request_t *req, const char *text,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    int                 many;
    char               *token;
    size_t              i, count, kept;
    uint32_t            root, events, e, v, hm, sa, tok, t;
    capture_ctx_t       ctx;
    capture_msg_t      *out;
    capture_json_t     *js;
    capture_fast_ev_t  *list;

    *msgs = NULL;
    *n = 0;

    js = &capture_event_json;

    if (len == 0 || capture_json_scan(js, text, len) != 0) {
        return 1;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.req = req;

    root = 0;
    tok = 0;
    many = 1;

    /* §2.9: Array, Batch, One; the shapes Engage needs go to the DOM */

    if (js->toks[root].type == CAPTURE_JSON_ARRAY) {
        events = root;

    } else if (js->toks[root].type == CAPTURE_JSON_OBJECT) {
        if (capture_fast_keys(js, text, root) != 0) {
            return 1;
        }

        events = capture_json_get(js, text, root, "batch", 5);
        many = events != 0;

        if (events) {
            tok = capture_json_get(js, text, root, "api_key", 7);

            if (tok == 0 || js->toks[tok].type == CAPTURE_JSON_NULL) {
                tok = capture_json_get(js, text, root, "token", 5);
            }

            if (tok == 0 || js->toks[tok].type != CAPTURE_JSON_STRING
                || (js->toks[tok].flags & CAPTURE_JSON_ESCAPED)
                || js->toks[events].type != CAPTURE_JSON_ARRAY)
            {
                return 1;
            }

            hm = capture_json_get(js, text, root, "historical_migration",
                                  20);
            if (hm && js->toks[hm].type != CAPTURE_JSON_TRUE
                && js->toks[hm].type != CAPTURE_JSON_FALSE
                && js->toks[hm].type != CAPTURE_JSON_NULL)
            {
                return 1;
            }

            ctx.historical = hm && js->toks[hm].type == CAPTURE_JSON_TRUE;

            sa = capture_json_get(js, text, root, "sent_at", 7);
            if (sa && js->toks[sa].type == CAPTURE_JSON_STRING) {
                if (js->toks[sa].flags & CAPTURE_JSON_ESCAPED) {
                    return 1;
                }

                ctx.batch_sent_at = text + js->toks[sa].start;
                ctx.batch_sent_at_len = js->toks[sa].end
                                        - js->toks[sa].start;

            } else if (sa && js->toks[sa].type != CAPTURE_JSON_NULL) {
                return 1;
            }
        }

    } else {
        return 1;
    }

    count = many ? js->toks[events].size : 1;

    if (count == 0) {
        return 1;
    }

    list = malloc(count * sizeof(capture_fast_ev_t));
    if (list == NULL) {
        return 1;
    }

    token = NULL;
    out = NULL;

    /* §2.10: $performance_event is dropped silently */

    kept = 0;
    e = many ? events + 1 : root;

    for (i = 0; i < count; i++, e = js->toks[e].next) {
        if (capture_fast_typed(js, text, e, req->strict, &list[kept]) != 0) {
            goto decline;
        }

        v = list[kept].event;

        if (js->toks[v].end - js->toks[v].start == 18
            && memcmp(text + js->toks[v].start, "$performance_event", 18)
               == 0)
        {
            continue;
        }

        kept++;
    }

    if (kept == 0) {
        free(list);

        if (req->filtered) {
            *req->filtered = count;
        }

        return 0;
    }

    /* §3.1: the batch token wins, else exactly one distinct event token */

    if (tok == 0) {
        for (i = 0; i < kept; i++) {
            if (capture_fast_token(js, text, &list[i], &t) != 0) {
                goto decline;
            }

            if (t == 0) {
                continue;
            }

            if (tok
                && (js->toks[t].end - js->toks[t].start
                    != js->toks[tok].end - js->toks[tok].start
                    || memcmp(text + js->toks[t].start,
                              text + js->toks[tok].start,
                              js->toks[t].end - js->toks[t].start)
                       != 0))
            {
                goto decline;
            }

            tok = t;
        }

        if (tok == 0) {
            goto decline;
        }
    }

    token = capture_strndup(text + js->toks[tok].start,
                            js->toks[tok].end - js->toks[tok].start);

    if (token == NULL
        || capture_token_check((const u_char *) token, strlen(token))
           != NULL)
    {
        goto decline;
    }

    out = calloc(kept, sizeof(capture_msg_t));
    if (out == NULL) {
        goto decline;
    }

    for (i = 0; i < kept; i++) {
        if (capture_fast_one(&ctx, js, text, &list[i], token, &out[i], err)
            != 0)
        {
            capture_msgs_free(out, i + 1);
            goto decline;
        }
    }

    if (req->filtered) {
        *req->filtered = count - kept;
    }

    free(token);
    free(list);

    *msgs = out;
    *n = kept;

    return 0;

decline:

    free(token);
    free(list);

    return 1;
}


/*
 * capture_event_typed() on tokens: 0 when the DOM path would accept the
 * object as an event with a name, with the fields in *f; -1 otherwise
 */

static int
capture_fast_typed(const capture_json_t *js, const char *text, uint32_t obj,
    int strict, capture_fast_ev_t *f)
{
    size_t                    i, klen, aliases;
    uint32_t                  k, v, *slot;
    unsigned char             u[16];
    const char               *key;
    const capture_json_tok_t  *t;

    if (js->toks[obj].type != CAPTURE_JSON_OBJECT
        || capture_fast_keys(js, text, obj) != 0)
    {
        return -1;
    }

    memset(f, 0, sizeof(capture_fast_ev_t));
    f->obj = obj;

    k = obj + 1;

    for (i = 0; i < js->toks[obj].size; i++, k = js->toks[k + 1].next) {
        key = text + js->toks[k].start;
        klen = js->toks[k].end - js->toks[k].start;
        slot = NULL;

#define capture_fast_is(s)                                                   \
        (klen == sizeof(s) - 1 && memcmp(key, s, sizeof(s) - 1) == 0)

        if (capture_fast_is("token")) {
            slot = &f->token;

        } else if (capture_fast_is("$token")) {
            slot = &f->dtoken;

        } else if (capture_fast_is("api_key")) {
            slot = &f->api_key;

        } else if (capture_fast_is("distinct_id")) {
            slot = &f->did;

        } else if (capture_fast_is("$distinct_id")) {
            slot = &f->ddid;

        } else if (capture_fast_is("uuid")) {
            slot = &f->uuid;

        } else if (capture_fast_is("event")) {
            slot = &f->event;

        } else if (capture_fast_is("properties")) {
            slot = &f->props;

        } else if (capture_fast_is("timestamp")) {
            slot = &f->timestamp;

        } else if (capture_fast_is("offset")) {
            slot = &f->offset;

        } else if (capture_fast_is("$set")) {
            slot = &f->set;

        } else if (capture_fast_is("$set_once")) {
            slot = &f->set_once;
        }

#undef capture_fast_is

        if (slot) {
            *slot = k + 1;
        }
    }

    aliases = (f->token != 0) + (f->dtoken != 0) + (f->api_key != 0);

    if ((f->token && js->toks[f->token].type != CAPTURE_JSON_STRING
         && js->toks[f->token].type != CAPTURE_JSON_NULL)
        || (f->dtoken && js->toks[f->dtoken].type != CAPTURE_JSON_STRING
            && js->toks[f->dtoken].type != CAPTURE_JSON_NULL)
        || (f->api_key && js->toks[f->api_key].type != CAPTURE_JSON_STRING
            && js->toks[f->api_key].type != CAPTURE_JSON_NULL))
    {
        return -1;
    }

    if (strict && (aliases > 1 || (f->did && f->ddid))) {
        return -1;
    }

    /* a name is required; an escaped one is left to the DOM */
    v = f->event;
    if (v == 0 || js->toks[v].type != CAPTURE_JSON_STRING
        || (js->toks[v].flags & CAPTURE_JSON_ESCAPED))
    {
        return -1;
    }

    v = f->uuid;
    if (v && js->toks[v].type != CAPTURE_JSON_NULL) {
        t = &js->toks[v];

        if (t->type != CAPTURE_JSON_STRING
            || (t->flags & CAPTURE_JSON_ESCAPED)
            || (t->end > t->start
                && eh_uuid_parse(text + t->start, t->end - t->start, u)
                   != 0))
        {
            return -1;
        }
    }

#define capture_fast_type_or_null(v, ty)                                     \
    ((v) == 0 || js->toks[v].type == (ty)                                    \
     || js->toks[v].type == CAPTURE_JSON_NULL)

    if (!capture_fast_type_or_null(f->props, CAPTURE_JSON_OBJECT)
        || !capture_fast_type_or_null(f->timestamp, CAPTURE_JSON_STRING)
        || !capture_fast_type_or_null(f->set, CAPTURE_JSON_OBJECT)
        || !capture_fast_type_or_null(f->set_once, CAPTURE_JSON_OBJECT))
    {
        return -1;
    }

#undef capture_fast_type_or_null

    if (f->timestamp && (js->toks[f->timestamp].flags & CAPTURE_JSON_ESCAPED))
    {
        return -1;
    }

    v = f->offset;
    if (v && js->toks[v].type != CAPTURE_JSON_NULL
        && !(js->toks[v].type == CAPTURE_JSON_NUMBER
             && (js->toks[v].flags & CAPTURE_JSON_INTEGER)))
    {
        return -1;
    }

    return 0;
}


/*
 * jansson keeps the last of duplicate keys where the raw bytes keep both:
 * the objects whose members are read or reordered must have none
 */

static int
capture_fast_keys(const capture_json_t *js, const char *text, uint32_t obj)
{
    size_t    i, j, len;
    uint32_t  k, q;

    if (js->toks[obj].size > 64) {
        return -1;
    }

    k = obj + 1;

    for (i = 0; i < js->toks[obj].size; i++, k = js->toks[k + 1].next) {
        len = js->toks[k].end - js->toks[k].start;
        q = js->toks[k + 1].next;

        for (j = i + 1; j < js->toks[obj].size; j++, q = js->toks[q + 1].next)
        {
            if (js->toks[q].end - js->toks[q].start == len
                && memcmp(text + js->toks[q].start, text + js->toks[k].start,
                          len)
                   == 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


/* capture_event_token(): *tok is 0 when the event names none */

static int
capture_fast_token(const capture_json_t *js, const char *text,
    const capture_fast_ev_t *f, uint32_t *tok)
{
    uint32_t  v;

    *tok = 0;

    if (f->token && js->toks[f->token].type == CAPTURE_JSON_STRING) {
        v = f->token;

    } else if (f->dtoken && js->toks[f->dtoken].type == CAPTURE_JSON_STRING) {
        v = f->dtoken;

    } else if (f->api_key
               && js->toks[f->api_key].type == CAPTURE_JSON_STRING)
    {
        v = f->api_key;

    } else if (f->props) {
        v = capture_json_get(js, text, f->props, "token", 5);

        if (v == 0 || js->toks[v].type != CAPTURE_JSON_STRING) {
            return 0;
        }

    } else {
        return 0;
    }

    if (js->toks[v].flags & CAPTURE_JSON_ESCAPED) {
        return -1;
    }

    *tok = v;

    return 0;
}


static int
capture_fast_one(capture_ctx_t *ctx, const capture_json_t *js,
    const char *text, const capture_fast_ev_t *ev, const char *token,
    capture_msg_t *msg, capture_error_t *err)
{
    int                         rc;
    char                       *event, ob[24];
    json_t                     *jv;
    u_char                     *p;
    uint32_t                    v, props;
    unsigned char               u[16];
    capture_fields_t            f;
    capture_fast_data_t         d;
    const capture_json_tok_t   *t;

    memset(&f, 0, sizeof(f));
    f.token = token;

    t = &js->toks[ev->event];

    /* §4.1: the DOM path words the error */
    if (t->end == t->start) {
        return -1;
    }

    props = (ev->props && js->toks[ev->props].type == CAPTURE_JSON_OBJECT)
            ? ev->props : 0;

    /* §4.2: capture_distinct_id_find() */

    v = ev->did;

    if (v == 0 || js->toks[v].type == CAPTURE_JSON_NULL) {
        v = ev->ddid;
    }

    if ((v == 0 || js->toks[v].type == CAPTURE_JSON_NULL) && props) {
        v = capture_json_get(js, text, props, "distinct_id", 11);
    }

    if (v == 0 || js->toks[v].type == CAPTURE_JSON_NULL) {
        return -1;
    }

    t = &js->toks[v];

    if (t->type == CAPTURE_JSON_STRING
        && !(t->flags & CAPTURE_JSON_ESCAPED))
    {
        if (t->end == t->start) {
            return -1;
        }

        /* no escapes: no NUL to replace, the text is the value */
        f.did_len = capture_utf8_prefix((const u_char *) text + t->start,
                                        t->end - t->start,
                                        CAPTURE_DID_MAX_CHARS);
        f.did = capture_strndup(text + t->start, f.did_len);
        if (f.did == NULL) {
            return -1;
        }

    } else {
        /* serde's stringification needs the value: a DOM of it alone */
        if (t->type == CAPTURE_JSON_STRING) {
            jv = json_loadb(text + t->start - 1, t->end - t->start + 2,
                            JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

        } else {
            jv = json_loadb(text + t->start, t->end - t->start,
                            JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        }

        if (jv == NULL) {
            return -1;
        }

        rc = capture_distinct_id_normalize(jv, &capture_event_alloc, &p,
                                           &f.did_len);
        json_decref(jv);

        if (rc != CAPTURE_DID_OK) {
            return -1;
        }

        f.did = (char *) p;
    }

    /* §4.5 */

    v = props ? capture_json_get(js, text, props, "$cookieless_mode", 16)
              : 0;

    if (v && js->toks[v].type != CAPTURE_JSON_NULL) {
        if (js->toks[v].type != CAPTURE_JSON_TRUE
            && js->toks[v].type != CAPTURE_JSON_FALSE)
        {
            free(f.did);
            return -1;
        }

        f.cookieless = js->toks[v].type == CAPTURE_JSON_TRUE;
    }

    /* §4.3: capture_fast_typed() validated it */

    v = ev->uuid;

    if (v && js->toks[v].type == CAPTURE_JSON_STRING
        && js->toks[v].end > js->toks[v].start)
    {
        eh_uuid_parse(text + js->toks[v].start,
                      js->toks[v].end - js->toks[v].start, u);
        eh_uuid_format(u, f.uuid);
    }

    v = ev->timestamp;
    if (v && js->toks[v].type == CAPTURE_JSON_STRING) {
        f.timestamp = text + js->toks[v].start;
        f.timestamp_len = js->toks[v].end - js->toks[v].start;
    }

    v = ev->offset;
    if (v && js->toks[v].type == CAPTURE_JSON_NUMBER) {
        /* an integer of at most 18 digits and a sign */
        memcpy(ob, text + js->toks[v].start,
               js->toks[v].end - js->toks[v].start);
        ob[js->toks[v].end - js->toks[v].start] = '\0';
        f.offset_ms = strtoll(ob, NULL, 10);
        f.has_offset = 1;
    }

    if (props) {
        v = capture_json_get(js, text, props, "$ignore_sent_at", 15);
        f.ignore_sent_at = v && js->toks[v].type == CAPTURE_JSON_TRUE;
        f.internal = capture_json_get(js, text, props, "capture_internal",
                                      16)
                     != 0;
    }

    t = &js->toks[ev->event];

    event = capture_strndup(text + t->start, t->end - t->start);
    if (event == NULL) {
        free(f.did);
        return -1;
    }

    f.event = event;
    f.data_hint = js->toks[ev->obj].end - js->toks[ev->obj].start + 64;

    d.js = js;
    d.text = text;
    d.ev = ev;

    rc = capture_event_emit(ctx, &f, capture_fast_data, &d, msg, err);

    free(event);

    return rc;
}


/*
 * The layout of capture_event_data() written from the client's bytes:
 * values are copied as sent (semantically what jansson would re-emit)
 */

static void
capture_fast_data(capture_sbuf_t *b, void *arg)
{
    size_t                    i;
    uint32_t                  k, v;
    const char               *text;
    capture_fast_data_t      *d;
    const capture_json_t     *js;
    const capture_fast_ev_t  *ev;

    d = arg;
    js = d->js;
    text = d->text;
    ev = d->ev;

    v = 0;

    if (ev->token && js->toks[ev->token].type == CAPTURE_JSON_STRING) {
        v = ev->token;

    } else if (ev->dtoken && js->toks[ev->dtoken].type == CAPTURE_JSON_STRING)
    {
        v = ev->dtoken;

    } else if (ev->api_key
               && js->toks[ev->api_key].type == CAPTURE_JSON_STRING)
    {
        v = ev->api_key;
    }

    capture_sbuf_add(b, "{", 1);

    if (v) {
        capture_sbuf_add(b, "\\\"token\\\":", 10);
        capture_fast_raw(b, js, text, v);
        capture_sbuf_add(b, ",", 1);
    }

    v = ev->did;
    if (v == 0 || js->toks[v].type == CAPTURE_JSON_NULL) {
        v = ev->ddid;
    }

    if (v) {
        capture_sbuf_add(b, "\\\"distinct_id\\\":", 16);
        capture_fast_raw(b, js, text, v);
        capture_sbuf_add(b, ",", 1);
    }

    capture_sbuf_add(b, "\\\"uuid\\\":", 9);

    v = ev->uuid;
    if (v && js->toks[v].type == CAPTURE_JSON_STRING
        && js->toks[v].end > js->toks[v].start)
    {
        capture_fast_raw(b, js, text, v);

    } else {
        capture_sbuf_add(b, "null", 4);
    }

    capture_sbuf_add(b, ",\\\"event\\\":", 11);
    capture_fast_raw(b, js, text, ev->event);

    capture_sbuf_add(b, ",\\\"properties\\\":", 16);

    if (ev->props && js->toks[ev->props].type == CAPTURE_JSON_OBJECT) {
        capture_fast_raw(b, js, text, ev->props);

    } else {
        capture_sbuf_add(b, "{}", 2);
    }

    if (ev->timestamp && js->toks[ev->timestamp].type != CAPTURE_JSON_NULL) {
        capture_sbuf_add(b, ",\\\"timestamp\\\":", 15);
        capture_fast_raw(b, js, text, ev->timestamp);
    }

    if (ev->offset && js->toks[ev->offset].type != CAPTURE_JSON_NULL) {
        capture_sbuf_add(b, ",\\\"offset\\\":", 12);
        capture_fast_raw(b, js, text, ev->offset);
    }

    if (ev->set && js->toks[ev->set].type != CAPTURE_JSON_NULL) {
        capture_sbuf_add(b, ",\\\"$set\\\":", 10);
        capture_fast_raw(b, js, text, ev->set);
    }

    if (ev->set_once && js->toks[ev->set_once].type != CAPTURE_JSON_NULL) {
        capture_sbuf_add(b, ",\\\"$set_once\\\":", 15);
        capture_fast_raw(b, js, text, ev->set_once);
    }

    /* the client's other fields, in its order */

    k = ev->obj + 1;

    for (i = 0; i < js->toks[ev->obj].size; i++, k = js->toks[k + 1].next) {
        v = k + 1;

        if (v == ev->token || v == ev->dtoken || v == ev->api_key
            || v == ev->did || v == ev->ddid || v == ev->uuid
            || v == ev->event || v == ev->props || v == ev->timestamp
            || v == ev->offset || v == ev->set || v == ev->set_once)
        {
            continue;
        }

        capture_sbuf_add(b, ",", 1);
        capture_fast_raw(b, js, text, k);
        capture_sbuf_add(b, ":", 1);
        capture_fast_raw(b, js, text, v);
    }

    capture_sbuf_add(b, "}", 1);
}


static void
capture_fast_raw(capture_sbuf_t *b, const capture_json_t *js,
    const char *text, uint32_t i)
{
    const capture_json_tok_t  *t;

    t = &js->toks[i];

    if (t->type == CAPTURE_JSON_STRING) {
        capture_fast_copy(b, text + t->start - 1, t->end - t->start + 2);

    } else {
        capture_fast_copy(b, text + t->start, t->end - t->start);
    }
}


/*
 * Valid JSON text into a JSON string: whitespace between tokens dropped
 * (compact, as json_dumps() was), '"' and '\' escaped.  Raw control
 * characters only occur as that whitespace, so the text at most doubles.
 */

static void
capture_fast_copy(capture_sbuf_t *b, const char *p, size_t len)
{
    char        *d;
    const char  *end;

    capture_sbuf_reserve(b, 2 * len);

    if (b->failed) {
        return;
    }

    d = b->data + b->len;
    end = p + len;

    while (p < end) {
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
            p++;
            continue;
        }

        if (*p != '"') {
            *d++ = *p++;
            continue;
        }

        *d++ = '\\';
        *d++ = *p++;

        /* a string: copied up to its closing quote */

        while (p < end && *p != '"') {
            /* 8 bytes without '"' or '\\' go as they are */
            while (end - p >= 8 && !capture_fast_quote8(p)) {
                memcpy(d, p, 8);
                d += 8;
                p += 8;
            }

            if (p == end || *p == '"') {
                break;
            }

            if (*p == '\\') {
                *d++ = '\\';
                *d++ = *p++;

                if (*p == '"' || *p == '\\') {
                    *d++ = '\\';
                }
            }

            *d++ = *p++;
        }

        if (p < end) {
            *d++ = '\\';
            *d++ = *p++;
        }
    }

    b->len = d - b->data;
}


/* 1 when one of 8 bytes may be '"' or '\\' (false positives are harmless) */

static int
capture_fast_quote8(const char *p)
{
    uint64_t  v, q, b;

    memcpy(&v, p, 8);

    q = v ^ 0x2222222222222222ULL;
    b = v ^ 0x5c5c5c5c5c5c5c5cULL;

    return (((q - 0x0101010101010101ULL) & ~q)
            | ((b - 0x0101010101010101ULL) & ~b))
           & 0x8080808080808080ULL ? 1 : 0;
}


static int
capture_event_build_dom(const capture_request_t *req, const char *payload,
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
    int                  rc;
    char                *data;
    json_t              *props, *v;
    u_char              *p;
    unsigned char        u[16];
    capture_fields_t     f;

    memset(&f, 0, sizeof(f));
    f.token = token;

    f.event = json_string_value(json_object_get(ev, "event"));

    /* §4.1 */
    if (f.event[0] == '\0') {
        return capture_error_set(err, 400, "invalid_event",
                                 "event submitted with an empty event name");
    }

    props = json_object_get(ev, "properties");
    if (!json_is_object(props)) {
        props = NULL;
    }

    /* §4.2 */

    switch (capture_distinct_id_normalize(capture_distinct_id_find(ev),
                                          &capture_event_alloc, &p,
                                          &f.did_len))
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

    f.did = (char *) p;

    /* §4.5 */

    v = props ? json_object_get(props, "$cookieless_mode") : NULL;

    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            free(f.did);
            return capture_error_set(err, 400, "invalid_cookieless",
                                     "event submitted with invalid "
                                     "cookieless mode");
        }

        f.cookieless = json_is_true(v);
    }

    /* §4.3: the type check already ran */

    v = json_object_get(ev, "uuid");

    if (json_is_string(v) && json_string_length(v)) {
        eh_uuid_parse(json_string_value(v), json_string_length(v), u);
        eh_uuid_format(u, f.uuid);
    }

    v = json_object_get(ev, "timestamp");
    if (json_is_string(v)) {
        f.timestamp = json_string_value(v);
        f.timestamp_len = json_string_length(v);
    }

    v = json_object_get(ev, "offset");
    if (json_is_integer(v)) {
        f.offset_ms = json_integer_value(v);
        f.has_offset = 1;
    }

    f.ignore_sent_at = props
                       && json_is_true(json_object_get(props,
                                                       "$ignore_sent_at"));

    f.internal = props && json_object_get(props, "capture_internal");

    /* §6.4 with DESIGN.md: known fields first, then the client's others */

    data = capture_event_data(ev, f.event);
    if (data == NULL) {
        free(f.did);
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    rc = capture_event_emit(ctx, &f, capture_event_data_str, data, msg,
                            err);

    free(data);

    return rc;
}


static void
capture_event_data_str(capture_sbuf_t *b, void *data)
{
    capture_sbuf_esc(b, data, strlen(data));
}


/*
 * Lays out one message from the fields of one event; data() writes the
 * escaped text of "data".  Takes f->did over, also on failure.
 */

static int
capture_event_emit(capture_ctx_t *ctx, capture_fields_t *f,
    capture_data_pt data, void *arg, capture_msg_t *msg, capture_error_t *err)
{
    char                    *did, *key;
    char                     now[EH_TIME_STR_MAX], ts[EH_TIME_STR_MAX];
    char                     sent[EH_TIME_STR_MAX], ms[24];
    size_t                   klen, tlen, iplen;
    const char              *event, *ip, *token;
    unsigned char            u[16], rnd[10];
    capture_sbuf_t           b;
    capture_topic_e          topic;
    eh_time_resolve_in_t     tin;
    eh_time_resolve_out_t    tout;
    const capture_request_t *req;

    req = ctx->req;
    did = f->did;
    event = f->event;
    token = f->token;

    if (f->uuid[0] == '\0') {
        /* arc4random_buf never blocks once the kernel pool is ready */
        arc4random_buf(rnd, sizeof(rnd));
        eh_uuid_v7((uint64_t) (req->now_us / 1000), rnd, u);
        eh_uuid_format(u, f->uuid);
    }

    /* §4.4 */

    memset(&tin, 0, sizeof(tin));
    tin.now = req->now_us;
    tin.timestamp = f->timestamp;
    tin.timestamp_len = f->timestamp_len;

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

    tin.offset_ms = f->offset_ms;
    tin.has_offset = f->has_offset;
    tin.ignore_sent_at = f->ignore_sent_at;

    eh_time_capture_resolve(&tin, &tout);

    eh_time_format_now(req->now_us, now);
    eh_time_format_now(tout.result, ts);
    snprintf(ms, sizeof(ms), "%lld",
             (long long) (tout.result >= 0 ? tout.result / 1000
                                           : (tout.result - 999) / 1000));

    /* §4.6 */
    ip = f->internal ? "127.0.0.1" : req->ip;

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

    /* §6.3: field order is the contract */

    memset(&b, 0, sizeof(b));
    capture_sbuf_reserve(&b, 384 + f->did_len + strlen(token)
                             + strlen(event) + f->data_hint);
    capture_sbuf_add(&b, "{", 1);
    capture_sbuf_field(&b, "uuid", f->uuid, 1);
    capture_sbuf_field(&b, "distinct_id", did, 0);
    capture_sbuf_field(&b, "ip", ip, 0);
    capture_sbuf_add(&b, ",\"data\":\"", 9);
    data(&b, arg);
    capture_sbuf_add(&b, "\"", 1);
    capture_sbuf_field(&b, "now", now, 0);

    if (sent[0]) {
        capture_sbuf_field(&b, "sent_at", sent, 0);
    }

    capture_sbuf_field(&b, "token", token, 0);
    capture_sbuf_field(&b, "event", event, 0);
    capture_sbuf_field(&b, "timestamp", ts, 0);

    if (f->cookieless) {
        capture_sbuf_add(&b, ",\"is_cookieless_mode\":true", 26);
    }

    if (ctx->historical) {
        capture_sbuf_add(&b, ",\"historical_migration\":true", 28);
    }

    capture_sbuf_add(&b, "}", 2);

    tlen = strlen(token);
    iplen = strlen(ip);
    klen = tlen + 1 + (f->cookieless ? iplen : f->did_len) + 1;
    key = malloc(klen);

    if (b.failed || key == NULL) {
        free(b.data);
        free(key);
        free(did);
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    memcpy(key, token, tlen);
    key[tlen] = ':';
    memcpy(key + tlen + 1, f->cookieless ? ip : did,
           f->cookieless ? iplen : f->did_len);
    key[klen - 1] = '\0';

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
    msg->headers[4].value = capture_strdup(f->uuid);
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
capture_sbuf_reserve(capture_sbuf_t *b, size_t len)
{
    char    *n;
    size_t   cap;

    if (b->failed || b->len + len <= b->cap) {
        return;
    }

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
    capture_sbuf_add(b, "\"", 1);
    capture_sbuf_esc(b, s, strlen(s));
    capture_sbuf_add(b, "\"", 1);
}


static void
capture_sbuf_esc(capture_sbuf_t *b, const char *s, size_t len)
{
    char                 esc[8];
    const char          *start;
    const unsigned char *p, *end;
    static const char    hex[] = "0123456789abcdef";

    start = s;
    end = (const unsigned char *) s + len;

    for (p = (const unsigned char *) s; p < end; p++) {
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


static char *
capture_strndup(const char *s, size_t len)
{
    char  *p;

    p = malloc(len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
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
