/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#if (__SSE2__)
#include <emmintrin.h>
#endif
#if (__x86_64__)
#include <immintrin.h>
#endif

#include "capture_cpu.h"
#include "capture_json.h"
#include "capture_normalize.h"


/* jansson's own limit is 2048: deeper text is left for it to judge */
#define CAPTURE_JSON_MAX_DEPTH  512

/* a longer mantissa or exponent could overflow a double in jansson */
#define CAPTURE_JSON_MAX_NUMBER  200


typedef struct {
    capture_json_t             *js;
    const u_char               *start;
    const u_char               *p;
    const u_char               *end;
} capture_json_scan_t;


static int capture_json_value(capture_json_scan_t *s, int depth);
static int capture_json_string(capture_json_scan_t *s, int key);
static int capture_json_number(capture_json_scan_t *s);
static int capture_json_literal(capture_json_scan_t *s, const char *lit,
    size_t len, uint8_t type);
static capture_json_tok_t *capture_json_push(capture_json_scan_t *s,
    uint32_t *idx);
static int capture_json_hex4(const u_char *p, uint32_t *cp);
static int capture_json_special8(const u_char *p);
#if (__SSE2__)
static int capture_json_plain16(const u_char *p);
#endif
#if (__x86_64__)
static const u_char *capture_json_plain_avx2(const u_char *p,
    const u_char *end);
#endif


#define capture_json_skip_ws(s)                                              \
    while ((s)->p < (s)->end                                                 \
           && (*(s)->p == ' ' || *(s)->p == '\n' || *(s)->p == '\r'          \
               || *(s)->p == '\t'))                                          \
    {                                                                        \
        (s)->p++;                                                            \
    }


int
capture_json_scan(capture_json_t *js, const char *p, size_t len)
{
    capture_json_scan_t  s;

    /* offsets are 32-bit */
    if (len >= UINT32_MAX) {
        return -1;
    }

    js->ntoks = 0;

    s.js = js;
    s.start = (const u_char *) p;
    s.p = s.start;
    s.end = s.start + len;

    capture_json_skip_ws(&s);

    if (capture_json_value(&s, 0) != 0) {
        return -1;
    }

    capture_json_skip_ws(&s);

    return s.p == s.end ? 0 : -1;
}


void
capture_json_free(capture_json_t *js)
{
    free(js->toks);
    js->toks = NULL;
    js->ntoks = 0;
    js->cap = 0;
}


uint32_t
capture_json_get(const capture_json_t *js, const char *p, uint32_t obj,
    const char *key, size_t key_len)
{
    uint32_t                  i, k, found;
    const capture_json_tok_t  *t;

    if (js->toks[obj].type != CAPTURE_JSON_OBJECT) {
        return 0;
    }

    found = 0;
    k = obj + 1;

    for (i = 0; i < js->toks[obj].size; i++) {
        t = &js->toks[k];

        /* keys are never escaped: the scanner declines those */
        if (t->end - t->start == key_len
            && memcmp(p + t->start, key, key_len) == 0)
        {
            found = k + 1;
        }

        k = js->toks[k + 1].next;
    }

    return found;
}


static int
capture_json_value(capture_json_scan_t *s, int depth)
{
    uint32_t             idx, n;
    capture_json_tok_t  *t;

    if (s->p == s->end) {
        return -1;
    }

    switch (*s->p) {

    case '{':
    case '[':
        if (depth >= CAPTURE_JSON_MAX_DEPTH) {
            return -1;
        }

        t = capture_json_push(s, &idx);
        if (t == NULL) {
            return -1;
        }

        t->type = (*s->p == '{') ? CAPTURE_JSON_OBJECT : CAPTURE_JSON_ARRAY;
        t->start = s->p - s->start;
        s->p++;
        n = 0;

        capture_json_skip_ws(s);

        if (s->p < s->end
            && *s->p == (s->js->toks[idx].type == CAPTURE_JSON_OBJECT
                         ? '}' : ']'))
        {
            s->p++;
            goto done;
        }

        for ( ;; ) {
            if (s->js->toks[idx].type == CAPTURE_JSON_OBJECT) {
                if (s->p == s->end || *s->p != '"'
                    || capture_json_string(s, 1) != 0)
                {
                    return -1;
                }

                capture_json_skip_ws(s);

                if (s->p == s->end || *s->p != ':') {
                    return -1;
                }

                s->p++;
                capture_json_skip_ws(s);
            }

            if (capture_json_value(s, depth + 1) != 0) {
                return -1;
            }

            n++;

            capture_json_skip_ws(s);

            if (s->p == s->end) {
                return -1;
            }

            if (*s->p == ',') {
                s->p++;
                capture_json_skip_ws(s);
                continue;
            }

            if (*s->p != (s->js->toks[idx].type == CAPTURE_JSON_OBJECT
                          ? '}' : ']'))
            {
                return -1;
            }

            s->p++;
            break;
        }

    done:

        /* the array may have moved while the members were pushed */
        t = &s->js->toks[idx];
        t->end = s->p - s->start;
        t->size = n;
        t->next = s->js->ntoks;

        return 0;

    case '"':
        return capture_json_string(s, 0);

    case 't':
        return capture_json_literal(s, "true", 4, CAPTURE_JSON_TRUE);

    case 'f':
        return capture_json_literal(s, "false", 5, CAPTURE_JSON_FALSE);

    case 'n':
        return capture_json_literal(s, "null", 4, CAPTURE_JSON_NULL);

    default:
        return capture_json_number(s);
    }
}


