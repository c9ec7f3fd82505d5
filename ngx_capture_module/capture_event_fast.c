/*
 * Copyright (C) edgehog
 */

/*
 * The common case without a DOM: the payload is scanned once into a
 * token array and each message is written from the client's bytes.
 * Anything unusual, and every error, is declined (1) so the DOM path of
 * capture_event_dom.c decides: the fast path only ever answers what the
 * DOM path would have answered.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#if (__SSE2__)
#include <emmintrin.h>
#endif

#include "capture_event_int.h"
#include "capture_json.h"
#include "capture_normalize.h"


/* events whose fields the process's own list holds (96 bytes each) */
#define CAPTURE_FAST_LIST  128


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
    /* in properties, found in one pass */
    uint32_t                    p_token;
    uint32_t                    p_did;
    uint32_t                    p_cookieless;
    uint32_t                    p_ignore_sent_at;
    uint32_t                    p_internal;
    uint32_t                    p_session_id;
    uint32_t                    p_product_tour;
    /* the uuid as parsed by capture_fast_typed(), when one was given */
    unsigned char               uuid_bytes[16];
} capture_fast_ev_t;


typedef struct {
    const capture_json_t       *js;
    const char                 *text;
    const capture_fast_ev_t    *ev;
} capture_fast_data_t;


static int capture_fast_build(const capture_request_t *req,
    const char *text, size_t len, capture_msg_t **msgs, size_t *n,
    capture_error_t *err);
static int capture_fast_typed(const capture_json_t *js, const char *text,
    uint32_t obj, int strict, capture_fast_ev_t *f);
static int capture_fast_keys(const capture_json_t *js, const char *text,
    uint32_t obj);
static void capture_fast_props(const capture_json_t *js, const char *text,
    capture_fast_ev_t *f);
static int capture_fast_token(const capture_json_t *js, const char *text,
    const capture_fast_ev_t *f, uint32_t *tok);
static int capture_fast_one(capture_ctx_t *ctx, const capture_json_t *js,
    const char *text, const capture_fast_ev_t *ev, const char *token,
    size_t token_len, capture_msg_t *msg, capture_error_t *err);
static void capture_fast_data(capture_sbuf_t *b, void *arg);
static char *capture_fast_value(char *d, const char *p, size_t n,
    const char *limit);
static char *capture_fast_gap(char *d, const char *p, const char *end);
static int capture_fast_quote8(const char *p);
#if (__SSE2__)
static size_t capture_fast_plain16(const char *p);
#endif


/*
 * the token array outlives a request so most need no allocation for it:
 * one per process, as an nginx worker runs one request at a time here
 */
static capture_json_t  capture_fast_json;

/*
 * ... and so does the list of event fields: a /batch/ of 50 asked
 * malloc() for 4.8 KB, past glibc's small bins (session 8 kept requests
 * of up to 8 events on the stack)
 */
static capture_fast_ev_t  capture_fast_list[CAPTURE_FAST_LIST];


int
capture_event_fast(const capture_request_t *req, const char *text,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    int  rc;

    rc = capture_fast_build(req, text, len, msgs, n, err);

    /* keep the reused token array bounded after a huge payload */
    if (capture_fast_json.cap > 65536) {
        capture_json_free(&capture_fast_json);
    }

    return rc;
}


static int
capture_fast_build(const capture_request_t *req, const char *text,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    int                 many;
    size_t              i, count, kept, token_len;
    const char         *token;
    uint32_t            root, events, e, v, hm, sa, tok, t;
    capture_ctx_t       ctx;
    capture_msg_t      *out;
    capture_json_t     *js;
    capture_fast_ev_t  *list;

    *msgs = NULL;
    *n = 0;

    js = &capture_fast_json;

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

    /*
     * a request of a few events, most of them, needs no heap for this
     * (session 8, on the stack: bench-capture-build single event, 15
     * interleaved runs, arena median 1251 -> 1215 ns), nor does a batch
     * of up to 128 events since (session 9)
     */
    list = count <= CAPTURE_FAST_LIST
           ? capture_fast_list : malloc(count * sizeof(capture_fast_ev_t));
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
        if (list != capture_fast_list) {
            free(list);
        }

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

        if (tok == 0 && req->query_token == NULL) {
            goto decline;
        }
    }

    if (tok) {
        /* unescaped: the client's bytes are the token */
        token = text + js->toks[tok].start;
        token_len = js->toks[tok].end - js->toks[tok].start;

    } else {
        token = req->query_token;
        token_len = req->query_token_len;
    }

    if (capture_token_check((const u_char *) token, token_len) != NULL) {
        goto decline;
    }

    out = capture_msgs_alloc(kept);
    if (out == NULL) {
        goto decline;
    }

    for (i = 0; i < kept; i++) {
        if (capture_fast_one(&ctx, js, text, &list[i], token, token_len,
                             &out[i], err)
            != 0)
        {
            capture_msgs_free(out, i + 1);
            goto decline;
        }
    }

    if (req->filtered) {
        *req->filtered = count - kept;
    }

    if (list != capture_fast_list) {
        free(list);
    }

    *msgs = out;
    *n = kept;

    return 0;

