/*
 * Copyright (C) edgehog
 */


#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "capture_normalize.h"


/* nesting beyond this is refused rather than recursed into */
#define CAPTURE_JSON_MAX_DEPTH  1024


typedef struct {
    u_char                  *data;
    size_t                   len;
    size_t                   cap;
    const capture_alloc_t   *a;
    int                      failed;
} capture_buf_t;


static void capture_buf_add(capture_buf_t *b, const void *p, size_t n);
static void capture_json_string(capture_buf_t *b, const char *s, size_t n);
static void capture_json_value(capture_buf_t *b, const json_t *v,
    int depth);
static int capture_key_cmp(const void *one, const void *two);


json_t *
capture_distinct_id_find(json_t *event)
{
    json_t  *v, *props;

    v = json_object_get(event, "distinct_id");

    if (v == NULL || json_is_null(v)) {
        v = json_object_get(event, "$distinct_id");
    }

    if (v == NULL || json_is_null(v)) {
        props = json_object_get(event, "properties");
        v = json_is_object(props) ? json_object_get(props, "distinct_id")
                                  : NULL;
    }

    if (v == NULL || json_is_null(v)) {
        return NULL;
    }

    return v;
}


int
capture_distinct_id_normalize(const json_t *v, const capture_alloc_t *a,
    u_char **out, size_t *out_len)
{
    size_t          i, n, len;
    u_char         *s, *p, *d;
    capture_buf_t   b;

    if (v == NULL || json_is_null(v)) {
        return CAPTURE_DID_MISSING;
    }

    memset(&b, 0, sizeof(capture_buf_t));
    b.a = a;

    if (json_is_string(v)) {
        capture_buf_add(&b, json_string_value(v), json_string_length(v));

    } else {
        capture_json_value(&b, v, 0);
    }

    if (b.failed) {
        if (b.data) {
            a->free(a->ctx, b.data);
        }

        return CAPTURE_DID_NOMEM;
    }

    if (b.len == 0) {
        if (b.data) {
            a->free(a->ctx, b.data);
        }

        return CAPTURE_DID_EMPTY;
    }

    s = b.data;
    len = capture_utf8_prefix(s, b.len, CAPTURE_DID_MAX_CHARS);

    /* NUL and U+FFFD are both one scalar value: truncate first */
    n = 0;

    for (i = 0; i < len; i++) {
        n += s[i] == '\0' ? 3 : 1;
    }

    p = a->alloc(a->ctx, n + 1);
    if (p == NULL) {
        a->free(a->ctx, s);
        return CAPTURE_DID_NOMEM;
    }

    d = p;

    for (i = 0; i < len; i++) {
        if (s[i] == '\0') {
            *d++ = 0xef;
            *d++ = 0xbf;
            *d++ = 0xbd;

        } else {
            *d++ = s[i];
        }
    }

    *d = '\0';

    a->free(a->ctx, s);

    *out = p;
    *out_len = n;

    return CAPTURE_DID_OK;
}


int
capture_json_dump_sorted(const json_t *v, const capture_alloc_t *a,
    u_char **out, size_t *out_len)
{
    capture_buf_t  b;

    memset(&b, 0, sizeof(capture_buf_t));
    b.a = a;

    capture_json_value(&b, v, 0);
    capture_buf_add(&b, "", 1);

    if (b.failed) {
        if (b.data) {
            a->free(a->ctx, b.data);
        }

        return -1;
    }

    *out = b.data;
    *out_len = b.len - 1;

    return 0;
}


