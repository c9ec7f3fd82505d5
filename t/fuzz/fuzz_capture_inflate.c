/*
 * Copyright (C) edgehog
 */

/*
 * Input: [chunk size][cap selector][stream...], the hiredis
 * reply_reader_fuzzer trick: random chunkings must give the same result
 * as feeding everything at once.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture_inflate.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void *fz_alloc(void *ctx, size_t size);
static void fz_free(void *ctx, void *p);
static int fz_run(const uint8_t *p, size_t len, size_t chunk, size_t max,
    u_char **out, size_t *out_len);


static capture_alloc_t  fz_a = { fz_alloc, fz_free, NULL };


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


static int
fz_run(const uint8_t *p, size_t len, size_t chunk, size_t max, u_char **out,
    size_t *out_len)
{
    int                 rc;
    size_t              n;
    u_char             *d;
    capture_inflate_t  *ci;

    ci = capture_inflate_create(&fz_a, max, len);
    if (ci == NULL) {
        abort();
    }

    rc = CAPTURE_INFLATE_OK;

    while (len) {
        n = len < chunk ? len : chunk;

        rc = capture_inflate_feed(ci, p, n);
        if (rc != CAPTURE_INFLATE_OK) {
            break;
        }

        p += n;
        len -= n;
    }

    if (rc == CAPTURE_INFLATE_OK) {
        rc = capture_inflate_finish(ci);
    }

    *out = NULL;
    *out_len = 0;

    if (rc == CAPTURE_INFLATE_OK) {
        d = capture_inflate_data(ci, &n);

        if (n > max || d[n] != '\0') {
            abort();
        }

        *out = malloc(n + 1);
        memcpy(*out, d, n);
        *out_len = n;
    }

    capture_inflate_destroy(ci);

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      r1, r2;
    size_t   chunk, max, l1, l2;
    u_char  *o1, *o2;

    if (size < 2) {
        return 0;
    }

    chunk = data[0] ? data[0] : 1;
    max = (size_t) 1 << (data[1] % 21);

    r1 = fz_run(data + 2, size - 2, chunk, max, &o1, &l1);
    r2 = fz_run(data + 2, size - 2, size, max, &o2, &l2);

    if (r1 != r2 || l1 != l2 || (l1 && memcmp(o1, o2, l1) != 0)) {
        abort();
    }

    free(o1);
    free(o2);

    return 0;
}
