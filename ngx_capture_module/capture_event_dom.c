/*
 * Copyright (C) edgehog
 */

/*
 * The general path on a jansson DOM: every error is worded here, and
 * every reshaping (/engage hydration, non-string distinct_id) is done
 * here; capture_event_fast.c declines to it whatever it cannot prove
 * it would answer the same way.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "capture_event_int.h"
#include "capture_normalize.h"


#define CAPTURE_E_PARSE  "failed to parse request: data did not match any " \
                         "variant of untagged enum RawRequest"
#define CAPTURE_E_HYDRATE  "failed to hydrate events from request: " \
                           "non-engage request missing event name attribute"


static int capture_event_typed(json_t *ev, int need_event, int strict);
static const char *capture_event_token(json_t *ev);
static int capture_event_one(capture_ctx_t *ctx, json_t *ev,
    const char *token, capture_msg_t *msg, capture_error_t *err);
static void capture_event_data_str(capture_sbuf_t *b, void *data);
static char *capture_event_data(json_t *ev, const char *event_name);


int
capture_event_dom(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    size_t          i, count, kept, token_len;
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

    if (token) {
        token_len = strlen(token);

    } else if (req->query_token) {
        token = req->query_token;
        token_len = req->query_token_len;

    } else {
        capture_error_set(err, 401, "no_token",
                          "event submitted without an api_key");
        goto failed;
    }

    t = capture_token_check((const u_char *) token, token_len);
    if (t) {
        capture_error_set(err, 401, "invalid_token",
                          "API key is not valid: %s", t);
        goto failed;
    }

    out = capture_msgs_alloc(kept);
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
    f.token_len = strlen(token);

    f.event = json_string_value(json_object_get(ev, "event"));
    f.event_len = strlen(f.event);

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

    f.did = (const char *) p;

    /* §4.5 */

    v = props ? json_object_get(props, "$cookieless_mode") : NULL;

    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            free(p);
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

    v = props ? json_object_get(props, "$session_id") : NULL;
    if (json_is_string(v)) {
        f.session_id = json_string_value(v);
        f.session_id_len = json_string_length(v);
    }

    v = props ? json_object_get(props, "$product_tour_id") : NULL;
    f.product_tour = v && !json_is_null(v);

    /* §6.4 with DESIGN.md: known fields first, then the client's others */

    data = capture_event_data(ev, f.event);
    if (data == NULL) {
        free(p);
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");
    }

    rc = capture_event_emit(ctx, &f, capture_event_data_str, data, msg,
                            err);

    free(data);
    free(p);

    return rc;
}


static void
capture_event_data_str(capture_sbuf_t *b, void *data)
{
    capture_sbuf_esc(b, data, strlen(data));
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
