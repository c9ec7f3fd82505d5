/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "tap.h"
#include "capture_inflate.h"


static void *t_alloc(void *ctx, size_t size);
static void t_free(void *ctx, void *p);
static size_t t_deflate(const u_char *in, size_t len, int wbits, u_char *out,
    size_t cap);
static int t_run(const u_char *in, size_t len, size_t chunk, size_t max,
    u_char **out, size_t *out_len);


typedef struct {
    size_t  live;
    size_t  peak;
} t_stats_t;


static t_stats_t        t_st;
static capture_alloc_t  t_a = { t_alloc, t_free, &t_st };
static u_char           t_res[1 << 16];


static void *
t_alloc(void *ctx, size_t size)
{
    size_t     *p;
    t_stats_t  *st = ctx;

    p = malloc(size + sizeof(size_t));
    if (p == NULL) {
        return NULL;
    }

    *p = size;
    st->live += size;

    if (st->live > st->peak) {
        st->peak = st->live;
    }

    return p + 1;
}


static void
t_free(void *ctx, void *p)
{
    size_t     *s = (size_t *) p - 1;
    t_stats_t  *st = ctx;

    st->live -= *s;
    free(s);
}


/* wbits 31: gzip, 15: zlib */

static size_t
t_deflate(const u_char *in, size_t len, int wbits, u_char *out, size_t cap)
{
    z_stream  zs;

    memset(&zs, 0, sizeof(z_stream));

    deflateInit2(&zs, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);

    zs.next_in = (u_char *) in;
    zs.avail_in = (uInt) len;
    zs.next_out = out;
    zs.avail_out = (uInt) cap;

    deflate(&zs, Z_FINISH);
    len = zs.total_out;
    deflateEnd(&zs);

    return len;
}


static int
t_run(const u_char *in, size_t len, size_t chunk, size_t max, u_char **out,
    size_t *out_len)
{
    int                 rc;
    size_t              n;
    u_char             *d;
    capture_inflate_t  *ci;

    ci = capture_inflate_create(&t_a, max, len * 4);
    if (ci == NULL) {
        return -100;
    }

    rc = CAPTURE_INFLATE_OK;

    while (len) {
        n = len < chunk ? len : chunk;

        rc = capture_inflate_feed(ci, in, n);
        if (rc != CAPTURE_INFLATE_OK) {
            break;
        }

        in += n;
        len -= n;
    }

    if (rc == CAPTURE_INFLATE_OK) {
        rc = capture_inflate_finish(ci);
    }

    if (rc == CAPTURE_INFLATE_OK && out) {
        d = capture_inflate_data(ci, &n);
        memcpy(t_res, d, n < sizeof(t_res) ? n : sizeof(t_res));
        t_res[n < sizeof(t_res) ? n : sizeof(t_res) - 1] = '\0';
        *out = t_res;
        *out_len = n;
    }

    capture_inflate_destroy(ci);

    return rc;
}


