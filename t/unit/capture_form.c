/*
 * Copyright (C) edgehog
 */


#include <string.h>

#include "tap.h"
#include "capture_form.h"


static const char *unesc(const char *s);
static const char *field(const capture_form_str_t *f);


static char  t_buf[1024];


static const char *
unesc(const char *s)
{
    size_t  n;

    n = capture_form_unescape((u_char *) t_buf, (const u_char *) s,
                              strlen(s));
    t_buf[n] = '\0';

    return t_buf;
}


static const char *
field(const capture_form_str_t *f)
{
    size_t  n;

    n = capture_form_unescape((u_char *) t_buf, f->data, f->len);
    t_buf[n] = '\0';

    return t_buf;
}


int
main(void)
{
    int                  n;
    char                 inplace[64];
    size_t               len;
    capture_form_t       form;
    capture_form_str_t   k, v;
    capture_form_iter_t  it;
    const char          *body;

    is_str(unesc("a+b"), "a b", "plus is space");
    is_str(unesc("a%2Bb"), "a+b", "%%2B");
    is_str(unesc("%7b%22a%22%3A1%7D"), "{\"a\":1}", "mixed case hex");
    is_str(unesc("100%"), "100%", "lone percent kept");
    is_str(unesc("%4"), "%4", "short escape kept");
    is_str(unesc("%zz%41"), "%zzA", "invalid escape kept, next decoded");
    is_str(unesc("%%41"), "%A", "percent before escape");
    is_str(unesc("%C3%A9"), "\xc3\xa9", "utf-8 bytes");
    is_str(unesc(""), "", "empty");

    strcpy(inplace, "data%3D%3D+x");
    len = capture_form_unescape((u_char *) inplace, (u_char *) inplace,
                                strlen(inplace));
    inplace[len] = '\0';
    is_str(inplace, "data== x", "in place");

    body = "&a=1&&b&c=&=d&e=f=g&";
    capture_form_init(&it, (const u_char *) body, strlen(body));
    n = 0;
    while (capture_form_next(&it, &k, &v)) {
        n++;
        if (n == 1) {
            ok(k.len == 1 && v.len == 1 && *k.data == 'a' && *v.data == '1',
               "pair a=1");
        } else if (n == 2) {
            ok(k.len == 1 && *k.data == 'b' && v.len == 0, "key without =");
        } else if (n == 3) {
            ok(k.len == 1 && *k.data == 'c' && v.len == 0, "empty value");
        } else if (n == 4) {
            ok(k.len == 0 && v.len == 1 && *v.data == 'd', "empty key");
        } else if (n == 5) {
            ok(k.len == 1 && v.len == 3 && memcmp(v.data, "f=g", 3) == 0,
               "value keeps later '='");
        }
    }
    is_int(n, 5, "empty pairs skipped");

    k.data = (const u_char *) "d%61ta";
    k.len = 6;
    ok(capture_form_key_is(&k, "data"), "escaped key matches");
    k.len = 5;
    ok(!capture_form_key_is(&k, "data"), "prefix does not match");
    k.data = (const u_char *) "dat";
    k.len = 3;
    ok(!capture_form_key_is(&k, "data"), "shorter key does not match");

    body = "data=eyJldmVudCI6IiRpZGVudGlmeSJ9%3D&compression=lz64&ver=1.2.3"
           "&data=second&token=phc_x&lib_version=9&sent_at=1&api_key=k";
    capture_form_parse(&form, (const u_char *) body, strlen(body));
    ok(form.has_data, "data found");
    is_str(field(&form.data), "eyJldmVudCI6IiRpZGVudGlmeSJ9=",
           "first data wins, decoded");
    is_str(field(&form.compression), "lz64", "compression");
    is_str(field(&form.ver), "1.2.3", "ver");
    is_str(field(&form.lib_version), "9", "lib_version");
    is_str(field(&form.token), "phc_x", "token");
    is_str(field(&form.api_key), "k", "api_key");
    ok(form.has_sent_at, "sent_at");

    capture_form_parse(&form, (const u_char *) "ver=1", 5);
    ok(!form.has_data && form.has_ver, "no data field");

    ok(capture_form_has_prefix((u_char *) "data=x", 6), "prefix data=");
    ok(capture_form_has_prefix((u_char *) "ver=1", 5), "prefix ver=");
    ok(capture_form_has_prefix((u_char *) "_=1", 3), "prefix _=");
    ok(capture_form_has_prefix((u_char *) "ip=1", 4), "prefix ip=");
    ok(capture_form_has_prefix((u_char *) "compression=x", 13),
       "prefix compression=");
    ok(!capture_form_has_prefix((u_char *) "data", 4), "no '='");
    ok(!capture_form_has_prefix((u_char *) "{\"data=", 7), "json");
    ok(!capture_form_has_prefix((u_char *) "token=x", 7),
       "token= is not a form prefix");

    return done_testing();
}
