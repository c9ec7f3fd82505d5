/*
 * Copyright (C) edgehog
 */


#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "capture_lzstring.h"


/* offsets are 32-bit to halve the dictionary; caps beyond are clamped */
#define CAPTURE_LZ_MAX_UNITS  0x7fffffffu


typedef struct {
    uint32_t                 off;
    uint32_t                 len;
} capture_lz_entry_t;


typedef struct {
    const u_char            *in;
    size_t                   len;
    size_t                   index;
    unsigned                 val;
    unsigned                 position;
    unsigned                 flags;
    int                      bad;

    uint16_t                *out;
    size_t                   out_len;
    size_t                   out_cap;
    size_t                   max_units;

    capture_lz_entry_t      *dict;
    size_t                   dict_len;
    size_t                   dict_cap;

    const capture_alloc_t   *a;
} capture_lz_t;


static unsigned capture_lz_char(capture_lz_t *lz, size_t i);
static uint32_t capture_lz_bits(capture_lz_t *lz, unsigned n);
static int capture_lz_reserve(capture_lz_t *lz, size_t n);
static int capture_lz_dict_add(capture_lz_t *lz, size_t off, size_t len);
static int capture_lz_run(capture_lz_t *lz);
static int capture_lz_utf8(capture_lz_t *lz, size_t max_size, u_char **out,
    size_t *out_len);


static const u_char  capture_lz_alphabet[256] = {
    /* 0xff: not in the lz-string base64 alphabet; '=' is value 64 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff,   62, 0xff, 0xff, 0xff,   63,
      52,   53,   54,   55,   56,   57,   58,   59,
      60,   61, 0xff, 0xff, 0xff,   64, 0xff, 0xff,
    0xff,    0,    1,    2,    3,    4,    5,    6,
       7,    8,    9,   10,   11,   12,   13,   14,
      15,   16,   17,   18,   19,   20,   21,   22,
      23,   24,   25, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff,   26,   27,   28,   29,   30,   31,   32,
      33,   34,   35,   36,   37,   38,   39,   40,
      41,   42,   43,   44,   45,   46,   47,   48,
      49,   50,   51, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};


int
capture_lzstring_decompress_base64(const u_char *in, size_t len,
    size_t max_size, unsigned flags, const capture_alloc_t *a, u_char **out,
    size_t *out_len)
{
    int           rc;
    capture_lz_t  lz;

    /* the JS library returns null for "", which no caller can use */
    if (len == 0) {
        return CAPTURE_LZ_EINVAL;
    }

    memset(&lz, 0, sizeof(capture_lz_t));

    lz.in = in;
    lz.len = len;
    lz.flags = flags;
    lz.a = a;

    /* every UTF-16 unit becomes at least one UTF-8 byte */
    lz.max_units = max_size < CAPTURE_LZ_MAX_UNITS ? max_size
                                                   : CAPTURE_LZ_MAX_UNITS;

    rc = capture_lz_run(&lz);

    if (rc == CAPTURE_LZ_OK) {
        rc = capture_lz_utf8(&lz, max_size, out, out_len);
    }

    if (lz.out) {
        a->free(a->ctx, lz.out);
    }

    if (lz.dict) {
        a->free(a->ctx, lz.dict);
    }

    return rc;
}


const char *
capture_lzstring_strerror(int rc)
{
    switch (rc) {
    case CAPTURE_LZ_OK:
        return "ok";
    case CAPTURE_LZ_EINVAL:
        return "failed decompress to UTF16";
    case CAPTURE_LZ_ETOOLARGE:
        return "lz64 request payload size limit exceeded";
    case CAPTURE_LZ_ENOMEM:
        return "out of memory";
    case CAPTURE_LZ_EUTF16:
        return "failed UTF16 to UTF8 conversion";
    }

    return "unknown error";
}


static unsigned
capture_lz_char(capture_lz_t *lz, size_t i)
{
    u_char  ch, v;

    /* JS charAt() past the end yields "", whose value reads as 0 */
    if (i >= lz->len) {
        return 0;
    }

    ch = lz->in[i];

    if (ch == ' ' && (lz->flags & CAPTURE_LZ_SPACE_PLUS)) {
        ch = '+';
    }

    v = capture_lz_alphabet[ch];

    if (v == 0xff) {
        lz->bad = 1;
        return 0;
    }

    return v;
}


