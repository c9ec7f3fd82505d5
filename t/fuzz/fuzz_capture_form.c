/*
 * Copyright (C) edgehog
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture_form.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               n, total;
    u_char              *buf;
    capture_form_t       form;
    capture_form_str_t   k, v;
    capture_form_iter_t  it;

    buf = malloc(size + 1);
    if (buf == NULL) {
        abort();
    }

    (void) capture_form_has_prefix(data, size);

    capture_form_init(&it, data, size);
    total = 0;

    while (capture_form_next(&it, &k, &v)) {
        if (k.data < data || v.data + v.len > data + size) {
            abort();
        }

        total += k.len + v.len;

        (void) capture_form_key_is(&k, "data");

        n = capture_form_unescape(buf, v.data, v.len);
        if (n > v.len) {
            abort();
        }
    }

    if (total > size) {
        abort();
    }

    capture_form_parse(&form, data, size);

    memcpy(buf, data, size);
    n = capture_form_unescape(buf, buf, size);
    if (n > size) {
        abort();
    }

    free(buf);

    return 0;
}
