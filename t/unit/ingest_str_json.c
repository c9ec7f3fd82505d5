/*
 * Copyright (C) edgehog
 */

/*
 * ingest_str_add_json() (sixteen bytes stored as they are scanned)
 * against a byte-by-byte escaper of the same rules and against jansson:
 * random strings of every length up to 300 with quotes, backslashes,
 * controls, DEL and bytes from 0x80 at any place, appended after text
 * already in a buffer that is exactly as large as the unescaped string
 * needs, so every escape grows it and ASan sees a byte written past it.
 */


#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tap.h"
#include "ingest_fast.h"


static size_t t_escape(const unsigned char *s, size_t len, char *out);
static void t_random(unsigned char *s, size_t len, unsigned mix);


static size_t
t_escape(const unsigned char *s, size_t len, char *out)
{
    size_t  i, n;

    static const char  hex[] = "0123456789ABCDEF";

    n = 0;
    out[n++] = '"';

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '"':  out[n++] = '\\'; out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; out[n++] = '\\'; break;
        case '\b': out[n++] = '\\'; out[n++] = 'b'; break;
        case '\f': out[n++] = '\\'; out[n++] = 'f'; break;
        case '\n': out[n++] = '\\'; out[n++] = 'n'; break;
        case '\r': out[n++] = '\\'; out[n++] = 'r'; break;
        case '\t': out[n++] = '\\'; out[n++] = 't'; break;
        default:
            if (s[i] < 0x20) {
                out[n++] = '\\';
                out[n++] = 'u';
                out[n++] = '0';
                out[n++] = '0';
                out[n++] = hex[s[i] >> 4];
                out[n++] = hex[s[i] & 0xf];

            } else {
                out[n++] = (char) s[i];
            }
        }
    }

    out[n++] = '"';
    out[n] = '\0';

    return n;
}


/* mix 0: ascii letters and specials; 1: also bytes from 0x7f on */

static void
t_random(unsigned char *s, size_t len, unsigned mix)
{
    size_t    i;
    unsigned  r;

    static const unsigned char  special[] = "\"\\\b\f\n\r\t\001\037";

    for (i = 0; i < len; i++) {
        r = (unsigned) rand();

        switch (r % 8) {
        case 0:
            s[i] = special[(r >> 3) % (sizeof(special) - 1)];
            break;
        case 1:
            s[i] = mix ? (unsigned char) (0x7f + (r >> 3) % 0x81)
                       : (unsigned char) ('a' + (r >> 3) % 26);
            break;
        default:
            s[i] = (unsigned char) (' ' + (r >> 3) % 95);
        }
    }
}


int
main(void)
{
    int            same, jsame, n;
    char          *want, *dumped;
    size_t         len, pre, wlen;
    json_t        *j;
    unsigned       mix;
    ingest_str_t   b;
    unsigned char  s[300];

    srand(12345);
    want = malloc(sizeof(s) * 6 + 3);
    same = 1;
    jsame = 1;
    n = 0;

    for (mix = 0; mix < 2; mix++) {
        for (len = 0; len < sizeof(s); len++) {
            for (pre = 0; pre < 40; pre += 13) {
                t_random(s, len, mix);
                wlen = t_escape(s, len, want);

                /* exactly the room of the quotes and the bytes as they are */
                b.size = pre + len + 3;
                b.data = malloc(b.size);
                b.len = pre;
                b.failed = 0;
                memset(b.data, 'p', pre);

                ingest_str_add_json(&b, (const char *) s, len);

                if (b.failed || b.len != pre + wlen
                    || memcmp(b.data + pre, want, wlen + 1) != 0
                    || (pre && b.data[pre - 1] != 'p'))
                {
                    same = 0;
                    diag("len %zu pre %zu mix %u: %.*s", len, pre, mix,
                         (int) (b.len - pre), b.data + pre);
                }

                /* jansson: the escapes of the row's DOM path */
                if (mix == 0) {
                    j = json_stringn((const char *) s, len);
                    dumped = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

                    if (dumped == NULL || strcmp(dumped, want) != 0) {
                        jsame = 0;
                    }

                    free(dumped);
                    json_decref(j);
                }

                free(b.data);
                n++;
            }
        }
    }

    ok(n == 2400, "%d strings", n);
    ok(same, "the same text as the byte-by-byte escaper");
    ok(jsame, "the same text as jansson's json_dumps() (ascii)");

    /* a buffer that failed before stays failed and untouched */
    memset(&b, 0, sizeof(ingest_str_t));
    b.failed = 1;
    ingest_str_add_json(&b, "\"x\"", 3);
    ok(b.len == 0 && b.data == NULL, "failed buffer untouched");

    /* a long run without escapes after one, in a growing buffer */
    memset(&b, 0, sizeof(ingest_str_t));
    memset(s, 'x', sizeof(s));
    s[0] = '"';
    s[sizeof(s) - 1] = '\n';
    ingest_str_add_json(&b, (const char *) s, sizeof(s));
    wlen = t_escape(s, sizeof(s), want);
    ok(b.len == wlen && strcmp(b.data, want) == 0, "escape, run, escape");
    free(b.data);

    free(want);
    done_testing();
}
