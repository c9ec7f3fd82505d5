/*
 * Copyright (C) edgehog
 */


#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ingest_hash.h"
#include "ingest_json.h"
#include "ingest_message.h"
#include "ingest_fast.h"


/* deeper or wider input goes to the DOM path, which has no such limit */
#define FAST_DEPTH         32
#define FAST_KEYS          64
#define FAST_NUMBER_MAX    64

/* scanner verdicts */
#define FAST_OK            0
#define FAST_NO            1       /* not eligible: use the DOM path */
#define FAST_ERROR        -1       /* no memory */

/* which list a member belongs to */
#define FAST_PROPS         0
#define FAST_SET           1
#define FAST_ONCE          2

#define FAST_KEY(s)        { s, sizeof(s) - 1 }

/*
 * freed messages keep their buffers for the next ones: a batch parses
 * and frees thousands, each with six allocations and some growth else.
 * The pool is bounded by the bytes it keeps, not by a count: the worker
 * has two batches parsed at once (2 x batch_size states), and a pool of
 * 1024 states was half of what batch_size 2000 needs, so every other
 * message allocated and freed its buffers (bench-worker-build with
 * batches of 2000: 6.1 -> 4.3 us/event)
 */
#define FAST_POOL_BYTES    (64 * 1024 * 1024)
#define FAST_POOL_BUF      16384   /* larger buffers are let go */


typedef struct {
    const char                 *name;
    size_t                      len;
} ingest_fast_key_t;


typedef enum {
    FAST_K_OTHER = 0,
    FAST_K_SET,
    FAST_K_SET_ONCE,
    FAST_K_UNSET,
    FAST_K_IP,
    FAST_K_SENT_AT,
    FAST_K_PPP,
    FAST_K_GROUP,
    FAST_K_CHAIN
} ingest_fast_kind_e;


/* offsets, not pointers: the buffers grow while scanning */
typedef struct {
    size_t                      key;        /* decoded, in arena */
    size_t                      key_len;
    size_t                      text;       /* "key":value, in text */
    size_t                      text_len;
    size_t                      val;        /* value start, in text */
    int                         list;
    int                         kind;
    int                         initial;    /* ingest_fast_initial index */
} ingest_fast_member_t;


struct ingest_fast_s {
    ingest_str_t                arena;      /* decoded strings */
    ingest_str_t                text;       /* canonical member texts */
    ingest_str_t                data;       /* the decoded "data" string */
    ingest_str_t                set;        /* final $set, after prepare */
    ingest_str_t                once;       /* final $set_once */

    ingest_fast_member_t       *mem;
    int                         nmem;
    int                         cap;

    int                         ip_member;      /* -1: absent */
    int                         sent_at_member;
    int                         set_member;
    int                         once_member;
    int                         ppp_member;
    int                         new_set;        /* initial keys not in $set */
    int                         new_once;

    size_t                      ip;             /* arena offsets, or -1 */
    size_t                      sent_at;
    size_t                      chain;
    size_t                      chain_len;

    unsigned                    ip_truthy:1;
    unsigned                    ppp_false:1;
    unsigned                    anonymize:1;
    unsigned                    forced:1;
    unsigned                    personless:1;
};


typedef struct {
    const char                 *p;
    const char                 *end;
    ingest_fast_t              *f;
    int                         list;       /* where members go */
} ingest_fast_scan_t;


static ingest_fast_t *fast_alloc(size_t len);
static size_t fast_kept(const ingest_fast_t *f);
static int fast_buf(ingest_str_t *b, size_t size);
static int fast_string(ingest_fast_scan_t *s, ingest_str_t *out);
static int fast_value(ingest_fast_scan_t *s, ingest_str_t *out, int depth);
static int fast_number(ingest_fast_scan_t *s, ingest_str_t *out);
static void fast_real(double d, ingest_str_t *out);
static int fast_object(ingest_fast_scan_t *s, ingest_str_t *out, int depth);
static int fast_members(ingest_fast_scan_t *s, int list);
static int fast_member(ingest_fast_scan_t *s, int list, size_t key,
    size_t key_len, uint32_t hash, const char *raw, size_t raw_len);
static void fast_add_token(ingest_str_t *out, const char *raw,
    size_t raw_len, const char *decoded, size_t len);
static int fast_outer(ingest_fast_scan_t *s, size_t *fields);
static int fast_data(ingest_fast_scan_t *s, size_t *fields);
static int fast_kind(const char *key, size_t len, uint32_t hash,
    int *initial);
static void fast_initial_init(void);
static int fast_special_event(const char *name);
static int fast_build_ops(ingest_fast_t *f, int which, json_t *obj);
static json_t *fast_value_json(const char *v, size_t len);
static int fast_in_list(const ingest_fast_t *f, int list, const char *key,
    size_t len);
static void fast_initial_name(const char *key, char *buf, size_t size);
static void fast_add_member_text(const ingest_fast_t *f, int i,
    ingest_str_t *out, int *first);


/* the fields the message needs, "outer wins" (§1.3 step 1) */
enum {
    FAST_F_UUID = 0,
    FAST_F_DISTINCT_ID,
    FAST_F_EVENT,
    FAST_F_IP,
    FAST_F_NOW,
    FAST_F_SENT_AT,
    FAST_F_TOKEN,
    FAST_F_TIMESTAMP,
    FAST_F_N
};


static const ingest_fast_key_t  fast_fields[] = {
    FAST_KEY("uuid"), FAST_KEY("distinct_id"), FAST_KEY("event"),
    FAST_KEY("ip"), FAST_KEY("now"), FAST_KEY("sent_at"), FAST_KEY("token"),
    FAST_KEY("timestamp"), { NULL, 0 }
};


/* ingest_message.c's list of §1.3 step 4 (kept in the same order) */
static const ingest_fast_key_t  fast_initial_keys[] = {
    FAST_KEY("$app_build"), FAST_KEY("$app_name"),
    FAST_KEY("$app_namespace"), FAST_KEY("$app_version"),
    FAST_KEY("$browser"), FAST_KEY("$browser_version"),
    FAST_KEY("$device_type"), FAST_KEY("$current_url"),
    FAST_KEY("$pathname"), FAST_KEY("$os"), FAST_KEY("$os_name"),
    FAST_KEY("$os_version"), FAST_KEY("$referring_domain"),
    FAST_KEY("$referrer"), FAST_KEY("$screen_height"),
    FAST_KEY("$screen_width"), FAST_KEY("$viewport_height"),
    FAST_KEY("$viewport_width"), FAST_KEY("$raw_user_agent"),
    FAST_KEY("utm_source"), FAST_KEY("utm_medium"),
    FAST_KEY("utm_campaign"), FAST_KEY("utm_content"),
    FAST_KEY("utm_name"), FAST_KEY("utm_term"), FAST_KEY("gclid"),
    FAST_KEY("gad_source"), FAST_KEY("gclsrc"), FAST_KEY("dclid"),
    FAST_KEY("gbraid"), FAST_KEY("wbraid"), FAST_KEY("fbclid"),
    FAST_KEY("msclkid"), FAST_KEY("twclid"), FAST_KEY("li_fat_id"),
    FAST_KEY("mc_cid"), FAST_KEY("igshid"), FAST_KEY("ttclid"),
    FAST_KEY("rdt_cid"), FAST_KEY("irclid"), FAST_KEY("_kx"),
    FAST_KEY("epik"), FAST_KEY("qclid"), FAST_KEY("sccid"),
    { NULL, 0 }
};


