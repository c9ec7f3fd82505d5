/*
 * Copyright (C) edgehog
 */

/*
 * distinct_id normalisation (spec/capture.md §4.2), the compact JSON
 * serialisation it relies on (serde_json's: sorted object keys, ryu
 * shortest round-trip reals), UTF-8 helpers and the token shape check of
 * §3.2.
 */

#ifndef _CAPTURE_NORMALIZE_H_INCLUDED_
#define _CAPTURE_NORMALIZE_H_INCLUDED_


#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "capture_alloc.h"


#define CAPTURE_DID_OK         0
/* absent or JSON null everywhere: "event submitted without a distinct_id" */
#define CAPTURE_DID_MISSING   -1
/* an empty string (the same 400 in mainline) */
#define CAPTURE_DID_EMPTY     -2
#define CAPTURE_DID_NOMEM     -3

#define CAPTURE_DID_MAX_CHARS  200
#define CAPTURE_TOKEN_MAX_LEN  64

/* ryu's longest output ("-1.2345678901234567e-308") plus NUL */
#define CAPTURE_REAL_STR_MAX   32


/*
 * The raw distinct_id value of an event object: top-level distinct_id,
 * then $distinct_id, then properties.distinct_id, skipping JSON nulls.
 * NULL when none; the reference is borrowed.
 */
json_t *capture_distinct_id_find(json_t *event);

/*
 * Normalises v: strings as they are, anything else as compact JSON with
 * sorted keys; NUL -> U+FFFD; the first 200 Unicode scalar values.  On
 * CAPTURE_DID_OK *out (NUL-terminated, allocated with a) holds *out_len
 * bytes.  v may be NULL (missing).
 */
int capture_distinct_id_normalize(const json_t *v, const capture_alloc_t *a,
    u_char **out, size_t *out_len);

/*
 * serde_json::to_string() of v into a buffer allocated with a:
 * compact, object keys sorted bytewise, reals in shortest round-trip
 * form.  0 or -1 (out of memory, or a value jansson cannot hold).
 */
int capture_json_dump_sorted(const json_t *v, const capture_alloc_t *a,
    u_char **out, size_t *out_len);

/* ryu / serde_json formatting of a double: 23.4, 1.0, 1e21, 1e-7, null */
size_t capture_format_real(double d, char buf[CAPTURE_REAL_STR_MAX]);

/* 1 if p is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF) */
int capture_utf8_valid(const u_char *p, size_t len);

/* bytes of the first max_chars scalar values of valid UTF-8 */
size_t capture_utf8_prefix(const u_char *p, size_t len, size_t max_chars);

/*
 * NULL if the token has a valid shape, else the capture-rs reason for
 * "API key is not valid: <reason>": empty, too_long, not_ascii,
 * personal_api_key, null_byte (checked in that order).
 */
const char *capture_token_check(const u_char *p, size_t len);


#endif /* _CAPTURE_NORMALIZE_H_INCLUDED_ */
