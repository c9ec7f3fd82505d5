/*
 * Copyright (C) edgehog
 */

/*
 * Turns a decoded capture payload (one event, an array of events, or a
 * {"batch": [...]} object) into Kafka messages laid out as capture-rs
 * produces them (spec/capture.md §6).  Pure C: no nginx headers, so unit
 * tests and fuzzers drive it directly.
 */

#ifndef _CAPTURE_EVENT_H_INCLUDED_
#define _CAPTURE_EVENT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef enum {
    CAPTURE_TOPIC_MAIN = 0,
    CAPTURE_TOPIC_HISTORICAL,
    CAPTURE_TOPIC_EXCEPTIONS,
    CAPTURE_TOPIC_HEATMAPS,
    CAPTURE_TOPIC_WARNINGS,
    CAPTURE_TOPIC_OVERFLOW,
    CAPTURE_TOPIC_DLQ,
    CAPTURE_TOPIC_N
} capture_topic_e;


#define CAPTURE_MAX_HEADERS  12

/* Kafka's message.max.bytes default, as capture-rs */
#define CAPTURE_MAX_MESSAGE_SIZE  1000000


/* NUL-terminated, and the lengths given: librdkafka need not strlen() */
typedef struct {
    const char                 *name;
    const char                 *value;
    uint32_t                    name_len;
    uint32_t                    value_len;
} capture_header_t;


/*
 * The value, the key and the header values share one block that starts
 * with the value: whoever takes the value (librdkafka) sets it to NULL
 * and frees the block with the message's allocator from then on.
 */


/* where message blocks come from; realloc() and free() when NULL */
typedef struct {
    /* realloc() semantics */
    void                     *(*resize)(void *ctx, void *p, size_t size);
    void                      (*free)(void *ctx, void *p);
    void                       *ctx;
} capture_msg_alloc_t;
typedef struct {
    capture_topic_e             topic;
    /* NULL: no key (random partition) */
    const char                 *key;
    size_t                      key_len;
    char                       *value;
    size_t                      value_len;
    /* the value's block came from here; NULL: malloc() */
    const capture_msg_alloc_t  *alloc;
    capture_header_t            headers[CAPTURE_MAX_HEADERS];
    size_t                      nheaders;
    /* borrowed from the headers, for the limits */
    const char                 *token;
    const char                 *distinct_id;
    const char                 *event;
    /* properties.$session_id when a string, else NULL (§7.5) */
    const char                 *session_id;
    size_t                      session_id_len;
    /* set by calloc(): a restriction's topic, over "topic" when set */
    const char                 *topic_name;
    size_t                      topic_name_len;
    /* set by calloc(): the limits may drop or reroute a message */
    unsigned                    dropped:1;
    /* force_disable_person_processing was added */
    unsigned                    person_skip:1;
    /* properties.$product_tour_id is set: not a survey response (§7.1) */
    unsigned                    product_tour:1;
} capture_msg_t;


/* appends a header; the caller checks that there is room for it */
static inline void
capture_msg_header_add(capture_msg_t *msg, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
    capture_header_t  *h;

    h = &msg->headers[msg->nheaders++];

    h->name = name;
    h->value = value;
    h->name_len = name_len;
    h->value_len = value_len;
}


typedef struct {
    int                         status;      /* HTTP status */
    const char                 *code;        /* machine-readable tag */
    char                        error[256];  /* capture-rs message */
} capture_error_t;


typedef struct {
    const char                 *ip;          /* client address, text */
    int64_t                     now_us;      /* server receive time */
    /* query "_" in microseconds, when valid (§2.1) */
    int64_t                     sent_at_us;
    /* value + key above this are refused with 413; 0: no limit */
    size_t                      max_message_size;
    /*
     * query token or api_key of a GET (capture_query_token on): used
     * when the payload names none, NUL-terminated; NULL: none
     */
    const char                 *query_token;
    size_t                      query_token_len;
    /* when set, receives the count of $performance_event dropped */
    size_t                     *filtered;
    /* the allocator of the message blocks; NULL: malloc() */
    const capture_msg_alloc_t  *alloc;
    unsigned                    has_sent_at:1;
    unsigned                    engage:1;    /* path starts with /engage */
    unsigned                    strict:1;    /* capture_compat strict */
} capture_request_t;


/*
 * Parses, validates and normalises a decoded payload (§2.9-§4) and lays
 * out one message per event (§6).  Returns 0 and fills *msgs (malloc'd;
 * *n may be 0 when every event was filtered), or -1 and fills *err;
 * nothing is built when any event is bad.
 */
int capture_event_build(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err);
void capture_msgs_free(capture_msg_t *msgs, size_t n);

/* fills *err; returns -1 */
int capture_error_set(capture_error_t *err, int status, const char *code,
    const char *fmt, ...);

/* "_" of the query: 0 and *us when an integer of a year after 2020 */
int capture_event_sent_at_ms(const char *p, size_t len, int64_t *us,
    int *valid_int);


#endif /* _CAPTURE_EVENT_H_INCLUDED_ */
