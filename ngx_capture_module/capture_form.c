/*
 * Copyright (C) edgehog
 */


#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include "capture_form.h"


static int capture_form_hex(u_char ch);
static size_t capture_form_decode_one(const u_char *p, const u_char *end,
    u_char *ch);


void
capture_form_init(capture_form_iter_t *it, const u_char *p, size_t len)
{
    it->pos = p;
    it->end = p + len;
}


int
capture_form_next(capture_form_iter_t *it, capture_form_str_t *key,
    capture_form_str_t *value)
{
    const u_char  *p, *amp, *eq;

    while (it->pos < it->end) {
        p = it->pos;

        amp = memchr(p, '&', it->end - p);
        if (amp == NULL) {
            amp = it->end;
        }

        it->pos = amp < it->end ? amp + 1 : it->end;

        if (amp == p) {
            continue;
        }

        eq = memchr(p, '=', amp - p);

        key->data = p;

        if (eq == NULL) {
            key->len = amp - p;
            value->data = amp;
            value->len = 0;

        } else {
            key->len = eq - p;
            value->data = eq + 1;
            value->len = amp - (eq + 1);
        }

        return 1;
    }

    return 0;
}


size_t
capture_form_unescape(u_char *dst, const u_char *src, size_t len)
{
    size_t         n;
    u_char        *d;
    const u_char  *end;

    d = dst;
    end = src + len;

    while (src < end) {
        n = capture_form_decode_one(src, end, d);
        src += n;
        d++;
    }

    return d - dst;
}


int
capture_form_key_is(const capture_form_str_t *key, const char *name)
{
    u_char         ch;
    const u_char  *p, *end;

    p = key->data;
    end = p + key->len;

    while (p < end) {
        if (*name == '\0') {
            return 0;
        }

        p += capture_form_decode_one(p, end, &ch);

        if (ch != (u_char) *name++) {
            return 0;
        }
    }

    return *name == '\0';
}


void
capture_form_parse(capture_form_t *form, const u_char *p, size_t len)
{
    capture_form_str_t   key, value;
    capture_form_iter_t  it;

    memset(form, 0, sizeof(capture_form_t));

    capture_form_init(&it, p, len);

    while (capture_form_next(&it, &key, &value)) {

#define capture_form_field(name)                                              \
        if (!form->has_##name && capture_form_key_is(&key, #name)) {          \
            form->name = value;                                               \
            form->has_##name = 1;                                             \
            continue;                                                         \
        }

        capture_form_field(data)
        capture_form_field(compression)
        capture_form_field(ver)
        capture_form_field(lib_version)
        capture_form_field(api_key)
        capture_form_field(token)
        capture_form_field(sent_at)

#undef capture_form_field
    }
}


int
capture_form_has_prefix(const u_char *p, size_t len)
{
    size_t              i, n;
    static const char  *prefixes[] = {
        "data=", "ver=", "_=", "ip=", "compression="
    };

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        n = strlen(prefixes[i]);

        if (len >= n && memcmp(p, prefixes[i], n) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
capture_form_hex(u_char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }

    ch |= 0x20;

    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }

    return -1;
}


static size_t
capture_form_decode_one(const u_char *p, const u_char *end, u_char *ch)
{
    int  hi, lo;

    if (*p == '+') {
        *ch = ' ';
        return 1;
    }

    if (*p == '%' && end - p >= 3) {
        hi = capture_form_hex(p[1]);
        lo = capture_form_hex(p[2]);

        if (hi >= 0 && lo >= 0) {
            *ch = (u_char) (hi << 4 | lo);
            return 3;
        }
    }

    /* an invalid escape stays literally */
    *ch = *p;

    return 1;
}
