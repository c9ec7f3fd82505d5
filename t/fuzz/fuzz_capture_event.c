/*
 * Copyright (C) edgehog
 */

/*
 * The whole capture path after the HTTP layer: the first byte picks the
 * content type, hint, path and mode, the rest is the body; whatever
 * decodes is parsed and laid out as messages, whose values must parse.
 * Whatever the fast path accepts, the DOM path must accept alike.  The
 * DOM path and the main build take their blocks from the message arena
 * (capture_blocks.c) as nginx does, the fast path from malloc(); the
 * arena is destroyed after each input, so LeakSanitizer sees any block
 * left behind.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "capture_blocks.h"
#include "capture_decode.h"
#include "capture_event.h"
#include "capture_event_int.h"
#include "capture_fast_raw_diff.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void fuzz_same(const capture_request_t *req, const char *text,
    size_t len);
static int fuzz_same_msg(capture_msg_t *a, capture_msg_t *b);
static int fuzz_same_str(const char *a, const char *b);
static void fuzz_lengths(const capture_msg_t *msgs, size_t n);
static void fuzz_copy(const char *text, size_t len);


static void *
fuzz_alloc(void *ctx, size_t size)
{
    return malloc(size);
}


static void
fuzz_free(void *ctx, void *p)
{
    free(p);
}


static const capture_alloc_t  fuzz_a = { fuzz_alloc, fuzz_free, NULL };

static const char  *fuzz_hints[] = { NULL, "gzip-js", "lz64", "base64" };


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                i, n, len;
    u_char               *text;
    json_t               *v;
    uint8_t               sel;
    capture_msg_t        *msgs;
    capture_error_t       err;
    capture_request_t     req;
    capture_msg_alloc_t   arena;
    capture_decode_in_t   in;

    if (size == 0) {
        return 0;
    }

    sel = data[0];

    memset(&in, 0, sizeof(in));
    in.body = data + 1;
    in.body_len = size - 1;

    if (sel & 0x01) {
        in.content_type = (const u_char *) "application/x-www-form-urlencoded";
        in.content_type_len = strlen((const char *) in.content_type);
    }

    if (fuzz_hints[(sel >> 1) & 3]) {
        in.query_compression = (const u_char *) fuzz_hints[(sel >> 1) & 3];
        in.query_compression_len = strlen(fuzz_hints[(sel >> 1) & 3]);
    }

    in.legacy = (sel >> 3) & 1;
    in.strict = (sel >> 4) & 1;
    /* nginx borrows: ASan then sees any read past the payload's end */
    in.borrow = (sel >> 6) & 1;
    in.max_size = 1 << 20;
    in.alloc = &fuzz_a;

    if (capture_decode(&in, &text, &len, &err) != 0) {
        if (err.status < 400 || err.status > 500) {
            abort();
        }

        return 0;
    }

    memset(&req, 0, sizeof(req));
    req.ip = "127.0.0.1";
    req.now_us = 1751367600000000LL;
    req.engage = (sel >> 5) & 1;
    req.strict = in.strict;
    req.max_message_size = CAPTURE_MAX_MESSAGE_SIZE;

    /* small chunks, so even short inputs cross chunk boundaries */
    arena.ctx = capture_blocks_create(4096, 1);
    if (arena.ctx == NULL) {
        abort();
    }

    arena.resize = capture_blocks_resize;
    arena.free = capture_blocks_free;
    req.alloc = &arena;

    fuzz_same(&req, (const char *) text, len);
    fuzz_copy((const char *) text, len);

    if (capture_event_build(&req, (const char *) text, len, &msgs, &n, &err)
        == 0)
    {
        fuzz_lengths(msgs, n);

        for (i = 0; i < n; i++) {
            v = json_loadb(msgs[i].value, msgs[i].value_len, JSON_ALLOW_NUL,
                           NULL);
            if (v == NULL
                || !json_is_string(json_object_get(v, "data")))
            {
                abort();
            }

            json_decref(v);
        }

        capture_msgs_free(msgs, n);

    } else if (err.status < 400 || err.status > 500) {
        abort();
    }

    if (text < in.body || text >= in.body + in.body_len) {
        free(text);
    }

    capture_blocks_destroy(arena.ctx);

    return 0;
}


