/*
 * Copyright (C) edgehog
 */


#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* memmem() */
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "decide_request.h"
#include "decide_json_fast.h"


static int decide_body_form(const decide_body_opts_t *opts);
static int decide_is_gzip(const unsigned char *p, size_t len);
static decide_decode_e decide_gunzip(const unsigned char *p, size_t len,
    size_t max, unsigned char **out, size_t *outlen, char *err,
    size_t errlen);
static json_t *decide_json_parse(const unsigned char *p, size_t len);
static unsigned char *decide_json_denan(const unsigned char *p, size_t len,
    size_t *outlen);
static json_t *decide_base64_json(const unsigned char *p, size_t len);
static size_t decide_percent_decode(unsigned char *dst,
    const unsigned char *src, size_t len);
static void decide_fields_slots(json_t **slot, decide_fields_t *f);
static const char *decide_field_string(json_t *a, json_t *b, json_t *c);
static json_t *decide_field_object(json_t *a, json_t *b);
static int decide_field_true(json_t *v);
static void decide_format_number(json_t *v, char *buf, size_t size);
static size_t decide_utf8_prefix(const char *s, size_t len, size_t max);


decide_compression_e
decide_compression_parse(const char *p, size_t len)
{
    if (len == 0) {
        return DECIDE_COMPRESSION_NONE;
    }

    if ((len == 4 && strncasecmp(p, "gzip", 4) == 0)
        || (len == 7 && strncasecmp(p, "gzip-js", 7) == 0))
    {
        return DECIDE_COMPRESSION_GZIP;
    }

    if (len == 6 && strncasecmp(p, "base64", 6) == 0) {
        return DECIDE_COMPRESSION_BASE64;
    }

    return DECIDE_COMPRESSION_UNSUPPORTED;
}


