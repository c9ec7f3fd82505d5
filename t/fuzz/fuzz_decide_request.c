/*
 * Copyright (C) edgehog
 */

/*
 * libFuzzer target for /decide body decoding: the first byte picks the
 * content type, compression and Content-Encoding; the rest is the body.
 */


#include <stdint.h>
#include <string.h>

#include "decide_request.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                err[128];
    json_t             *v;
    decide_fields_t     f;
    decide_body_opts_t  o;

    static const char  *types[] = {
        NULL, "application/json", "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded"
    };

    if (size < 1) {
        return 0;
    }

    memset(&o, 0, sizeof(o));
    o.content_type = types[data[0] & 3];
    o.content_type_len = o.content_type ? strlen(o.content_type) : 0;
    o.compression = (decide_compression_e) ((data[0] >> 2) & 3);
    o.content_encoding_gzip = (data[0] >> 4) & 1;
    o.max_decompressed = 1 << 20;

    if (decide_body_decode(data + 1, size - 1, &o, &v, err, sizeof(err))
        == DECIDE_DECODE_OK)
    {
        decide_fields_get(v, &f);
        json_decref(v);
    }

    return 0;
}