/*
 * jansson's rules: no raw control characters, the JSON escapes only,
 * \u surrogates in pairs (\u0000 is allowed: JSON_ALLOW_NUL), and the raw
 * bytes well-formed UTF-8
 */

static int
capture_json_string(capture_json_scan_t *s, int key)
{
    u_char               c;
    size_t               n;
    uint8_t              flags;
    uint32_t             idx, cp, lo;
    const u_char        *p, *end, *begin;
    capture_json_tok_t  *t;

    p = s->p + 1;
    end = s->end;
    begin = p;
    flags = 0;

    for ( ;; ) {
        /* 16 or 8 plain bytes at a time: long URLs and values dominate */
#if (__SSE2__)
        while (end - p >= 16) {
            n = capture_json_plain16(p);
            p += n;

            if (n < 16) {
                break;
            }

#if (__x86_64__)
            if (end - p >= 32 && capture_cpu_avx2()) {
                p = capture_json_plain_avx2(p, end);
            }
#endif
        }
#endif

        while (end - p >= 8 && !capture_json_special8(p)) {
            p += 8;
        }

        if (p == end) {
            return -1;
        }

        c = *p;

        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }

        if (c == '"') {
            break;
        }

        if (c < 0x20) {
            return -1;
        }

        if (c == '\\') {
            /* an escaped key might spell a field capture looks up */
            if (key) {
                return -1;
            }

            flags |= CAPTURE_JSON_ESCAPED;

            if (end - p < 2) {
                return -1;
            }

            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                p += 2;
                continue;

            case 'u':
                if (end - p < 6 || capture_json_hex4(p + 2, &cp) != 0) {
                    return -1;
                }

                p += 6;

                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return -1;
                }

                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
                        || capture_json_hex4(p + 2, &lo) != 0
                        || lo < 0xdc00 || lo > 0xdfff)
                    {
                        return -1;
                    }

                    p += 6;
                }

                continue;

            default:
                return -1;
            }
        }

        /* c >= 0x80: one multi-byte sequence */

        n = (c >= 0xf0) ? 4 : (c >= 0xe0) ? 3 : 2;

        if ((size_t) (end - p) < n || !capture_utf8_valid(p, n)) {
            return -1;
        }

        p += n;
    }

    t = capture_json_push(s, &idx);
    if (t == NULL) {
        return -1;
    }

    t->type = CAPTURE_JSON_STRING;
    t->flags = flags;
    t->start = begin - s->start;
    t->end = p - s->start;
    t->next = idx + 1;

    s->p = p + 1;

    return 0;
}


static int
capture_json_number(capture_json_scan_t *s)
{
    size_t               digits, exp;
    uint8_t              flags;
    uint32_t             idx;
    const u_char        *p, *end;
    capture_json_tok_t  *t;

    p = s->p;
    end = s->end;
    flags = CAPTURE_JSON_INTEGER;

    if (p < end && *p == '-') {
        p++;
    }

    if (p == end || *p < '0' || *p > '9') {
        return -1;
    }

    digits = 0;

    if (*p == '0') {
        p++;
        digits++;

    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }

    if (p < end && *p == '.') {
        flags = 0;
        p++;

        if (p == end || *p < '0' || *p > '9') {
            return -1;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        flags = 0;
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        exp = 0;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            exp++;
        }

        /* |exponent| < 100 with a short mantissa stays below DBL_MAX */
        if (exp == 0 || exp > 2) {
            return -1;
        }
    }

    if (p - s->p > CAPTURE_JSON_MAX_NUMBER) {
        return -1;
    }

    /*
     * json_int_t is 64-bit: 18 digits always fit, a longer integer may be
     * jansson's error to report
     */
    if ((flags & CAPTURE_JSON_INTEGER) && digits > 18) {
        return -1;
    }

    t = capture_json_push(s, &idx);
    if (t == NULL) {
        return -1;
    }

    t->type = CAPTURE_JSON_NUMBER;
    t->flags = flags;
    t->start = s->p - s->start;
    t->end = p - s->start;
    t->next = idx + 1;

    s->p = p;

    return 0;
}