/* 0: JSON, 1: form data, -1: an unsupported content type */
static int
decide_body_form(const decide_body_opts_t *opts)
{
    size_t       n, ctlen;
    const char  *ct;

    /* the media type is the part before ";", trimmed */
    ct = opts->content_type;
    ctlen = ct ? opts->content_type_len : 0;

    for (n = 0; n < ctlen && ct[n] != ';'; n++) { /* void */ }
    ctlen = n;

    while (ctlen && (ct[ctlen - 1] == ' ' || ct[ctlen - 1] == '\t')) {
        ctlen--;
    }

    while (ctlen && (*ct == ' ' || *ct == '\t')) {
        ct++;
        ctlen--;
    }

    if (ctlen == 0
        || (ctlen == 16 && strncasecmp(ct, "application/json", 16) == 0)
        || (ctlen == 10 && strncasecmp(ct, "text/plain", 10) == 0))
    {
        return 0;
    }

    if (ctlen == 33
        && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
    {
        return 1;
    }

    return -1;
}


decide_decode_e
decide_body_decode(const unsigned char *body, size_t len,
    const decide_body_opts_t *opts, json_t **out, char *err, size_t errlen)
{
    int               form;
    size_t            n, plain_len;
    json_t           *v;
    unsigned char    *buf, *plain, *p, *q;
    decide_decode_e   rc;

    *out = NULL;

    if (opts->compression == DECIDE_COMPRESSION_UNSUPPORTED) {
        snprintf(err, errlen, "unsupported compression");
        return DECIDE_DECODE_BAD;
    }

    form = decide_body_form(opts);

    if (form == -1) {
        snprintf(err, errlen, "unsupported content type");
        return DECIDE_DECODE_BAD;
    }

    if (form) {
        if (opts->compression == DECIDE_COMPRESSION_GZIP) {
            snprintf(err, errlen, "gzip is not supported for form data");
            return DECIDE_DECODE_BAD;
        }

        buf = malloc(len + 1);
        if (buf == NULL) {
            snprintf(err, errlen, "out of memory");
            return DECIDE_DECODE_TOO_LARGE;
        }

        n = decide_percent_decode(buf, body, len);
        p = buf;

        if (n >= 5 && memcmp(buf, "data=", 5) == 0) {
            /* up to the next "=" (dropped padding) or "&" */
            p = buf + 5;
            for (q = p; q < buf + n && *q != '=' && *q != '&'; q++) {
                /* void */
            }

            n = q - p;
        }

        v = decide_base64_json(p, n);

        if (v == NULL) {
            /* lenient: a form body may carry plain JSON */
            v = decide_json_parse(p, n);
        }

        free(buf);

        if (v == NULL) {
            snprintf(err, errlen, "invalid form data");
            return DECIDE_DECODE_BAD;
        }

        *out = v;
        return DECIDE_DECODE_OK;
    }

    plain = NULL;

    if (opts->compression == DECIDE_COMPRESSION_GZIP
        || opts->content_encoding_gzip || decide_is_gzip(body, len))
    {
        rc = decide_gunzip(body, len, opts->max_decompressed, &plain,
                           &plain_len, err, errlen);
        if (rc != DECIDE_DECODE_OK) {
            return rc;
        }

        body = plain;
        len = plain_len;
    }

    v = decide_json_parse(body, len);

    if (v == NULL) {
        v = decide_base64_json(body, len);
    }

    free(plain);

    if (v == NULL) {
        snprintf(err, errlen, "invalid JSON");
        return DECIDE_DECODE_BAD;
    }

    *out = v;

    return DECIDE_DECODE_OK;
}


static int
decide_is_gzip(const unsigned char *p, size_t len)
{
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}


static decide_decode_e
decide_gunzip(const unsigned char *p, size_t len, size_t max,
    unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    int             zrc;
    size_t          size, nsize, used;
    z_stream        zs;
    unsigned char  *buf, *nbuf;

    if (max == 0) {
        max = 4 * 1024 * 1024;
    }

    memset(&zs, 0, sizeof(z_stream));

    /* +32: zlib or gzip header, detected */
    if (inflateInit2(&zs, MAX_WBITS + 32) != Z_OK) {
        snprintf(err, errlen, "inflateInit2 failed");
        return DECIDE_DECODE_BAD;
    }

    size = len * 4 + 1024;
    if (size > max + 1) {
        size = max + 1;
    }

    buf = malloc(size);
    if (buf == NULL) {
        inflateEnd(&zs);
        snprintf(err, errlen, "out of memory");
        return DECIDE_DECODE_TOO_LARGE;
    }

    zs.next_in = (unsigned char *) p;
    zs.avail_in = len;
    zs.next_out = buf;
    zs.avail_out = size;

    for ( ;; ) {
        zrc = inflate(&zs, Z_NO_FLUSH);

        if (zrc == Z_STREAM_END) {
            if (zs.avail_in == 0) {
                break;
            }

            /* concatenated gzip members, as the gunzip filter allows */
            if (inflateReset(&zs) != Z_OK) {
                break;
            }

            continue;
        }

        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            free(buf);
            inflateEnd(&zs);
            snprintf(err, errlen, "invalid gzip data");
            return DECIDE_DECODE_BAD;
        }

        if (zs.avail_out == 0) {
            if (size > max) {
                free(buf);
                inflateEnd(&zs);
                snprintf(err, errlen, "decompressed body too large");
                return DECIDE_DECODE_TOO_LARGE;
            }

            nsize = size * 2 > max + 1 ? max + 1 : size * 2;
            used = zs.next_out - buf;

            nbuf = realloc(buf, nsize);
            if (nbuf == NULL) {
                free(buf);
                inflateEnd(&zs);
                snprintf(err, errlen, "out of memory");
                return DECIDE_DECODE_TOO_LARGE;
            }

            buf = nbuf;
            zs.next_out = buf + used;
            zs.avail_out = nsize - size;
            size = nsize;
            continue;
        }

        if (zs.avail_in == 0) {
            /* Z_BUF_ERROR with no input left: truncated stream */
            free(buf);
            inflateEnd(&zs);
            snprintf(err, errlen, "truncated gzip data");
            return DECIDE_DECODE_BAD;
        }
    }

    if (zs.total_out > max) {
        free(buf);
        inflateEnd(&zs);
        snprintf(err, errlen, "decompressed body too large");
        return DECIDE_DECODE_TOO_LARGE;
    }

    *outlen = size - zs.avail_out;
    *out = buf;
    inflateEnd(&zs);

    return DECIDE_DECODE_OK;
}


static json_t *
decide_json_parse(const unsigned char *p, size_t len)
{
    size_t          n;
    json_t         *v;
    unsigned char  *fixed;

    /* the common SDK shape without jansson's lexer (decide_json_fast.c) */
    v = decide_json_fast(p, len);
    if (v != NULL) {
        return v;
    }

    v = json_loadb((const char *) p, len, JSON_DECODE_ANY, NULL);
    if (v != NULL) {
        return v;
    }

    /* JSON5-tolerant: bare NaN/Infinity/-Infinity become null */
    fixed = decide_json_denan(p, len, &n);
    if (fixed == NULL) {
        return NULL;
    }

    v = json_loadb((const char *) fixed, n, JSON_DECODE_ANY, NULL);
    free(fixed);

    return v;
}


