/*
 * Copyright (C) edgehog
 */

/*
 * Cross-checks the two decoding modes: whatever strict mode accepts,
 * lenient mode must decode to the same bytes; in-place decoding must
 * equal out-of-place decoding.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture_base64.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      rs, rl, rp;
    size_t   ns, nl, np, cap;
    u_char  *strict, *lenient, *copy;

    cap = capture_base64_decoded_len(size);

    strict = malloc(cap);
    lenient = malloc(cap);
    copy = malloc(size + 1);

    if (strict == NULL || lenient == NULL || copy == NULL) {
        abort();
    }

    (void) capture_base64_is_likely(data, size, CAPTURE_BASE64_LIKELY_STRICT);
    (void) capture_base64_is_likely(data, size, CAPTURE_BASE64_LIKELY_LOOSE);
    (void) capture_base64_is_likely(data, size, CAPTURE_BASE64_LIKELY_URL);

    rs = capture_base64_decode(strict, &ns, data, size, CAPTURE_BASE64_STRICT);
    rl = capture_base64_decode(lenient, &nl, data, size, 0);

    if (rs == 0) {
        if (rl != 0 || ns != nl || memcmp(strict, lenient, ns) != 0
            || ns > cap)
        {
            abort();
        }
    }

    (void) capture_base64_decode(strict, &ns, data, size,
                                 CAPTURE_BASE64_STRICT | CAPTURE_BASE64_URL);
    (void) capture_base64_decode(strict, &ns, data, size,
                                 CAPTURE_BASE64_SPACE_PLUS);

    memcpy(copy, data, size);
    rp = capture_base64_decode(copy, &np, copy, size, 0);

    if (rp != rl || (rp == 0 && (np != nl || memcmp(copy, lenient, np)))) {
        abort();
    }

    free(strict);
    free(lenient);
    free(copy);

    return 0;
}
