/*
 * Copyright (C) edgehog
 */

/*
 * Per-request scratch memory for a /flags call, kept on a per-worker
 * free list between requests.  The results, lookup marks and response
 * buffers of a 20-flag team (8 KB) would otherwise be a malloc() of
 * their own plus another request pool block, both freed again at the
 * end of every request.  The block comes back in the ctx cleanup, when
 * the request pool goes, so it lives exactly as long as pool memory.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"


/* what the free list keeps: more or bigger blocks go back to free() */
#define NGX_HTTP_DECIDE_SCRATCH_KEEP  64
#define NGX_HTTP_DECIDE_SCRATCH_MAX   (1024 * 1024)


struct ngx_http_decide_scratch_s {
    ngx_http_decide_scratch_t  *next;
    size_t                      size;       /* bytes after this header */
    /* data follows, aligned like malloc()'s */
};


/* the worker's main thread is the only user */
static ngx_http_decide_scratch_t  *ngx_http_decide_scratch_free;
static ngx_uint_t                  ngx_http_decide_scratch_nfree;


/*
 * size bytes of ctx's block (zeroed if asked); the first call takes a
 * block of at least hint bytes.  When the block is full (a team bigger
 * than the hint said), the request pool serves as before.
 */
void *
ngx_http_decide_scratch_alloc(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, size_t size, size_t hint, ngx_uint_t zero)
{
    u_char                     *p;
    ngx_http_decide_scratch_t  *s;

    size = ngx_align(size, 16);

    if (ctx->scratch == NULL) {
        hint = ngx_max(hint, size);
        s = ngx_http_decide_scratch_free;

        if (s != NULL && s->size >= hint) {
            ngx_http_decide_scratch_free = s->next;
            ngx_http_decide_scratch_nfree--;

        } else {
            /* sizes only grow: a smaller block on top is dropped */
            if (s != NULL) {
                ngx_http_decide_scratch_free = s->next;
                ngx_http_decide_scratch_nfree--;
                ngx_free(s);
            }

            hint = ngx_align(hint + sizeof(ngx_http_decide_scratch_t), 4096)
                   - sizeof(ngx_http_decide_scratch_t);

            s = ngx_alloc(sizeof(ngx_http_decide_scratch_t) + hint,
                          r->connection->log);
            if (s == NULL) {
                return zero ? ngx_pcalloc(r->pool, size)
                            : ngx_pnalloc(r->pool, size);
            }

            s->size = hint;
        }

        ctx->scratch = s;
        ctx->scratch_pos = (u_char *) (s + 1);
    }

    s = ctx->scratch;

    if ((size_t) ((u_char *) (s + 1) + s->size - ctx->scratch_pos) < size) {
        return zero ? ngx_pcalloc(r->pool, size) : ngx_pnalloc(r->pool, size);
    }

    p = ctx->scratch_pos;
    ctx->scratch_pos += size;

    if (zero) {
        ngx_memzero(p, size);
    }

    return p;
}


/* ctx's block back to the free list; the request no longer uses it */
void
ngx_http_decide_scratch_release(ngx_http_decide_ctx_t *ctx)
{
    ngx_http_decide_scratch_t  *s;

    s = ctx->scratch;

    if (s == NULL) {
        return;
    }

    ctx->scratch = NULL;
    ctx->scratch_pos = NULL;

    if (ngx_http_decide_scratch_nfree >= NGX_HTTP_DECIDE_SCRATCH_KEEP
        || s->size > NGX_HTTP_DECIDE_SCRATCH_MAX)
    {
        ngx_free(s);
        return;
    }

    s->next = ngx_http_decide_scratch_free;
    ngx_http_decide_scratch_free = s;
    ngx_http_decide_scratch_nfree++;
}
