/*
 * Copyright (C) edgehog
 */


#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include <zlib.h>

#include "capture_inflate.h"


#define CAPTURE_INFLATE_MIN_BUF  4096


typedef enum {
    capture_inflate_start_e = 0,
    capture_inflate_member_e,
    capture_inflate_between_e,
    capture_inflate_padding_e,
    capture_inflate_failed_e
} capture_inflate_state_e;


struct capture_inflate_s {
    z_stream                  zs;
    capture_alloc_t           a;
    capture_inflate_state_e   state;
    int                       rc;
    unsigned                  zinit:1;
    const char               *err;

    u_char                   *out;
    size_t                    len;
    size_t                    cap;
    size_t                    max_size;
};


static void *capture_inflate_zalloc(void *opaque, u_int items, u_int size);
static void capture_inflate_zfree(void *opaque, void *address);
static int capture_inflate_grow(capture_inflate_t *ci);
static int capture_inflate_fail(capture_inflate_t *ci, int rc,
    const char *err);


capture_inflate_t *
capture_inflate_create(const capture_alloc_t *a, size_t max_size,
    size_t size_hint)
{
    capture_inflate_t  *ci;

    ci = a->alloc(a->ctx, sizeof(capture_inflate_t));
    if (ci == NULL) {
        return NULL;
    }

    memset(ci, 0, sizeof(capture_inflate_t));

    ci->a = *a;

    /* keeps cap + 2 from wrapping */
    ci->max_size = max_size < ((size_t) -1) / 4 ? max_size
                                                 : ((size_t) -1) / 4;
    ci->state = capture_inflate_start_e;

    if (size_hint < CAPTURE_INFLATE_MIN_BUF) {
        size_hint = CAPTURE_INFLATE_MIN_BUF;
    }

    /* one byte above the cap tells "too large" from "exactly the cap" */
    ci->cap = size_hint < ci->max_size ? size_hint : ci->max_size;
    ci->cap++;

    ci->out = a->alloc(a->ctx, ci->cap + 1);
    if (ci->out == NULL) {
        a->free(a->ctx, ci);
        return NULL;
    }

    ci->zs.zalloc = capture_inflate_zalloc;
    ci->zs.zfree = capture_inflate_zfree;
    ci->zs.opaque = &ci->a;

    /* +32: detect the zlib or gzip header automatically */
    if (inflateInit2(&ci->zs, MAX_WBITS + 32) != Z_OK) {
        a->free(a->ctx, ci->out);
        a->free(a->ctx, ci);
        return NULL;
    }

    ci->zinit = 1;

    return ci;
}


int
capture_inflate_feed(capture_inflate_t *ci, const u_char *p, size_t len)
{
    int       rc, pending;
    size_t    chunk, room;

    if (ci->state == capture_inflate_failed_e) {
        return ci->rc;
    }

    pending = 0;

    /*
     * "pending": the last inflate() filled the output, so zlib may still
     * hold output for input it has already consumed
     */

    while (len || pending) {

        if (ci->state == capture_inflate_between_e
            || ci->state == capture_inflate_padding_e)
        {
            if (len == 0) {
                break;
            }

            if (*p == '\0') {
                ci->state = capture_inflate_padding_e;
                p++;
                len--;
                continue;
            }

            if (ci->state == capture_inflate_padding_e) {
                return capture_inflate_fail(ci, CAPTURE_INFLATE_ERROR,
                                            "trailing garbage");
            }

            if (inflateReset(&ci->zs) != Z_OK) {
                return capture_inflate_fail(ci, CAPTURE_INFLATE_ERROR,
                                            "inflateReset() failed");
            }
        }

        ci->state = capture_inflate_member_e;

        if (ci->len == ci->cap) {
            rc = capture_inflate_grow(ci);
            if (rc != CAPTURE_INFLATE_OK) {
                return rc;
            }
        }

        /* avail_in and avail_out are uInt: work in slices */
        chunk = len < 0x40000000 ? len : 0x40000000;
        room = ci->cap - ci->len;
        room = room < 0x40000000 ? room : 0x40000000;

        ci->zs.next_in = (u_char *) p;
        ci->zs.avail_in = (uInt) chunk;
        ci->zs.next_out = ci->out + ci->len;
        ci->zs.avail_out = (uInt) room;

        rc = inflate(&ci->zs, Z_NO_FLUSH);

        ci->len = ci->zs.next_out - ci->out;
        p += chunk - ci->zs.avail_in;
        len -= chunk - ci->zs.avail_in;

        /*
         * the cap first: a stream that overflows it and is corrupt later
         * gets the same answer whatever the chunking
         */
        if (ci->len > ci->max_size) {
            return capture_inflate_fail(ci, CAPTURE_INFLATE_TOO_LARGE,
                                        "decompressed size limit exceeded");
        }

        switch (rc) {

        case Z_OK:
            break;

        case Z_STREAM_END:
            ci->state = capture_inflate_between_e;
            break;

        case Z_BUF_ERROR:
            /*
             * no progress possible: the input is used up (more will come
             * in the next chunk) or the output is full (grown above)
             */
            break;

        case Z_MEM_ERROR:
            return capture_inflate_fail(ci, CAPTURE_INFLATE_NOMEM,
                                        "out of memory");

        default:
            return capture_inflate_fail(ci, CAPTURE_INFLATE_ERROR,
                                        ci->zs.msg ? ci->zs.msg
                                                   : "corrupt stream");
        }

        pending = (ci->zs.avail_out == 0
                   && ci->state == capture_inflate_member_e);
    }

    ci->out[ci->len] = '\0';

    return CAPTURE_INFLATE_OK;
}