size_t
capture_format_real(double d, char buf[CAPTURE_REAL_STR_MAX])
{
    int     prec, exp10, i, len, kk, neg;
    char    tmp[40], digits[24], *e, *p;
    size_t  n;

    /* serde_json writes non-finite numbers as null */
    if (!isfinite(d)) {
        memcpy(buf, "null", 5);
        return 4;
    }

    neg = signbit(d) != 0;
    p = buf;

    if (neg) {
        *p++ = '-';
        d = -d;
    }

    if (d == 0.0) {
        memcpy(p, "0.0", 4);
        return (size_t) (p - buf) + 3;
    }

    /* the fewest significant digits that read back to the same double */
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, d);

        if (strtod(tmp, NULL) == d) {
            break;
        }
    }

    len = 0;

    for (e = tmp; *e != 'e'; e++) {
        if (*e >= '0' && *e <= '9') {
            digits[len++] = *e;
        }
    }

    exp10 = atoi(e + 1);

    /* the mantissa digits have no trailing zeros in ryu's d2d() output */
    while (len > 1 && digits[len - 1] == '0') {
        len--;
    }

    kk = exp10 + 1;

    /* 10^(kk-1) <= d < 10^kk; the branches are ryu's format64() */
    if (kk - len >= 0 && kk <= 16) {
        memcpy(p, digits, len);
        p += len;

        for (i = len; i < kk; i++) {
            *p++ = '0';
        }

        *p++ = '.';
        *p++ = '0';

    } else if (kk > 0 && kk <= 16) {
        memcpy(p, digits, kk);
        p += kk;
        *p++ = '.';
        memcpy(p, digits + kk, len - kk);
        p += len - kk;

    } else if (kk > -5 && kk <= 0) {
        *p++ = '0';
        *p++ = '.';

        for (i = kk; i < 0; i++) {
            *p++ = '0';
        }

        memcpy(p, digits, len);
        p += len;

    } else {
        *p++ = digits[0];

        if (len > 1) {
            *p++ = '.';
            memcpy(p, digits + 1, len - 1);
            p += len - 1;
        }

        p += sprintf(p, "e%d", kk - 1);
    }

    *p = '\0';
    n = p - buf;

    return n;
}


int
capture_utf8_valid(const u_char *p, size_t len)
{
    u_char         c;
    size_t         n, i;
    uint32_t       cp;
    uint64_t       v;
    const u_char  *end;

    end = p + len;

    while (p < end) {
        /* ASCII 8 bytes at a time: every body is checked whole */
        while (end - p >= 8) {
            memcpy(&v, p, 8);

            if (v & 0x8080808080808080ULL) {
                break;
            }

            p += 8;
        }

        if (p == end) {
            break;
        }

        c = *p++;

        if (c < 0x80) {
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;

        } else {
            return 0;
        }

        if ((size_t) (end - p) < n) {
            return 0;
        }

        for (i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }

            cp = cp << 6 | (p[i] & 0x3f);
        }

        p += n;

        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        {
            return 0;
        }
    }

    return 1;
}


size_t
capture_utf8_prefix(const u_char *p, size_t len, size_t max_chars)
{
    size_t  i, chars;

    chars = 0;

    for (i = 0; i < len; i++) {
        /* a scalar value starts at every non-continuation byte */
        if ((p[i] & 0xc0) != 0x80) {
            if (chars == max_chars) {
                return i;
            }

            chars++;
        }
    }

    return len;
}


const char *
capture_token_check(const u_char *p, size_t len)
{
    size_t  i;

    if (len == 0) {
        return "empty";
    }

    if (len > CAPTURE_TOKEN_MAX_LEN) {
        return "too_long";
    }

    for (i = 0; i < len; i++) {
        if (p[i] >= 0x80) {
            return "not_ascii";
        }
    }

    if (len >= 4 && memcmp(p, "phx_", 4) == 0) {
        return "personal_api_key";
    }

    if (memchr(p, '\0', len) != NULL) {
        return "null_byte";
    }

    return NULL;
}


static void
capture_buf_add(capture_buf_t *b, const void *p, size_t n)
{
    size_t   cap;
    u_char  *d;

    if (b->failed || n == 0) {
        return;
    }

    if (b->cap - b->len < n) {
        cap = b->cap ? b->cap : 64;

        while (cap - b->len < n) {
            if (cap > ((size_t) -1) / 2) {
                b->failed = 1;
                return;
            }

            cap *= 2;
        }

        d = b->a->alloc(b->a->ctx, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }

        if (b->data) {
            memcpy(d, b->data, b->len);
            b->a->free(b->a->ctx, b->data);
        }

        b->data = d;
        b->cap = cap;
    }

    memcpy(b->data + b->len, p, n);
    b->len += n;
}


