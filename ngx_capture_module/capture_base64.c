/*
 * Copyright (C) edgehog
 */


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture_base64.h"


#define CAPTURE_B64_BAD    0xff
#define CAPTURE_B64_SPACE  0xfe
#define CAPTURE_B64_PAD    0xfd


static u_char capture_base64_value(u_char ch, unsigned flags);


size_t
capture_base64_decoded_len(size_t len)
{
    return len / 4 * 3 + 3;
}


static u_char
capture_base64_value(u_char ch, unsigned flags)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }

    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }

    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }

    if (ch == '=') {
        return CAPTURE_B64_PAD;
    }

    if (flags & CAPTURE_BASE64_STRICT) {
        if (flags & CAPTURE_BASE64_URL) {
            return ch == '-' ? 62 : (ch == '_' ? 63 : CAPTURE_B64_BAD);
        }

        return ch == '+' ? 62 : (ch == '/' ? 63 : CAPTURE_B64_BAD);
    }

    switch (ch) {
    case '+':
    case '-':
        return 62;

    case '/':
    case '_':
        return 63;

    case ' ':
        return (flags & CAPTURE_BASE64_SPACE_PLUS) ? 62 : CAPTURE_B64_SPACE;

    case '\t':
    case '\n':
    case '\r':
    case '\f':
    case '\v':
        return CAPTURE_B64_SPACE;
    }

    return CAPTURE_B64_BAD;
}


int
capture_base64_decode(u_char *dst, size_t *dst_len, const u_char *src,
    size_t len, unsigned flags)
{
    u_char    v;
    size_t    i, n, pad, total;
    uint32_t  acc;
    u_char   *d;

    d = dst;
    acc = 0;
    n = 0;
    pad = 0;
    total = 0;

    for (i = 0; i < len; i++) {
        v = capture_base64_value(src[i], flags);

        if (v == CAPTURE_B64_SPACE) {
            continue;
        }

        if (v == CAPTURE_B64_BAD) {
            return -1;
        }

        total++;

        if (v == CAPTURE_B64_PAD) {
            pad++;
            continue;
        }

        if (pad) {
            /* data after padding */
            return -1;
        }

        acc = (acc << 6) | v;

        if (++n == 4) {
            *d++ = (u_char) (acc >> 16);
            *d++ = (u_char) (acc >> 8);
            *d++ = (u_char) acc;
            acc = 0;
            n = 0;
        }
    }

    if (n == 1) {
        return -1;
    }

    if (flags & CAPTURE_BASE64_STRICT) {
        /* canonical: the padding completes the last quantum exactly */
        if (total % 4 != 0 || (n == 0 && pad != 0)
            || (n != 0 && pad != 4 - n))
        {
            return -1;
        }

    } else if (pad > 3) {
        return -1;
    }

    if (n == 2) {
        if ((flags & CAPTURE_BASE64_STRICT) && (acc & 0x0f)) {
            return -1;
        }

        *d++ = (u_char) (acc >> 4);

    } else if (n == 3) {
        if ((flags & CAPTURE_BASE64_STRICT) && (acc & 0x03)) {
            return -1;
        }

        *d++ = (u_char) (acc >> 10);
        *d++ = (u_char) (acc >> 2);
    }

    *dst_len = d - dst;

    return 0;
}


int
capture_base64_is_likely(const u_char *p, size_t len, int mode)
{
    u_char  ch;
    size_t  i, n;

    if (len == 0 || len % 4 != 0) {
        return 0;
    }

    n = len < CAPTURE_BASE64_SAMPLE ? len : CAPTURE_BASE64_SAMPLE;

    for (i = 0; i < n; i++) {
        ch = p[i];

        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
            || (ch >= '0' && ch <= '9') || ch == '=')
        {
            continue;
        }

        if (mode == CAPTURE_BASE64_LIKELY_URL) {
            if (ch == '-' || ch == '_') {
                continue;
            }

            return 0;
        }

        if (ch == '+' || ch == '/') {
            continue;
        }

        if (mode == CAPTURE_BASE64_LIKELY_LOOSE && ch == ' ') {
            continue;
        }

        return 0;
    }

    return 1;
}