int
capture_inflate_finish(capture_inflate_t *ci)
{
    if (ci->state == capture_inflate_failed_e) {
        return ci->rc;
    }

    if (ci->state == capture_inflate_between_e
        || ci->state == capture_inflate_padding_e)
    {
        ci->out[ci->len] = '\0';
        return CAPTURE_INFLATE_OK;
    }

    return capture_inflate_fail(ci, CAPTURE_INFLATE_ERROR,
                                ci->state == capture_inflate_start_e
                                ? "empty input" : "unexpected end of stream");
}


u_char *
capture_inflate_data(capture_inflate_t *ci, size_t *len)
{
    *len = ci->len;
    ci->out[ci->len] = '\0';

    return ci->out;
}


const char *
capture_inflate_strerror(capture_inflate_t *ci)
{
    return ci->err ? ci->err : "no error";
}


void
capture_inflate_destroy(capture_inflate_t *ci)
{
    capture_alloc_t  a;

    if (ci == NULL) {
        return;
    }

    a = ci->a;

    if (ci->zinit) {
        inflateEnd(&ci->zs);
    }

    a.free(a.ctx, ci->out);
    a.free(a.ctx, ci);
}


static void *
capture_inflate_zalloc(void *opaque, u_int items, u_int size)
{
    capture_alloc_t  *a = opaque;

    return a->alloc(a->ctx, (size_t) items * size);
}


static void
capture_inflate_zfree(void *opaque, void *address)
{
    capture_alloc_t  *a = opaque;

    a->free(a->ctx, address);
}


static int
capture_inflate_grow(capture_inflate_t *ci)
{
    size_t   cap;
    u_char  *p;

    if (ci->cap > ci->max_size) {
        /* the buffer already holds max_size + 1: the next byte is over */
        return capture_inflate_fail(ci, CAPTURE_INFLATE_TOO_LARGE,
                                    "decompressed size limit exceeded");
    }

    cap = ci->cap * 2;

    if (cap < ci->cap || cap > ci->max_size + 1) {
        cap = ci->max_size + 1;
    }

    p = ci->a.alloc(ci->a.ctx, cap + 1);
    if (p == NULL) {
        return capture_inflate_fail(ci, CAPTURE_INFLATE_NOMEM,
                                    "out of memory");
    }

    memcpy(p, ci->out, ci->len);
    ci->a.free(ci->a.ctx, ci->out);

    ci->out = p;
    ci->cap = cap;

    return CAPTURE_INFLATE_OK;
}


static int
capture_inflate_fail(capture_inflate_t *ci, int rc, const char *err)
{
    ci->state = capture_inflate_failed_e;
    ci->rc = rc;
    ci->err = err;

    return rc;
}