/*
 * fast_initial_keys by ingest_hash() of the key (open addressing, index
 * + 1, 0: empty): a property's key is hashed anyway (fast_members), and
 * one probe replaced a walk of the list with a memcmp() per key of the
 * same length (bench-worker-build: 27.9k -> 26.9k instructions/event)
 */
#define FAST_INITIAL_SLOTS  128

static uint8_t          fast_initial_slot[FAST_INITIAL_SLOTS];
static uint32_t         fast_initial_hash[FAST_INITIAL_SLOTS];
static pthread_once_t   fast_initial_once = PTHREAD_ONCE_INIT;


/*
 * events with their own rules (§1.3-1.6, §3.4-3.5): the DOM path
 * handles them, so the fast path never needs properties beyond
 * $set/$set_once/$unset
 */
static const char  *fast_special[] = {
    "$snapshot", "$performance_event", "$$client_ingestion_warning",
    "$$heatmap", "$exception", "$identify", "$create_alias",
    "$merge_dangerously", "$groupidentify", "survey shown",
    NULL
};


void
ingest_str_add_grow(ingest_str_t *b, const char *s, size_t len)
{
    char    *p;
    size_t   size;

    if (b->failed) {
        return;
    }

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 512;

        while (size < b->len + len + 1) {
            size *= 2;
        }

        p = realloc(b->data, size);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}


/* v in decimal, as "%lld" prints it, without the printf machinery */

void
ingest_str_add_int(ingest_str_t *b, int64_t v)
{
    char      buf[24], *p;
    uint64_t  u;

    p = buf + sizeof(buf);
    u = (v < 0) ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    ingest_str_add(b, p, buf + sizeof(buf) - p);
}


/* room for n more bytes (and the NUL); 0 or -1 */

int
ingest_str_reserve(ingest_str_t *b, size_t n)
{
    char    *p;
    size_t   size;

    if (b->failed) {
        return -1;
    }

    if (b->len + n + 1 <= b->size) {
        return 0;
    }

    size = b->size ? b->size : 512;

    while (size < b->len + n + 1) {
        size *= 2;
    }

    p = realloc(b->data, size);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }

    b->data = p;
    b->size = size;

    return 0;
}


/*
 * How many leading bytes of p need no care in a JSON string: not '"',
 * '\\' or a control, and (ascii) below 0x80.  Eight at a time: a byte
 * below n in v shows in (v - n * ONES) & ~v & HIGHS (exact as a yes or
 * no), a byte equal to c as one below 1 in v ^ c * ONES.  A borrow can
 * flag bytes after a true one, never before it: the lowest flag is the
 * first byte to care about (little-endian loads), so JSON-in-JSON with
 * an escape every few bytes needs no byte-wise rescan.
 */

static size_t
fast_plain(const unsigned char *p, size_t n, int ascii)
{
    size_t    i;
    uint64_t  v, q, e, t;

#define FAST_ONES   0x0101010101010101ULL
#define FAST_HIGHS  0x8080808080808080ULL

    i = 0;

#if defined(__SSE2__) && defined(__GNUC__)
    {
        int      mask;
        __m128i  w, quote, bslash, bias, limit;

        /*
         * Sixteen at a time where SSE2 is there (every x86-64): the
         * compares are signed, so bytes are biased by 0x80 to ask for
         * "below 0x20" unsigned; ascii asks for "below 0x20 or from
         * 0x80 on", which is signed "below 0x20" unbiased
         */
        quote = _mm_set1_epi8('"');
        bslash = _mm_set1_epi8('\\');
        bias = _mm_set1_epi8((char) (ascii ? 0 : 0x80));
        limit = _mm_set1_epi8((char) (ascii ? 0x20 : 0xa0));

        for ( /* void */ ; i + 16 <= n; i += 16) {
            w = _mm_loadu_si128((const __m128i *) (p + i));

            mask = _mm_movemask_epi8(
                       _mm_or_si128(
                           _mm_or_si128(_mm_cmpeq_epi8(w, quote),
                                        _mm_cmpeq_epi8(w, bslash)),
                           _mm_cmplt_epi8(_mm_xor_si128(w, bias), limit)));

            if (mask) {
                return i + __builtin_ctz(mask);
            }
        }
    }
#endif

    for ( /* void */ ; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, 8);

        q = v ^ (FAST_ONES * '"');
        e = v ^ (FAST_ONES * '\\');
        t = ((v - FAST_ONES * 0x20) & ~v) | ((q - FAST_ONES) & ~q)
            | ((e - FAST_ONES) & ~e) | (ascii ? v : 0);

        t &= FAST_HIGHS;

        if (t) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (__builtin_ctzll(t) >> 3);
#else
            break;
#endif
        }
    }

    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\'
           && (!ascii || p[i] < 0x80))
    {
        i++;
    }

    return i;
}


/*
 * Sixteen bytes are stored as they are scanned (SSE2), one pass instead
 * of a scan and a memcpy() per run between escapes: properties text is
 * JSON, with an escaped quote every few bytes.  A store only writes
 * where the bytes it holds go unescaped, room every reserve counts
 * (the bytes from a special one on are written again after it)
 */

void
ingest_str_add_json(ingest_str_t *b, const char *s, size_t len)
{
    char                 *d;
    size_t                i, start;
    const unsigned char  *u;

    static const char     hex[] = "0123456789ABCDEF";

    u = (const unsigned char *) s;

    /* the quotes and every byte as it is: escapes reserve their own */
    if (ingest_str_reserve(b, len + 2) != 0) {
        return;
    }

    d = b->data + b->len;
    *d++ = '"';
    i = 0;

    for ( ;; ) {

#if defined(__SSE2__) && defined(__GNUC__)
        {
            int      mask;
            __m128i  w, quote, bslash, bias, limit;

            /* fast_plain()'s test of "no care needed", not ascii */
            quote = _mm_set1_epi8('"');
            bslash = _mm_set1_epi8('\\');
            bias = _mm_set1_epi8((char) 0x80);
            limit = _mm_set1_epi8((char) 0xa0);

            while (i + 16 <= len) {
                w = _mm_loadu_si128((const __m128i *) (u + i));
                _mm_storeu_si128((__m128i *) d, w);

                mask = _mm_movemask_epi8(
                           _mm_or_si128(
                               _mm_or_si128(_mm_cmpeq_epi8(w, quote),
                                            _mm_cmpeq_epi8(w, bslash)),
                               _mm_cmplt_epi8(_mm_xor_si128(w, bias),
                                              limit)));

                if (mask) {
                    i += __builtin_ctz(mask);
                    d += __builtin_ctz(mask);
                    goto escape;
                }

                i += 16;
                d += 16;
            }
        }
#endif

        start = i;

        /* jansson escapes '"', '\\' and controls only; UTF-8 passes raw */
        i += fast_plain(u + i, len - i, 0);

        memcpy(d, s + start, i - start);
        d += i - start;

        if (i == len) {
            break;
        }

#if defined(__SSE2__) && defined(__GNUC__)
    escape:
#endif

        b->len = d - b->data;

        /* the escape, the rest as it is, the quote and the NUL */
        if (b->len + (len - i) + 7 > b->size
            && ingest_str_reserve(b, len - i + 6) != 0)
        {
            return;
        }

        d = b->data + b->len;
        *d++ = '\\';

        switch (u[i]) {
        case '"':  *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hex[u[i] >> 4];
            *d++ = hex[u[i] & 0xf];
        }

        i++;
    }

    *d++ = '"';
    *d = '\0';
    b->len = d - b->data;
}


/*
 * A string token (raw, quotes included) that fast_string() decoded:
 * every escape decodes shorter, so the same length means none, and
 * then the token is the very text ingest_str_add_json() would make of
 * it (no '"', '\\' or control in it, valid UTF-8: fast_string() saw to
 * that).  A copy instead of a second scan of the key and value texts.
 */