static uint32_t
capture_lz_bits(capture_lz_t *lz, unsigned n)
{
    unsigned  i;
    uint32_t  bits;

    bits = 0;

    for (i = 0; i < n; i++) {
        if (lz->val & lz->position) {
            bits |= (uint32_t) 1 << i;
        }

        lz->position >>= 1;

        if (lz->position == 0) {
            lz->position = 32;
            lz->val = capture_lz_char(lz, lz->index++);
        }
    }

    return bits;
}


static int
capture_lz_reserve(capture_lz_t *lz, size_t n)
{
    size_t     cap;
    uint16_t  *p;

    if (n > lz->max_units || lz->out_len > lz->max_units - n) {
        return CAPTURE_LZ_ETOOLARGE;
    }

    if (lz->out_len + n <= lz->out_cap) {
        return CAPTURE_LZ_OK;
    }

    cap = lz->out_cap ? lz->out_cap : 1024;

    while (cap < lz->out_len + n) {
        cap *= 2;
    }

    if (cap > lz->max_units) {
        cap = lz->max_units;
    }

    p = lz->a->alloc(lz->a->ctx, cap * sizeof(uint16_t));
    if (p == NULL) {
        return CAPTURE_LZ_ENOMEM;
    }

    if (lz->out) {
        memcpy(p, lz->out, lz->out_len * sizeof(uint16_t));
        lz->a->free(lz->a->ctx, lz->out);
    }

    lz->out = p;
    lz->out_cap = cap;

    return CAPTURE_LZ_OK;
}


static int
capture_lz_dict_add(capture_lz_t *lz, size_t off, size_t len)
{
    size_t               cap;
    capture_lz_entry_t  *p;

    if (lz->dict_len == lz->dict_cap) {
        cap = lz->dict_cap ? lz->dict_cap * 2 : 256;

        p = lz->a->alloc(lz->a->ctx, cap * sizeof(capture_lz_entry_t));
        if (p == NULL) {
            return CAPTURE_LZ_ENOMEM;
        }

        if (lz->dict) {
            memcpy(p, lz->dict, lz->dict_len * sizeof(capture_lz_entry_t));
            lz->a->free(lz->a->ctx, lz->dict);
        }

        lz->dict = p;
        lz->dict_cap = cap;
    }

    /* both fit: they never exceed max_units, itself below 2^31 */
    lz->dict[lz->dict_len].off = (uint32_t) off;
    lz->dict[lz->dict_len].len = (uint32_t) len;
    lz->dict_len++;

    return CAPTURE_LZ_OK;
}