static unsigned char *
decide_json_denan(const unsigned char *p, size_t len, size_t *outlen)
{
    int             in_str, esc, changed;
    size_t          i, o;
    unsigned char  *buf;

    /* "NaN" -> "null" grows by a third at most */
    buf = malloc(len * 2 + 1);
    if (buf == NULL) {
        return NULL;
    }

    in_str = 0;
    esc = 0;
    changed = 0;
    o = 0;

    for (i = 0; i < len; i++) {
        if (in_str) {
            if (esc) {
                esc = 0;
            } else if (p[i] == '\\') {
                esc = 1;
            } else if (p[i] == '"') {
                in_str = 0;
            }

            buf[o++] = p[i];
            continue;
        }

        if (p[i] == '"') {
            in_str = 1;

        } else if (len - i >= 3 && memcmp(p + i, "NaN", 3) == 0) {
            memcpy(buf + o, "null", 4);
            o += 4;
            i += 2;
            changed = 1;
            continue;

        } else if (len - i >= 9 && memcmp(p + i, "-Infinity", 9) == 0) {
            memcpy(buf + o, "null", 4);
            o += 4;
            i += 8;
            changed = 1;
            continue;

        } else if (len - i >= 8 && memcmp(p + i, "Infinity", 8) == 0) {
            memcpy(buf + o, "null", 4);
            o += 4;
            i += 7;
            changed = 1;
            continue;
        }

        buf[o++] = p[i];
    }

    if (!changed) {
        free(buf);
        return NULL;
    }

    *outlen = o;

    return buf;
}


/* percent-decode, drop spaces and newlines, pad, base64 (std or url) */
static json_t *
decide_base64_json(const unsigned char *p, size_t len)
{
    int             c, bits;
    size_t          i, n, o;
    json_t         *v;
    uint32_t        acc;
    unsigned char  *clean, *dec;

    clean = malloc(len + 4);
    if (clean == NULL) {
        return NULL;
    }

    n = decide_percent_decode(clean, p, len);

    for (i = 0, o = 0; i < n; i++) {
        if (clean[i] != ' ' && clean[i] != '\n' && clean[i] != '\r'
            && clean[i] != '\t' && clean[i] != '=')
        {
            clean[o++] = clean[i];
        }
    }

    n = o;

    if (n == 0 || n % 4 == 1) {
        free(clean);
        return NULL;
    }

    dec = malloc(n / 4 * 3 + 3);
    if (dec == NULL) {
        free(clean);
        return NULL;
    }

    acc = 0;
    bits = 0;
    o = 0;

    for (i = 0; i < n; i++) {
        c = clean[i];

        if (c >= 'A' && c <= 'Z') {
            c -= 'A';
        } else if (c >= 'a' && c <= 'z') {
            c = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            c = c - '0' + 52;
        } else if (c == '+' || c == '-') {
            c = 62;
        } else if (c == '/' || c == '_') {
            c = 63;
        } else {
            free(clean);
            free(dec);
            return NULL;
        }

        acc = (acc << 6) | (uint32_t) c;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            dec[o++] = (unsigned char) (acc >> bits);
        }
    }

    free(clean);

    v = decide_json_parse(dec, o);
    free(dec);

    return v;
}


/* "+" stays "+": base64 payloads depend on it */
static size_t
decide_percent_decode(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    int     h, l;
    size_t  i, o;

    for (i = 0, o = 0; i < len; i++) {
        if (src[i] == '%' && i + 2 < len) {
            h = src[i + 1];
            l = src[i + 2];
            h = (h >= '0' && h <= '9') ? h - '0'
                : ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
                  ? (h | 0x20) - 'a' + 10 : -1;
            l = (l >= '0' && l <= '9') ? l - '0'
                : ((l | 0x20) >= 'a' && (l | 0x20) <= 'f')
                  ? (l | 0x20) - 'a' + 10 : -1;

            if (h >= 0 && l >= 0) {
                dst[o++] = (unsigned char) (h << 4 | l);
                i += 2;
                continue;
            }
        }

        dst[o++] = src[i];
    }

    return o;
}


/*
 * The body keys decide_fields_get() reads, aliases after the name they
 * stand in for.  One pass over the body fills a slot per name: with ~25
 * names to look up, hashing each of them (json_object_get) cost more
 * than walking the few keys a body has.
 */
