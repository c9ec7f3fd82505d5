/*
 * Copyright (C) edgehog
 */


#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_json.h"
#include "ingest_unicode.h"


static size_t ingest_utf8_decode(const unsigned char *p, size_t len,
    uint32_t *cp);
static int ingest_json_sanitize_string(json_t *v);


static const char  ingest_replacement[] = "\xef\xbf\xbd";


/*
 * Decodes one well-formed UTF-8 character (RFC 3629 table, so no
 * overlongs, no surrogates, nothing above U+10FFFF); 0 if ill-formed.
 */
static size_t
ingest_utf8_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
    uint32_t  c;
    size_t    n, i;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)))
        || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
    {
        return 0;
    }

    *cp = c;

    return n;
}


int
ingest_utf8_valid(const char *s, size_t len)
{
    size_t    i, n;
    uint32_t  cp;

    for (i = 0; i < len; i += n) {
        n = ingest_utf8_decode((const unsigned char *) s + i, len - i, &cp);

        if (n == 0 || cp == 0) {
            return 0;
        }
    }

    return 1;
}


char *
ingest_utf8_sanitize(const char *s, size_t len, size_t *outlen)
{
    char      *out, *o;
    size_t     i, n;
    uint32_t   cp;

    /* each bad byte grows to at most 3 bytes */
    if (len > (SIZE_MAX - 1) / 3) {
        return NULL;
    }

    out = malloc(len * 3 + 1);
    if (out == NULL) {
        return NULL;
    }

    o = out;

    for (i = 0; i < len; i += n) {
        n = ingest_utf8_decode((const unsigned char *) s + i, len - i, &cp);

        if (n == 0 || cp == 0) {
            memcpy(o, ingest_replacement, 3);
            o += 3;
            n = 1;
            continue;
        }

        memcpy(o, s + i, n);
        o += n;
    }

    *o = '\0';

    if (outlen) {
        *outlen = o - out;
    }

    return out;
}


json_t *
ingest_json_string(const char *s, size_t len)
{
    char    *clean;
    size_t   n;
    json_t  *v;

    if (ingest_utf8_valid(s, len)) {
        return json_stringn_nocheck(s, len);
    }

    clean = ingest_utf8_sanitize(s, len, &n);
    if (clean == NULL) {
        return NULL;
    }

    /* sanitised above, so jansson's own check would only cost time */
    v = json_stringn_nocheck(clean, n);
    free(clean);

    return v;
}


static int
ingest_json_sanitize_string(json_t *v)
{
    char        *clean;
    size_t       n, len;
    const char  *s;

    s = json_string_value(v);
    len = json_string_length(v);

    if (memchr(s, '\0', len) == NULL) {
        return 0;
    }

    clean = ingest_utf8_sanitize(s, len, &n);
    if (clean == NULL) {
        return -1;
    }

    if (json_string_setn_nocheck(v, clean, n) != 0) {
        free(clean);
        return -1;
    }

    free(clean);

    return 0;
}


int
ingest_json_sanitize(json_t *v)
{
    size_t       i;
    json_t      *e;
    const char  *key;

    switch (json_typeof(v)) {

    case JSON_STRING:
        return ingest_json_sanitize_string(v);

    case JSON_ARRAY:
        json_array_foreach(v, i, e) {
            if (ingest_json_sanitize(e) != 0) {
                return -1;
            }
        }

        return 0;

    case JSON_OBJECT:
        /* jansson never lets a NUL into a key, so only values matter */
        json_object_foreach(v, key, e) {
            if (ingest_json_sanitize(e) != 0) {
                return -1;
            }
        }

        return 0;

    default:
        return 0;
    }
}


void
ingest_json_reals_to_ints(json_t *v)
{
    double       d;
    size_t       i;
    json_t      *e;
    const char  *key;

    switch (json_typeof(v)) {

    case JSON_ARRAY:
        json_array_foreach(v, i, e) {
            if (json_is_real(e)) {
                d = json_real_value(e);

                if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
                    json_array_set_new(v, i, json_integer((json_int_t) d));
                }

            } else {
                ingest_json_reals_to_ints(e);
            }
        }

        break;

    case JSON_OBJECT:
        /* replacing the value of an existing key does not rehash */
        json_object_foreach(v, key, e) {
            if (json_is_real(e)) {
                d = json_real_value(e);

                if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
                    json_object_set_new(v, key, json_integer((json_int_t) d));
                }

            } else {
                ingest_json_reals_to_ints(e);
            }
        }

        break;

    default:
        break;
    }
}


json_t *
ingest_json_loadb(const char *s, size_t len)
{
    json_t        *v;
    json_error_t   err;

    v = json_loadb(s, len, JSON_ALLOW_NUL, &err);
    if (v != NULL) {
        return v;
    }

    if (json_error_code(&err) != json_error_numeric_overflow) {
        /* hook: what JSON.parse() takes and jansson not (ingest_unicode.c) */
        return ingest_json_load_repaired(s, len);
    }

    /*
     * JavaScript would read an integer beyond 64 bits as a double; jansson
     * can only do that for all numbers at once, so the small ones are
     * turned back into integers afterwards
     */

    v = json_loadb(s, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (v == NULL) {
        return NULL;
    }

    if (json_is_real(v)) {
        return v;
    }

    ingest_json_reals_to_ints(v);

    return v;
}


void
ingest_js_number(double d, char *buf, size_t size)
{
    int  prec;

    if (isnan(d) || isinf(d)) {
        /* JSON.stringify writes both as null */
        snprintf(buf, size, "null");
        return;
    }

    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(buf, size, "%.0f", d);

        if (strcmp(buf, "-0") == 0) {
            snprintf(buf, size, "0");
        }

        return;
    }

    for (prec = 1; prec < 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);

        if (strtod(buf, NULL) == d) {
            return;
        }
    }

    snprintf(buf, size, "%.17g", d);
}


char *
ingest_json_to_js_string(const json_t *v)
{
    char  buf[64];

    switch (json_typeof(v)) {

    case JSON_STRING:
        return strndup(json_string_value(v), json_string_length(v));

    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        return strdup(buf);

    case JSON_REAL:
        ingest_js_number(json_real_value(v), buf, sizeof(buf));
        return strdup(buf);

    case JSON_TRUE:
        return strdup("true");

    case JSON_FALSE:
        return strdup("false");

    case JSON_NULL:
        return strdup("null");

    default:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}


size_t
ingest_utf16_prefix(const char *s, size_t len, size_t max)
{
    size_t    i, n, units, u;
    uint32_t  cp;

    units = 0;

    for (i = 0; i < len; i += n) {
        n = ingest_utf8_decode((const unsigned char *) s + i, len - i, &cp);

        if (n == 0) {
            /* not expected for jansson strings; count the byte as one */
            n = 1;
            cp = 0xfffd;
        }

        u = (cp >= 0x10000) ? 2 : 1;

        if (units + u > max) {
            break;
        }

        units += u;
    }

    return i;
}


/* JavaScript truthiness of a JSON value; absent (NULL) is falsy */

int
ingest_json_truthy(const json_t *v)
{
    if (v == NULL) {
        return 0;
    }

    switch (json_typeof(v)) {

    case JSON_STRING:
        return json_string_length(v) > 0;

    case JSON_INTEGER:
        return json_integer_value(v) != 0;

    case JSON_REAL:
        return json_real_value(v) != 0.0;

    case JSON_FALSE:
    case JSON_NULL:
        return 0;

    default:
        return 1;
    }
}