static int
capture_json_literal(capture_json_scan_t *s, const char *lit, size_t len,
    uint8_t type)
{
    uint32_t             idx;
    capture_json_tok_t  *t;

    if ((size_t) (s->end - s->p) < len || memcmp(s->p, lit, len) != 0) {
        return -1;
    }

    t = capture_json_push(s, &idx);
    if (t == NULL) {
        return -1;
    }

    t->type = type;
    t->start = s->p - s->start;
    t->end = t->start + len;
    t->next = idx + 1;

    s->p += len;

    return 0;
}


/*
 * Session 10, kept out: this inline with its growth out of line;
 * callgrind of bench-capture-build 1112 -> 1079 M instructions (-3%), but
 * no time gained that the loaded machine let show (16 interleaved
 * pairs: single event faster in 9, batch in 6; medians 1666 -> 1777 and
 * 1242 -> 1306 ns/event)
 */

static capture_json_tok_t *
capture_json_push(capture_json_scan_t *s, uint32_t *idx)
{
    size_t               cap;
    capture_json_t      *js;
    capture_json_tok_t  *t;

    js = s->js;

    if (js->ntoks == js->cap) {
        cap = js->cap ? js->cap * 2 : 256;

        t = realloc(js->toks, cap * sizeof(capture_json_tok_t));
        if (t == NULL) {
            return NULL;
        }

        js->toks = t;
        js->cap = cap;
    }

    *idx = js->ntoks;
    t = &js->toks[js->ntoks++];
    memset(t, 0, sizeof(capture_json_tok_t));

    return t;
}


static int
capture_json_hex4(const u_char *p, uint32_t *cp)
{
    u_char    c;
    size_t    i;
    uint32_t  v;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            v = v << 4 | (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = v << 4 | ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    *cp = v;

    return 0;
}


/*
 * 1 when one of 8 bytes may need a look: a control character, '"', '\\'
 * or a non-ASCII byte (the usual SWAR tests; false positives only cost
 * the byte loop)
 */

static int
capture_json_special8(const u_char *p)
{
    uint64_t  v, q, b;

    memcpy(&v, p, 8);

    q = v ^ 0x2222222222222222ULL;
    b = v ^ 0x5c5c5c5c5c5c5c5cULL;

    return (((v - 0x2020202020202020ULL) & ~v)
            | ((q - 0x0101010101010101ULL) & ~q)
            | ((b - 0x0101010101010101ULL) & ~b)
            | v)
           & 0x8080808080808080ULL ? 1 : 0;
}


#if (__x86_64__)

/*
 * a long string's plain bytes, 32 at a time: returns where the first
 * byte that needs a look is, or where fewer than 32 bytes are left.
 * Taken only after 16 plain bytes, so keys and short values pay nothing:
 * bench-capture-build arena ns/event, medians of 7 interleaved runs,
 * single 1048 -> 1026, batch of 50 804 -> 785.  The same for the escaped
 * copy of "data" (capture_fast_copy()) gave 1% more, within the noise,
 * and was left out.
 */

__attribute__((target("avx2")))
static const u_char *
capture_json_plain_avx2(const u_char *p, const u_char *end)
{
    unsigned  mask;
    __m256i   v, m;

    while (end - p >= 32) {
        v = _mm256_loadu_si256((const __m256i *) p);

        m = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('"')),
                                _mm256_cmpeq_epi8(v,
                                                  _mm256_set1_epi8('\\'))),
                _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v));

        mask = (unsigned) _mm256_movemask_epi8(m);

        if (mask) {
            return p + __builtin_ctz(mask);
        }

        p += 32;
    }

    return p;
}

#endif


#if (__SSE2__)

/*
 * how many of 16 bytes are plain string bytes; a signed compare catches
 * control characters and non-ASCII bytes (negative) at once
 */

static int
capture_json_plain16(const u_char *p)
{
    int      mask;
    __m128i  v, m;

    v = _mm_loadu_si128((const __m128i *) p);

    m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                     _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));

    mask = _mm_movemask_epi8(m);

    return mask ? __builtin_ctz(mask) : 16;
}

#endif
