/*
 * Copyright (C) edgehog
 */


#include <string.h>

#include "capture_decode.h"
#include "capture_base64.h"
#include "capture_form.h"
#include "capture_inflate.h"
#include "capture_lzstring.h"
#include "capture_normalize.h"


#define CAPTURE_FORM_TYPE  "application/x-www-form-urlencoded"


static int capture_decode_is_form(const capture_decode_in_t *in);
static int capture_decode_base64(const capture_decode_in_t *in,
    const u_char *p, size_t len, u_char **out, size_t *out_len);
static int capture_decode_gzip(const capture_decode_in_t *in,
    const u_char *p, size_t len, u_char **out, size_t *out_len,
    capture_error_t *err);
static u_char *capture_decode_copy(const capture_decode_in_t *in,
    const u_char *p, size_t len);
static int capture_decode_too_large(capture_error_t *err, size_t max,
    size_t got);


int
capture_decode_hint(const u_char *p, size_t len)
{
    size_t  i;
    u_char  buf[16];

    if (p == NULL || len == 0 || len >= sizeof(buf)) {
        return CAPTURE_HINT_NONE;
    }

    /* the query and form hints are case-insensitive (§2.1) */
    for (i = 0; i < len; i++) {
        buf[i] = (p[i] >= 'A' && p[i] <= 'Z') ? p[i] | 0x20 : p[i];
    }

    buf[len] = '\0';

    if (strcmp((char *) buf, "gzip") == 0
        || strcmp((char *) buf, "gzip-js") == 0)
    {
        return CAPTURE_HINT_GZIP;
    }

    if (strcmp((char *) buf, "lz64") == 0
        || strcmp((char *) buf, "lz-string") == 0)
    {
        return CAPTURE_HINT_LZ64;
    }

    if (strcmp((char *) buf, "base64") == 0
        || strcmp((char *) buf, "b64") == 0)
    {
        return CAPTURE_HINT_BASE64;
    }

    return CAPTURE_HINT_NONE;
}


int
capture_decode_path_is_legacy(const u_char *p, size_t len)
{
    static const char  *prefixes[] = { "/capture", "/engage", "/track" };
    size_t              i, n;

    if ((len == 2 && memcmp(p, "/e", 2) == 0)
        || (len > 2 && memcmp(p, "/e", 2) == 0
            && (p[2] == '/' || p[2] == '?')))
    {
        return 1;
    }

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        n = strlen(prefixes[i]);

        if (len >= n && memcmp(p, prefixes[i], n) == 0) {
            return 1;
        }
    }

    return 0;
}


