/*
 * Copyright (C) edgehog
 */

/*
 * First byte: flags and cap selector.  Success must yield valid UTF-8
 * within the cap.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture_lzstring.h"
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
    int              rc;
    size_t           max, len;
    u_char          *out;
    capture_alloc_t  a = { fz_alloc, fz_free, NULL };

    if (size < 1) {
        return 0;
    }

    max = (data[0] & 0x80) ? 64 : (1 << 20);

    rc = capture_lzstring_decompress_base64(data + 1, size - 1, max,
                                            data[0] & 0x03, &a, &out, &len);

    if (rc == CAPTURE_LZ_OK) {
        if (len > max || out[len] != '\0' || !capture_utf8_valid(out, len)) {
            abort();
        }

        free(out);
    }

    return 0;
}
