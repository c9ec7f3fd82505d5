/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tap.h"
#include "capture_decode.h"


static int dec(const char *body, size_t len, const char *ctype,
    const char *hint, int legacy, int strict, capture_error_t *err);
static void *t_alloc(void *ctx, size_t size);
static void t_free(void *ctx, void *p);


static const capture_alloc_t  t_a = { t_alloc, t_free, NULL };
static u_char                *t_out;
static size_t                 t_len;
static int                    t_borrow;


static void *
t_alloc(void *ctx, size_t size)
{
    return malloc(size);
}


static void
t_free(void *ctx, void *p)
{
    free(p);
}


static int
dec(const char *body, size_t len, const char *ctype, const char *hint,
    int legacy, int strict, capture_error_t *err)
{
    capture_decode_in_t  in;

    memset(&in, 0, sizeof(in));
    in.body = (const u_char *) body;
    in.body_len = len;
    in.content_type = (const u_char *) ctype;
    in.content_type_len = ctype ? strlen(ctype) : 0;
    in.query_compression = (const u_char *) hint;
    in.query_compression_len = hint ? strlen(hint) : 0;
    in.max_size = 1024 * 1024;
    in.alloc = &t_a;
    in.legacy = legacy;
    in.strict = strict;
    in.borrow = t_borrow;

    /* leaks in tests are fine: LeakSanitizer is off for pool-style use */
    t_out = NULL;
    memset(err, 0, sizeof(*err));

    return capture_decode(&in, &t_out, &t_len, err);
}


int
main(void)
{
    uLongf            zlen;
    u_char            gz[256];
    z_stream          zs;
    capture_error_t   err;
    const char       *json = "{\"event\":\"x\"}";

    ok(dec(json, strlen(json), NULL, NULL, 0, 0, &err) == 0
       && strcmp((char *) t_out, json) == 0, "plain json");
    free(t_out);

    ok(dec("eyJldmVudCI6IngifQ==", 20, NULL, NULL, 0, 1, &err) == 0
       && strcmp((char *) t_out, json) == 0, "whole payload base64");
    free(t_out);

    ok(dec("data=eyJldmVudCI6IngifQ%3D%3D", 29,
           "application/x-www-form-urlencoded", NULL, 1, 1, &err) == 0
       && strcmp((char *) t_out, json) == 0, "legacy form base64");
    free(t_out);

    ok(dec("data=eyJldmVudCI6IngifQ%3D%3D", 29,
           "application/x-www-form-urlencoded", NULL, 0, 1, &err) == 0
       && strcmp((char *) t_out, "eyJldmVudCI6IngifQ==") == 0,
       "strict: no unwrap on /i/v0/e");
    free(t_out);

    ok(dec("data=eyJldmVudCI6IngifQ%3D%3D", 29,
           "application/x-www-form-urlencoded", NULL, 0, 0, &err) == 0
       && strcmp((char *) t_out, json) == 0, "lenient: unwrap everywhere");
    free(t_out);

    ok(dec(json, strlen(json), "application/x-www-form-urlencoded", NULL, 0,
           0, &err) != 0 && strstr(err.error, "expected form data") != NULL,
       "form type without form");

    ok(dec("", 0, NULL, NULL, 0, 0, &err) != 0
       && strcmp(err.error, "request missing data payload") == 0, "empty");

    ok(dec("\x1f\x8b\x08garbage", 10, NULL, NULL, 0, 0, &err) != 0
       && strstr(err.error, "invalid GZIP data") != NULL, "corrupt gzip");

    ok(dec(json, strlen(json), NULL, "gzip-js", 0, 1, &err) != 0
       && err.status == 400, "strict: gzip hint without gzip");
    ok(dec(json, strlen(json), NULL, "gzip-js", 0, 0, &err) == 0,
       "lenient: gzip hint falls through");
    free(t_out);

    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (u_char *) json;
    zs.avail_in = strlen(json);
    zs.next_out = gz;
    zs.avail_out = sizeof(gz);
    deflate(&zs, Z_FINISH);
    zlen = sizeof(gz) - zs.avail_out;
    deflateEnd(&zs);

    ok(dec((char *) gz, zlen, "text/plain", NULL, 0, 1, &err) == 0
       && strcmp((char *) t_out, json) == 0, "gzip by magic");
    free(t_out);

    ok(dec("N4IgzgLgTghgxgUwAQC4QAkA", 24, NULL, "lz64", 1, 0, &err) != 0
       || t_out != NULL, "lz64 decodes or fails cleanly");
    free(t_out);

    ok(dec("\xff\xfe", 2, NULL, NULL, 0, 0, &err) != 0
       && strstr(err.error, "invalid UTF8") != NULL, "invalid utf-8");

    ok(capture_decode_path_is_legacy((u_char *) "/e/", 3), "/e/ legacy");
    ok(capture_decode_path_is_legacy((u_char *) "/engage", 7), "/engage");
    ok(!capture_decode_path_is_legacy((u_char *) "/i/v0/e/", 8), "/i/v0/e");
    ok(!capture_decode_path_is_legacy((u_char *) "/batch", 6), "/batch");
    is_int(capture_decode_hint((u_char *) "GZIP-JS", 7), CAPTURE_HINT_GZIP,
           "hint case-insensitive");

    /* borrowed: the input itself when nothing was decoded, else a copy */
    t_borrow = 1;
    ok(dec(json, strlen(json), NULL, NULL, 0, 0, &err) == 0
       && t_out == (u_char *) json && t_len == strlen(json),
       "plain json borrowed");
    ok(dec(json, strlen(json) - 1, NULL, NULL, 0, 0, &err) == 0
       && t_out == (u_char *) json && t_len == strlen(json) - 1,
       "borrowed by length");
    ok(dec("eyJldmVudCI6IngifQ==", 20, NULL, NULL, 0, 1, &err) == 0
       && strcmp((char *) t_out, json) == 0, "base64 decoded when borrowing");
    free(t_out);
    ok(dec("data=%7B%22event%22%3A%22x%22%7D", 32,
           "application/x-www-form-urlencoded", NULL, 0, 0, &err) == 0
       && strcmp((char *) t_out, json) == 0, "form decoded when borrowing");
    free(t_out);
    ok(dec("caf\xc3\xa9", 5, NULL, NULL, 0, 0, &err) == 0 && t_len == 5
       && memcmp(t_out, "caf\xc3\xa9", 5) == 0, "utf-8 borrowed as it is");
    ok(dec("\xc3", 1, NULL, NULL, 0, 0, &err) != 0 && err.status == 400,
       "invalid utf-8 refused when borrowing");
    t_borrow = 0;

    return done_testing();
}