typedef enum {
    DECIDE_F_TOKEN = 0,
    DECIDE_F_TOKEN_ALIAS,
    DECIDE_F_API_KEY,
    DECIDE_F_DISTINCT_ID,
    DECIDE_F_DISTINCT_ID_ALIAS,
    DECIDE_F_ANON_ID,
    DECIDE_F_ANON_ID_ALIAS,
    DECIDE_F_DEVICE_ID,
    DECIDE_F_DEVICE_ID_ALIAS,
    DECIDE_F_PERSON_PROPS,
    DECIDE_F_PERSON_PROPS_ALIAS,
    DECIDE_F_GROUPS,
    DECIDE_F_GROUPS_ALIAS,
    DECIDE_F_GROUP_PROPS,
    DECIDE_F_GROUP_PROPS_ALIAS,
    DECIDE_F_FLAG_KEYS,
    DECIDE_F_FLAG_KEYS_ALIAS,
    DECIDE_F_ENVIRONMENTS,
    DECIDE_F_ENVIRONMENTS_ALIAS,
    DECIDE_F_RUNTIME,
    DECIDE_F_DISABLE_FLAGS,
    DECIDE_F_GEOIP_DISABLE,
    DECIDE_F_N
} decide_field_e;


typedef struct {
    const char  *name;
    size_t       len;
} decide_field_name_t;


#define decide_field_name(s)  { s, sizeof(s) - 1 }

static const decide_field_name_t  decide_field_names[DECIDE_F_N] = {
    decide_field_name("token"),
    decide_field_name("$token"),
    decide_field_name("api_key"),
    decide_field_name("distinct_id"),
    decide_field_name("$distinct_id"),
    decide_field_name("$anon_distinct_id"),
    decide_field_name("anon_distinct_id"),
    decide_field_name("$device_id"),
    decide_field_name("device_id"),
    decide_field_name("person_properties"),
    decide_field_name("$properties"),
    decide_field_name("groups"),
    decide_field_name("$groups"),
    decide_field_name("group_properties"),
    decide_field_name("$group_properties"),
    decide_field_name("flag_keys"),
    decide_field_name("flag_keys_to_evaluate"),
    decide_field_name("evaluation_environments"),
    decide_field_name("evaluation_contexts"),
    decide_field_name("evaluation_runtime"),
    decide_field_name("disable_flags"),
    decide_field_name("geoip_disable")
};


void
decide_fields_get(json_t *body, decide_fields_t *f)
{
    size_t       n, klen;
    json_t      *v, *slot[DECIDE_F_N];
    const char  *key;

    memset(f, 0, offsetof(decide_fields_t, id_buf));
    f->id_buf[0] = '\0';

    if (!json_is_object(body)) {
        return;
    }

    memset(slot, 0, sizeof(slot));

    /* keys are unique in a jansson object and may hold NUL bytes */
    json_object_keylen_foreach(body, key, klen, v) {
        for (n = 0; n < DECIDE_F_N; n++) {
            if (decide_field_names[n].len == klen
                && memcmp(decide_field_names[n].name, key, klen) == 0)
            {
                slot[n] = v;
                break;
            }
        }
    }

    decide_fields_slots(slot, f);
}


/*
 * The fields of a JSON body in the shape SDKs send, without the body's
 * top-level object: its members go straight to the slots, their values
 * (built as decide_json_fast() builds them) into *holder, an array that
 * owns them as the body would.  The jansson object cost a hash insert
 * per key and a walk over them (decide_engine decode+fields: see the
 * commit).  It answers only where decide_body_decode() would take
 * decide_json_fast()'s answer for the same bytes, and a later duplicate
 * key wins as in a jansson object, so the fields are what
 * decide_fields_get() reads from decide_body_decode()'s result
 * (t/unit/decide_request.c and fuzz_decide_request check this).
 */
