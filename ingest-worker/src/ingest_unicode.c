/*
 * Copyright (C) edgehog
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_json.h"
#include "ingest_unicode.h"


static int ingest_hex4(const char *p, size_t avail, uint32_t *cp);


char *
ingest_json_repair(const char *s, size_t len, size_t *outlen)
{
    char        *t, *out, *o;
    size_t       i, n;
    uint32_t     cp, lo;
    int          changed;

    static const char  hex[] = "0123456789abcdef";

    changed = 0;

    if (ingest_utf8_valid(s, len)) {
        t = malloc(len + 1);
        if (t == NULL) {
            return NULL;
        }

        memcpy(t, s, len);
        t[len] = '\0';
        n = len;

    } else {
        t = ingest_utf8_sanitize(s, len, &n);
        if (t == NULL) {
            return NULL;
        }

        changed = 1;
    }

    /* each lone surrogate gains one backslash: at most 7/6 of n */
    out = malloc(n + n / 6 + 1);
    if (out == NULL) {
        free(t);
        return NULL;
    }

    o = out;
    i = 0;

    /*
     * a backslash is only valid inside a string, and always starts an
     * escape of two or six characters, so escapes are found from the
     * left without tracking quotes
     */

    while (i < n) {
        if (t[i] != '\\' || i + 1 >= n) {
            *o++ = t[i++];
            continue;
        }

        if (t[i + 1] != 'u' || !ingest_hex4(t + i + 2, n - i - 2, &cp)) {
            *o++ = t[i++];
            *o++ = t[i++];
            continue;
        }

        if (cp == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i += 6;
            changed = 1;
            continue;
        }

        if (cp >= 0xd800 && cp <= 0xdbff
            && i + 12 <= n && t[i + 6] == '\\' && t[i + 7] == 'u'
            && ingest_hex4(t + i + 8, n - i - 8, &lo)
            && lo >= 0xdc00 && lo <= 0xdfff)
        {
            /* a proper pair */
            memcpy(o, t + i, 12);
            o += 12;
            i += 12;
            continue;
        }

        if (cp >= 0xd800 && cp <= 0xdfff) {
            /* "\\udxxx": the escape's text, lower case as JSON.stringify */
            *o++ = '\\';
            *o++ = '\\';
            *o++ = 'u';
            *o++ = hex[(cp >> 12) & 0xf];
            *o++ = hex[(cp >> 8) & 0xf];
            *o++ = hex[(cp >> 4) & 0xf];
            *o++ = hex[cp & 0xf];
            i += 6;
            changed = 1;
            continue;
        }

        memcpy(o, t + i, 6);
        o += 6;
        i += 6;
    }

    free(t);

    if (!changed) {
        free(out);
        return NULL;
    }

    *o = '\0';
    *outlen = o - out;

    return out;
}


json_t *
ingest_json_load_repaired(const char *s, size_t len)
{
    char    *t;
    size_t   n;
    json_t  *v;

    t = ingest_json_repair(s, len, &n);
    if (t == NULL) {
        return NULL;
    }

    /* a repaired text needs no second repair: no loop */
    v = ingest_json_loadb(t, n);
    free(t);

    return v;
}


static int
ingest_hex4(const char *p, size_t avail, uint32_t *cp)
{
    int       k;
    uint32_t  v;
    char      c;

    if (avail < 4) {
        return 0;
    }

    v = 0;

    for (k = 0; k < 4; k++) {
        c = p[k];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            v = v * 16 + (c - 'a' + 10);

        } else if (c >= 'A' && c <= 'F') {
            v = v * 16 + (c - 'A' + 10);

        } else {
            return 0;
        }
    }

    *cp = v;

    return 1;
}
