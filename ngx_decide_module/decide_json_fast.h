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


#endif /* _DECIDE_JSON_FAST_H_INCLUDED_ */
