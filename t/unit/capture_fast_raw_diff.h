/*
 * Copyright (C) edgehog
 */

/*
 * The differential check of capture_fast_raw(), shared by its unit test
 * and the fuzzer: the token-led copy of a scanned value into a JSON
 * string writes exactly what the byte-by-byte capture_fast_copy() writes.
 */

#ifndef _CAPTURE_FAST_RAW_DIFF_H_INCLUDED_
#define _CAPTURE_FAST_RAW_DIFF_H_INCLUDED_


#include <stdlib.h>
#include <string.h>

#include "capture_event_int.h"
#include "capture_json.h"


/* 1 when both copies of token i of the scanned text are equal */

static int
fast_raw_same(const capture_json_t *js, const char *text, uint32_t i)
{
    int                        same;
    capture_sbuf_t             a, b;
    const capture_json_tok_t  *t;

    t = &js->toks[i];

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));

    capture_fast_raw(&a, js, text, i);

    if (t->type == CAPTURE_JSON_STRING) {
        capture_fast_copy(&b, text + t->start - 1, t->end - t->start + 2);

    } else {
        capture_fast_copy(&b, text + t->start, t->end - t->start);
    }

    same = !a.failed && !b.failed && a.len == b.len
           && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);

    free(a.data);
    free(b.data);

    return same;
}


#endif /* _CAPTURE_FAST_RAW_DIFF_H_INCLUDED_ */