int
decide_fields_fast(const unsigned char *body, size_t len,
    const decide_body_opts_t *opts, json_t **holder, decide_fields_t *f)
{
    size_t               n, klen;
    json_t              *own, *v, *slot[DECIDE_F_N];
    const char          *key;
    decide_json_fast_t   s;

    *holder = NULL;

    /* what decide_body_decode() would not hand to decide_json_fast() */
    if ((opts->compression != DECIDE_COMPRESSION_NONE
         && opts->compression != DECIDE_COMPRESSION_BASE64)
        || opts->content_encoding_gzip
        || decide_is_gzip(body, len)
        || decide_body_form(opts) != 0)
    {
        return -1;
    }

    s.p = body;
    s.end = body + len;

    decide_json_fast_ws(&s);

    if (s.p == s.end || *s.p != '{') {
        return -1;
    }

    s.p++;

    own = json_array();
    if (own == NULL) {
        return -1;
    }

    memset(slot, 0, sizeof(slot));

    decide_json_fast_ws(&s);

    if (s.p < s.end && *s.p == '}') {
        s.p++;
        goto done;
    }

    for ( ;; ) {
        decide_json_fast_ws(&s);

        if (decide_json_fast_string(&s, &key, &klen) != 0) {
            goto failed;
        }

        decide_json_fast_ws(&s);

        if (s.p == s.end || *s.p != ':') {
            goto failed;
        }

        s.p++;

        v = decide_json_fast_value(&s, 1);
        if (v == NULL) {
            goto failed;
        }

        if (json_array_append_new(own, v) != 0) {
            goto failed;
        }

        for (n = 0; n < DECIDE_F_N; n++) {
            if (decide_field_names[n].len == klen
                && memcmp(decide_field_names[n].name, key, klen) == 0)
            {
                slot[n] = v;
                break;
            }
        }

        decide_json_fast_ws(&s);

        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }

        if (s.p < s.end && *s.p == '}') {
            s.p++;
            break;
        }

        goto failed;
    }

done:

    decide_json_fast_ws(&s);

    if (s.p != s.end) {
        goto failed;
    }

    memset(f, 0, offsetof(decide_fields_t, id_buf));
    f->id_buf[0] = '\0';

    decide_fields_slots(slot, f);

    *holder = own;

    return 0;

failed:

    json_decref(own);

    return -1;
}


/* the fields from the values of the body keys, NULL where absent */
static void
decide_fields_slots(json_t **slot, decide_fields_t *f)
{
    size_t       n;
    json_t      *v;
    const char  *s;

    f->token = decide_field_string(slot[DECIDE_F_TOKEN],
                                   slot[DECIDE_F_TOKEN_ALIAS],
                                   slot[DECIDE_F_API_KEY]);

    v = slot[DECIDE_F_DISTINCT_ID];
    if (v == NULL || json_is_null(v)) {
        v = slot[DECIDE_F_DISTINCT_ID_ALIAS];
    }

    if (json_is_string(v)) {
        s = json_string_value(v);
        n = decide_utf8_prefix(s, json_string_length(v),
                               DECIDE_DISTINCT_ID_MAX_CHARS);
        memcpy(f->id_buf, s, n);
        f->id_buf[n] = '\0';
        f->distinct_id = f->id_buf;

    } else if (json_is_number(v)) {
        decide_format_number(v, f->id_buf, sizeof(f->id_buf));
        f->distinct_id = f->id_buf;
    }

    f->anon_distinct_id = decide_field_string(slot[DECIDE_F_ANON_ID],
                                              slot[DECIDE_F_ANON_ID_ALIAS],
                                              NULL);

    f->person_properties = decide_field_object(slot[DECIDE_F_PERSON_PROPS],
                                         slot[DECIDE_F_PERSON_PROPS_ALIAS]);

    if (f->anon_distinct_id == NULL) {
        s = json_string_value(json_object_get(f->person_properties,
                                              "$anon_distinct_id"));
        f->anon_distinct_id = (s && *s) ? s : NULL;
    }

    f->device_id = decide_field_string(slot[DECIDE_F_DEVICE_ID],
                                       slot[DECIDE_F_DEVICE_ID_ALIAS], NULL);
    f->groups = decide_field_object(slot[DECIDE_F_GROUPS],
                                    slot[DECIDE_F_GROUPS_ALIAS]);
    f->group_properties = decide_field_object(slot[DECIDE_F_GROUP_PROPS],
                                        slot[DECIDE_F_GROUP_PROPS_ALIAS]);

    v = slot[DECIDE_F_FLAG_KEYS];
    if (!json_is_array(v)) {
        v = slot[DECIDE_F_FLAG_KEYS_ALIAS];
    }

    f->flag_keys = json_is_array(v) ? v : NULL;

    /* evaluation_contexts is the newer name of the same list */
    v = slot[DECIDE_F_ENVIRONMENTS];
    if (!json_is_array(v)) {
        v = slot[DECIDE_F_ENVIRONMENTS_ALIAS];
    }

    f->environments = json_is_array(v) ? v : NULL;

    /* an explicit runtime wins over detection (spec 1.4, 5.2) */
    s = json_string_value(slot[DECIDE_F_RUNTIME]);

    if (s && strcmp(s, "client") == 0) {
        f->runtime = DECIDE_RUNTIME_CLIENT;
        f->runtime_set = 1;

    } else if (s && strcmp(s, "server") == 0) {
        f->runtime = DECIDE_RUNTIME_SERVER;
        f->runtime_set = 1;

    } else if (s && strcmp(s, "all") == 0) {
        f->runtime = DECIDE_RUNTIME_ANY;
        f->runtime_set = 1;
    }

    f->disable_flags = decide_field_true(slot[DECIDE_F_DISABLE_FLAGS]);
    f->geoip_disable = decide_field_true(slot[DECIDE_F_GEOIP_DISABLE]);
}