/* the fast path answers only what the DOM path would have answered */

static void
fuzz_same(const capture_request_t *req, const char *text, size_t len)
{
    size_t              i, n, dn;
    capture_msg_t      *msgs, *dmsgs;
    capture_error_t     err;
    capture_request_t   mreq;

    mreq = *req;
    mreq.alloc = NULL;

    if (capture_event_fast(&mreq, text, len, &msgs, &n, &err) != 0) {
        return;
    }

    if (capture_event_dom(req, text, len, &dmsgs, &dn, &err) != 0
        || dn != n)
    {
        abort();
    }

    fuzz_lengths(msgs, n);
    fuzz_lengths(dmsgs, dn);

    for (i = 0; i < n; i++) {
        if (!fuzz_same_msg(&msgs[i], &dmsgs[i])) {
            abort();
        }
    }

    capture_msgs_free(msgs, n);
    capture_msgs_free(dmsgs, dn);
}


static int
fuzz_same_msg(capture_msg_t *a, capture_msg_t *b)
{
    int          same;
    size_t       h;
    json_t      *va, *vb, *da, *db, *v;
    const char  *k;

    if (a->topic != b->topic || a->key_len != b->key_len
        || !fuzz_same_str(a->key, b->key)
        || !fuzz_same_str(a->token, b->token)
        || !fuzz_same_str(a->distinct_id, b->distinct_id)
        || !fuzz_same_str(a->event, b->event)
        || !fuzz_same_str(a->session_id, b->session_id)
        || a->product_tour != b->product_tour
        || a->nheaders != b->nheaders)
    {
        return 0;
    }

    va = json_loadb(a->value, a->value_len, JSON_ALLOW_NUL, NULL);
    vb = json_loadb(b->value, b->value_len, JSON_ALLOW_NUL, NULL);
    da = json_loads(json_string_value(json_object_get(va, "data")),
                    JSON_ALLOW_NUL, NULL);
    db = json_loads(json_string_value(json_object_get(vb, "data")),
                    JSON_ALLOW_NUL, NULL);

    same = va && vb && da && db && json_equal(da, db)
           && json_object_size(va) == json_object_size(vb);

    /* a generated uuid differs, and its header with it */
    for (h = 0; same && h < a->nheaders; h++) {
        same = fuzz_same_str(a->headers[h].name, b->headers[h].name)
               && (h == 4 || fuzz_same_str(a->headers[h].value,
                                           b->headers[h].value));
    }

    if (same) {
        json_object_foreach(va, k, v) {
            if (strcmp(k, "data") == 0 || strcmp(k, "uuid") == 0) {
                continue;
            }

            if (!json_equal(v, json_object_get(vb, k))) {
                same = 0;
                break;
            }
        }
    }

    json_decref(va);
    json_decref(vb);
    json_decref(da);
    json_decref(db);

    return same;
}


static int
fuzz_same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }

    return strcmp(a, b) == 0;
}


/*
 * librdkafka is given the header lengths: they must be what strlen(),
 * which it ran before, finds (no NUL inside a value)
 */

static void
fuzz_lengths(const capture_msg_t *msgs, size_t n)
{
    size_t  i, h;

    for (i = 0; i < n; i++) {
        for (h = 0; h < msgs[i].nheaders; h++) {
            if (msgs[i].headers[h].name_len != strlen(msgs[i].headers[h].name)
                || msgs[i].headers[h].value_len
                   != strlen(msgs[i].headers[h].value))
            {
                abort();
            }
        }
    }
}


/*
 * the token-led copy of "data" (capture_fast_raw()) writes what the
 * byte-by-byte one (capture_fast_copy()) writes, for every token of
 * whatever the scanner accepts
 */

static void
fuzz_copy(const char *text, size_t len)
{
    size_t          i, n;
    capture_json_t  js;

    memset(&js, 0, sizeof(js));

    if (capture_json_scan(&js, text, len) != 0) {
        capture_json_free(&js);
        return;
    }

    /* every token of a small text, the root of a large one */
    n = js.ntoks <= 1024 ? js.ntoks : 1;

    for (i = 0; i < n; i++) {
        if (!fast_raw_same(&js, text, (uint32_t) i)) {
            abort();
        }
    }

    capture_json_free(&js);
}