decline:

    if (list != capture_fast_list) {
        free(list);
    }

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
                && eh_uuid_parse(text + t->start, t->end - t->start,
                                 f->uuid_bytes)
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

    if (f->props && js->toks[f->props].type == CAPTURE_JSON_OBJECT) {
        capture_fast_props(js, text, f);

        /* an escaped session id is left to the DOM */
        v = f->p_session_id;
        if (v && js->toks[v].type == CAPTURE_JSON_STRING
            && (js->toks[v].flags & CAPTURE_JSON_ESCAPED))
        {
            return -1;
        }
    }

    return 0;
}


/*
 * The properties capture reads, in one pass over the object; the last of
 * duplicate keys wins, as in jansson
 */

static void
capture_fast_props(const capture_json_t *js, const char *text,
    capture_fast_ev_t *f)
{
    size_t       i, klen;
    uint32_t     k, *slot;
    const char  *key;

    k = f->props + 1;

    for (i = 0; i < js->toks[f->props].size; i++, k = js->toks[k + 1].next) {
        key = text + js->toks[k].start;
        klen = js->toks[k].end - js->toks[k].start;

        /* every property capture reads is at least 5 bytes long */
        if (klen < 5) {
            continue;
        }

        slot = NULL;

#define capture_fast_is(s)                                                   \
        (klen == sizeof(s) - 1 && memcmp(key, s, sizeof(s) - 1) == 0)

        if (capture_fast_is("token")) {
            slot = &f->p_token;

        } else if (capture_fast_is("distinct_id")) {
            slot = &f->p_did;

        } else if (key[0] != '$' && key[0] != 'c') {
            continue;

        } else if (capture_fast_is("$cookieless_mode")) {
            slot = &f->p_cookieless;

        } else if (capture_fast_is("$ignore_sent_at")) {
            slot = &f->p_ignore_sent_at;

        } else if (capture_fast_is("capture_internal")) {
            slot = &f->p_internal;

        } else if (capture_fast_is("$session_id")) {
            slot = &f->p_session_id;

        } else if (capture_fast_is("$product_tour_id")) {
            slot = &f->p_product_tour;
        }

#undef capture_fast_is

        if (slot) {
            *slot = k + 1;
        }
    }
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
        v = f->p_token;

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
    size_t token_len, capture_msg_t *msg, capture_error_t *err)
{
    int                         rc;
    char                        ob[24];
    json_t                     *jv;
    u_char                     *p, *owned;
    uint32_t                    v, props;
    capture_fields_t            f;
    capture_fast_data_t         d;
    const capture_json_tok_t   *t;

    memset(&f, 0, sizeof(f));
    f.token = token;
    f.token_len = token_len;
    owned = NULL;

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
        v = ev->p_did;
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
        f.did = text + t->start;
        f.did_len = capture_utf8_prefix((const u_char *) f.did,
                                        t->end - t->start,
                                        CAPTURE_DID_MAX_CHARS);

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

        owned = p;
        f.did = (const char *) p;
    }

    /* §4.5 */

    v = ev->p_cookieless;

    if (v && js->toks[v].type != CAPTURE_JSON_NULL) {
        if (js->toks[v].type != CAPTURE_JSON_TRUE
            && js->toks[v].type != CAPTURE_JSON_FALSE)
        {
            free(owned);
            return -1;
        }

        f.cookieless = js->toks[v].type == CAPTURE_JSON_TRUE;
    }

    /* §4.3: capture_fast_typed() validated it */

    v = ev->uuid;

    if (v && js->toks[v].type == CAPTURE_JSON_STRING
        && js->toks[v].end > js->toks[v].start)
    {
        eh_uuid_format(ev->uuid_bytes, f.uuid);
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
        v = ev->p_ignore_sent_at;
        f.ignore_sent_at = v && js->toks[v].type == CAPTURE_JSON_TRUE;
        f.internal = ev->p_internal != 0;

        v = ev->p_session_id;
        if (v && js->toks[v].type == CAPTURE_JSON_STRING) {
            f.session_id = text + js->toks[v].start;
            f.session_id_len = js->toks[v].end - js->toks[v].start;
        }

        v = ev->p_product_tour;
        f.product_tour = v && js->toks[v].type != CAPTURE_JSON_NULL;
    }

    /* unescaped (capture_fast_typed()): the client's bytes are the name */
    t = &js->toks[ev->event];
    f.event = text + t->start;
    f.event_len = t->end - t->start;
    f.data_hint = js->toks[ev->obj].end - js->toks[ev->obj].start + 64;

    d.js = js;
    d.text = text;
    d.ev = ev;

    rc = capture_event_emit(ctx, &f, capture_fast_data, &d, msg, err);

    free(owned);

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


