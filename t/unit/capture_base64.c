/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "capture_base64.h"


static const char *dec(const char *in, unsigned flags);


static char  out_buf[4096];


static const char *
dec(const char *in, unsigned flags)
{
    size_t  n;

    if (capture_base64_decode((u_char *) out_buf, &n, (const u_char *) in,
                              strlen(in), flags)
        != 0)
    {
        return NULL;
    }

    out_buf[n] = '\0';

    return out_buf;
}


int
main(void)
{
    size_t  n;
    char    big[300], inplace[32];

    /* strict: capture-rs STANDARD engine */
    is_str(dec("", CAPTURE_BASE64_STRICT), "", "strict: empty");
    is_str(dec("Zg==", CAPTURE_BASE64_STRICT), "f", "strict: 1 byte");
    is_str(dec("Zm8=", CAPTURE_BASE64_STRICT), "fo", "strict: 2 bytes");
    is_str(dec("Zm9v", CAPTURE_BASE64_STRICT), "foo", "strict: 3 bytes");
    is_str(dec("eyJhIjoxfQ==", CAPTURE_BASE64_STRICT), "{\"a\":1}",
           "strict: json");
    ok(dec("Zg", CAPTURE_BASE64_STRICT) == NULL, "strict: missing padding");
    ok(dec("Zg=", CAPTURE_BASE64_STRICT) == NULL, "strict: short padding");
    ok(dec("Zm9v====", CAPTURE_BASE64_STRICT) == NULL, "strict: extra pad");
    ok(dec("Zh==", CAPTURE_BASE64_STRICT) == NULL,
       "strict: non-zero trailing bits");
    ok(dec("Zm9=", CAPTURE_BASE64_STRICT) == NULL,
       "strict: non-zero trailing bits (2 bytes)");
    ok(dec("Zg==Zg==", CAPTURE_BASE64_STRICT) == NULL,
       "strict: data after padding");
    ok(dec("Zm9v\n", CAPTURE_BASE64_STRICT) == NULL, "strict: newline");
    ok(dec("Z", CAPTURE_BASE64_STRICT) == NULL, "strict: 1 char");
    ok(dec("-_8=", CAPTURE_BASE64_STRICT) == NULL, "strict: url chars");
    is_str(dec("-_8=", CAPTURE_BASE64_STRICT | CAPTURE_BASE64_URL),
           "\xfb\xff", "strict url alphabet");
    ok(dec("+/8=", CAPTURE_BASE64_STRICT | CAPTURE_BASE64_URL) == NULL,
       "strict url rejects +/");
    is_str(dec("+/8=", CAPTURE_BASE64_STRICT), "\xfb\xff",
           "strict standard +/");

    /* lenient: Django */
    is_str(dec("Zg", 0), "f", "lenient: padding repaired (2)");
    is_str(dec("Zm8", 0), "fo", "lenient: padding repaired (3)");
    is_str(dec("Zg=", 0), "f", "lenient: short padding");
    is_str(dec("Zg=====", 0) ? "x" : NULL, NULL, "lenient: absurd padding");
    is_str(dec("Zm9v\nYmFy\r\n", 0), "foobar", "lenient: newlines");
    is_str(dec(" Zm 9v\tYmFy ", 0), "foobar", "lenient: spaces");
    is_str(dec("-_8", 0), "\xfb\xff", "lenient: url alphabet unpadded");
    is_str(dec("Zh==", 0), "f", "lenient: trailing bits ignored");
    ok(dec("Z", 0) == NULL, "lenient: 1 leftover char is invalid");
    ok(dec("Zm9v!", 0) == NULL, "lenient: garbage char");
    ok(dec("Zg==Zg==", 0) == NULL, "lenient: data after padding");
    is_str(dec("eyJhIjoiPj4 In0=", CAPTURE_BASE64_SPACE_PLUS),
           "{\"a\":\">>>\"}", "lenient: space means plus");
    ok(dec("eyJhIjoiPj4 In0=", 0) == NULL
       || strcmp(out_buf, "{\"a\":\">>>\"}") != 0,
       "without SPACE_PLUS a space is skipped");

    /* in place */
    strcpy(inplace, "eyJhIjoxfQ==");
    ok(capture_base64_decode((u_char *) inplace, &n, (u_char *) inplace,
                             strlen(inplace), CAPTURE_BASE64_STRICT) == 0
       && n == 7 && memcmp(inplace, "{\"a\":1}", 7) == 0, "in place");
    ok(capture_base64_decoded_len(12) >= 9, "decoded_len bound");

    /* detection, spec §2.3 */
    ok(!capture_base64_is_likely((u_char *) "", 0,
                                 CAPTURE_BASE64_LIKELY_STRICT), "likely: empty");
    ok(capture_base64_is_likely((u_char *) "Zm9v", 4,
                                CAPTURE_BASE64_LIKELY_STRICT), "likely: Zm9v");
    ok(!capture_base64_is_likely((u_char *) "Zm9", 3,
                                 CAPTURE_BASE64_LIKELY_STRICT),
       "likely: len %% 4");
    ok(!capture_base64_is_likely((u_char *) "{\"a\"", 4,
                                 CAPTURE_BASE64_LIKELY_STRICT), "likely: json");
    ok(!capture_base64_is_likely((u_char *) "Zm 9", 4,
                                 CAPTURE_BASE64_LIKELY_STRICT),
       "likely strict: space");
    ok(capture_base64_is_likely((u_char *) "Zm 9", 4,
                                CAPTURE_BASE64_LIKELY_LOOSE),
       "likely loose: space");
    ok(!capture_base64_is_likely((u_char *) "Zm-9", 4,
                                 CAPTURE_BASE64_LIKELY_STRICT),
       "likely strict: -");
    ok(capture_base64_is_likely((u_char *) "Zm-_", 4,
                                CAPTURE_BASE64_LIKELY_URL), "likely url: -_");
    ok(!capture_base64_is_likely((u_char *) "Zm+/", 4,
                                 CAPTURE_BASE64_LIKELY_URL), "likely url: +/");

    memset(big, 'A', sizeof(big));
    big[200] = '!';
    ok(capture_base64_is_likely((u_char *) big, 296,
                                CAPTURE_BASE64_LIKELY_STRICT),
       "likely: only the first 128 bytes are sampled");
    big[127] = '!';
    ok(!capture_base64_is_likely((u_char *) big, 296,
                                 CAPTURE_BASE64_LIKELY_STRICT),
       "likely: byte 127 is sampled");

    return done_testing();
}