/* the first non-empty string of a, b, c (each may be NULL) */
static const char *
decide_field_string(json_t *a, json_t *b, json_t *c)
{
    json_t      *v[3];
    const char  *s;
    int          i;

    v[0] = a;
    v[1] = b;
    v[2] = c;

    for (i = 0; i < 3; i++) {
        s = json_string_value(v[i]);
        if (s != NULL && *s != '\0') {
            return s;
        }
    }

    return NULL;
}


static json_t *
decide_field_object(json_t *a, json_t *b)
{
    if (json_is_object(a)) {
        return a;
    }

    return json_is_object(b) ? b : NULL;
}


static int
decide_field_true(json_t *v)
{
    const char  *s;

    if (json_is_true(v)) {
        return 1;
    }

    s = json_string_value(v);

    return s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0);
}


/* integers as decimals, reals as the shortest round-trip text */
static void
decide_format_number(json_t *v, char *buf, size_t size)
{
    int     prec;
    double  d, back;

    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long) json_integer_value(v));
        return;
    }

    d = json_real_value(v);

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        back = strtod(buf, NULL);
        if (back == d) {
            break;
        }
    }
}


static size_t
decide_utf8_prefix(const char *s, size_t len, size_t max)
{
    size_t  i, chars;

    for (i = 0, chars = 0; i < len; chars++) {
        if (chars == max) {
            return i;
        }

        i++;

        /* continuation bytes belong to the scalar value before them */
        while (i < len && ((unsigned char) s[i] & 0xc0) == 0x80) {
            i++;
        }
    }

    return len;
}


decide_runtime_e
decide_runtime_detect(const char *ua, size_t len, int browser_headers)
{
    size_t              i, n;
    static const char  *client_has[] = {
        "Mozilla/", "Chrome/", "Safari/", "Firefox/", "Edge/", NULL
    };
    static const char  *client_starts[] = {
        "posthog-android/", "posthog-ios/", "posthog-react-native/",
        "posthog-flutter/", NULL
    };
    static const char  *server_starts[] = {
        "posthog-python/", "posthog-ruby/", "posthog-php/", "posthog-java/",
        "posthog-go/", "posthog-node/", "posthog-dotnet/",
        "posthog-elixir/", NULL
    };
    static const char  *server_has[] = {
        "python-requests/", "curl/", NULL
    };

    if (ua != NULL && len > 0) {
        for (i = 0; client_starts[i]; i++) {
            n = strlen(client_starts[i]);
            if (len >= n && memcmp(ua, client_starts[i], n) == 0) {
                return DECIDE_RUNTIME_CLIENT;
            }
        }

        for (i = 0; server_starts[i]; i++) {
            n = strlen(server_starts[i]);
            if (len >= n && memcmp(ua, server_starts[i], n) == 0) {
                return DECIDE_RUNTIME_SERVER;
            }
        }

        for (i = 0; server_has[i]; i++) {
            if (memmem(ua, len, server_has[i], strlen(server_has[i]))) {
                return DECIDE_RUNTIME_SERVER;
            }
        }

        for (i = 0; client_has[i]; i++) {
            if (memmem(ua, len, client_has[i], strlen(client_has[i]))) {
                return DECIDE_RUNTIME_CLIENT;
            }
        }
    }

    return browser_headers ? DECIDE_RUNTIME_CLIENT : DECIDE_RUNTIME_UNKNOWN;
}


int
decide_query_bool(const char *p, size_t len)
{
    if (len == 0) {
        return 1;
    }

    if ((len == 5 && strncasecmp(p, "false", 5) == 0)
        || (len == 1 && p[0] == '0')
        || (len == 2 && strncasecmp(p, "no", 2) == 0)
        || (len == 3 && strncasecmp(p, "off", 3) == 0))
    {
        return 0;
    }

    return 1;
}
