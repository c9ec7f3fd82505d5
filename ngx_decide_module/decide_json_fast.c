/*
 * Copyright (C) edgehog
 */

/*
 * A request-body fast path (bench: jansson's lexer reads byte by byte
 * through a stream callback with UTF-8 checks, ~3 us of a /flags call).
 * It covers the common shape only: objects, arrays, strings of printable
 * ASCII without escapes, integers of at most 18 digits, true, false,
 * null, nesting up to DECIDE_JSON_FAST_DEPTH.  Anything else (escapes,
 * non-ASCII, reals, big integers, NaN, trailing bytes, errors) gives
 * NULL and jansson parses the body instead, so the subset only has to
 * agree with jansson where it answers.  Values are built with the same
 * jansson calls a parse makes (set_new on objects: the last duplicate
 * wins, order kept), the string checks skipped because the bytes were
 * checked here.
 */


#include <string.h>
#if (__SSE2__)
#include <emmintrin.h>
#endif

#include "decide_json_fast.h"


#define DECIDE_JSON_FAST_DEPTH  32


json_t *
decide_json_fast(const unsigned char *p, size_t len)
{
    json_t              *v;
    decide_json_fast_t   s;

    s.p = p;
    s.end = p + len;

    while (s.p < s.end && (*s.p == ' ' || *s.p == '\t' || *s.p == '\n'
                           || *s.p == '\r'))
    {
        s.p++;
    }

    /* only an object: other bodies are rare and errors anyway */
    if (s.p == s.end || *s.p != '{') {
        return NULL;
    }

    v = decide_json_fast_value(&s, 0);
    if (v == NULL) {
        return NULL;
    }

    while (s.p < s.end && (*s.p == ' ' || *s.p == '\t' || *s.p == '\n'
                           || *s.p == '\r'))
    {
        s.p++;
    }

    if (s.p != s.end) {
        json_decref(v);
        return NULL;
    }

    return v;
}


json_t *
decide_json_fast_value(decide_json_fast_t *s, int depth)
{
    int                    neg;
    size_t                 len, digits;
    json_t                *v, *item;
    const char            *str;
    json_int_t             n;
    const unsigned char   *start;

    decide_json_fast_ws(s);

    if (s->p == s->end) {
        return NULL;
    }

    switch (*s->p) {

    case '{':
        if (depth >= DECIDE_JSON_FAST_DEPTH) {
            return NULL;
        }

        s->p++;
        v = json_object();
        if (v == NULL) {
            return NULL;
        }

        decide_json_fast_ws(s);

        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return v;
        }

        for ( ;; ) {
            decide_json_fast_ws(s);

            if (decide_json_fast_string(s, &str, &len) != 0) {
                goto failed;
            }

            decide_json_fast_ws(s);

            if (s->p == s->end || *s->p != ':') {
                goto failed;
            }

            s->p++;

            item = decide_json_fast_value(s, depth + 1);
            if (item == NULL) {
                goto failed;
            }

            if (json_object_setn_new_nocheck(v, str, len, item) != 0) {
                goto failed;
            }

            decide_json_fast_ws(s);

            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }

            if (s->p < s->end && *s->p == '}') {
                s->p++;
                return v;
            }

            goto failed;
        }

    case '[':
        if (depth >= DECIDE_JSON_FAST_DEPTH) {
            return NULL;
        }

        s->p++;
        v = json_array();
        if (v == NULL) {
            return NULL;
        }

        decide_json_fast_ws(s);

        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return v;
        }

        for ( ;; ) {
            item = decide_json_fast_value(s, depth + 1);
            if (item == NULL || json_array_append_new(v, item) != 0) {
                goto failed;
            }

            decide_json_fast_ws(s);

            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }

            if (s->p < s->end && *s->p == ']') {
                s->p++;
                return v;
            }

            goto failed;
        }

    case '"':
        if (decide_json_fast_string(s, &str, &len) != 0) {
            return NULL;
        }

        return json_stringn_nocheck(str, len);

    case 't':
        if (s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
            s->p += 4;
            return json_true();
        }

        return NULL;

    case 'f':
        if (s->end - s->p >= 5 && memcmp(s->p, "false", 5) == 0) {
            s->p += 5;
            return json_false();
        }

        return NULL;

    case 'n':
        if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
            s->p += 4;
            return json_null();
        }

        return NULL;

    default:
        break;
    }

    /* integers: -?(0|[1-9][0-9]*), 18 digits at most, no fraction */
    neg = 0;
    start = s->p;

    if (*s->p == '-') {
        neg = 1;
        s->p++;
    }

    n = 0;
    digits = 0;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        /* a 19th digit could overflow n: the slow path takes it */
        if (digits == 18) {
            return NULL;
        }

        n = n * 10 + (*s->p - '0');
        s->p++;
        digits++;
    }

    if (digits == 0 || (digits > 1 && start[neg] == '0')) {
        return NULL;
    }

    /* a real, or a letter glued to the digits: jansson's business */
    if (s->p < s->end
        && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'
            || (*s->p >= 'a' && *s->p <= 'z')
            || (*s->p >= 'A' && *s->p <= 'Z')))
    {
        return NULL;
    }

    return json_integer(neg ? -n : n);

failed:

    json_decref(v);
    return NULL;
}


/* printable ASCII without escapes; anything else is left to jansson */
int
decide_json_fast_string(decide_json_fast_t *s, const char **str,
    size_t *len)
{
    const unsigned char  *p;
#if (__SSE2__)
    int                   mask;
    __m128i               v, bad;
#endif

    if (s->p == s->end || *s->p != '"') {
        return -1;
    }

    p = ++s->p;

#if (__SSE2__)

    /*
     * 16 bytes at a time while they are plain: the scalar loop below
     * then stops at the first byte it would have stopped at anyway.
     */
    while (s->end - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);

        /* signed: 0x20..0x7f are > 0x1f, bytes >= 0x80 are negative */
        bad = _mm_or_si128(
                  _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                               _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                  _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
                               _mm_cmpeq_epi8(_mm_cmpgt_epi8(v,
                                                  _mm_set1_epi8(0x1f)),
                                              _mm_setzero_si128())));

        mask = _mm_movemask_epi8(bad);

        if (mask) {
            p += __builtin_ctz(mask);
            break;
        }

        p += 16;
    }

#endif

    while (p < s->end && *p != '"') {
        if (*p < 0x20 || *p > 0x7e || *p == '\\') {
            return -1;
        }

        p++;
    }

    if (p == s->end) {
        return -1;
    }

    *str = (const char *) s->p;
    *len = p - s->p;
    s->p = p + 1;

    return 0;
}
