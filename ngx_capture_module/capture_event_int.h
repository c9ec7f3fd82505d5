/*
 * Copyright (C) edgehog
 */

/*
 * What the files of the event builder share: capture_event.c (entry and
 * ownership), capture_event_fast.c (the common case on a token array),
 * capture_event_dom.c (jansson: every error and every reshaping) and
 * capture_event_emit.c (the Kafka message layout both parsers feed).
 */

#ifndef _CAPTURE_EVENT_INT_H_INCLUDED_
#define _CAPTURE_EVENT_INT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "capture_alloc.h"
#include "capture_event.h"
#include "capture_json.h"
#include "eh_time.h"
#include "eh_uuid.h"


typedef struct {
    char                       *data;
    size_t                      len;
    size_t                      cap;
    int                         failed;
    /* NULL: realloc() */
    const capture_msg_alloc_t  *alloc;
} capture_sbuf_t;


/* one request: the batch fields and what every message repeats */
typedef struct {
    const capture_request_t    *req;
    const char                 *batch_token;
    const char                 *batch_sent_at;
    size_t                      batch_sent_at_len;
    /* formatted once per request by capture_event_emit() */
    int64_t                     sent_at_us;
    size_t                      now_len;
    size_t                      sent_len;
    char                        now[EH_TIME_STR_MAX];
    char                        sent[EH_TIME_STR_MAX];
    unsigned                    historical:1;
    unsigned                    has_sent_at:1;
    unsigned                    times:1;
} capture_ctx_t;


/* what capture_event_emit() needs of one event, from either parser */
typedef struct {
    const char                 *event;
    size_t                      event_len;
    const char                 *token;
    size_t                      token_len;
    /* normalised distinct_id, borrowed: the caller frees it */
    const char                 *did;
    size_t                      did_len;
    const char                 *timestamp;
    size_t                      timestamp_len;
    /* properties.$session_id, a string; NULL: none */
    const char                 *session_id;
    size_t                      session_id_len;
    int64_t                     offset_ms;
    /* bytes "data" is likely to take, to size the value once */
    size_t                      data_hint;
    /* empty: a v7 is generated */
    char                        uuid[EH_UUID_STR_LEN + 1];
    unsigned                    has_offset:1;
    unsigned                    ignore_sent_at:1;
    unsigned                    cookieless:1;
    unsigned                    internal:1;
    unsigned                    product_tour:1;
} capture_fields_t;


typedef void (*capture_data_pt)(capture_sbuf_t *b, void *arg);


/* malloc(), for capture_distinct_id_normalize() */
extern const capture_alloc_t  capture_event_alloc;


/* 0 and the messages, or 1 when the DOM path must decide */
int capture_event_fast(const capture_request_t *req, const char *text,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err);
int capture_event_dom(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err);

/* a zeroed array of n messages, for capture_msgs_free() */
capture_msg_t *capture_msgs_alloc(size_t n);

/* lays out one message; data() writes the escaped text of "data" */
int capture_event_emit(capture_ctx_t *ctx, capture_fields_t *f,
    capture_data_pt data, void *arg, capture_msg_t *msg,
    capture_error_t *err);

void capture_sbuf_reserve(capture_sbuf_t *b, size_t len);
void capture_sbuf_esc(capture_sbuf_t *b, const char *s, size_t len);

/*
 * valid JSON text into a JSON string, compact: capture_fast_copy() byte
 * by byte, capture_fast_raw() for token i of a scanned text, led by the
 * tokens (the differential tests hold them equal)
 */
void capture_fast_copy(capture_sbuf_t *b, const char *p, size_t len);
void capture_fast_raw(capture_sbuf_t *b, const capture_json_t *js,
    const char *text, uint32_t i);


/*
 * inline: most additions are a literal of a few bytes (",", ":", a field
 * name), whose memcpy() then compiles to a store or two instead of a
 * call into libc through the PLT
 */

static inline void
capture_sbuf_add(capture_sbuf_t *b, const char *p, size_t len)
{
    if (b->len + len > b->cap) {
        capture_sbuf_reserve(b, len);
    }

    if (b->failed) {
        return;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;
}


#endif /* _CAPTURE_EVENT_INT_H_INCLUDED_ */