/* serde_json's escaping: named escapes, \u00xx for the other controls */

static void
capture_json_string(capture_buf_t *b, const char *s, size_t n)
{
    u_char             c;
    size_t             i, start;
    char               esc[8];
    static const char  hex[] = "0123456789abcdef";

    capture_buf_add(b, "\"", 1);

    start = 0;

    for (i = 0; i < n; i++) {
        c = (u_char) s[i];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }

        capture_buf_add(b, s + start, i - start);
        start = i + 1;

        switch (c) {
        case '"':
            capture_buf_add(b, "\\\"", 2);
            break;
        case '\\':
            capture_buf_add(b, "\\\\", 2);
            break;
        case '\b':
            capture_buf_add(b, "\\b", 2);
            break;
        case '\f':
            capture_buf_add(b, "\\f", 2);
            break;
        case '\n':
            capture_buf_add(b, "\\n", 2);
            break;
        case '\r':
            capture_buf_add(b, "\\r", 2);
            break;
        case '\t':
            capture_buf_add(b, "\\t", 2);
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0f];
            capture_buf_add(b, esc, 6);
        }
    }

    capture_buf_add(b, s + start, n - start);
    capture_buf_add(b, "\"", 1);
}


static void
capture_json_value(capture_buf_t *b, const json_t *v, int depth)
{
    char          num[CAPTURE_REAL_STR_MAX];
    size_t        i, n;
    json_t       *item;
    const char   *key, **keys;

    if (depth > CAPTURE_JSON_MAX_DEPTH) {
        b->failed = 1;
        return;
    }

    switch (json_typeof(v)) {

    case JSON_NULL:
        capture_buf_add(b, "null", 4);
        break;

    case JSON_TRUE:
        capture_buf_add(b, "true", 4);
        break;

    case JSON_FALSE:
        capture_buf_add(b, "false", 5);
        break;

    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        capture_buf_add(b, num, n);
        break;

    case JSON_REAL:
        n = capture_format_real(json_real_value(v), num);
        capture_buf_add(b, num, n);
        break;

    case JSON_STRING:
        capture_json_string(b, json_string_value(v), json_string_length(v));
        break;

    case JSON_ARRAY:
        capture_buf_add(b, "[", 1);

        for (i = 0; i < json_array_size(v); i++) {
            if (i) {
                capture_buf_add(b, ",", 1);
            }

            capture_json_value(b, json_array_get(v, i), depth + 1);
        }

        capture_buf_add(b, "]", 1);
        break;

    case JSON_OBJECT:
        n = json_object_size(v);

        if (n == 0) {
            capture_buf_add(b, "{}", 2);
            break;
        }

        /*
         * serde_json's Map is a BTreeMap: keys in bytewise order; the
         * scratch array is short-lived, so plain malloc() is fine even
         * when the caller's allocator is a pool
         */
        keys = malloc(n * sizeof(char *));
        if (keys == NULL) {
            b->failed = 1;
            return;
        }

        i = 0;

        json_object_foreach((json_t *) v, key, item) {
            keys[i++] = key;
        }

        qsort(keys, n, sizeof(char *), capture_key_cmp);

        capture_buf_add(b, "{", 1);

        for (i = 0; i < n; i++) {
            if (i) {
                capture_buf_add(b, ",", 1);
            }

            capture_json_string(b, keys[i], strlen(keys[i]));
            capture_buf_add(b, ":", 1);
            capture_json_value(b, json_object_get(v, keys[i]), depth + 1);
        }

        capture_buf_add(b, "}", 1);

        free(keys);
        break;

    default:
        b->failed = 1;
    }
}


static int
capture_key_cmp(const void *one, const void *two)
{
    return strcmp(*(const char **) one, *(const char **) two);
}
