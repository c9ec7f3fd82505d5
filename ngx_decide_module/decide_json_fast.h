/*
 * Copyright (C) edgehog
 */

#ifndef _DECIDE_JSON_FAST_H_INCLUDED_
#define _DECIDE_JSON_FAST_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


/*
 * The JSON object of a request body in the shape SDKs send, built without
 * jansson's lexer.  NULL means "not handled here", never "invalid": the
 * caller then parses with jansson, which decides.  A non-NULL result is
 * what json_loadb(JSON_DECODE_ANY) gives for the same bytes, key order
 * included (t/fuzz/fuzz_decide_request.c checks this).
 */
json_t *decide_json_fast(const unsigned char *p, size_t len);


/*
 * The pieces, for a caller that walks the top-level object itself
 * (decide_fields_fast() in decide_request.c): the same subset, so what
 * the pieces accept is what decide_json_fast() accepts.
 */
typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
} decide_json_fast_t;


#define decide_json_fast_ws(s)                                                \
    while ((s)->p < (s)->end                                                  \
           && (*(s)->p == ' ' || *(s)->p == '\t' || *(s)->p == '\n'           \
               || *(s)->p == '\r'))                                           \
    {                                                                         \
        (s)->p++;                                                             \
    }

/* a value at nesting depth (the top-level object is depth 0), or NULL */
json_t *decide_json_fast_value(decide_json_fast_t *s, int depth);

/* a string at s->p; *str points into the input, without quotes */
int decide_json_fast_string(decide_json_fast_t *s, const char **str,
    size_t *len);


#endif /* _DECIDE_JSON_FAST_H_INCLUDED_ */
