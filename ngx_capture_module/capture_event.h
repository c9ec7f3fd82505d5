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
    CAPTURE_TOPIC_N
} capture_topic_e;


#define CAPTURE_MAX_HEADERS  8


typedef struct {
    const char                 *name;
    char                       *value;
} capture_header_t;


typedef struct {
    capture_topic_e             topic;
    char                       *key;
    char                       *value;
    size_t                      value_len;
    capture_header_t            headers[CAPTURE_MAX_HEADERS];
    size_t                      nheaders;
} capture_msg_t;


typedef struct {
    int                         status;      /* HTTP status */
    const char                 *code;        /* machine-readable tag */
    char                        error[256];  /* capture-rs message */
} capture_error_t;


typedef struct {
    const char                 *ip;          /* client address, text */
    int64_t                     now_us;      /* server receive time */
} capture_request_t;


/* returns 0 and fills *msgs (malloc'd), or -1 and fills *err */
int capture_event_build(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err);
void capture_msgs_free(capture_msg_t *msgs, size_t n);


#endif /* _CAPTURE_EVENT_H_INCLUDED_ */
