/*
 * Copyright (C) edgehog
 */

/*
 * The overflow token bucket of spec/ingestion.md §6: one bucket per
 * token:distinct_id, timestamped by Kafka message time, so a replayed
 * batch decides as the first run did.  Pure C, no time source.
 */

#ifndef _INGEST_OVERFLOW_H_INCLUDED_
#define _INGEST_OVERFLOW_H_INCLUDED_


#include <stdint.h>


typedef struct {
    double                      tokens;
    int64_t                     last_ms;
    unsigned                    used:1;     /* set by memset(0): new */
} ingest_bucket_t;


/*
 * Refills b up to capacity at rate tokens per second of message time,
 * then takes n tokens if they are all there.  Returns 1 when the n
 * events fit (and are taken), 0 when the group overflows (the bucket
 * keeps its tokens, as PostHog's limiter does).
 */
int ingest_bucket_consume(ingest_bucket_t *b, double capacity, double rate,
    int64_t now_ms, long n);


#endif /* _INGEST_OVERFLOW_H_INCLUDED_ */
