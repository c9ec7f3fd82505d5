/*
 * Copyright (C) edgehog
 */

/*
 * The scanner's string loop against jansson: a long string with one
 * special byte (a quote, an escape, a control character, non-ASCII, valid
 * or not) at every offset, behind every alignment, so each of its vector
 * paths (SSE2 16 bytes, AVX2 32 bytes where the CPU has it) and the byte
 * loop after them meet it.  Both must accept and reject alike, and an
 * accepted string must end where jansson's does.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "capture_json.h"


#define T_MAX  160


static int t_case(const char *ins, size_t ins_len, size_t len, size_t at,
    size_t pad);


/* what goes at the offset: bytes and their length */
static const struct {
    const char  *s;
    size_t       len;
} t_ins[] = {
    { "\"", 1 },                  /* ends the string early: trailing text */
    { "\\\"", 2 },
    { "\\\\", 2 },
    { "\\n", 2 },
    { "\\u00e9", 6 },
    { "\\x", 2 },                 /* not an escape */
    { "\x01", 1 },
    { "\x1f", 1 },
    { "\x7f", 1 },                /* DEL is a plain byte */
    { " ", 1 },
    { "\xc3\xa9", 2 },            /* é */
    { "\xe2\x82\xac", 3 },        /* € */
    { "\xf0\x9f\x98\x80", 4 },    /* an emoji */
    { "\x80", 1 },                /* a lone continuation byte */
    { "\xc3", 1 },                /* a truncated sequence */
    { "\xff", 1 },
};


int
main(void)
{
    size_t  i, len, at, pad, bad;

    bad = 0;

    for (i = 0; i < sizeof(t_ins) / sizeof(t_ins[0]); i++) {
        for (len = 0; len <= T_MAX; len += (len < 80 ? 1 : 7)) {
            for (at = 0; at <= len; at++) {
                for (pad = 0; pad < 4; pad++) {
                    bad += t_case(t_ins[i].s, t_ins[i].len, len, at, pad);
                }
            }
        }

        ok(bad == 0, "insertion %zu at every offset agrees with jansson", i);
        bad = 0;
    }

    done_testing();
}


/* 0 when the scanner and jansson agree on ["<len plain bytes + ins>"] */

static int
t_case(const char *ins, size_t ins_len, size_t len, size_t at, size_t pad)
{
    int              rc, want;
    char            *text, *p;
    size_t           n, end;
    json_t          *root;
    json_error_t     jerr;
    capture_json_t   js;

    n = pad + 2 + len + ins_len + 2;
    text = malloc(n);
    if (text == NULL) {
        return 1;
    }

    /* leading whitespace moves the string against the vector width */
    p = text;
    memset(p, ' ', pad);
    p += pad;
    *p++ = '[';
    *p++ = '"';

    for (end = 0; end < len; end++) {
        if (end == at) {
            memcpy(p, ins, ins_len);
            p += ins_len;
        }

        *p++ = 'a' + (char) (end % 26);
    }

    if (at == len) {
        memcpy(p, ins, ins_len);
        p += ins_len;
    }

    *p++ = '"';
    *p++ = ']';

    root = json_loadb(text, n, JSON_ALLOW_NUL, &jerr);
    want = root != NULL;

    memset(&js, 0, sizeof(capture_json_t));
    rc = capture_json_scan(&js, text, n);

    if ((rc == 0) != want) {
        diag("len %zu at %zu pad %zu: scanner %d, jansson %d", len, at, pad,
             rc, want);
        rc = 1;
        goto done;
    }

    rc = 0;

    if (want
        && (js.ntoks < 2 || js.toks[1].type != CAPTURE_JSON_STRING
            || js.toks[1].end != pad + 2 + len + ins_len))
    {
        diag("len %zu at %zu pad %zu: string ends at %u", len, at, pad,
             js.ntoks < 2 ? 0 : js.toks[1].end);
        rc = 1;
    }

done:

    json_decref(root);
    capture_json_free(&js);
    free(text);

    return rc;
}
