/*
 * Copyright (C) edgehog
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "capture_event.h"
#include "eh_uuid.h"


#define CAPTURE_TOKEN_MAX  64


static int capture_event_one(const capture_request_t *req, json_t *ev,
    const char *batch_token, capture_msg_t *msg, capture_error_t *err);
static const char *capture_event_token(json_t *ev);
static int capture_event_check_token(const char *token, capture_error_t *err);
static char *capture_event_distinct_id(json_t *ev);
static void capture_event_format_time(int64_t us, char *buf, size_t size);
static int capture_event_fail(capture_error_t *err, int status,
    const char *code, const char *fmt, ...);


int
capture_event_build(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    size_t         i, count;
    json_t        *root, *events, *ev;
    json_error_t   jerr;
    const char    *batch_token;
    capture_msg_t *out;

    *msgs = NULL;
    *n = 0;

    if (len == 0) {
        return capture_event_fail(err, 400, "no_data",
                                  "request missing data payload");
    }

    root = json_loadb(payload, len, 0, &jerr);
    if (root == NULL) {
        return capture_event_fail(err, 400, "invalid_json",
                                  "failed to parse request: %s", jerr.text);
    }

    batch_token = NULL;

    if (json_is_array(root)) {
        events = root;

    } else if (json_is_object(root) && json_is_array(json_object_get(root,
                                                                  "batch")))
    {
        events = json_object_get(root, "batch");
        batch_token = capture_event_token(root);

    } else if (json_is_object(root)) {
        events = NULL;

    } else {
        json_decref(root);
        return capture_event_fail(err, 400, "invalid_payload",
                                  "failed to parse request: "
                                  "no event shape matched");
    }

    count = events ? json_array_size(events) : 1;

    if (count == 0) {
        json_decref(root);
        return capture_event_fail(err, 400, "empty_batch",
                                  "request holds no event");
    }

    out = calloc(count, sizeof(capture_msg_t));
    if (out == NULL) {
        json_decref(root);
        return capture_event_fail(err, 500, "internal",
                                  "internal server error: out of memory");
    }

    /* any bad event rejects the whole request: nothing is produced */

    for (i = 0; i < count; i++) {
        ev = events ? json_array_get(events, i) : root;

        if (capture_event_one(req, ev, batch_token, &out[i], err) != 0) {
            capture_msgs_free(out, i + 1);
            json_decref(root);
            return -1;
        }
    }

    json_decref(root);

    *msgs = out;
    *n = count;

    return 0;
}


