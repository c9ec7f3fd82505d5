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


#include <stddef.h>
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


/*
 * The buckets of all keys, and a batch's plan on them: the events of
 * a key are counted, its bucket is charged once with their number at
 * their latest message time, and when they do not fit every one of
 * them overflows.  A key is the bytes of the Kafka key; keys that are
 * not UTF-8 get no bucket, and a key's bucket is named by its bytes
 * up to a NUL (as the JSON-object table before it did).  The table
 * forgets everything once it holds more than max buckets.
 */
typedef struct ingest_buckets_s  ingest_buckets_t;

ingest_buckets_t *ingest_buckets_new(size_t max);
void ingest_buckets_free(ingest_buckets_t *t);
size_t ingest_buckets_size(ingest_buckets_t *t);

/*
 * keys[i]/lens[i]/ts_ms[i] of n messages (NULL or 0 length: no bucket);
 * overflow[i] is set to 1 or 0.  -1 when out of memory (nothing
 * overflows then).
 */
int ingest_buckets_plan(ingest_buckets_t *t, const char *const *keys,
    const size_t *lens, const int64_t *ts_ms, int n, double capacity,
    double rate, char *overflow);


#endif /* _INGEST_OVERFLOW_H_INCLUDED_ */
