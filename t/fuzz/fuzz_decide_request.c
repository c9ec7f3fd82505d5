/*
 * Copyright (C) edgehog
 */

/*
 * libFuzzer target for /decide body decoding: the first byte picks the
 * content type, compression and Content-Encoding; the rest is the body.
 * Differential part: whenever the JSON fast path (decide_json_fast.c)
 * answers for the body, jansson must parse the same bytes to the same
 * value with the same key order, else the target aborts; and the
 * one-pass decide_fields_get() must read what its per-name reference
 * (t/unit/decide_fields_diff.h) reads; and a body decoded in an arena
 * slot (decide_json_arena.c, small slots so that big bodies spill) must
 * give what it gives without one; and decide_fields_fast() must read
 * the fields decide_body_decode() + decide_fields_get() read wherever it
 * answers (t/unit/decide_fields_fast_diff.h).
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decide_request.h"
#include "decide_json_fast.h"
#include "decide_json_arena.h"
#include "decide_fields_diff.h"
#include "decide_fields_fast_diff.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void fuzz_decide_json_fast(const uint8_t *data, size_t size);
static void fuzz_decide_arena(const uint8_t *data, size_t size,
    decide_body_opts_t *o, decide_decode_e rc, json_t *v);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 any;
    char                err[128];
    json_t             *v;
    decide_decode_e     rc;
    decide_fields_t     f;
    decide_body_opts_t  o;

    static const char  *types[] = {
        NULL, "application/json", "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded"
    };

    if (size < 1) {
        return 0;
    }

    fuzz_decide_json_fast(data + 1, size - 1);

    memset(&o, 0, sizeof(o));
    o.content_type = types[data[0] & 3];
    o.content_type_len = o.content_type ? strlen(o.content_type) : 0;
    o.compression = (decide_compression_e) ((data[0] >> 2) & 3);
    o.content_encoding_gzip = (data[0] >> 4) & 1;
    o.max_decompressed = 1 << 20;

    if (decide_fields_fast_diff(data + 1, size - 1, &o, &any) != 0) {
        abort();
    }

    rc = decide_body_decode(data + 1, size - 1, &o, &v, err, sizeof(err));

    fuzz_decide_arena(data + 1, size - 1, &o, rc, v);

    if (rc == DECIDE_DECODE_OK) {
        decide_fields_get(v, &f);

        if (decide_fields_diff(v) != 0) {
            abort();
        }
    }

    json_decref(v);

    return 0;
}


static void
fuzz_decide_arena(const uint8_t *data, size_t size, decide_body_opts_t *o,
    decide_decode_e rc, json_t *v)
{
    char                 err[128], *a, *b;
    json_t              *w;
    decide_decode_e      arc;
    decide_json_arena_t  arena;

    static int           init;

    if (!init) {
        init = 1;

        if (decide_json_arena_init(2, 1024) != 0) {
            abort();
        }
    }

    decide_json_arena_take(&arena);
    decide_json_arena_begin(&arena);

    arc = decide_body_decode(data, size, o, &w, err, sizeof(err));

    decide_json_arena_end();

    if (arc != rc || (w == NULL) != (v == NULL)) {
        abort();
    }

    if (w) {
        a = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        b = json_dumps(w, JSON_COMPACT | JSON_ENCODE_ANY);

        if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
            abort();
        }

        free(a);
        free(b);
    }

    json_decref(w);
    decide_json_arena_release(&arena);
}


static void
fuzz_decide_json_fast(const uint8_t *data, size_t size)
{
    char    *a, *b;
    json_t  *fast, *slow;

    fast = decide_json_fast(data, size);
    if (fast == NULL) {
        return;
    }

    slow = json_loadb((const char *) data, size, JSON_DECODE_ANY, NULL);
    if (slow == NULL || !json_equal(fast, slow)) {
        abort();
    }

    /* the same order too: iteration order reaches the engine */
    a = json_dumps(fast, JSON_COMPACT | JSON_ENCODE_ANY);
    b = json_dumps(slow, JSON_COMPACT | JSON_ENCODE_ANY);

    if (a == NULL || b == NULL || strcmp(a, b) != 0) {
        abort();
    }

    free(a);
    free(b);
    json_decref(fast);
    json_decref(slow);
}