static void
fast_add_token(ingest_str_t *out, const char *raw, size_t raw_len,
    const char *decoded, size_t len)
{
    if (raw_len == len + 2) {
        ingest_str_add(out, raw, raw_len);
        return;
    }

    ingest_str_add_json(out, decoded, len);
}


/*
 * a "<= ' '" test before the four compares (most calls meet a token)
 * was more instructions, not fewer: bench-worker-build 25.7k -> 26.1k
 * per event (callgrind, session 10); kept out
 */

static void
fast_ws(ingest_fast_scan_t *s)
{
    while (s->p < s->end
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
    {
        s->p++;
    }
}


static int
fast_hex(const char *p, unsigned *v)
{
    int       i;
    unsigned  c, d;

    *v = 0;

    for (i = 0; i < 4; i++) {
        c = (unsigned char) p[i];

        if (c >= '0' && c <= '9') {
            d = c - '0';

        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;

        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;

        } else {
            return -1;
        }

        *v = (*v << 4) | d;
    }

    return 0;
}


/*
 * A string token decoded into out (no NUL added).  Raw controls,
 * invalid UTF-8, bad escapes and lone surrogates are errors for
 * jansson; \u0000 needs the DOM path's sanitising: all are FAST_NO.
 */

static int
fast_string(ingest_fast_scan_t *s, ingest_str_t *out)
{
    char                 *d;
    size_t                n;
    unsigned              cp, lo;
    const unsigned char  *p, *end, *start;

    if (s->p >= s->end || *s->p != '"') {
        return FAST_NO;
    }

    p = (const unsigned char *) s->p + 1;
    end = (const unsigned char *) s->end;

    /* decoding never grows: room for the rest of the input is enough */
    if (ingest_str_reserve(out, end - p) != 0) {
        return FAST_ERROR;
    }

    d = out->data + out->len;

    for ( ;; ) {

#if defined(__SSE2__) && defined(__GNUC__)
        {
            int      mask;
            __m128i  w, quote, bslash, limit;

            /*
             * stored as scanned, as ingest_str_add_json() does: the
             * "data" string is JSON with an escaped quote every few
             * bytes, and a fast_plain() call and a memcpy() per run
             * between them cost more than the bytes.  fast_plain()'s
             * ascii test (signed: bytes from 0x80 on are below 0x20);
             * a store never passes the room reserved above, since
             * decoding never grows and p + 16 <= end
             */
            quote = _mm_set1_epi8('"');
            bslash = _mm_set1_epi8('\\');
            limit = _mm_set1_epi8(0x20);

            while (end - p >= 16) {
                w = _mm_loadu_si128((const __m128i *) p);
                _mm_storeu_si128((__m128i *) d, w);

                mask = _mm_movemask_epi8(
                           _mm_or_si128(
                               _mm_or_si128(_mm_cmpeq_epi8(w, quote),
                                            _mm_cmpeq_epi8(w, bslash)),
                               _mm_cmplt_epi8(w, limit)));

                if (mask) {
                    p += __builtin_ctz(mask);
                    d += __builtin_ctz(mask);
                    goto special;
                }

                p += 16;
                d += 16;
            }
        }
#endif

        start = p;
        p += fast_plain(p, end - p, 1);

        memcpy(d, start, p - start);
        d += p - start;

#if defined(__SSE2__) && defined(__GNUC__)
    special:
#endif

        if (p >= end || *p < 0x20) {
            return FAST_NO;
        }

        if (*p >= 0x80) {
            /* one UTF-8 sequence, checked by the shared validator */
            n = (*p >= 0xf0) ? 4 : (*p >= 0xe0) ? 3 : 2;

            if ((size_t) (end - p) < n
                || !ingest_utf8_valid((const char *) p, n))
            {
                return FAST_NO;
            }

            memcpy(d, p, n);
            d += n;
            p += n;
            continue;
        }

        if (*p == '"') {
            *d = '\0';
            out->len = d - out->data;
            s->p = (const char *) p + 1;
            return FAST_OK;
        }

        /* an escape */

        if (end - p < 2) {
            return FAST_NO;
        }

        switch (p[1]) {
        case '"':  *d++ = '"'; p += 2; break;
        case '\\': *d++ = '\\'; p += 2; break;
        case '/':  *d++ = '/'; p += 2; break;
        case 'b':  *d++ = '\b'; p += 2; break;
        case 'f':  *d++ = '\f'; p += 2; break;
        case 'n':  *d++ = '\n'; p += 2; break;
        case 'r':  *d++ = '\r'; p += 2; break;
        case 't':  *d++ = '\t'; p += 2; break;

        case 'u':
            if (end - p < 6 || fast_hex((const char *) p + 2, &cp) != 0) {
                return FAST_NO;
            }

            p += 6;

            if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
                return FAST_NO;
            }

            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
                    || fast_hex((const char *) p + 2, &lo) != 0
                    || lo < 0xdc00 || lo > 0xdfff)
                {
                    return FAST_NO;
                }

                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }

            if (cp < 0x80) {
                *d++ = (char) cp;

            } else if (cp < 0x800) {
                *d++ = (char) (0xc0 | (cp >> 6));
                *d++ = (char) (0x80 | (cp & 0x3f));

            } else if (cp < 0x10000) {
                *d++ = (char) (0xe0 | (cp >> 12));
                *d++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                *d++ = (char) (0x80 | (cp & 0x3f));

            } else {
                *d++ = (char) (0xf0 | (cp >> 18));
                *d++ = (char) (0x80 | ((cp >> 12) & 0x3f));
                *d++ = (char) (0x80 | ((cp >> 6) & 0x3f));
                *d++ = (char) (0x80 | (cp & 0x3f));
            }

            break;

        default:
            return FAST_NO;
        }
    }
}


/* jansson's real format: "%.17g", ".0" if it looks integral, short exp */

static void
fast_real(double d, ingest_str_t *out)
{
    int    n;
    char   buf[64], *e, *from, *to;

    n = snprintf(buf, sizeof(buf) - 3, "%.17g", d);
    if (n < 0 || n >= (int) sizeof(buf) - 3) {
        out->failed = 1;
        return;
    }

    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        memcpy(buf + n, ".0", 3);
    }

    e = strchr(buf, 'e');

    if (e) {
        to = e + 1;
        from = to + 1;

        if (*to == '-') {
            to++;
        }

        while (*from == '0') {
            from++;
        }

        if (from != to) {
            memmove(to, from, strlen(from) + 1);
        }
    }

    ingest_str_add(out, buf, strlen(buf));
}


