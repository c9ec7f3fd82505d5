/*
 * Copyright (C) edgehog
 */


#include "ingest_overflow.h"


int
ingest_bucket_consume(ingest_bucket_t *b, double capacity, double rate,
    int64_t now_ms, long n)
{
    if (!b->used) {
        b->used = 1;
        b->tokens = capacity;
        b->last_ms = now_ms;
    }

    /* message time may go backwards across partitions: never refill then */
    if (now_ms > b->last_ms) {
        b->tokens += (double) (now_ms - b->last_ms) / 1000.0 * rate;
        b->last_ms = now_ms;

        if (b->tokens > capacity) {
            b->tokens = capacity;
        }
    }

    if ((double) n > b->tokens) {
        return 0;
    }

    b->tokens -= (double) n;

    return 1;
}
