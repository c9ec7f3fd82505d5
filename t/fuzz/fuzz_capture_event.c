/*
 * Copyright (C) edgehog
 */

/*
 * The whole capture path after the HTTP layer: the first byte picks the
 * content type, hint, path and mode, the rest is the body; whatever
 * decodes is parsed and laid out as messages, whose values must parse.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "capture_decode.h"
#include "capture_event.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


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

    if (capture_event_build(&req, (const char *) text, len, &msgs, &n, &err)
        == 0)
    {
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

    free(text);

    return 0;
}