/*
 * The JSON text of token i into a JSON string, as capture_fast_copy()
 * writes its bytes (the differential tests hold the two equal), led by
 * the tokens: the scanner knows where each string is and whether it
 * holds a backslash, so a string without one (no '"' inside either) is
 * copied whole, and only the few bytes between tokens (brackets, commas,
 * colons and whitespace) are looked at one by one.
 */

void
capture_fast_raw(capture_sbuf_t *b, const capture_json_t *js,
    const char *text, uint32_t i)
{
    char                      *d;
    size_t                     n;
    uint32_t                   j, last;
    const char                *p, *end, *limit;
    const capture_json_tok_t  *t;

    t = &js->toks[i];
    last = t->next;

    /* the scanned text ends no sooner than its root value */
    limit = text + js->toks[0].end;

    if (t->type == CAPTURE_JSON_STRING) {
        p = text + t->start - 1;
        end = text + t->end + 1;

    } else {
        p = text + t->start;
        end = text + t->end;
    }

    /*
     * as capture_fast_copy(): the text at most doubles; 32 bytes more for
     * short values, stored 32 bytes at a time
     */
    capture_sbuf_reserve(b, 2 * (end - p) + 32);

    if (b->failed) {
        return;
    }

    d = b->data + b->len;

    for (j = i; j < last; j++) {
        t = &js->toks[j];

        if (t->type == CAPTURE_JSON_OBJECT || t->type == CAPTURE_JSON_ARRAY) {
            /* its brackets are between the tokens inside it */
            continue;
        }

        d = capture_fast_gap(d, p,
                             text + t->start
                             - (t->type == CAPTURE_JSON_STRING));
        n = t->end - t->start;

        if (t->type != CAPTURE_JSON_STRING) {
            d = capture_fast_value(d, text + t->start, n, limit);
            p = text + t->end;
            continue;
        }

        if (t->flags & CAPTURE_JSON_ESCAPED) {
            /* within the reserve above: no reallocation, d stays valid */
            b->len = d - b->data;
            capture_fast_copy(b, text + t->start - 1, n + 2);
            d = b->data + b->len;

        } else {
            *d++ = '\\';
            *d++ = '"';
            d = capture_fast_value(d, text + t->start, n, limit);
            *d++ = '\\';
            *d++ = '"';
        }

        p = text + t->end + 1;
    }

    d = capture_fast_gap(d, p, end);

    b->len = d - b->data;
}


/*
 * n bytes of a value: most are keys and short values, whose 32 bytes go
 * in two loads and stores instead of a call into libc, when all 32 are
 * within the scanned text (limit)
 */

static char *
capture_fast_value(char *d, const char *p, size_t n, const char *limit)
{
    if (n <= 32 && limit - p >= 32) {
        memcpy(d, p, 32);

    } else {
        memcpy(d, p, n);
    }

    return d + n;
}


/* between tokens valid JSON has only whitespace and , : [ ] { } */

static char *
capture_fast_gap(char *d, const char *p, const char *end)
{
    for ( /* void */ ; p < end; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            *d++ = *p;
        }
    }

    return d;
}


/*
 * Valid JSON text into a JSON string: whitespace between tokens dropped
 * (compact, as json_dumps() was), '"' and '\' escaped.  Raw control
 * characters only occur as that whitespace, so the text at most doubles.
 * Session 8, kept out: one loop over 16-byte masks for the whole range
 * (outside strings too: '"' or any byte <= ' '; inside: '"' or '\\'),
 * stored whole and cut at the first byte that needs a look; slower in a
 * pure-C A/B on bench-capture's event, compact 272 -> 345 ns, with the
 * ", " and ": " of bench-capture's payload 265 -> 500 ns.
 */

void
capture_fast_copy(capture_sbuf_t *b, const char *p, size_t len)
{
    char        *d;
    const char  *end;
#if (__SSE2__)
    size_t       n;
#endif

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
#if (__SSE2__)
            /*
             * 16 bytes are stored, the plain ones kept: the reserve of
             * twice the input leaves room for the rest
             */
            while (end - p >= 16) {
                n = capture_fast_plain16(p);
                memcpy(d, p, 16);
                d += n;
                p += n;

                if (n < 16) {
                    break;
                }
            }
#endif

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


#if (__SSE2__)

/* how many of 16 bytes precede the first '"' or '\\' */

static size_t
capture_fast_plain16(const char *p)
{
    int      mask;
    __m128i  v, m;

    v = _mm_loadu_si128((const __m128i *) p);

    m = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));

    mask = _mm_movemask_epi8(m);

    return mask ? (size_t) __builtin_ctz(mask) : 16;
}

#endif