static int
capture_event_one(const capture_request_t *req, json_t *ev,
    const char *batch_token, capture_msg_t *msg, capture_error_t *err)
{
    int            rc;
    char          *distinct_id, *data;
    char           now[40], uuid[EH_UUID_STR_LEN + 1], ms[24];
    size_t         klen;
    json_t        *name, *juuid, *value;
    const char    *token, *event;
    unsigned char  u[16], rnd[10];

    if (!json_is_object(ev)) {
        return capture_event_fail(err, 400, "invalid_payload",
                                  "failed to hydrate events from request: "
                                  "event is not an object");
    }

    name = json_object_get(ev, "event");
    if (!json_is_string(name)) {
        return capture_event_fail(err, 400, "invalid_payload",
                                  "failed to hydrate events from request: "
                                  "non-engage request missing event name "
                                  "attribute");
    }

    event = json_string_value(name);
    if (event[0] == '\0') {
        return capture_event_fail(err, 400, "invalid_event",
                                  "event submitted with an empty event name");
    }

    token = batch_token ? batch_token : capture_event_token(ev);
    if (capture_event_check_token(token, err) != 0) {
        return -1;
    }

    juuid = json_object_get(ev, "uuid");

    if (json_is_string(juuid) && json_string_length(juuid) > 0) {
        if (eh_uuid_parse(json_string_value(juuid), json_string_length(juuid),
                          u)
            != 0)
        {
            return capture_event_fail(err, 400, "invalid_payload",
                                      "failed to parse request: "
                                      "invalid uuid");
        }

    } else {
        /* arc4random_buf never blocks once the kernel pool is ready */
        arc4random_buf(rnd, sizeof(rnd));
        eh_uuid_v7((uint64_t) (req->now_us / 1000), rnd, u);
    }

    eh_uuid_format(u, uuid);

    distinct_id = capture_event_distinct_id(ev);
    if (distinct_id == NULL) {
        return capture_event_fail(err, 400, "invalid_distinct_id",
                                  "event submitted without a distinct_id");
    }

    data = json_dumps(ev, JSON_COMPACT);
    capture_event_format_time(req->now_us, now, sizeof(now));

    value = json_object();
    rc = value ? 0 : -1;
    rc |= json_object_set_new(value, "uuid", json_string(uuid));
    rc |= json_object_set_new(value, "distinct_id", json_string(distinct_id));
    rc |= json_object_set_new(value, "ip", json_string(req->ip));
    rc |= json_object_set_new(value, "data", json_string(data));
    rc |= json_object_set_new(value, "now", json_string(now));
    rc |= json_object_set_new(value, "token", json_string(token));
    rc |= json_object_set_new(value, "event", json_string(event));
    rc |= json_object_set_new(value, "timestamp", json_string(now));

    free(data);

    msg->value = (rc == 0) ? json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);

    klen = strlen(token) + 1 + strlen(distinct_id) + 1;
    msg->key = malloc(klen);

    if (msg->value == NULL || msg->key == NULL) {
        free(distinct_id);
        return capture_event_fail(err, 500, "internal",
                                  "internal server error: out of memory");
    }

    snprintf(msg->key, klen, "%s:%s", token, distinct_id);
    msg->value_len = strlen(msg->value);
    msg->topic = CAPTURE_TOPIC_MAIN;

    snprintf(ms, sizeof(ms), "%lld", (long long) (req->now_us / 1000));

    msg->headers[0].name = "token";
    msg->headers[0].value = strdup(token);
    msg->headers[1].name = "distinct_id";
    msg->headers[1].value = distinct_id;
    msg->headers[2].name = "timestamp";
    msg->headers[2].value = strdup(ms);
    msg->headers[3].name = "event";
    msg->headers[3].value = strdup(event);
    msg->headers[4].name = "uuid";
    msg->headers[4].value = strdup(uuid);
    msg->headers[5].name = "now";
    msg->headers[5].value = strdup(now);
    msg->headers[6].name = "historical_migration";
    msg->headers[6].value = strdup("false");
    msg->nheaders = 7;

    return 0;
}


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

    v = json_object_get(json_object_get(ev, "properties"), "token");

    return json_is_string(v) ? json_string_value(v) : NULL;
}


static int
capture_event_check_token(const char *token, capture_error_t *err)
{
    const char  *p, *reason;

    if (token == NULL) {
        return capture_event_fail(err, 401, "no_token",
                                  "event submitted without an api_key");
    }

    reason = NULL;

    if (token[0] == '\0') {
        reason = "empty";

    } else if (strlen(token) > CAPTURE_TOKEN_MAX) {
        reason = "too_long";

    } else if (strncmp(token, "phx_", 4) == 0) {
        reason = "personal_api_key";

    } else {
        for (p = token; *p; p++) {
            if ((unsigned char) *p >= 0x80) {
                reason = "not_ascii";
                break;
            }
        }
    }

    if (reason) {
        return capture_event_fail(err, 401, "invalid_token",
                                  "API key is not valid: %s", reason);
    }

    return 0;
}


/* capture-rs order: distinct_id, $distinct_id, properties.distinct_id */

static char *
capture_event_distinct_id(json_t *ev)
{
    json_t  *v;

    v = json_object_get(ev, "distinct_id");

    if (v == NULL || json_is_null(v)) {
        v = json_object_get(ev, "$distinct_id");
    }

    if (v == NULL || json_is_null(v)) {
        v = json_object_get(json_object_get(ev, "properties"), "distinct_id");
    }

    if (v == NULL || json_is_null(v)) {
        return NULL;
    }

    if (json_is_string(v)) {
        return json_string_length(v) ? strdup(json_string_value(v)) : NULL;
    }

    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
}


/* RFC 3339 UTC, fraction only when non-zero (chrono's AutoSi) */

static void
capture_event_format_time(int64_t us, char *buf, size_t size)
{
    int        n;
    time_t     sec;
    struct tm  tm;

    sec = (time_t) (us / 1000000);
    gmtime_r(&sec, &tm);

    n = (int) strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);

    if (us % 1000000 == 0) {
        snprintf(buf + n, size - n, "Z");

    } else if (us % 1000 == 0) {
        snprintf(buf + n, size - n, ".%03dZ", (int) (us % 1000000 / 1000));

    } else {
        snprintf(buf + n, size - n, ".%06dZ", (int) (us % 1000000));
    }
}


static int
capture_event_fail(capture_error_t *err, int status, const char *code,
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
