/*
 * Copyright (C) edgehog
 */

/*
 * Vectors from lz-string 1.5.0 (npm), LZString.compressToBase64().
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "capture_lzstring.h"


static void *t_alloc(void *ctx, size_t size);
static void t_free(void *ctx, void *p);
static int lz(const char *in, size_t max, unsigned flags, u_char **out,
    size_t *len);


static size_t           t_live;
static capture_alloc_t  t_a = { t_alloc, t_free, &t_live };


static const struct {
    const char  *lz;
    const char  *text;
} vectors[] = {
    { "IZA=", "a" },
    { "BYUwNmD2Q===", "hello" },
    { "IY18ZXTt7Q==",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaa" },
    { "N4IghgDglg+g1gUwJ4gFwggCwMYwC4IDOeIANCAgG4IB2J6AJBGAOZVQIDuZIAJlMSg1s"
      "eGFF5oQAV0IIATgFoAjDwhyA9hHl4OhNKAbYpcubVHGANpMx48EQqgD0jhAA8wAWwgWE"
      "AOmzqHo4gAL7kOh5EeJ4QkgBMAAxxAKwKCQDsaUoAKkoJqMkAnAUAHABaoUA===",
      "{\"api_key\":\"phc_test\",\"event\":\"$pageview\",\"distinct_id\":"
      "\"user-1\",\"properties\":{\"$current_url\":\"https://example.com/\"},"
      "\"timestamp\":\"2025-07-01T10:59:58Z\"}" },
    { "BYS4NmD2AEDuBvAnMATagagmoWjlDhpkA===",
      "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xe4\xb8\xad\xe6\x96\x87" },
    { "KYWw9gVglgBIvBuAA9wPBuEj9mwB2ATIA===",
      "emoji \xf0\x9f\x98\x80\xf0\x9f\x8e\x89 end" },
    { "Q===", "" }
};


static const char  *batch_lz =
    "NobwRApgbhB2AuYBcYAkBDArvA9gY3QAd5MAnCMAGjENJ0IlPgEsIBnZcXAazmRoAWeAPr"
    "x2iAL4TK4aHEQoM2fERLkqNOgyasOSLjl6x+hIaPFgpMyDAT8luAsTIVqteoxbtOYHnxSm"
    "ImJsktKytgpoWI6qLhru2l56BkYmZsGh1nJ2itEqzupuWp66Pn7GAekWVuHy9nlOaq6aHj"
    "re+r6G/oJB1WE2dbnKjXFFrUllXRU95iGW/dmRDvlN8cVtyZ2plb1zNQM5UcOxhS2JpR3l"
    "abuZtYfLI6cJJe0p3YGztwdLDSfNzxtJtsZhl5lkIvVjgV/usJpcptdPmC7j8oasxudXlt"
    "3lU9gsIUMYtC1uMLm9ph9QftFpCieizi9NlcdkjqQSjnTRgzAfDgZS+uDBhyVlyAXDyYiq"
    "fihQ8/iTMUyESypYL7r9iRjGUCcTdkd9aSKnrCydiKbivjTCYaYaSscyQQKUQbHjaFdqzb"
    "q2TL1fSxSb7fy8arUZyjbbFXzzXrLcKXfKtbydazpWq0aLjXalQ6g06rXHNTyJcrHfq83K"
    "C+LTZKSzHZRruZWA1GvanQ66E0Xsxb2XXfRmI0mVbnY+WG/6s4Hu9602G3YmPcng87R37M"
    "5HPSmQ9b44Wq8Wc6WR/XVwOF0PD730+H3dWD7WfVe553J9Gew/Zx2913X9O2zvGxOzYSAA"
    "ukAA";


static void *
t_alloc(void *ctx, size_t size)
{
    size_t  *p;

    p = malloc(size + sizeof(size_t));
    if (p == NULL) {
        return NULL;
    }

    *p = size;
    *(size_t *) ctx += size;

    return p + 1;
}


static void
t_free(void *ctx, void *p)
{
    size_t  *s = (size_t *) p - 1;

    *(size_t *) ctx -= *s;
    free(s);
}


static int
lz(const char *in, size_t max, unsigned flags, u_char **out, size_t *len)
{
    *out = NULL;

    return capture_lzstring_decompress_base64((const u_char *) in,
                                              strlen(in), max, flags, &t_a,
                                              out, len);
}


int
main(void)
{
    int      rc;
    char    *s, *p, expect[4096];
    size_t   i, len;
    u_char  *out;

    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        rc = lz(vectors[i].lz, 1 << 20, 0, &out, &len);
        is_int(rc, CAPTURE_LZ_OK, "vector %zu decodes", i);

        if (rc == CAPTURE_LZ_OK) {
            is_int(len, strlen(vectors[i].text), "vector %zu length", i);
            is_str((char *) out, vectors[i].text, "vector %zu text", i);
            t_free(&t_live, out);
        }
    }

    /* 40 identical events: long back references */
    p = expect;
    *p++ = '[';

    for (i = 0; i < 40; i++) {
        p += sprintf(p, "%s{\"event\":\"$autocapture\",\"properties\":"
                     "{\"token\":\"phc_test\"}}", i ? "," : "");
    }

    strcpy(p, "]");

    rc = lz(batch_lz, 1 << 20, 0, &out, &len);
    is_int(rc, CAPTURE_LZ_OK, "batch decodes");
    if (rc == CAPTURE_LZ_OK) {
        is_str((char *) out, expect, "batch text");
        t_free(&t_live, out);
    }

    /* size cap: 89 bytes of 'a' */
    is_int(lz("IY18ZXTt7Q==", 89, 0, &out, &len), CAPTURE_LZ_OK,
           "cap equal to the size");
    if (out) {
        t_free(&t_live, out);
    }
    is_int(lz("IY18ZXTt7Q==", 88, 0, &out, &len), CAPTURE_LZ_ETOOLARGE,
           "cap one below the size");
    is_int(lz("IY18ZXTt7Q==", 10, 0, &out, &len), CAPTURE_LZ_ETOOLARGE,
           "small cap");
    is_int(lz(batch_lz, 100, 0, &out, &len), CAPTURE_LZ_ETOOLARGE,
           "batch over the cap");
    /* UTF-8 can be larger than the UTF-16 unit count */
    is_int(lz("BYS4NmD2AEDuBvAnMATagagmoWjlDhpkA===", 20, 0, &out, &len),
           CAPTURE_LZ_ETOOLARGE, "cap applies to UTF-8 bytes");

    /* lone surrogate "lone \ud800 x" */
    rc = lz("DYewdgpgBIABtQHkA===", 1024, 0, &out, &len);
    is_int(rc, CAPTURE_LZ_OK, "lone surrogate accepted by default");
    if (rc == CAPTURE_LZ_OK) {
        is_str((char *) out, "lone \xef\xbf\xbd x", "lone surrogate -> U+FFFD");
        t_free(&t_live, out);
    }
    is_int(lz("DYewdgpgBIABtQHkA===", 1024, CAPTURE_LZ_STRICT_UTF16, &out,
              &len), CAPTURE_LZ_EUTF16, "lone surrogate strict");

    /* invalid input */
    is_int(lz("", 1024, 0, &out, &len), CAPTURE_LZ_EINVAL, "empty input");
    is_int(lz("AAAA", 1024, 0, &out, &len), CAPTURE_LZ_EINVAL,
           "no end mark (JS returns \"\")");
    is_int(lz("!!!!", 1024, 0, &out, &len), CAPTURE_LZ_EINVAL, "bad chars");
    is_int(lz("{\"event\":1}", 1024, 0, &out, &len), CAPTURE_LZ_EINVAL,
           "plain JSON");
    is_int(lz("N4IghgDglg+g1gUwJ4gFwggCwMYw", 1024, 0, &out, &len),
           CAPTURE_LZ_EINVAL, "truncated");
    is_int(lz("////////////", 1024, 0, &out, &len), CAPTURE_LZ_EINVAL,
           "bad dictionary reference");

    /* '+' arrived as ' ' through a form body */
    s = strdup(vectors[3].lz);
    p = strchr(s, '+');
    ok(p != NULL, "vector has a '+'");
    if (p) {
        *p = ' ';
    }
    is_int(lz(s, 1024, 0, &out, &len), CAPTURE_LZ_EINVAL,
           "space rejected by default");
    rc = lz(s, 1024, CAPTURE_LZ_SPACE_PLUS, &out, &len);
    is_int(rc, CAPTURE_LZ_OK, "space read as '+' with SPACE_PLUS");
    if (rc == CAPTURE_LZ_OK) {
        is_str((char *) out, vectors[3].text, "SPACE_PLUS text");
        t_free(&t_live, out);
    }
    free(s);

    is_str(capture_lzstring_strerror(CAPTURE_LZ_EINVAL),
           "failed decompress to UTF16", "strerror");

    is_int(t_live, 0, "no leaks through the allocator");

    return done_testing();
}
