/*
 * Copyright (C) edgehog
 */

/*
 * capture_event_build(): the fast path first, the DOM path when it
 * declines; and what both share (errors, ownership of the messages).
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture_event_int.h"


static void *capture_malloc(void *ctx, size_t size);
static void capture_free(void *ctx, void *p);


/* messages of a request that the spare array holds (408 bytes each) */
#define CAPTURE_MSGS_SPARE  128


/*
 * nginx builds, produces and frees one request's messages before it
 * builds the next, so one array per process serves them: a request then
 * needs no calloc() and free() of it (a /batch/ of 50 asked for 15 KB,
 * past glibc's small bins).  Held by a caller that keeps two results, the
 * next one is calloc()'d as before.
 */
static capture_msg_t  *capture_msgs_spare;
static unsigned        capture_msgs_spare_busy;


const capture_alloc_t  capture_event_alloc = {
    capture_malloc, capture_free, NULL
};


int
capture_event_build(const capture_request_t *req, const char *payload,
    size_t len, capture_msg_t **msgs, size_t *n, capture_error_t *err)
{
    int  rc;

    rc = capture_event_fast(req, payload, len, msgs, n, err);

    if (rc != 1) {
        return rc;
    }

    /*
     * the DOM path owns every error, every reshaping (/engage hydration,
     * non-string distinct_id) and what the scanner declines: the fast
     * path only ever answers what it would have answered
     */
    return capture_event_dom(req, payload, len, msgs, n, err);
}


int
capture_event_sent_at_ms(const char *p, size_t len, int64_t *us,
    int *valid_int)
{
    size_t   i;
    int64_t  ms;

    *valid_int = 0;

    if (len == 0 || len > 18) {
        return -1;
    }

    ms = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            if (!(i == 0 && p[i] == '-' && len > 1)) {
                return -1;
            }

            continue;
        }

        ms = ms * 10 + (p[i] - '0');
    }

    if (p[0] == '-') {
        ms = -ms;
    }

    *valid_int = 1;

    /* seconds-based values land in 1970: ignored, as capture-rs does */
    if (eh_time_year(ms * 1000) <= 2020) {
        return -1;
    }

    *us = ms * 1000;

    return 0;
}


static void *
capture_malloc(void *ctx, size_t size)
{
    return malloc(size);
}


static void
capture_free(void *ctx, void *p)
{
    free(p);
}


int
capture_error_set(capture_error_t *err, int status, const char *code,
    const char *fmt, ...)
{
    va_list  args;

    err->status = status;
    err->code = code;

    va_start(args, fmt);
    vsnprintf(err->error, sizeof(err->error), fmt, args);
    va_end(args);

    return -1;
}


capture_msg_t *
capture_msgs_alloc(size_t n)
{
    if (n > CAPTURE_MSGS_SPARE || capture_msgs_spare_busy) {
        return calloc(n, sizeof(capture_msg_t));
    }

    if (capture_msgs_spare == NULL) {
        capture_msgs_spare = malloc(CAPTURE_MSGS_SPARE
                                    * sizeof(capture_msg_t));
        if (capture_msgs_spare == NULL) {
            return calloc(n, sizeof(capture_msg_t));
        }
    }

    memset(capture_msgs_spare, 0, n * sizeof(capture_msg_t));
    capture_msgs_spare_busy = 1;

    return capture_msgs_spare;
}


void
capture_msgs_free(capture_msg_t *msgs, size_t n)
{
    size_t  i;

    if (msgs == NULL) {
        return;
    }

    /* the key and the header values live in the value's block */
    for (i = 0; i < n; i++) {
        if (msgs[i].value == NULL) {
            continue;
        }

        if (msgs[i].alloc) {
            msgs[i].alloc->free(msgs[i].alloc->ctx, msgs[i].value);

        } else {
            free(msgs[i].value);
        }
    }

    if (msgs == capture_msgs_spare) {
        capture_msgs_spare_busy = 0;
        return;
    }

    free(msgs);
}