static int
capture_lz_run(capture_lz_t *lz)
{
    int        rc;
    size_t     w_off, w_len, e_off, e_len, src, i;
    uint32_t   c, enlarge_in;
    unsigned   num_bits;

    lz->val = capture_lz_char(lz, 0);
    lz->position = 32;
    lz->index = 1;

    /* entries 0..2 are the literal-8, literal-16 and end codes */
    for (i = 0; i < 3; i++) {
        rc = capture_lz_dict_add(lz, 0, 0);
        if (rc != CAPTURE_LZ_OK) {
            return rc;
        }
    }

    enlarge_in = 4;
    num_bits = 3;

    switch (capture_lz_bits(lz, 2)) {
    case 0:
        c = capture_lz_bits(lz, 8);
        break;
    case 1:
        c = capture_lz_bits(lz, 16);
        break;
    case 2:
        /* an empty string: valid, but nothing the caller can parse */
        return lz->bad ? CAPTURE_LZ_EINVAL : CAPTURE_LZ_OK;
    default:
        return CAPTURE_LZ_EINVAL;
    }

    rc = capture_lz_reserve(lz, 1);
    if (rc != CAPTURE_LZ_OK) {
        return rc;
    }

    lz->out[lz->out_len++] = (uint16_t) c;

    rc = capture_lz_dict_add(lz, 0, 1);
    if (rc != CAPTURE_LZ_OK) {
        return rc;
    }

    w_off = 0;
    w_len = 1;

    for ( ;; ) {

        if (lz->bad || lz->index > lz->len) {
            /* the JS code returns "" here: input ended without the mark */
            return CAPTURE_LZ_EINVAL;
        }

        c = capture_lz_bits(lz, num_bits);

        if (c == 2) {
            return lz->bad ? CAPTURE_LZ_EINVAL : CAPTURE_LZ_OK;
        }

        e_len = 0;

        if (c < 2) {
            c = capture_lz_bits(lz, c == 0 ? 8 : 16);

            rc = capture_lz_reserve(lz, 1);
            if (rc != CAPTURE_LZ_OK) {
                return rc;
            }

            /* the literal is emitted here, so the entry points at it */
            e_off = lz->out_len;
            e_len = 1;
            lz->out[lz->out_len++] = (uint16_t) c;

            rc = capture_lz_dict_add(lz, e_off, 1);
            if (rc != CAPTURE_LZ_OK) {
                return rc;
            }

            c = (uint32_t) lz->dict_len - 1;

            if (--enlarge_in == 0) {
                enlarge_in = (uint32_t) 1 << num_bits;
                num_bits++;
            }
        }

        if (e_len == 0) {
            if (c < lz->dict_len) {
                src = lz->dict[c].off;
                e_len = lz->dict[c].len;

            } else if (c == lz->dict_len) {
                /* the KwKwK case: w + w[0], right after w itself */
                src = w_off;
                e_len = w_len + 1;

            } else {
                return CAPTURE_LZ_EINVAL;
            }

            rc = capture_lz_reserve(lz, e_len);
            if (rc != CAPTURE_LZ_OK) {
                return rc;
            }

            e_off = lz->out_len;

            /* forward unit copy: source and destination may overlap */
            for (i = 0; i < e_len; i++) {
                lz->out[e_off + i] = lz->out[src + i];
            }

            lz->out_len += e_len;
        }

        /* w + entry[0]: w was emitted immediately before the entry */
        rc = capture_lz_dict_add(lz, w_off, w_len + 1);
        if (rc != CAPTURE_LZ_OK) {
            return rc;
        }

        w_off = e_off;
        w_len = e_len;

        if (--enlarge_in == 0) {
            enlarge_in = (uint32_t) 1 << num_bits;
            num_bits++;
        }

        if (num_bits > 31) {
            return CAPTURE_LZ_EINVAL;
        }
    }
}


static int
capture_lz_utf8(capture_lz_t *lz, size_t max_size, u_char **out,
    size_t *out_len)
{
    size_t     i, n;
    u_char    *p, *d;
    uint32_t   cp;
    uint16_t   u;

    n = 0;

    for (i = 0; i < lz->out_len; i++) {
        u = lz->out[i];

        if (u < 0x80) {
            n += 1;

        } else if (u < 0x800) {
            n += 2;

        } else if (u >= 0xd800 && u <= 0xdbff && i + 1 < lz->out_len
                   && lz->out[i + 1] >= 0xdc00 && lz->out[i + 1] <= 0xdfff)
        {
            n += 4;
            i++;

        } else if (u >= 0xd800 && u <= 0xdfff) {
            if (lz->flags & CAPTURE_LZ_STRICT_UTF16) {
                return CAPTURE_LZ_EUTF16;
            }

            n += 3;

        } else {
            n += 3;
        }
    }

    if (n > max_size) {
        return CAPTURE_LZ_ETOOLARGE;
    }

    p = lz->a->alloc(lz->a->ctx, n + 1);
    if (p == NULL) {
        return CAPTURE_LZ_ENOMEM;
    }

    d = p;

    for (i = 0; i < lz->out_len; i++) {
        cp = lz->out[i];

        if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < lz->out_len
            && lz->out[i + 1] >= 0xdc00 && lz->out[i + 1] <= 0xdfff)
        {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lz->out[i + 1] - 0xdc00);
            i++;

        } else if (cp >= 0xd800 && cp <= 0xdfff) {
            cp = 0xfffd;
        }

        if (cp < 0x80) {
            *d++ = (u_char) cp;

        } else if (cp < 0x800) {
            *d++ = (u_char) (0xc0 | (cp >> 6));
            *d++ = (u_char) (0x80 | (cp & 0x3f));

        } else if (cp < 0x10000) {
            *d++ = (u_char) (0xe0 | (cp >> 12));
            *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (cp & 0x3f));

        } else {
            *d++ = (u_char) (0xf0 | (cp >> 18));
            *d++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
            *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (cp & 0x3f));
        }
    }

    *d = '\0';
    *out = p;
    *out_len = n;

    return CAPTURE_LZ_OK;
}
