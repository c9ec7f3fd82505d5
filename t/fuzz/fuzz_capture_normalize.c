/*
 * Copyright (C) edgehog
 */

/*
 * Parses the input as JSON, normalises its distinct_id, and checks the
 * sorted dump is stable: dump(parse(dump(v))) == dump(v).
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "capture_normalize.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void *fz_alloc(void *ctx, size_t size);
static void fz_free(void *ctx, void *p);


static void *
fz_alloc(void *ctx, size_t size)
{
    return malloc(size);
}


static void
fz_free(void *ctx, void *p)
{
    free(p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t           l1, l2, len;
    u_char          *d1, *d2, *out;
    json_t          *v, *w;
    capture_alloc_t  a = { fz_alloc, fz_free, NULL };

    (void) capture_token_check(data, size);
    (void) capture_utf8_valid(data, size);
    (void) capture_utf8_prefix(data, size, 200);

    v = json_loadb((const char *) data, size,
                   JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v == NULL) {
        return 0;
    }

    if (capture_distinct_id_normalize(v, &a, &out, &len) == CAPTURE_DID_OK) {
        if (!capture_utf8_valid(out, len)) {
            abort();
        }

        free(out);
    }

    if (json_is_object(v)) {
        w = capture_distinct_id_find(v);
        if (capture_distinct_id_normalize(w, &a, &out, &len)
            == CAPTURE_DID_OK)
        {
            free(out);
        }
    }

    if (capture_json_dump_sorted(v, &a, &d1, &l1) == 0) {
        w = json_loadb((const char *) d1, l1,
                       JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (w == NULL) {
            abort();
        }

        if (capture_json_dump_sorted(w, &a, &d2, &l2) != 0
            || l1 != l2 || memcmp(d1, d2, l1) != 0)
        {
            abort();
        }

        free(d2);
        json_decref(w);
        free(d1);
    }

    json_decref(v);

    return 0;
}
