/*
 * Copyright (C) edgehog
 */

/*
 * Decoding of /decide and /flags request bodies (spec/decide.md 1.3,
 * 1.4): JSON, gzip (hint, Content-Encoding or magic bytes), base64 and
 * form data=, with NaN/Infinity read as null; then the body fields with
 * their aliases.  Pure C over jansson and zlib, no nginx headers.
 */

#ifndef _DECIDE_REQUEST_H_INCLUDED_
#define _DECIDE_REQUEST_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "decide_eval.h"


#define DECIDE_DISTINCT_ID_MAX_CHARS  200
#define DECIDE_ID_BUF_SIZE            (DECIDE_DISTINCT_ID_MAX_CHARS * 4 + 1)


typedef enum {
    DECIDE_DECODE_OK = 0,
    DECIDE_DECODE_BAD,                  /* 400 */
    DECIDE_DECODE_TOO_LARGE             /* 413 */
} decide_decode_e;


typedef enum {
    DECIDE_COMPRESSION_NONE = 0,
    DECIDE_COMPRESSION_GZIP,
    DECIDE_COMPRESSION_BASE64,
    DECIDE_COMPRESSION_UNSUPPORTED
} decide_compression_e;


typedef struct {
    const char           *content_type;   /* raw header or NULL */
    size_t                content_type_len;
    decide_compression_e  compression;
    unsigned              content_encoding_gzip:1;
    size_t                max_decompressed;
} decide_body_opts_t;


typedef struct {
    const char  *token;                   /* NULL: missing or empty */
    const char  *distinct_id;             /* NULL: missing */
    const char  *anon_distinct_id;
    const char  *device_id;
    json_t      *person_properties;       /* borrowed from the body */
    json_t      *groups;
    json_t      *group_properties;
    json_t      *flag_keys;               /* array of strings or NULL */
    json_t      *environments;            /* array of strings or NULL */
    decide_runtime_e  runtime;            /* evaluation_runtime, if set */
    unsigned     runtime_set:1;
    unsigned     disable_flags:1;
    unsigned     geoip_disable:1;
    char         id_buf[DECIDE_ID_BUF_SIZE];
} decide_fields_t;


/* "gzip", "gzip-js", "base64", "" (none); anything else is unsupported */
decide_compression_e decide_compression_parse(const char *p, size_t len);

/*
 * Decodes a body into *out (a new reference, not necessarily an object);
 * err gets a short reason for 400 and 413.
 */
decide_decode_e decide_body_decode(const unsigned char *body, size_t len,
    const decide_body_opts_t *opts, json_t **out, char *err, size_t errlen);

/* fills f from a decoded body object; f points into body */
void decide_fields_get(json_t *body, decide_fields_t *f);

/*
 * The same fields straight from the bytes of a JSON body in the common
 * SDK shape (decide_json_fast.h's subset, an object at the top).  0: f
 * is what decide_body_decode() and decide_fields_get() give, f points
 * into *holder (a new reference that owns the values); -1: not handled
 * here, the caller decodes the body as usual.
 */
int decide_fields_fast(const unsigned char *body, size_t len,
    const decide_body_opts_t *opts, json_t **holder, decide_fields_t *f);

/* spec 5.2 evaluation_runtime detection */
decide_runtime_e decide_runtime_detect(const char *ua, size_t len,
    int browser_headers);

/* boolean query value: absent-value, true/1/yes/on, false/0/no/off */
int decide_query_bool(const char *p, size_t len);


#endif /* _DECIDE_REQUEST_H_INCLUDED_ */