static int
fast_number(ingest_fast_scan_t *s, ingest_str_t *out)
{
    int          real;
    char         tok[FAST_NUMBER_MAX + 1], *end;
    size_t       n;
    double       d;
    long long    ll;
    const char  *p, *start;

    p = start = s->p;
    real = 0;

    if (p < s->end && *p == '-') {
        p++;
    }

    if (p >= s->end || *p < '0' || *p > '9') {
        return FAST_NO;
    }

    if (*p == '0') {
        p++;

    } else {
        while (p < s->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < s->end && *p == '.') {
        real = 1;
        p++;

        if (p >= s->end || *p < '0' || *p > '9') {
            return FAST_NO;
        }

        while (p < s->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < s->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;

        if (p < s->end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p >= s->end || *p < '0' || *p > '9') {
            return FAST_NO;
        }

        while (p < s->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    n = p - start;

    if (n > FAST_NUMBER_MAX) {
        return FAST_NO;
    }

    memcpy(tok, start, n);
    tok[n] = '\0';
    errno = 0;

    if (real) {
        d = strtod(tok, &end);

        if (errno != 0 || *end != '\0') {
            return FAST_NO;
        }

        fast_real(d, out);

    } else {
        /* beyond 64 bits the DOM path turns every number into a double */
        ll = strtoll(tok, &end, 10);

        if (errno != 0 || *end != '\0') {
            return FAST_NO;
        }

        ingest_str_add_int(out, ll);
    }

    s->p = p;

    return out->failed ? FAST_ERROR : FAST_OK;
}


/*
 * Any object, re-emitted canonically.  A repeated key would keep its
 * first place with its last value in jansson: rare, so FAST_NO (a hash
 * collision only costs the DOM path).
 */

static int
fast_object(ingest_fast_scan_t *s, ingest_str_t *out, int depth)
{
    int            rc, n, i;
    size_t         mark;
    uint32_t       h, hashes[FAST_KEYS];
    const char    *raw;
    ingest_str_t  *arena;

    arena = &s->f->arena;
    s->p++;
    n = 0;

    ingest_str_lit(out, "{");
    fast_ws(s);

    if (s->p < s->end && *s->p == '}') {
        s->p++;
        ingest_str_lit(out, "}");
        return out->failed ? FAST_ERROR : FAST_OK;
    }

    for ( ;; ) {
        if (n == FAST_KEYS) {
            return FAST_NO;
        }

        mark = arena->len;
        raw = s->p;

        rc = fast_string(s, arena);
        if (rc != FAST_OK) {
            return rc;
        }

        h = ingest_hash(arena->data + mark, arena->len - mark);

        for (i = 0; i < n; i++) {
            if (hashes[i] == h) {
                return FAST_NO;
            }
        }

        hashes[n++] = h;

        if (n > 1) {
            ingest_str_lit(out, ",");
        }

        fast_add_token(out, raw, s->p - raw, arena->data + mark,
                       arena->len - mark);
        arena->len = mark;

        fast_ws(s);

        if (s->p >= s->end || *s->p != ':') {
            return FAST_NO;
        }

        s->p++;
        ingest_str_lit(out, ":");

        rc = fast_value(s, out, depth + 1);
        if (rc != FAST_OK) {
            return rc;
        }

        fast_ws(s);

        if (s->p < s->end && *s->p == ',') {
            s->p++;
            fast_ws(s);
            continue;
        }

        if (s->p < s->end && *s->p == '}') {
            s->p++;
            ingest_str_lit(out, "}");
            return out->failed ? FAST_ERROR : FAST_OK;
        }

        return FAST_NO;
    }
}


/* true, false or null, copied as they are */

static int
fast_literal(ingest_fast_scan_t *s, ingest_str_t *out, const char *lit,
    size_t len)
{
    if ((size_t) (s->end - s->p) < len || memcmp(s->p, lit, len) != 0) {
        return FAST_NO;
    }

    s->p += len;
    ingest_str_add(out, lit, len);

    return out->failed ? FAST_ERROR : FAST_OK;
}


static int
fast_value(ingest_fast_scan_t *s, ingest_str_t *out, int depth)
{
    int            rc, n;
    size_t         mark;
    const char    *raw;
    ingest_str_t  *arena;

    if (depth > FAST_DEPTH) {
        return FAST_NO;
    }

    fast_ws(s);

    if (s->p >= s->end) {
        return FAST_NO;
    }

    switch (*s->p) {

    case '{':
        return fast_object(s, out, depth);

    case '[':
        s->p++;
        n = 0;
        ingest_str_lit(out, "[");
        fast_ws(s);

        if (s->p < s->end && *s->p == ']') {
            s->p++;
            ingest_str_lit(out, "]");
            return out->failed ? FAST_ERROR : FAST_OK;
        }

        for ( ;; ) {
            if (n++ > 0) {
                ingest_str_lit(out, ",");
            }

            rc = fast_value(s, out, depth + 1);
            if (rc != FAST_OK) {
                return rc;
            }

            fast_ws(s);

            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }

            if (s->p < s->end && *s->p == ']') {
                s->p++;
                ingest_str_lit(out, "]");
                return out->failed ? FAST_ERROR : FAST_OK;
            }

            return FAST_NO;
        }

    case '"':
        arena = &s->f->arena;
        mark = arena->len;
        raw = s->p;

        rc = fast_string(s, arena);
        if (rc != FAST_OK) {
            return rc;
        }

        fast_add_token(out, raw, s->p - raw, arena->data + mark,
                       arena->len - mark);
        arena->len = mark;

        return out->failed ? FAST_ERROR : FAST_OK;

    case 't':
        return fast_literal(s, out, "true", 4);

    case 'f':
        return fast_literal(s, out, "false", 5);

    case 'n':
        return fast_literal(s, out, "null", 4);

    default:
        return fast_number(s, out);
    }
}


static void
fast_initial_init(void)
{
    int       i;
    uint32_t  h, j;

    for (i = 0; fast_initial_keys[i].name; i++) {
        h = ingest_hash(fast_initial_keys[i].name, fast_initial_keys[i].len);

        for (j = h % FAST_INITIAL_SLOTS; fast_initial_slot[j];
             j = (j + 1) % FAST_INITIAL_SLOTS)
        {
            /* void */
        }

        fast_initial_slot[j] = (uint8_t) (i + 1);
        fast_initial_hash[i] = h;
    }
}


/* hash: ingest_hash() of the key */

static int
fast_kind(const char *key, size_t len, uint32_t hash, int *initial)
{
    int       i;
    uint32_t  j;

    *initial = -1;

    if (len > 1 && key[0] == '$') {
        switch (len) {

        case 4:
            if (memcmp(key, "$set", 4) == 0) {
                return FAST_K_SET;
            }
            break;

        case 3:
            if (memcmp(key, "$ip", 3) == 0) {
                return FAST_K_IP;
            }
            break;

        case 6:
            if (memcmp(key, "$unset", 6) == 0) {
                return FAST_K_UNSET;
            }
            break;

        case 8:
            if (memcmp(key, "$sent_at", 8) == 0) {
                return FAST_K_SENT_AT;
            }

            if (memcmp(key, "$group_", 7) == 0
                && key[7] >= '0' && key[7] <= '4')
            {
                return FAST_K_GROUP;
            }
            break;

        case 9:
            if (memcmp(key, "$set_once", 9) == 0) {
                return FAST_K_SET_ONCE;
            }
            break;

        case 15:
            if (memcmp(key, "$elements_chain", 15) == 0) {
                return FAST_K_CHAIN;
            }
            break;

        case 23:
            if (memcmp(key, "$process_person_profile", 23) == 0) {
                return FAST_K_PPP;
            }
            break;
        }
    }

    if (len > 20) {
        return FAST_K_OTHER;
    }

    (void) pthread_once(&fast_initial_once, fast_initial_init);

    for (j = hash % FAST_INITIAL_SLOTS; fast_initial_slot[j];
         j = (j + 1) % FAST_INITIAL_SLOTS)
    {
        i = fast_initial_slot[j] - 1;

        if (fast_initial_hash[i] == hash && fast_initial_keys[i].len == len
            && memcmp(fast_initial_keys[i].name, key, len) == 0)
        {
            *initial = i;
            break;
        }
    }

    return FAST_K_OTHER;
}


/* one member of properties (list FAST_PROPS), $set or $set_once */

static int
fast_member(ingest_fast_scan_t *s, int list, size_t key, size_t key_len,
    uint32_t hash, const char *raw, size_t raw_len)
{
    int                    rc, kind, initial;
    size_t                 mark, vmark;
    const char            *k, *v;
    ingest_fast_t         *f;
    ingest_str_t          *text;
    ingest_fast_member_t  *m, *a;

    f = s->f;
    text = &f->text;
    k = f->arena.data + key;

    kind = FAST_K_OTHER;
    initial = -1;

    if (list == FAST_PROPS) {
        kind = fast_kind(k, key_len, hash, &initial);

        /*
         * rules of their own: $os_name aliasing, $elements, sent_at,
         * $groups (groups.c adds $group_N to the DOM's properties)
         */
        if ((initial >= 0 && strcmp(fast_initial_keys[initial].name, "$os_name") == 0)
            || (key_len == 9 && memcmp(k, "$elements", 9) == 0)
            || (key_len == 7 && memcmp(k, "$groups", 7) == 0)
            || (key_len == 15 && memcmp(k, "$ignore_sent_at", 15) == 0))
        {
            return FAST_NO;
        }
    }

    if (f->nmem == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 32;
        a = realloc(f->mem, f->cap * sizeof(ingest_fast_member_t));
        if (a == NULL) {
            return FAST_ERROR;
        }

        f->mem = a;
    }

    m = &f->mem[f->nmem];
    m->key = key;
    m->key_len = key_len;
    m->list = list;
    m->kind = kind;
    m->initial = initial;

    fast_ws(s);

    if (kind == FAST_K_SET || kind == FAST_K_SET_ONCE) {
        /* the members go to their own list; the text is rebuilt */
        if (s->p >= s->end || *s->p != '{') {
            return FAST_NO;
        }

        if (kind == FAST_K_SET) {
            f->set_member = f->nmem;

        } else {
            f->once_member = f->nmem;
        }

        m->text = m->text_len = m->val = 0;
        f->nmem++;

        return fast_members(s, kind == FAST_K_SET ? FAST_SET : FAST_ONCE);
    }

    mark = text->len;
    fast_add_token(text, raw, raw_len, k, key_len);
    ingest_str_lit(text, ":");
    vmark = text->len;

    rc = fast_value(s, text, 1);
    if (rc != FAST_OK) {
        return rc;
    }

    /* the value may have grown (moved) the arena */
    k = f->arena.data + key;

    m = &f->mem[f->nmem];
    m->text = mark;
    m->text_len = text->len - mark;
    m->val = vmark;
    v = text->data + vmark;

    switch (kind) {

    case FAST_K_IP:
        /* a non-string $ip has JavaScript truthiness rules: DOM path */
        if (*v != '"') {
            return FAST_NO;
        }

        f->ip_member = f->nmem;
        f->ip_truthy = text->len - vmark > 2;
        break;

    case FAST_K_SENT_AT:
        f->sent_at_member = f->nmem;
        break;

    case FAST_K_PPP:
        if (text->len - vmark == 5 && memcmp(v, "false", 5) == 0) {
            f->ppp_false = 1;

        } else if (text->len - vmark != 4 || memcmp(v, "true", 4) != 0) {
            /* the warning of a non-boolean is the DOM path's */
            return FAST_NO;
        }

        f->ppp_member = f->nmem;
        break;

    case FAST_K_CHAIN:
        if (*v != '"') {
            return FAST_NO;
        }

        /* decoded again: the row wants the value, not its JSON */
        {
            ingest_fast_scan_t  vs;

            vs.p = v;
            vs.end = text->data + text->len;
            vs.f = f;

            f->chain = f->arena.len;
            rc = fast_string(&vs, &f->arena);
            if (rc != FAST_OK) {
                return rc;
            }

            f->chain_len = f->arena.len - f->chain;
            ingest_str_add(&f->arena, "", 1);
        }

        break;

    default:
        if (key_len == 11 && memcmp(k, "$session_id", 11) == 0
            && text->len - vmark == 38
            && ingest_uuid_valid(v + 1, 36))
        {
            /* §1.3 step 3: a UUID session id is lower-cased */
            for (mark = vmark + 1; mark < vmark + 37; mark++) {
                if (text->data[mark] >= 'A' && text->data[mark] <= 'F') {
                    text->data[mark] += 'a' - 'A';
                }
            }
        }

        break;
    }

    f->nmem++;

    return text->failed ? FAST_ERROR : FAST_OK;
}


/* the members of an object into a list; s->p is at '{' */

static int
fast_members(ingest_fast_scan_t *s, int list)
{
    int          rc, n, i;
    size_t       key, key_len, raw_len;
    uint32_t     h, hashes[FAST_KEYS];
    const char  *raw;

    s->p++;
    n = 0;
    fast_ws(s);

    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return FAST_OK;
    }

    for ( ;; ) {
        if (n == FAST_KEYS) {
            return FAST_NO;
        }

        key = s->f->arena.len;
        raw = s->p;

        rc = fast_string(s, &s->f->arena);
        if (rc != FAST_OK) {
            return rc;
        }

        key_len = s->f->arena.len - key;
        raw_len = s->p - raw;
        ingest_str_add(&s->f->arena, "", 1);

        h = ingest_hash(s->f->arena.data + key, key_len);

        for (i = 0; i < n; i++) {
            if (hashes[i] == h) {
                return FAST_NO;
            }
        }

        hashes[n++] = h;

        fast_ws(s);

        if (s->p >= s->end || *s->p != ':') {
            return FAST_NO;
        }

        s->p++;

        rc = fast_member(s, list, key, key_len, h, raw, raw_len);
        if (rc != FAST_OK) {
            return rc;
        }

        fast_ws(s);

        if (s->p < s->end && *s->p == ',') {
            s->p++;
            fast_ws(s);
            continue;
        }

        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return FAST_OK;
        }

        return FAST_NO;
    }
}


/*
 * a switch on len with constant-size memcmp() (inlined, no call per
 * key) was measured in session 7: memcmp was 5% of bench-worker-build's
 * samples, yet 10 interleaved runs were not measurably faster (medians
 * 3.4-5.8 us/event either way on a busy machine); kept out
 */

static int
fast_field(const char *key, size_t len)
{
    int  i;

    for (i = 0; fast_fields[i].name; i++) {
        if (fast_fields[i].len == len
            && memcmp(fast_fields[i].name, key, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* capture's object: string fields only, and "data" */

static int
fast_outer(ingest_fast_scan_t *s, size_t *fields)
{
    int             rc, i, seen_data;
    size_t          key, mark;
    ingest_fast_t  *f;

    f = s->f;
    seen_data = 0;

    fast_ws(s);

    if (s->p >= s->end || *s->p != '{') {
        return FAST_NO;
    }

    s->p++;
    fast_ws(s);

    for ( ;; ) {
        key = f->arena.len;

        rc = fast_string(s, &f->arena);
        if (rc != FAST_OK) {
            return rc;
        }

        i = fast_field(f->arena.data + key, f->arena.len - key);

        if (f->arena.len - key == 4
            && memcmp(f->arena.data + key, "data", 4) == 0)
        {
            i = -2;

        } else if (f->arena.len - key == 10
                   && memcmp(f->arena.data + key, "session_id", 10) == 0)
        {
            i = -3;
        }

        f->arena.len = key;

        /* another capture field (team_id, is_cookieless_mode, ...) */
        if (i == -1) {
            return FAST_NO;
        }

        fast_ws(s);

        if (s->p >= s->end || *s->p != ':') {
            return FAST_NO;
        }

        s->p++;
        fast_ws(s);

        if (i == -2) {
            if (seen_data) {
                return FAST_NO;
            }

            seen_data = 1;
            rc = fast_string(s, &f->data);

        } else if (i == -3) {
            mark = f->arena.len;
            rc = fast_string(s, &f->arena);
            f->arena.len = mark;

        } else {
            if (fields[i] != (size_t) -1) {
                return FAST_NO;
            }

            fields[i] = f->arena.len;
            rc = fast_string(s, &f->arena);
            ingest_str_add(&f->arena, "", 1);
        }

        if (rc != FAST_OK) {
            return rc;
        }

        fast_ws(s);

        if (s->p < s->end && *s->p == ',') {
            s->p++;
            fast_ws(s);
            continue;
        }

        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }

        return FAST_NO;
    }

    fast_ws(s);

    return (s->p == s->end && seen_data) ? FAST_OK : FAST_NO;
}


/* the SDK's event object inside "data"; outer fields already won */

static int
fast_data(ingest_fast_scan_t *s, size_t *fields)
{
    int             rc, i, seen_props;
    size_t          key, key_len, mark;
    const char     *k;
    ingest_fast_t  *f;
    ingest_str_t    scratch;

    f = s->f;
    seen_props = 0;
    memset(&scratch, 0, sizeof(ingest_str_t));

    fast_ws(s);

    if (s->p >= s->end || *s->p != '{') {
        return FAST_NO;
    }

    s->p++;
    fast_ws(s);

    if (s->p < s->end && *s->p == '}') {
        return FAST_NO;
    }

    for ( ;; ) {
        key = f->arena.len;

        rc = fast_string(s, &f->arena);
        if (rc != FAST_OK) {
            goto done;
        }

        key_len = f->arena.len - key;
        k = f->arena.data + key;
        i = fast_field(k, key_len);

        rc = FAST_NO;

        /* fields that change the event: the DOM path's business */
        if ((key_len == 4 && memcmp(k, "$set", 4) == 0)
            || (key_len == 9 && memcmp(k, "$set_once", 9) == 0)
            || (key_len == 6 && memcmp(k, "offset", 6) == 0)
            || (key_len == 7 && memcmp(k, "team_id", 7) == 0)
            || (key_len == 18 && memcmp(k, "is_cookieless_mode", 18) == 0)
            || (key_len == 20
                && memcmp(k, "historical_migration", 20) == 0))
        {
            goto done;
        }

        f->arena.len = key;
        fast_ws(s);

        if (s->p >= s->end || *s->p != ':') {
            goto done;
        }

        s->p++;
        fast_ws(s);

        if (key_len == 10 && memcmp(k, "properties", 10) == 0) {
            if (seen_props) {
                goto done;
            }

            seen_props = 1;

            if (s->p < s->end && *s->p == '{') {
                rc = fast_members(s, FAST_PROPS);

            } else if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
                s->p += 4;
                rc = FAST_OK;

            } else {
                goto done;
            }

        } else if (i >= 0 && !fields[i + FAST_F_N]) {
            /* a repeated key: the last one wins in jansson */
            if (fields[i + 2 * FAST_F_N]) {
                goto done;
            }

            /* a field capture did not set: it must be a string here */
            fields[i + 2 * FAST_F_N] = 1;
            fields[i] = f->arena.len;
            rc = fast_string(s, &f->arena);
            ingest_str_add(&f->arena, "", 1);

        } else {
            /* ignored, but it must be valid JSON all the same */
            scratch.len = 0;
            mark = f->arena.len;
            rc = fast_value(s, &scratch, 1);
            f->arena.len = mark;
        }

        if (rc != FAST_OK) {
            goto done;
        }

        rc = FAST_NO;
        fast_ws(s);

        if (s->p < s->end && *s->p == ',') {
            s->p++;
            fast_ws(s);
            continue;
        }

        if (s->p < s->end && *s->p == '}') {
            s->p++;
            fast_ws(s);
            rc = (s->p == s->end) ? FAST_OK : FAST_NO;
        }

        goto done;
    }

done:

    free(scratch.data);

    return rc;
}


static int
fast_special_event(const char *name)
{
    const char  **e;

    for (e = fast_special; *e; e++) {
        if (strcmp(*e, name) == 0) {
            return 1;
        }
    }

    return 0;
}


int
ingest_fast_parse(ingest_message_t *m, const char *value, size_t len)
{
    int                  rc, i;
    size_t               fields[3 * FAST_F_N];
    const char          *a;
    ingest_fast_t       *f;
    ingest_fast_scan_t   s;

    f = fast_alloc(len);
    if (f == NULL) {
        return -1;
    }

    f->ip_member = f->sent_at_member = f->set_member = -1;
    f->once_member = f->ppp_member = -1;
    f->chain = (size_t) -1;

    /* offsets, then "set by capture", then "set by data" */
    for (i = 0; i < FAST_F_N; i++) {
        fields[i] = (size_t) -1;
        fields[i + FAST_F_N] = 0;
        fields[i + 2 * FAST_F_N] = 0;
    }

    /* one allocation each for a typical message: decoded <= raw */
    if (fast_buf(&f->arena, len + 64) != 0
        || fast_buf(&f->data, len + 1) != 0
        || fast_buf(&f->text, len + 256) != 0)
    {
        ingest_fast_free(f);
        return -1;
    }

    s.p = value;
    s.end = value + len;
    s.f = f;

    rc = fast_outer(&s, fields);

    if (rc == FAST_OK) {
        /* outer fields are final: data must not override them */
        for (i = 0; i < FAST_F_N; i++) {
            fields[i + FAST_F_N] = fields[i] != (size_t) -1;
        }

        s.p = f->data.data;
        s.end = f->data.data + f->data.len;

        rc = (s.p == NULL) ? FAST_NO : fast_data(&s, fields);
    }

    if (rc == FAST_OK
        && (fields[FAST_F_UUID] == (size_t) -1
            || fields[FAST_F_DISTINCT_ID] == (size_t) -1
            || fields[FAST_F_EVENT] == (size_t) -1))
    {
        rc = FAST_NO;
    }

    if (rc != FAST_OK || f->arena.failed || f->text.failed) {
        ingest_fast_free(f);
        return (rc == FAST_ERROR || rc == FAST_OK) ? -1 : 0;
    }

    a = f->arena.data;

    memset(m, 0, sizeof(ingest_message_t));

    m->uuid = a + fields[FAST_F_UUID];
    m->distinct_id = a + fields[FAST_F_DISTINCT_ID];
    m->event = a + fields[FAST_F_EVENT];

    /* strings with NUL bytes never get here (\u0000 is FAST_NO) */
    if (!ingest_uuid_valid(m->uuid, strlen(m->uuid))
        || ingest_utf16_prefix(m->event, strlen(m->event),
                               INGEST_EVENT_NAME_MAX) != strlen(m->event)
        || fast_special_event(m->event))
    {
        ingest_fast_free(f);
        memset(m, 0, sizeof(ingest_message_t));
        return 0;
    }

    m->token = fields[FAST_F_TOKEN] != (size_t) -1
               ? a + fields[FAST_F_TOKEN] : NULL;
    m->ip = fields[FAST_F_IP] != (size_t) -1 ? a + fields[FAST_F_IP] : NULL;
    m->now = fields[FAST_F_NOW] != (size_t) -1 ? a + fields[FAST_F_NOW]
                                               : NULL;
    m->sent_at = fields[FAST_F_SENT_AT] != (size_t) -1
                 ? a + fields[FAST_F_SENT_AT] : NULL;

    f->ip = fields[FAST_F_IP];
    f->sent_at = fields[FAST_F_SENT_AT];

    /* the outer timestamp is capture's (§2.2) */
    m->outer_timestamp = fields[FAST_F_TIMESTAMP + FAST_F_N] != 0;

    /*
     * the arena's text, no jansson string: building one cost two
     * allocations and two frees per event for a value only read as text
     * (bench-worker-build 22.9k -> 21.6k instructions/event, callgrind;
     * bench-worker (a) interleaved A/B, 3 rounds: 123.9k 98.4k 92.4k
     * against 96.3k 87.3k 92.2k events/s, main thread 4.4 5.9 6.3
     * against 5.7 6.7 6.7 us/event; session 10)
     */
    m->timestamp_str = fields[FAST_F_TIMESTAMP] != (size_t) -1
                       ? a + fields[FAST_F_TIMESTAMP] : NULL;

    m->fast = f;
    m->process_person = 1;

    return 1;
}


/* "utm_source" -> "$initial_utm_source", "$browser" -> "$initial_browser" */

static void
fast_initial_name(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "$initial_%s", key[0] == '$' ? key + 1 : key);
}


static int
fast_in_list(const ingest_fast_t *f, int list, const char *key, size_t len)
{
    int  i;

    for (i = 0; i < f->nmem; i++) {
        if (f->mem[i].list == list && f->mem[i].key_len == len
            && memcmp(f->arena.data + f->mem[i].key, key, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
fast_add_member_text(const ingest_fast_t *f, int i, ingest_str_t *out,
    int *first)
{
    if (!*first) {
        ingest_str_lit(out, ",");
    }

    *first = 0;
    ingest_str_add(out, f->text.data + f->mem[i].text, f->mem[i].text_len);
}


/*
 * §1.3 step 4 as ingest_message_initial() does it: the new keys in
 * properties order, then the event's own members
 */

static int
fast_build_ops(ingest_fast_t *f, int which, json_t *obj)
{
    int            i, first, n, list, member;
    char           name[64];
    size_t         vlen;
    json_t        *v;
    const char    *key, *val;
    ingest_str_t  *out;

    list = which;
    out = (which == FAST_SET) ? &f->set : &f->once;
    member = (which == FAST_SET) ? f->set_member : f->once_member;
    first = 1;
    n = 0;

    ingest_str_lit(out, "{");

    for (i = 0; i < f->nmem; i++) {
        if (f->mem[i].list != FAST_PROPS || f->mem[i].initial < 0) {
            continue;
        }

        key = fast_initial_keys[f->mem[i].initial].name;

        val = f->text.data + f->mem[i].val;
        vlen = f->mem[i].text_len - (f->mem[i].val - f->mem[i].text);

        if (which == FAST_SET) {
            if (fast_in_list(f, list, key, strlen(key))) {
                continue;
            }

            fast_add_member_text(f, i, out, &first);

            v = fast_value_json(val, vlen);
            if (v == NULL || json_object_set_new_nocheck(obj, key, v) != 0) {
                return -1;
            }

        } else {
            fast_initial_name(key, name, sizeof(name));

            if (fast_in_list(f, list, name, strlen(name))) {
                continue;
            }

            if (!first) {
                ingest_str_lit(out, ",");
            }

            first = 0;
            ingest_str_add_json(out, name, strlen(name));
            ingest_str_lit(out, ":");
            ingest_str_add(out, val, vlen);

            v = fast_value_json(val, vlen);
            if (v == NULL || json_object_set_new_nocheck(obj, name, v) != 0) {
                return -1;
            }
        }

        n++;
    }

    for (i = 0; i < f->nmem; i++) {
        if (f->mem[i].list != list) {
            continue;
        }

        fast_add_member_text(f, i, out, &first);

        v = fast_value_json(f->text.data + f->mem[i].val,
                            f->mem[i].text_len
                            - (f->mem[i].val - f->mem[i].text));
        if (v == NULL
            || json_object_set_new_nocheck(obj, f->arena.data + f->mem[i].key,
                                           v)
               != 0)
        {
            return -1;
        }
    }

    ingest_str_lit(out, "}");

    if (which == FAST_SET) {
        f->new_set = n;

    } else {
        f->new_once = n;
    }

    /* nothing new and no member of its own: the key stays absent */
    if (n == 0 && member < 0) {
        out->len = 0;
    }

    return out->failed ? -1 : 0;
}


int
ingest_fast_prepare(ingest_message_t *m, int anonymize_ips,
    int force_personless)
{
    int             i;
    json_t         *ops, *v, *set, *once;
    ingest_fast_t  *f;
    json_error_t    err;

    f = m->fast;

    f->anonymize = anonymize_ips != 0;
    f->forced = force_personless != 0;
    f->personless = f->ppp_false || f->forced;

    m->route = INGEST_ROUTE_EVENT;
    m->process_person = !f->personless;

    json_decref(m->properties);
    m->properties = NULL;

    /*
     * persons are all that read it, and a personless event has none:
     * no empty object (two allocations and their frees per event, 2%
     * of bench-worker-build's instructions); json_object_get() of NULL
     * answers as one of {} does
     */
    if (f->personless) {
        return 0;
    }

    ops = json_object();
    if (ops == NULL) {
        return -1;
    }

    m->properties = ops;

    /*
     * persons read $set, $set_once and $unset only (ingest_props_ops):
     * those come back as values, from the very text the row carries
     */

    set = json_object();
    once = json_object();

    if (set == NULL || once == NULL
        || fast_build_ops(f, FAST_SET, set) != 0
        || fast_build_ops(f, FAST_ONCE, once) != 0
        || (f->set.len && json_object_set(ops, "$set", set) != 0)
        || (f->once.len && json_object_set(ops, "$set_once", once) != 0))
    {
        json_decref(set);
        json_decref(once);
        return -1;
    }

    json_decref(set);
    json_decref(once);

    for (i = 0; i < f->nmem; i++) {
        if (f->mem[i].list == FAST_PROPS && f->mem[i].kind == FAST_K_UNSET) {
            v = json_loadb(f->text.data + f->mem[i].val,
                           f->mem[i].text_len
                           - (f->mem[i].val - f->mem[i].text),
                           JSON_DECODE_ANY, &err);
            if (v == NULL || json_object_set_new(ops, "$unset", v) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


/* a value of the canonical text; scalars without the parser */

static json_t *
fast_value_json(const char *v, size_t len)
{
    char          buf[24], *end;
    size_t        i;
    long long     ll;
    json_error_t  err;

    if (len >= 2 && v[0] == '"' && memchr(v, '\\', len) == NULL) {
        /* canonical: valid UTF-8, no NUL, nothing escaped */
        return json_stringn_nocheck(v + 1, len - 2);
    }

    if (len == 4 && memcmp(v, "true", 4) == 0) {
        return json_true();
    }

    if (len == 5 && memcmp(v, "false", 5) == 0) {
        return json_false();
    }

    if (len == 4 && memcmp(v, "null", 4) == 0) {
        return json_null();
    }

    if (len > 0 && len < sizeof(buf) && (v[0] == '-' || (v[0] >= '0'
                                                         && v[0] <= '9')))
    {
        for (i = 0; i < len && v[i] != '.' && v[i] != 'e'; i++) {
            /* void */
        }

        if (i == len) {
            memcpy(buf, v, len);
            buf[len] = '\0';
            ll = strtoll(buf, &end, 10);

            if (*end == '\0') {
                return json_integer(ll);
            }
        }
    }

    return json_loadb(v, len, JSON_DECODE_ANY, &err);
}


/*
 * The properties as the DOM path leaves them (normalize, initial,
 * prepare, then the row builder): members in place, replaced values in
 * place, new keys appended in the order those steps add them
 */

int
ingest_fast_properties(const ingest_fast_t *f, int groups, ingest_str_t *out)
{
    int                          i, first, ip;
    const ingest_fast_member_t  *m;

    first = 1;
    ip = f->ip != (size_t) -1 && f->arena.data[f->ip] != '\0';

    ingest_str_lit(out, "{");

    for (i = 0; i < f->nmem; i++) {
        m = &f->mem[i];

        if (m->list != FAST_PROPS) {
            continue;
        }

        switch (m->kind) {

        case FAST_K_SET:
        case FAST_K_SET_ONCE:
            if (f->personless) {
                continue;
            }

            if (!first) {
                ingest_str_lit(out, ",");
            }

            first = 0;
            ingest_str_add_json(out, m->kind == FAST_K_SET ? "$set"
                                                           : "$set_once",
                                m->kind == FAST_K_SET ? 4 : 9);
            ingest_str_lit(out, ":");

            if (m->kind == FAST_K_SET) {
                ingest_str_add(out, f->set.data, f->set.len);

            } else {
                ingest_str_add(out, f->once.data, f->once.len);
            }

            continue;

        case FAST_K_UNSET:
            if (f->personless) {
                continue;
            }
            break;

        case FAST_K_IP:
            if (f->anonymize) {
                continue;
            }

            if (!f->ip_truthy && ip) {
                if (!first) {
                    ingest_str_lit(out, ",");
                }

                first = 0;
                ingest_str_lit(out, "\"$ip\":");
                ingest_str_add_json(out, f->arena.data + f->ip,
                                    strlen(f->arena.data + f->ip));
                continue;
            }
            break;

        case FAST_K_SENT_AT:
            if (f->sent_at != (size_t) -1) {
                if (!first) {
                    ingest_str_lit(out, ",");
                }

                first = 0;
                ingest_str_lit(out, "\"$sent_at\":");
                ingest_str_add_json(out, f->arena.data + f->sent_at,
                                    strlen(f->arena.data + f->sent_at));
                continue;
            }
            break;

        case FAST_K_PPP:
            if (!f->personless) {
                continue;
            }

            if (!first) {
                ingest_str_lit(out, ",");
            }

            first = 0;
            ingest_str_lit(out, "\"$process_person_profile\":false");
            continue;

        case FAST_K_GROUP:
            if (!groups) {
                continue;
            }
            break;

        case FAST_K_CHAIN:
            continue;

        default:
            break;
        }

        fast_add_member_text(f, i, out, &first);
    }

    if (f->ip_member < 0 && ip && !f->anonymize) {
        if (!first) {
            ingest_str_lit(out, ",");
        }

        first = 0;
        ingest_str_lit(out, "\"$ip\":");
        ingest_str_add_json(out, f->arena.data + f->ip,
                            strlen(f->arena.data + f->ip));
    }

    if (f->sent_at_member < 0 && f->sent_at != (size_t) -1) {
        if (!first) {
            ingest_str_lit(out, ",");
        }

        first = 0;
        ingest_str_lit(out, "\"$sent_at\":");
        ingest_str_add_json(out, f->arena.data + f->sent_at,
                            strlen(f->arena.data + f->sent_at));
    }

    if (!f->personless && f->set_member < 0 && f->set.len) {
        if (!first) {
            ingest_str_lit(out, ",");
        }

        first = 0;
        ingest_str_lit(out, "\"$set\":");
        ingest_str_add(out, f->set.data, f->set.len);
    }

    if (!f->personless && f->once_member < 0 && f->once.len) {
        if (!first) {
            ingest_str_lit(out, ",");
        }

        first = 0;
        ingest_str_lit(out, "\"$set_once\":");
        ingest_str_add(out, f->once.data, f->once.len);
    }

    if (f->personless && f->ppp_member < 0) {
        if (!first) {
            ingest_str_lit(out, ",");
        }

        ingest_str_lit(out, "\"$process_person_profile\":false");
    }

    ingest_str_lit(out, "}");

    return out->failed ? -1 : 0;
}


int
ingest_fast_personless(const ingest_fast_t *f)
{
    /* forced only ever adds to it (ingest_fast_prepare) */
    return f->ppp_false;
}


const char *
ingest_fast_elements_chain(const ingest_fast_t *f, size_t *len)
{
    if (f->chain == (size_t) -1) {
        *len = 0;
        return "";
    }

    *len = f->chain_len;

    return f->arena.data + f->chain;
}


static __thread ingest_fast_t  **fast_pool;
static __thread size_t           fast_npool;
static __thread size_t           fast_pool_cap;
static __thread size_t           fast_pool_bytes;


/* a zeroed parse state, with a freed one's buffers emptied when any */

static ingest_fast_t *
fast_alloc(size_t len)
{
    ingest_fast_t  *f;
    ingest_str_t    b[5];
    ingest_fast_member_t  *mem;
    int             cap;

    if (fast_npool == 0) {
        return calloc(1, sizeof(ingest_fast_t));
    }

    f = fast_pool[--fast_npool];
    fast_pool_bytes -= fast_kept(f);

    b[0] = f->arena;
    b[1] = f->text;
    b[2] = f->data;
    b[3] = f->set;
    b[4] = f->once;
    mem = f->mem;
    cap = f->cap;

    memset(f, 0, sizeof(ingest_fast_t));

    f->arena.data = b[0].data;
    f->arena.size = b[0].size;
    f->text.data = b[1].data;
    f->text.size = b[1].size;
    f->data.data = b[2].data;
    f->data.size = b[2].size;
    f->set.data = b[3].data;
    f->set.size = b[3].size;
    f->once.data = b[4].data;
    f->once.size = b[4].size;
    f->mem = mem;
    f->cap = cap;

    return f;
}


/* an empty buffer of at least size bytes */

static int
fast_buf(ingest_str_t *b, size_t size)
{
    b->len = 0;
    b->failed = 0;

    if (b->data && b->size >= size) {
        b->data[0] = '\0';
        return 0;
    }

    free(b->data);
    b->size = 0;

    b->data = malloc(size);
    if (b->data == NULL) {
        return -1;
    }

    b->size = size;
    b->data[0] = '\0';

    return 0;
}


/* the bytes a pooled parse state keeps */

static size_t
fast_kept(const ingest_fast_t *f)
{
    return sizeof(ingest_fast_t) + f->arena.size + f->text.size
           + f->data.size + f->set.size + f->once.size
           + f->cap * sizeof(ingest_fast_member_t);
}


void
ingest_fast_free(ingest_fast_t *f)
{
    size_t           kept, cap;
    ingest_fast_t  **pool;

    if (f == NULL) {
        return;
    }

    kept = fast_kept(f);

    if (fast_pool_bytes + kept <= FAST_POOL_BYTES
        && f->arena.size <= FAST_POOL_BUF && f->text.size <= FAST_POOL_BUF
        && f->data.size <= FAST_POOL_BUF && f->set.size <= FAST_POOL_BUF
        && f->once.size <= FAST_POOL_BUF
        && f->cap * sizeof(ingest_fast_member_t) <= FAST_POOL_BUF)
    {
        if (fast_npool == fast_pool_cap) {
            cap = fast_pool_cap ? 2 * fast_pool_cap : 1024;
            pool = realloc(fast_pool, cap * sizeof(ingest_fast_t *));

            if (pool != NULL) {
                fast_pool = pool;
                fast_pool_cap = cap;
            }
        }

        if (fast_npool < fast_pool_cap) {
            fast_pool[fast_npool++] = f;
            fast_pool_bytes += kept;
            return;
        }
    }

    free(f->arena.data);
    free(f->text.data);
    free(f->data.data);
    free(f->set.data);
    free(f->once.data);
    free(f->mem);
    free(f);
}
