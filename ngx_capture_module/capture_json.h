/*
 * Copyright (C) edgehog
 */

/*
 * A single-pass JSON scanner for capture's hot path: it validates the
 * whole text and lays out a flat token array (values point into the
 * input), so fields are read and the client's bytes copied without a DOM.
 * It accepts a subset of what jansson accepts: anything it is unsure of
 * (escaped keys, numbers jansson might refuse, deep nesting) makes it
 * decline, and the caller falls back to jansson, which then decides.
 */

#ifndef _CAPTURE_JSON_H_INCLUDED_
#define _CAPTURE_JSON_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef enum {
    CAPTURE_JSON_OBJECT = 1,
    CAPTURE_JSON_ARRAY,
    CAPTURE_JSON_STRING,
    CAPTURE_JSON_NUMBER,
    CAPTURE_JSON_TRUE,
    CAPTURE_JSON_FALSE,
    CAPTURE_JSON_NULL
} capture_json_type_e;


/* a string holding a backslash: its bytes are not its value */
#define CAPTURE_JSON_ESCAPED  0x01
/* a number without fraction or exponent that fits json_int_t */
#define CAPTURE_JSON_INTEGER  0x02


typedef struct {
    uint8_t                     type;
    uint8_t                     flags;
    /* strings: the content between the quotes; others: the whole text */
    uint32_t                    start;
    uint32_t                    end;
    /* members of an object, elements of an array */
    uint32_t                    size;
    /* the token after this value and everything inside it */
    uint32_t                    next;
} capture_json_tok_t;


typedef struct {
    capture_json_tok_t         *toks;
    size_t                      ntoks;
    size_t                      cap;
} capture_json_t;


/*
 * Scans p; 0 and js->toks[0] is the root, or -1 when the text is not
 * JSON or is beyond what the scanner vouches for.  js is reused across
 * calls; capture_json_free() releases it.
 */
int capture_json_scan(capture_json_t *js, const char *p, size_t len);
void capture_json_free(capture_json_t *js);

/* the value of key in the object at index obj (last one wins), or 0 */
uint32_t capture_json_get(const capture_json_t *js, const char *p,
    uint32_t obj, const char *key, size_t key_len);


#endif /* _CAPTURE_JSON_H_INCLUDED_ */