int
main(void)
{
    int                 rc, bad;
    char                text[8192];
    size_t              i, glen, zlen, len, two, big_len;
    u_char             *out, gz[16384], zl[16384], cat[32768], *big, *bomb;
    capture_inflate_t  *ci;

    for (i = 0; i < sizeof(text) - 1; i++) {
        text[i] = "{\"event\":\"$pageview\",\"n\":"[i % 25] + (i / 700) % 3;
    }
    text[sizeof(text) - 1] = '\0';

    glen = t_deflate((u_char *) text, strlen(text), 31, gz, sizeof(gz));
    zlen = t_deflate((u_char *) text, strlen(text), 15, zl, sizeof(zl));
    ok(glen > 18 && gz[0] == 0x1f && gz[1] == 0x8b, "gzip vector built");

    /* every chunking gives the same output */
    bad = 0;
    for (i = 1; i <= glen; i += (i < 64 ? 1 : 97)) {
        rc = t_run(gz, glen, i, 1 << 20, &out, &len);
        if (rc != 0 || len != strlen(text) || strcmp((char *) out, text)) {
            bad++;
            diag("chunk %zu: rc %d len %zu", i, rc, len);
        }
    }
    is_int(bad, 0, "gzip: all chunk sizes decode identically");

    rc = t_run(zl, zlen, 7, 1 << 20, &out, &len);
    ok(rc == 0 && strcmp((char *) out, text) == 0, "zlib header detected");

    /* concatenated members */
    memcpy(cat, gz, glen);
    two = t_deflate((u_char *) "tail", 4, 31, cat + glen,
                    sizeof(cat) - glen);
    rc = t_run(cat, glen + two, 5, 1 << 20, &out, &len);
    ok(rc == 0 && len == strlen(text) + 4
       && memcmp(out + strlen(text), "tail", 4) == 0,
       "two gzip members concatenated");

    /* trailing zero padding is tolerated */
    memcpy(cat, gz, glen);
    memset(cat + glen, 0, 10);
    rc = t_run(cat, glen + 10, 3, 1 << 20, &out, &len);
    ok(rc == 0 && len == strlen(text), "trailing zero bytes skipped");

    /* trailing garbage is not */
    memcpy(cat, gz, glen);
    memcpy(cat + glen, "garbage!", 8);
    is_int(t_run(cat, glen + 8, 4096, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "trailing garbage rejected");

    memcpy(cat, gz, glen);
    memcpy(cat + glen, "\0\0x", 3);
    is_int(t_run(cat, glen + 3, 4096, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "garbage after zero padding rejected");

    /* truncation and corruption */
    is_int(t_run(gz, glen - 4, 100, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "truncated (no trailer) fails at finish");
    is_int(t_run(gz, 10, 100, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "header only");
    is_int(t_run(gz, 0, 100, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "empty input");
    memcpy(cat, gz, glen);
    cat[glen - 6] ^= 0x55;
    is_int(t_run(cat, glen, 100, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "bad CRC");
    is_int(t_run((u_char *) "\x1f\x8b\x08garbagegarbage", 17, 100, 1 << 20,
                 NULL, NULL),
           CAPTURE_INFLATE_ERROR, "corrupt gzip");
    is_int(t_run((u_char *) "{\"event\":1}", 11, 100, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_ERROR, "plain JSON is not a stream");

    /* the cap */
    len = strlen(text);
    is_int(t_run(gz, glen, 13, len, NULL, NULL), CAPTURE_INFLATE_OK,
           "cap equal to the size");
    is_int(t_run(gz, glen, 13, len - 1, NULL, NULL),
           CAPTURE_INFLATE_TOO_LARGE, "cap one below the size");
    is_int(t_run(gz, glen, glen, 100, NULL, NULL),
           CAPTURE_INFLATE_TOO_LARGE, "small cap, one chunk");

    /* a bomb: 64 MiB of zeros against a 1 MiB cap, memory stays bounded */
    big_len = 64 << 20;
    big = calloc(1, big_len);
    bomb = malloc(1 << 20);
    glen = t_deflate(big, big_len, 31, bomb, 1 << 20);
    free(big);
    diag("bomb: %zu bytes compressed", glen);

    t_st.peak = 0;
    is_int(t_run(bomb, glen, 8192, 1 << 20, NULL, NULL),
           CAPTURE_INFLATE_TOO_LARGE, "bomb stops at the cap");
    ok(t_st.peak < (3 << 20) + 65536, "bomb peak memory %zu bytes",
       t_st.peak);
    free(bomb);

    /* errors are sticky */
    ci = capture_inflate_create(&t_a, 1 << 20, 0);
    ok(ci != NULL, "create");
    rc = capture_inflate_feed(ci, (u_char *) "\x1f\x8b\x08\xff\xff\xff\xff"
                              "\xff\xff\xff\xff\xff", 12);
    rc = capture_inflate_feed(ci, gz, 10);
    is_int(rc, CAPTURE_INFLATE_ERROR, "error is sticky");
    is_int(capture_inflate_finish(ci), CAPTURE_INFLATE_ERROR,
           "finish after error");
    ok(strlen(capture_inflate_strerror(ci)) > 0, "strerror: %s",
       capture_inflate_strerror(ci));
    capture_inflate_destroy(ci);

    is_int(t_st.live, 0, "no leaks through the allocator");

    return done_testing();
}