int
capture_decode(const capture_decode_in_t *in, u_char **out,
    size_t *out_len, capture_error_t *err)
{
    int             hint, rc;
    size_t          len, n;
    u_char         *d, *owned;
    const u_char   *p;
    capture_form_t  form;

    /*
     * "owned" is the intermediate buffer p points to, if any: freed when
     * replaced, for allocators that free (pools ignore it)
     */
    owned = NULL;

#define capture_decode_own(buf)                                               \
    do {                                                                      \
        if (owned) {                                                          \
            in->alloc->free(in->alloc->ctx, owned);                           \
        }                                                                     \
        owned = (buf);                                                        \
    } while (0)

    /* §2.2: the query's data= wins over the body */

    if (in->query_data && in->query_data_len) {
        p = in->query_data;
        len = in->query_data_len;

    } else if (in->body_len) {
        p = in->body;
        len = in->body_len;

    } else {
        return capture_error_set(err, 400, "no_data",
                                 "request missing data payload");
    }

    /*
     * §2.3: optimistic whole-payload base64; LZ-string's alphabet is
     * base64's, so an lz64 hint (or a result that is neither text nor
     * gzip) keeps the payload as it is
     */

    hint = capture_decode_hint(in->query_compression,
                               in->query_compression_len);
    if (hint == CAPTURE_HINT_NONE && in->content_encoding) {
        hint = capture_decode_hint(in->content_encoding,
                                   in->content_encoding_len);
    }

    if (hint != CAPTURE_HINT_LZ64
        && !capture_form_has_prefix(p, len)
        && capture_base64_is_likely(p, len, CAPTURE_BASE64_LIKELY_STRICT)
        && capture_decode_base64(in, p, len, &d, &n) == 0)
    {
        if ((n >= 2 && d[0] == 0x1f && d[1] == 0x8b)
            || capture_utf8_valid(d, n))
        {
            owned = d;
            p = d;
            len = n;

        } else {
            in->alloc->free(in->alloc->ctx, d);
        }
    }

    /* §2.4: form bodies */

    hint = CAPTURE_HINT_NONE;

    if (capture_decode_is_form(in)) {
        if (!capture_form_has_prefix(p, len)) {
            capture_error_set(err, 400, "invalid_payload",
                              "failed to decode request: expected form "
                              "data in POST request payload");
            goto failed;
        }

        capture_form_parse(&form, p, len);

        if (form.has_compression) {
            d = capture_decode_copy(in, form.compression.data,
                                    form.compression.len);
            if (d == NULL) {
                goto nomem;
            }

            n = capture_form_unescape(d, d, form.compression.len);
            hint = capture_decode_hint(d, n);
            in->alloc->free(in->alloc->ctx, d);
        }

        if (form.has_data) {
            d = capture_decode_copy(in, form.data.data, form.data.len);
            if (d == NULL) {
                goto nomem;
            }

            n = capture_form_unescape(d, d, form.data.len);
            d[n] = '\0';

            /* an unescaped '+' of base64 arrives as a space */
            if (capture_base64_is_likely(d, n, CAPTURE_BASE64_LIKELY_LOOSE)) {
                for (len = 0; len < n; len++) {
                    if (d[len] == ' ') {
                        d[len] = '+';
                    }
                }
            }

            capture_decode_own(d);
            p = d;
            len = n;
        }
    }

    /* §2.5: query -> form -> Content-Encoding */

    n = capture_decode_hint(in->query_compression, in->query_compression_len);
    if (n != CAPTURE_HINT_NONE) {
        hint = (int) n;
    }

    if (hint == CAPTURE_HINT_NONE && in->content_encoding) {
        hint = capture_decode_hint(in->content_encoding,
                                   in->content_encoding_len);
    }

    /* §2.6: decompression */

    if ((len >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 0x08)
        || (hint == CAPTURE_HINT_GZIP && in->strict))
    {
        rc = capture_decode_gzip(in, p, len, &d, &n, err);
        if (rc != 0) {
            goto failed;
        }

        capture_decode_own(d);

        if (!capture_utf8_valid(d, n)) {
            capture_error_set(err, 400, "invalid_payload",
                              "failed to decode request: invalid gzip data");
            goto failed;
        }

        p = d;
        len = n;

    } else if (hint == CAPTURE_HINT_LZ64) {
        rc = capture_lzstring_decompress_base64(p, len, in->max_size,
                               in->strict ? CAPTURE_LZ_STRICT_UTF16
                                          : CAPTURE_LZ_SPACE_PLUS,
                               in->alloc, &d, &n);

        switch (rc) {

        case CAPTURE_LZ_OK:
            break;

        case CAPTURE_LZ_ETOOLARGE:
            capture_error_set(err, 413, "payload_too_large",
                              "maximum event size exceeded: lz64 "
                              "request payload size limit exceeded");
            goto failed;

        case CAPTURE_LZ_ENOMEM:
            goto nomem;

        case CAPTURE_LZ_EUTF16:
            capture_error_set(err, 400, "invalid_payload",
                              "failed to decode request: decompress_lz64: "
                              "failed UTF16 to UTF8 conversion");
            goto failed;

        default:
            capture_error_set(err, 400, "invalid_payload",
                              "failed to decode request: decompress_lz64: "
                              "failed decompress to UTF16");
            goto failed;
        }

        capture_decode_own(d);
        p = d;
        len = n;

    } else {
        if (len > in->max_size) {
            capture_decode_too_large(err, in->max_size, len);
            goto failed;
        }

        if (!capture_utf8_valid(p, len)) {
            capture_error_set(err, 400, "invalid_payload",
                              "failed to decode request: "
                              "invalid UTF8 in request payload");
            goto failed;
        }
    }

    /*
     * §2.8: the second base64 pass; lenient runs it on every path, as a
     * JSON document starts with '{' or '[' and can never misfire
     */

    if ((in->legacy || !in->strict)
        && capture_base64_is_likely(p, len, CAPTURE_BASE64_LIKELY_STRICT)
        && capture_decode_base64(in, p, len, &d, &n) == 0)
    {
        if (!capture_utf8_valid(d, n)) {
            in->alloc->free(in->alloc->ctx, d);

        } else if (n > in->max_size) {
            in->alloc->free(in->alloc->ctx, d);
            capture_decode_too_large(err, in->max_size, n);
            goto failed;

        } else {
            capture_decode_own(d);
            p = d;
            len = n;
        }
    }

    if (owned == NULL) {
        /* the event builder reads by length: a copy only adds the NUL */
        if (in->borrow) {
            *out = (u_char *) p;
            *out_len = len;
            return 0;
        }

        owned = capture_decode_copy(in, p, len);
        if (owned == NULL) {
            goto nomem;
        }
    }

    /* every owned buffer is NUL-terminated and starts at p */
    *out = owned;
    *out_len = len;

    return 0;

nomem:

    capture_error_set(err, 500, "internal",
                      "internal server error: out of memory");

failed:

    if (owned) {
        in->alloc->free(in->alloc->ctx, owned);
    }

    return -1;

#undef capture_decode_own
}


