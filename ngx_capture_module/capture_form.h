/*
 * Copyright (C) edgehog
 */

/*
 * application/x-www-form-urlencoded parsing (spec/capture.md §2.4).
 *
 * Pairs are separated by '&' only (WHATWG, serde_urlencoded, Python
 * 3.10+); empty pairs are skipped; a pair without '=' is a key with an
 * empty value.  Decoding turns '+' into a space and %XX into a byte; an
 * invalid escape ('%' not followed by two hex digits) is kept literally,
 * as both Django (urllib unquote) and capture-rs (form_urlencoded) do.
 * Byte sequences are not checked for UTF-8 here: the JSON parser that
 * consumes "data" is the one place that validates.
 */

#ifndef _CAPTURE_FORM_H_INCLUDED_
#define _CAPTURE_FORM_H_INCLUDED_


#include <stddef.h>
#include <sys/types.h>


typedef struct {
    const u_char  *pos;
    const u_char  *end;
} capture_form_iter_t;


typedef struct {
    const u_char  *data;
    size_t         len;
} capture_form_str_t;


/* the fields capture reads; raw (still escaped) slices of the body */
typedef struct {
    capture_form_str_t  data;
    capture_form_str_t  compression;
    capture_form_str_t  ver;
    capture_form_str_t  lib_version;
    capture_form_str_t  api_key;
    capture_form_str_t  token;
    capture_form_str_t  sent_at;
    unsigned            has_data:1;
    unsigned            has_compression:1;
    unsigned            has_ver:1;
    unsigned            has_lib_version:1;
    unsigned            has_api_key:1;
    unsigned            has_token:1;
    unsigned            has_sent_at:1;
} capture_form_t;


void capture_form_init(capture_form_iter_t *it, const u_char *p, size_t len);

/* 1 and the raw key and value of the next pair, or 0 at the end */
int capture_form_next(capture_form_iter_t *it, capture_form_str_t *key,
    capture_form_str_t *value);

/*
 * Percent-decodes src into dst ('+' is a space); dst may equal src as
 * decoding only shrinks.  Returns the decoded length.
 */
size_t capture_form_unescape(u_char *dst, const u_char *src, size_t len);

/* 1 if the escaped key decodes to the NUL-terminated name */
int capture_form_key_is(const capture_form_str_t *key, const char *name);

/*
 * Collects the known fields; the first occurrence of a key wins.  Django
 * (QueryDict.get) took the last, capture-rs (serde_urlencoded) rejects
 * some duplicates; posthog-js never sends any, so the first is as good
 * as any and needs no second pass.
 */
void capture_form_parse(capture_form_t *form, const u_char *p, size_t len);

/* 1 if the payload starts with data=, ver=, _=, ip= or compression= */
int capture_form_has_prefix(const u_char *p, size_t len);


#endif /* _CAPTURE_FORM_H_INCLUDED_ */
