/*
 * Copyright (C) edgehog
 */

/*
 * Repair of JSON texts that JavaScript's JSON.parse() accepts and
 * jansson does not (spec/ingestion.md §1.1, §1.3, §3.7, §4): lone UTF-16
 * surrogate escapes, \u0000 in object keys, bytes that are not UTF-8.
 * PostHog keeps such events; so does the worker, deterministically:
 *
 *   \u0000 anywhere          -> \ufffd (sanitizeString, sanitizeJsonbValue)
 *   lone \udXXX escape       -> the six characters "\udxxx" as text
 *                               (safeClickhouseString)
 *   invalid UTF-8, NUL bytes -> U+FFFD
 *
 * Only called after jansson refused a text, so valid input costs nothing.
 */

#ifndef _INGEST_UNICODE_H_INCLUDED_
#define _INGEST_UNICODE_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


/*
 * Returns the repaired text (malloc()ed, NUL-terminated, *outlen set),
 * or NULL when there was nothing to repair or on ENOMEM.
 */
char *ingest_json_repair(const char *s, size_t len, size_t *outlen);

/* ingest_json_loadb() of the repaired text; NULL if none or invalid */
json_t *ingest_json_load_repaired(const char *s, size_t len);


#endif /* _INGEST_UNICODE_H_INCLUDED_ */