static int
capture_decode_is_form(const capture_decode_in_t *in)
{
    size_t  n;

    n = sizeof(CAPTURE_FORM_TYPE) - 1;

    if (in->content_type == NULL || in->content_type_len < n
        || strncasecmp((const char *) in->content_type, CAPTURE_FORM_TYPE, n)
           != 0)
    {
        return 0;
    }

    if (in->content_type_len == n) {
        return 1;
    }

    /* capture-rs compares the whole header; lenient allows "; charset" */
    return !in->strict && (in->content_type[n] == ';'
                           || in->content_type[n] == ' ');
}


static int
capture_decode_base64(const capture_decode_in_t *in, const u_char *p,
    size_t len, u_char **out, size_t *out_len)
{
    u_char  *d;

    d = in->alloc->alloc(in->alloc->ctx, capture_base64_decoded_len(len) + 1);
    if (d == NULL) {
        return -1;
    }

    if (capture_base64_decode(d, out_len, p, len,
                              in->strict ? CAPTURE_BASE64_STRICT : 0)
        != 0)
    {
        in->alloc->free(in->alloc->ctx, d);
        return -1;
    }

    d[*out_len] = '\0';
    *out = d;

    return 0;
}


static int
capture_decode_gzip(const capture_decode_in_t *in, const u_char *p,
    size_t len, u_char **out, size_t *out_len, capture_error_t *err)
{
    int                 rc;
    size_t              hint;
    u_char             *d;
    capture_inflate_t  *ci;

    hint = len < in->max_size / 4 ? len * 4 : in->max_size;

    ci = capture_inflate_create(in->alloc, in->max_size, hint);
    if (ci == NULL) {
        return capture_error_set(err, 500, "internal",
                                 "internal server error: inflate");
    }

    rc = capture_inflate_feed(ci, p, len);
    if (rc == CAPTURE_INFLATE_OK) {
        rc = capture_inflate_finish(ci);
    }

    if (rc == CAPTURE_INFLATE_OK) {
        /* the inflater frees its buffer on destroy: keep a copy */
        d = capture_inflate_data(ci, out_len);
        *out = capture_decode_copy(in, d, *out_len);
        if (*out == NULL) {
            rc = CAPTURE_INFLATE_NOMEM;
        }
    }

    capture_inflate_destroy(ci);

    switch (rc) {

    case CAPTURE_INFLATE_OK:
        return 0;

    case CAPTURE_INFLATE_TOO_LARGE:
        return capture_error_set(err, 413, "payload_too_large",
                                 "maximum event size exceeded: Decompressed "
                                 "payload would exceed %zu bytes",
                                 in->max_size);

    case CAPTURE_INFLATE_NOMEM:
        return capture_error_set(err, 500, "internal",
                                 "internal server error: out of memory");

    default:
        return capture_error_set(err, 400, "invalid_payload",
                                 "failed to decode request: "
                                 "invalid GZIP data");
    }
}


static u_char *
capture_decode_copy(const capture_decode_in_t *in, const u_char *p,
    size_t len)
{
    u_char  *d;

    d = in->alloc->alloc(in->alloc->ctx, len + 1);
    if (d == NULL) {
        return NULL;
    }

    if (len) {
        memcpy(d, p, len);
    }

    d[len] = '\0';

    return d;
}


static int
capture_decode_too_large(capture_error_t *err, size_t max, size_t got)
{
    return capture_error_set(err, 413, "payload_too_large",
                             "maximum event size exceeded: Uncompressed "
                             "payload size limit %zu exceeded: %zu", max,
                             got);
}
