/*
 * Copyright (C) edgehog
 */

/*
 * JSON and string helpers of the ingest transforms: UTF-8 repair,
 * NUL replacement, JavaScript-like stringification and truncation in
 * UTF-16 units, the unit PostHog's TypeScript measures strings in.
 */

#ifndef _INGEST_JSON_H_INCLUDED_
#define _INGEST_JSON_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


/*
 * Returns a malloc()ed NUL-terminated copy of s in which every invalid
 * UTF-8 sequence (overlong, surrogate, > U+10FFFF, truncated) and every
 * NUL byte became U+FFFD; *outlen gets its length.  NULL on ENOMEM.
 */
char *ingest_utf8_sanitize(const char *s, size_t len, size_t *outlen);

/* 1 if s is valid UTF-8 with no NUL byte */
int ingest_utf8_valid(const char *s, size_t len);

/* a json string from arbitrary bytes, repaired as above; NULL on ENOMEM */
json_t *ingest_json_string(const char *s, size_t len);

/*
 * Replaces NUL in every string and key of v, recursively, with U+FFFD
 * (PostHog's sanitizeJsonbValue: Postgres JSONB rejects \u0000).
 * 0 on success, -1 on ENOMEM.
 */
int ingest_json_sanitize(json_t *v);

/*
 * Turns reals that hold an integer of at most 2^53 back into integers.
 * Used after a retry with JSON_DECODE_INT_AS_REAL, so a huge integer
 * becomes a double as in JavaScript while small ones stay exact.
 */
void ingest_json_reals_to_ints(json_t *v);

/*
 * Loads a JSON text, accepting NUL escapes and integers too big for
 * 64 bits (as doubles).  NULL on any other error.
 */
json_t *ingest_json_loadb(const char *s, size_t len);

/*
 * JavaScript String(v) for scalars and JSON.stringify(v) for objects
 * and arrays; malloc()ed, NULL on ENOMEM.
 */
char *ingest_json_to_js_string(const json_t *v);

/* shortest "%.*g" form that round-trips, as JavaScript prints numbers */
void ingest_js_number(double d, char *buf, size_t size);

/*
 * Byte length of the longest prefix of the UTF-8 string s that holds at
 * most max UTF-16 units, never splitting a character.
 */
size_t ingest_utf16_prefix(const char *s, size_t len, size_t max);
/* JavaScript truthiness of a JSON value; absent (NULL) is falsy */
int ingest_json_truthy(const json_t *v);


#endif /* _INGEST_JSON_H_INCLUDED_ */
